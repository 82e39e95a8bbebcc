//! The SQL auth owns beyond the `users` row itself (that is `encache_shared::users`):
//! what deleting an account takes — the caller's memories' object keys, forgetting the
//! memories whose objects are gone, and the row, once nothing is left.

use sqlx::PgPool;
use uuid::Uuid;

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
