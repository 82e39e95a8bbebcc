//! The memory feed's SQL: one page of a caller's memories, and one memory of theirs.
//!
//! The caller is resolved to a `users` row inside each query, so a caller without a row
//! simply owns nothing (an empty page, no memory).

use encache_shared::pagination::{Keyset, PageRequest};
use encache_shared::timestamp::{EARLIEST, Stored};
use sqlx::PgPool;
use uuid::Uuid;

use crate::memories::{FeedFilter, MemoryItem};

/// One page of the feed, `limit + 1` rows, on the (user_id, status, created_at, id) index.
///
/// The open ends of the `before`/`after` range are the range the API renders
/// (`Keyset::TOP` and `timestamp::EARLIEST`), so a row whose `created_at` was written
/// around the API outside it is in no page; the other instants decode as [`Stored`].
pub async fn fetch_page(
    pool: &PgPool,
    sub: &str,
    filter: &FeedFilter,
    page: PageRequest,
) -> Result<Vec<MemoryItem>, sqlx::Error> {
    sqlx::query_as!(
        MemoryItem,
        r#"
        SELECT m.id, m.status, m.title, m.file_name,
               COALESCE(m.actual_content_type, m.declared_content_type) AS "content_type!",
               COALESCE(m.actual_size_bytes, m.declared_size_bytes) AS "size_bytes!",
               m.captured_at AS "captured_at: Stored", m.created_at,
               m.completed_at AS "completed_at: Stored"
        FROM memories m
        WHERE m.user_id = (SELECT u.id FROM users u WHERE u.cognito_sub = $1)
          AND m.status = $2
          AND (m.created_at, m.id) < ($3, $4)
          AND m.created_at < $5
          AND m.created_at > $6
        ORDER BY m.created_at DESC, m.id DESC
        LIMIT $7
        "#,
        sub,
        filter.status,
        page.after.time,
        page.after.id,
        filter.before.unwrap_or(Keyset::TOP.time),
        filter.after.unwrap_or(EARLIEST),
        page.fetch_limit(),
    )
    .fetch_all(pool)
    .await
}

/// One memory as stored, with what the detail adds to the feed's item.
#[derive(Debug, Clone)]
pub struct StoredMemory {
    pub id: Uuid,
    pub status: String,
    pub title: Option<String>,
    pub file_name: Option<String>,
    pub s3_key: String,
    pub status_reason: Option<String>,
    pub content_type: String,
    pub size_bytes: i64,
    pub captured_at: Option<Stored>,
    pub created_at: Stored,
    pub completed_at: Option<Stored>,
}

/// The memory `id` if the caller `sub` owns it: another user's is `None`, like a missing one.
pub async fn fetch_memory(
    pool: &PgPool,
    id: Uuid,
    sub: &str,
) -> Result<Option<StoredMemory>, sqlx::Error> {
    sqlx::query_as!(
        StoredMemory,
        r#"
            SELECT m.id, m.status, m.title, m.file_name, m.s3_key, m.status_reason,
                   COALESCE(m.actual_content_type, m.declared_content_type) AS "content_type!",
                   COALESCE(m.actual_size_bytes, m.declared_size_bytes) AS "size_bytes!",
                   m.captured_at AS "captured_at: Stored", m.created_at AS "created_at: Stored",
                   m.completed_at AS "completed_at: Stored"
            FROM memories m
            JOIN users u ON u.id = m.user_id
            WHERE m.id = $1 AND u.cognito_sub = $2
            "#,
        id,
        sub,
    )
    .fetch_optional(pool)
    .await
}
