//! The `users` table, keyed by Cognito's `sub`: the one way from a caller to their row.
//! Every function that creates or reads a user goes through here (auth's
//! post-confirmation, pre-token-generation and `/v1/me`, upload's API), so a person's
//! stored email is formed the same way whichever endpoint saw them first.

use sqlx::PgPool;
use uuid::Uuid;

use crate::http::Caller;
use crate::timestamp::Stored;

mod email;

pub use email::{Email, EmailError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    pub cognito_sub: String,
    pub email: String,
    pub plan: String,
    /// `Stored`, not sqlx's own decoding, which panics on a row written around the API
    /// (`infinity`, year 10000): the times are only ever shown, as RFC 3339 or `null`.
    pub created_at: Stored,
    pub updated_at: Stored,
}

/// What the upsert did, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioned {
    pub user: User,
    pub created: bool,
    /// The row of this email was moved over from another `sub` (the Cognito user was made
    /// again: a local emulator's restart, or a user deleted and signed up again).
    pub relinked: bool,
}

/// The email is another `sub`'s row's, and this caller's email is not verified, so the
/// row is not theirs to take: emails are unique in `users` as they are in the pool.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "this email address belongs to another account: verify your email address, then sign in again"
)]
pub struct EmailInUse;

impl From<EmailInUse> for crate::ApiError {
    fn from(e: EmailInUse) -> Self {
        Self::Conflict {
            code: "email_in_use".into(),
            message: e.to_string(),
        }
    }
}

/// The name of the unique constraint on `users.email` (migrations/20261201000001_unique_user_email.sql).
const EMAIL_KEY: &str = "users_email_key";

/// Creates the user, refreshes its email, or relinks the row of its email to it: one row
/// per `sub` and one per email however often (and in whatever order, concurrently or not)
/// it is called. `created_at` and `plan` are never touched by a repeat; `updated_at`
/// moves only when the email or the `sub` changes.
///
/// A `sub` with no row whose email has a row takes that row over only when
/// `email_verified` (Cognito proved the caller owns the address), else [`EmailInUse`]:
/// the same person's data stays theirs across a new Cognito identity, and no one takes
/// someone else's by claiming their address. A relink goes to whichever verified `sub`
/// asked last: a retried event of an older `sub` can move the row back, harmlessly, as
/// both proved the same address. A `sub` that has a row and changes its email to another
/// row's is [`EmailInUse`] whatever it verified: two accounts are never merged here.
pub async fn upsert(
    pool: &PgPool,
    sub: &str,
    email: &Email,
    email_verified: bool,
) -> Result<Result<Provisioned, EmailInUse>, sqlx::Error> {
    // A unique violation on the email from a concurrent writer is settled by looking
    // again: the second round sees the row the other request made or moved.
    let mut attempt = 0;
    loop {
        attempt += 1;
        match try_upsert(pool, sub, email, email_verified).await {
            Err(e) if attempt < 3 && violates(&e, EMAIL_KEY) && email_verified => continue,
            Err(e) if violates(&e, EMAIL_KEY) => return Ok(Err(EmailInUse)),
            Err(e) if attempt < 3 && violates(&e, "users_cognito_sub_key") => continue,
            other => return other,
        }
    }
}

fn violates(e: &sqlx::Error, constraint: &str) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation() && d.constraint() == Some(constraint))
}

