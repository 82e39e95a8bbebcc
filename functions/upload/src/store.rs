//! Every SQL statement the upload flow runs, but the caller → `users` row
//! (`encache_shared::users`, shared with auth).

use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::keys::Sequencer;

/// A memory waiting for its object.
#[derive(Debug, Clone)]
pub struct NewMemory<'a> {
    pub id: Uuid,
    pub user_id: Uuid,
    pub s3_key: &'a str,
    pub title: Option<&'a str>,
    pub file_name: Option<&'a str>,
    pub content_type: &'a str,
    pub size_bytes: i64,
    pub captured_at: Option<OffsetDateTime>,
    pub upload_expires_at: OffsetDateTime,
}

/// Inserts the memory; `false` when its id is taken (a repeat of an `Idempotency-Key`:
/// the caller then checks it is the same declaration).
pub async fn insert_pending(pool: &PgPool, m: &NewMemory<'_>) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "INSERT INTO memories (id, user_id, s3_key, title, file_name, declared_content_type,
                               declared_size_bytes, captured_at, upload_expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT DO NOTHING",
        m.id,
        m.user_id,
        m.s3_key,
        m.title,
        m.file_name,
        m.content_type,
        m.size_bytes,
        m.captured_at,
        m.upload_expires_at,
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The first request's URL expiry when memory `m.id` is the caller's and declared what
/// `m` declares (compared by PostgreSQL, with the precision it stored); `None` when the
/// key was used for something else.
pub async fn same_declaration(
    pool: &PgPool,
    m: &NewMemory<'_>,
) -> Result<Option<OffsetDateTime>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT upload_expires_at FROM memories
         WHERE id = $1 AND user_id = $2 AND s3_key = $3
           AND title IS NOT DISTINCT FROM $4 AND file_name IS NOT DISTINCT FROM $5
           AND declared_content_type = $6 AND declared_size_bytes = $7
           AND captured_at IS NOT DISTINCT FROM $8",
        m.id,
        m.user_id,
        m.s3_key,
        m.title,
        m.file_name,
        m.content_type,
        m.size_bytes,
        m.captured_at,
    )
    .fetch_optional(pool)
    .await
}

/// What the completion handler needs to know about the memory behind a key.
#[derive(Debug, Clone)]
pub struct StoredMemory {
    pub id: Uuid,
    pub status: String,
    pub declared_content_type: String,
    pub declared_size_bytes: i64,
    pub last_sequencer: Option<String>,
}

pub async fn find_by_key(pool: &PgPool, key: &str) -> Result<Option<StoredMemory>, sqlx::Error> {
    sqlx::query_as!(
        StoredMemory,
        "SELECT id, status, declared_content_type, declared_size_bytes, last_sequencer
         FROM memories WHERE s3_key = $1",
        key
    )
    .fetch_optional(pool)
    .await
}

/// The outcome the completion handler decided on from `HeadObject`.
#[derive(Debug, Clone)]
pub struct Verdict<'a> {
    pub status: &'static str,
    pub reason: Option<&'a str>,
    pub actual_content_type: Option<&'a str>,
    pub actual_size_bytes: Option<i64>,
    pub etag: Option<&'a str>,
}

/// Applies a verdict in ONE conditional statement, so concurrent and repeated deliveries
/// are safe: only a `pending` or `ready` memory moves, and only for an event whose
/// sequencer is later than the last one applied (compared as hex numbers by left-padding
/// with zeros, as `keys::Sequencer` does). An event without a sequencer can only settle
/// a memory that is still pending. Returns whether this call moved the memory.
pub async fn apply_verdict(
    pool: &PgPool,
    memory_id: Uuid,
    sequencer: Option<&Sequencer>,
    v: &Verdict<'_>,
) -> Result<bool, sqlx::Error> {
    let seq = sequencer.map(Sequencer::as_str);
    let moved = sqlx::query_scalar!(
        r#"UPDATE memories
           SET status = $2, status_reason = $3, actual_content_type = $4,
               actual_size_bytes = $5, etag = $6, last_sequencer = $7,
               updated_at = now(), completed_at = COALESCE(completed_at, now())
           WHERE id = $1
             AND status IN ('pending', 'ready')
             AND CASE
                   WHEN last_sequencer IS NULL THEN status = 'pending' OR $7::text IS NOT NULL
                   WHEN $7::text IS NULL THEN false
                   ELSE lpad($7::text, greatest(length($7::text), length(last_sequencer)), '0') COLLATE "C"
                        > lpad(last_sequencer, greatest(length($7::text), length(last_sequencer)), '0') COLLATE "C"
                 END
           RETURNING id"#,
        memory_id,
        v.status,
        v.reason,
        v.actual_content_type,
        v.actual_size_bytes,
        v.etag,
        seq,
    )
    .fetch_optional(pool)
    .await?;
    Ok(moved.is_some())
}

/// Expires up to `batch` pending memories whose window closed before `cutoff`; returns
/// their ids. `SKIP LOCKED` lets two overlapping sweeps split the work.
pub async fn expire_batch(
    pool: &PgPool,
    cutoff: OffsetDateTime,
    batch: i64,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        "UPDATE memories
         SET status = 'expired', status_reason = 'no object arrived before the upload window closed',
             updated_at = now()
         WHERE id IN (SELECT id FROM memories
                      WHERE status = 'pending' AND upload_expires_at < $1
                      ORDER BY upload_expires_at
                      LIMIT $2
                      FOR UPDATE SKIP LOCKED)
           AND status = 'pending'
         RETURNING id",
        cutoff,
        batch
    )
    .fetch_all(pool)
    .await
}
