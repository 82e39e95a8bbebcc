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
}

/// Creates the user, or refreshes its email: one row per `sub` however often (and in
/// whatever order, concurrently or not) it is called. `created_at` and `plan` are never
/// touched by a repeat; `updated_at` moves only when the email changes.
pub async fn upsert(pool: &PgPool, sub: &str, email: &Email) -> Result<Provisioned, sqlx::Error> {
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
    Ok(Provisioned {
        user: User {
            id: row.id,
            cognito_sub: row.cognito_sub,
            email: row.email,
            plan: row.plan,
            created_at: row.created_at,
            updated_at: row.updated_at,
        },
        created: row.created,
    })
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

/// The caller's row. It normally comes from post-confirmation; when that never ran, the
/// first request creates it from the token's `sub` and `email` claims, through the same
/// [`upsert`] (so the same normalised email). `None` when there is no row and no usable
/// email claim to make one (an access token carries no email).
pub async fn for_caller(pool: &PgPool, caller: &Caller) -> Result<Option<User>, sqlx::Error> {
    if let Some(user) = find_by_sub(pool, &caller.sub).await? {
        return Ok(Some(user));
    }
    let Some(email) = caller.email.as_deref().and_then(|e| Email::parse(e).ok()) else {
        return Ok(None);
    };
    let provisioned = upsert(pool, &caller.sub, &email).await?;
    tracing::info!(user_id = %provisioned.user.id, cognito_sub = %caller.sub, "user created from the token's claims");
    Ok(Some(provisioned.user))
}
