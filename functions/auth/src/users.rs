//! The `users` table, keyed by Cognito's `sub`.

use std::time::Duration;

use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use encache_shared::config::{ConfigError, Env};

use crate::email::Email;

/// A function's settings: how long its whole database step may take, connecting included
/// (`AUTH_DB_TIMEOUT_MS`), with each function's own default in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct DbSettings<const DEFAULT_MS: u64> {
    pub db_timeout: Duration,
}

impl<const DEFAULT_MS: u64> DbSettings<DEFAULT_MS> {
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            db_timeout: env.millis("AUTH_DB_TIMEOUT_MS", Duration::from_millis(DEFAULT_MS))?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    pub cognito_sub: String,
    pub email: String,
    pub plan: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
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
        RETURNING id, cognito_sub, email, plan, created_at, updated_at,
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
        r#"SELECT id, cognito_sub, email, plan, created_at, updated_at
             FROM users WHERE cognito_sub = $1"#,
        sub,
    )
    .fetch_optional(pool)
    .await
}

/// Why bounded database work did not finish.
#[derive(Debug, thiserror::Error)]
pub enum Bounded {
    #[error("the database did not answer within {} ms", .0.as_millis())]
    TimedOut(Duration),
    #[error(transparent)]
    Failed(#[from] sqlx::Error),
}

/// Runs database work within `limit`, whatever the pool's own timeouts are: a trigger
/// must answer Cognito well inside its 5 s, connection attempt included.
pub async fn within<T>(
    limit: Duration,
    work: impl Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, Bounded> {
    match tokio::time::timeout(limit, work).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(Bounded::TimedOut(limit)),
    }
}

impl From<Bounded> for crate::TriggerError {
    fn from(e: Bounded) -> Self {
        match e {
            Bounded::TimedOut(_) => Self::Unavailable(e.to_string()),
            Bounded::Failed(e) => e.into(),
        }
    }
}