async fn try_upsert(
    pool: &PgPool,
    sub: &str,
    email: &Email,
    email_verified: bool,
) -> Result<Result<Provisioned, EmailInUse>, sqlx::Error> {
    // 1. The sub's own row: refresh its email.
    let own = sqlx::query_as!(
        User,
        r#"
        UPDATE users
           SET email = $2,
               updated_at = CASE WHEN email = $2 THEN updated_at ELSE now() END
         WHERE cognito_sub = $1
        RETURNING id, cognito_sub, email, plan,
                  created_at AS "created_at: Stored", updated_at AS "updated_at: Stored"
        "#,
        sub,
        email.as_str(),
    )
    .fetch_optional(pool)
    .await;
    match own {
        Ok(Some(user)) => return Ok(Ok(provisioned(user, false, false))),
        Ok(None) => {}
        // Another row has the new email: not this sub's to take.
        Err(e) if violates(&e, EMAIL_KEY) => return Ok(Err(EmailInUse)),
        Err(e) => return Err(e),
    }
    // 2. The email's row, made by an earlier Cognito identity of the same address.
    if email_verified
        && let Some(user) = sqlx::query_as!(
            User,
            r#"
            UPDATE users SET cognito_sub = $1, updated_at = now()
             WHERE email = $2
            RETURNING id, cognito_sub, email, plan,
                      created_at AS "created_at: Stored", updated_at AS "updated_at: Stored"
            "#,
            sub,
            email.as_str(),
        )
        .fetch_optional(pool)
        .await?
    {
        return Ok(Ok(provisioned(user, false, true)));
    }
    // 3. A new user. A concurrent first request for the same sub is the ON CONFLICT; one
    //    for the same email is a unique violation on it, which `upsert` settles.
    let row = sqlx::query!(
        r#"
        INSERT INTO users (cognito_sub, email)
        VALUES ($1, $2)
        ON CONFLICT (cognito_sub) DO UPDATE
           SET email = EXCLUDED.email,
               updated_at = CASE WHEN users.email = EXCLUDED.email
                                 THEN users.updated_at ELSE now() END
        RETURNING id, cognito_sub, email, plan,
                  created_at AS "created_at: Stored", updated_at AS "updated_at: Stored",
                  (xmax = 0) AS "created!"
        "#,
        sub,
        email.as_str(),
    )
    .fetch_one(pool)
    .await?;
    let user = User {
        id: row.id,
        cognito_sub: row.cognito_sub,
        email: row.email,
        plan: row.plan,
        created_at: row.created_at,
        updated_at: row.updated_at,
    };
    Ok(Ok(provisioned(user, row.created, false)))
}

fn provisioned(user: User, created: bool, relinked: bool) -> Provisioned {
    Provisioned {
        user,
        created,
        relinked,
    }
}

pub async fn find_by_sub(pool: &PgPool, sub: &str) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as!(
        User,
        r#"SELECT id, cognito_sub, email, plan,
                  created_at AS "created_at: Stored", updated_at AS "updated_at: Stored"
             FROM users WHERE cognito_sub = $1"#,
        sub,
    )
    .fetch_optional(pool)
    .await
}

/// The caller's row. It normally comes from post-confirmation; when that never ran, or
/// the caller is a new Cognito identity of a known address, the first request creates or
/// relinks it from the token's `sub`, `email` and `email_verified` claims through the same
/// [`upsert`] (so the same normalised email). `Ok(None)` when there is no row and no
/// usable email claim to make one (an access token carries no email); [`EmailInUse`] when
/// the email's row is another identity's and the token does not say the email is verified.
pub async fn for_caller(
    pool: &PgPool,
    caller: &Caller,
) -> Result<Result<Option<User>, EmailInUse>, sqlx::Error> {
    if let Some(user) = find_by_sub(pool, &caller.sub).await? {
        return Ok(Ok(Some(user)));
    }
    let Some(email) = caller.email.as_deref().and_then(|e| Email::parse(e).ok()) else {
        return Ok(Ok(None));
    };
    let provisioned = match upsert(pool, &caller.sub, &email, caller.email_verified).await? {
        Ok(provisioned) => provisioned,
        Err(taken) => {
            tracing::info!(cognito_sub = %caller.sub, "the token's email is another account's and is not verified");
            return Ok(Err(taken));
        }
    };
    if provisioned.relinked {
        tracing::info!(user_id = %provisioned.user.id, cognito_sub = %caller.sub, "user relinked to a new identity by verified email");
    } else {
        tracing::info!(user_id = %provisioned.user.id, cognito_sub = %caller.sub, "user created from the token's claims");
    }
    Ok(Ok(Some(provisioned.user)))
}
