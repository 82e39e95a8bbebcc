//! The `users` table, keyed by Cognito's `sub`, and what deleting a user takes.

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

/// Up to `limit` object keys of the user's memories, for account deletion.
pub async fn memory_keys(
    pool: &PgPool,
    user_id: Uuid,
    limit: i64,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT s3_key FROM memories WHERE user_id = $1 LIMIT $2",
        user_id,
        limit
    )
    .fetch_all(pool)
    .await
}

/// Forgets the user's memories whose objects are gone, so that a deletion that stops
/// half-way resumes where it stopped.
pub async fn forget_memories(
    pool: &PgPool,
    user_id: Uuid,
    keys: &[String],
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        "DELETE FROM memories WHERE user_id = $1 AND s3_key = ANY($2)",
        user_id,
        keys
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// What [`delete_without_memories`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// The row is gone, with its conversations and messages (`ON DELETE CASCADE`).
    Deleted,
    /// There was no row to delete (a concurrent deletion got there first).
    AlreadyGone,
    /// A memory appeared since the last look (an upload raced the deletion): its object
    /// must go first, so the row stays.
    MemoriesLeft,
}

/// Deletes the user's row, cascading to everything they own, but only once no memory is
/// left: an object is never orphaned by a memory row deleted before it. One statement,
/// so it cannot stop half-way.
pub async fn delete_without_memories(pool: &PgPool, user_id: Uuid) -> Result<Removal, sqlx::Error> {
    // The outer SELECT sees the table as it was before the DELETE in the same statement.
    let row = sqlx::query!(
        r#"
        WITH gone AS (
            DELETE FROM users
             WHERE id = $1
               AND NOT EXISTS (SELECT 1 FROM memories WHERE user_id = $1)
            RETURNING id
        )
        SELECT EXISTS (SELECT 1 FROM gone) AS "deleted!",
               EXISTS (SELECT 1 FROM users WHERE id = $1) AS "existed!"
        "#,
        user_id
    )
    .fetch_one(pool)
    .await?;
    Ok(match (row.deleted, row.existed) {
        (true, _) => Removal::Deleted,
        (false, false) => Removal::AlreadyGone,
        (false, true) => Removal::MemoriesLeft,
    })
}
