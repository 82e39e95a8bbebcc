//! The completion handler: S3 `ObjectCreated:*` records settle pending memories.
//!
//! Delivery is at least once and unordered, so every step is idempotent: the state
//! change is one conditional UPDATE keyed on the S3 sequencer, and deleting an object
//! twice is harmless. Each record gets its own result, in three kinds:
//! - settled or safely skipped (acknowledged): ready, failed, already applied, the
//!   object already gone, an object that is no memory of ours (deleted), a record for
//!   another bucket or event type;
//! - temporary (the database or S3 out of reach, throttled, 5xx): a retry may pass;
//! - permanent (S3 refusing access or naming a missing bucket, a query the database
//!   rejects, a record with no usable key): no retry passes, and a human must see it.
//!
//! Any temporary or permanent record fails the invocation, so Lambda retries the whole
//! event (twice; settled records re-apply nothing) and then puts it, with the error, on
//! the function's on-failure destination (the dead-letter queue): nothing is acknowledged
//! and forgotten.

use std::sync::Arc;

use aws_lambda_events::s3::{S3Event, S3EventRecord};
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use encache_shared::aws;
use encache_shared::config::{Env, ProcessEnv};
use encache_shared::db::{Database, is_unavailable};
use lambda_runtime::LambdaEvent;
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::Instrument;
use uuid::Uuid;

pub use crate::error::RecordsFailed;
use crate::keys::{Sequencer, decode_event_key, is_newer};
use crate::settings::CompleteSettings;
use crate::store::{self, StoredMemory, Verdict};

/// What the completion handler needs, built once per container.
pub struct Deps {
    /// Shared with each record's task.
    pub db: Arc<Database>,
    pub s3: aws::Lazy<aws_sdk_s3::Client>,
    pub settings: CompleteSettings,
}

impl Deps {
    pub async fn from_env() -> anyhow::Result<Self> {
        let env = Env::new(&ProcessEnv);
        let settings = CompleteSettings::from_env(&env)?;
        // The SDK clients are built on first use (shared::aws).
        Ok(Self {
            db: Arc::new(Database::from_env(&env, None)?),
            s3: aws::Lazy::new(aws::s3_client),
            settings,
        })
    }
}

/// What happened to one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The object matches its declaration; the memory is ready.
    Ready { memory_id: Uuid },
    /// The object did not match; the memory failed and the object was deleted.
    Failed { memory_id: Uuid, reason: String },
    /// This event (or a later one) was already applied: nothing changed.
    AlreadyApplied { memory_id: Uuid },
    /// The object is no longer there (a later event will settle the memory, or a
    /// previous delivery already deleted it).
    ObjectGone { memory_id: Uuid },
    /// The object belongs to no memory, or to one that is failed or expired: deleted.
    Discarded {
        memory_id: Option<Uuid>,
        why: String,
    },
    /// Not ours to handle (another bucket, another event type).
    Ignored { why: String },
    /// Failed in a way a retry may fix (database unavailable, S3 5xx or timeout).
    Retryable { error: String },
    /// Failed in a way no retry fixes: the invocation fails, so the event reaches the
    /// dead-letter queue for a human.
    Permanent { error: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordResult {
    /// The decoded object key, when there was one.
    pub key: Option<String>,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// The function's return value: one result per record, in event order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CompletionReport {
    pub results: Vec<RecordResult>,
}

impl CompletionReport {
    pub fn retryable(&self) -> impl Iterator<Item = &RecordResult> {
        self.results
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Retryable { .. }))
    }

    pub fn permanent(&self) -> impl Iterator<Item = &RecordResult> {
        self.results
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Permanent { .. }))
    }

    /// The failures Lambda must see, `None` when every record was settled or skipped.
    pub fn failure(&self) -> Option<RecordsFailed> {
        let (retryable, permanent) = (self.retryable().count(), self.permanent().count());
        let first = self.results.iter().find_map(|r| match &r.outcome {
            Outcome::Retryable { error } | Outcome::Permanent { error } => Some(error.clone()),
            _ => None,
        })?;
        Some(RecordsFailed {
            retryable,
            permanent,
            total: self.results.len(),
            first,
        })
    }
}

/// The Lambda entry point: every record settled, skipped or failed. The invocation fails
/// when any record failed: `Retryable.Unavailable` when some record may pass on a
/// redelivery, else `NotRetryable.RecordFailed` (Lambda's retries re-apply nothing, then
/// the event and this error reach the dead-letter queue).
pub async fn handle(
    deps: &Deps,
    event: LambdaEvent<S3Event>,
) -> Result<CompletionReport, RecordsFailed> {
    let report = process(deps, event.payload).await;
    match report.failure() {
        Some(failed) => Err(failed),
        None => Ok(report),
    }
}

/// Processes every record, up to `settings.concurrency` at once, and reports each.
pub async fn process(deps: &Deps, event: S3Event) -> CompletionReport {
    let Deps { db, s3, settings } = deps;
    let limit = Arc::new(Semaphore::new(settings.concurrency));
    let mut tasks = JoinSet::new();
    let total = event.records.len();
    for (index, record) in event.records.into_iter().enumerate() {
        let (db, s3, bucket, limit) = (
            db.clone(),
            s3.clone(),
            settings.bucket.clone(),
            limit.clone(),
        );
        let span = tracing::info_span!("s3_record", index, key = ?record.s3.object.key,
            sequencer = ?record.s3.object.sequencer);
        tasks.spawn(
            async move {
                let _permit = limit.acquire_owned().await;
                let result = process_record(&record, &db, &s3, &bucket).await;
                log_result(&result);
                (index, result)
            }
            .instrument(span),
        );
    }
    let mut results: Vec<Option<RecordResult>> = vec![None; total];
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((index, result)) => results[index] = Some(result),
            Err(e) => tracing::error!(error = %e, "record task did not finish"),
        }
    }
    CompletionReport {
        results: results
            .into_iter()
            .map(|r| {
                r.unwrap_or(RecordResult {
                    key: None,
                    outcome: Outcome::Retryable {
                        error: "record task did not finish".into(),
                    },
                })
            })
            .collect(),
    }
}

fn log_result(result: &RecordResult) {
    let key = result.key.as_deref().unwrap_or("");
    match &result.outcome {
        Outcome::Ready { memory_id } => {
            tracing::info!(%memory_id, key, "upload completed");
            encache_shared::metrics::count("uploads_completed", 1, &[]);
        }
        Outcome::Failed { memory_id, reason } => {
            tracing::warn!(%memory_id, key, reason, "upload rejected; object deleted");
            encache_shared::metrics::count("uploads_failed", 1, &[("reason", reason)]);
        }
        Outcome::AlreadyApplied { memory_id } => {
            tracing::info!(%memory_id, key, "event already applied")
        }
        Outcome::ObjectGone { memory_id } => {
            tracing::info!(%memory_id, key, "object no longer exists")
        }
        Outcome::Discarded { memory_id, why } => {
            tracing::warn!(memory_id = ?memory_id, key, why, "object deleted")
        }
        Outcome::Ignored { why } => tracing::info!(key, why, "record ignored"),
        Outcome::Retryable { error } => tracing::warn!(key, error, "record will be retried"),
        Outcome::Permanent { error } => tracing::error!(key, error, "record failed permanently"),
    }
}

/// One record, start to finish. Never panics; every failure becomes an [`Outcome`].
pub async fn process_record(
    record: &S3EventRecord,
    db: &Database,
    s3: &aws_sdk_s3::Client,
    bucket: &str,
) -> RecordResult {
    let object = &record.s3.object;
    let Some(raw_key) = object.key.as_deref() else {
        return result(
            None,
            Outcome::Permanent {
                error: "record has no object key".into(),
            },
        );
    };
    let Some(key) = decode_event_key(raw_key) else {
        return result(
            None,
            Outcome::Permanent {
                error: format!("object key {raw_key:?} does not decode to UTF-8"),
            },
        );
    };
    let outcome = settle(record, &key, db, s3, bucket).await;
    result(Some(key), outcome.unwrap_or_else(|e| e))
}

fn result(key: Option<String>, outcome: Outcome) -> RecordResult {
    RecordResult { key, outcome }
}

async fn settle(
    record: &S3EventRecord,
    key: &str,
    db: &Database,
    s3: &aws_sdk_s3::Client,
    bucket: &str,
) -> Result<Outcome, Outcome> {
    if record.s3.bucket.name.as_deref() != Some(bucket) {
        return Ok(Outcome::Ignored {
            why: format!(
                "record is for bucket {:?}, not {bucket:?}",
                record.s3.bucket.name
            ),
        });
    }
    let event_name = record.event_name.as_deref().unwrap_or("");
    if !event_name.starts_with("ObjectCreated:") {
        return Ok(Outcome::Ignored {
            why: format!("event {event_name:?} is not an object creation"),
        });
    }
    let sequencer = Sequencer::parse(record.s3.object.sequencer.as_deref());

    let pool = db.pool().await.map_err(db_failure)?;
    let Some(memory) = store::find_by_key(pool, key).await.map_err(db_failure)? else {
        delete(s3, bucket, key).await?;
        return Ok(Outcome::Discarded {
            memory_id: None,
            why: "no memory has this key".into(),
        });
    };
    if let Some(discarded) = discard_if_settled(&memory, s3, bucket, key).await? {
        return Ok(discarded);
    }
    if !is_newer(sequencer.as_ref(), memory.last_sequencer.as_deref()) {
        return Ok(Outcome::AlreadyApplied {
            memory_id: memory.id,
        });
    }

    let head = match s3.head_object().bucket(bucket).key(key).send().await {
        Ok(head) => head,
        Err(e) => {
            return match classify(&e) {
                S3Failure::NotFound => Ok(Outcome::ObjectGone {
                    memory_id: memory.id,
                }),
                other => Err(other.into_outcome("HeadObject")),
            };
        }
    };
    let judged = judge(&memory, &head);
    let moved = store::apply_verdict(pool, memory.id, sequencer.as_ref(), &judged.verdict())
        .await
        .map_err(db_failure)?;
    if !moved {
        // Another delivery got there first; if it settled the memory as failed or the
        // sweep expired it meanwhile, this object must still go.
        let now = store::find_by_key(pool, key).await.map_err(db_failure)?;
        if let Some(memory) = now {
            if let Some(discarded) = discard_if_settled(&memory, s3, bucket, key).await? {
                return Ok(discarded);
            }
            return Ok(Outcome::AlreadyApplied {
                memory_id: memory.id,
            });
        }
        return Ok(Outcome::AlreadyApplied {
            memory_id: memory.id,
        });
    }
    match judged.mismatch {
        None => Ok(Outcome::Ready {
            memory_id: memory.id,
        }),
        Some(reason) => {
            delete(s3, bucket, key).await?;
            Ok(Outcome::Failed {
                memory_id: memory.id,
                reason,
            })
        }
    }
}

/// Objects of failed or expired memories are never kept.
async fn discard_if_settled(
    memory: &StoredMemory,
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<Option<Outcome>, Outcome> {
    if !matches!(memory.status.as_str(), "failed" | "expired") {
        return Ok(None);
    }
    delete(s3, bucket, key).await?;
    Ok(Some(Outcome::Discarded {
        memory_id: Some(memory.id),
        why: format!("the memory is {}", memory.status),
    }))
}

/// What `HeadObject` says about the object, against what was declared.
struct Judged {
    mismatch: Option<String>,
    content_type: Option<String>,
    size: Option<i64>,
    etag: Option<String>,
}

impl Judged {
    fn verdict(&self) -> Verdict<'_> {
        Verdict {
            status: if self.mismatch.is_none() {
                "ready"
            } else {
                "failed"
            },
            reason: self.mismatch.as_deref(),
            actual_content_type: self.content_type.as_deref(),
            actual_size_bytes: self.size,
            etag: self.etag.as_deref(),
        }
    }
}

fn judge(memory: &StoredMemory, head: &HeadObjectOutput) -> Judged {
    let size = head.content_length();
    let content_type = head.content_type().map(|t| t.trim().to_ascii_lowercase());
    let etag = head.e_tag().map(|e| e.trim_matches('"').to_owned());
    let mut problems = Vec::new();
    if size != Some(memory.declared_size_bytes) {
        problems.push(format!(
            "size mismatch: declared {} bytes, received {}",
            memory.declared_size_bytes,
            size.map_or_else(|| "unknown".to_owned(), |s| s.to_string())
        ));
    }
    if content_type.as_deref() != Some(memory.declared_content_type.as_str()) {
        problems.push(format!(
            "content type mismatch: declared {}, received {}",
            memory.declared_content_type,
            content_type.as_deref().unwrap_or("none")
        ));
    }
    Judged {
        mismatch: (!problems.is_empty()).then(|| problems.join("; ")),
        content_type,
        size,
        etag,
    }
}

async fn delete(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<(), Outcome> {
    match s3.delete_object().bucket(bucket).key(key).send().await {
        Ok(_) => Ok(()),
        Err(e) => match classify(&e) {
            S3Failure::NotFound => Ok(()),
            other => Err(other.into_outcome("DeleteObject")),
        },
    }
}

fn db_failure(e: sqlx::Error) -> Outcome {
    if is_unavailable(&e) {
        Outcome::Retryable {
            error: format!("database unavailable: {e}"),
        }
    } else {
        Outcome::Permanent {
            error: format!("database query failed: {e}"),
        }
    }
}

enum S3Failure {
    NotFound,
    Retryable(String),
    Permanent(String),
}

impl S3Failure {
    fn into_outcome(self, operation: &str) -> Outcome {
        match self {
            Self::NotFound => Outcome::Permanent {
                error: format!("{operation}: not found"),
            },
            Self::Retryable(e) => Outcome::Retryable {
                error: format!("{operation}: {e}"),
            },
            Self::Permanent(e) => Outcome::Permanent {
                error: format!("{operation}: {e}"),
            },
        }
    }
}

/// A missing object is an answer (404; `NoSuchBucket` is a missing bucket, not a missing
/// object); throttling, 5xx, timeouts and broken connections may pass; any other 4xx
/// (`AccessDenied`, a missing bucket) needs a human.
fn classify<E>(err: &SdkError<E, HttpResponse>) -> S3Failure
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
{
    let text = DisplayErrorContext(err).to_string();
    match err {
        SdkError::ServiceError(_) => match err.raw_response().map(|r| r.status().as_u16()) {
            Some(404) if err.code() == Some("NoSuchBucket") => S3Failure::Permanent(text),
            Some(404) => S3Failure::NotFound,
            Some(s) if s == 429 || s >= 500 => S3Failure::Retryable(text),
            _ => S3Failure::Permanent(text),
        },
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            S3Failure::Retryable(text)
        }
        _ => S3Failure::Permanent(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::error::ErrorMetadata;
    use aws_sdk_s3::operation::head_object::HeadObjectError;
    use aws_sdk_s3::primitives::SdkBody;

    fn service_error(status: u16) -> SdkError<HeadObjectError, HttpResponse> {
        let raw = http::Response::builder()
            .status(status)
            .body(SdkBody::empty())
            .unwrap();
        SdkError::service_error(
            HeadObjectError::generic(ErrorMetadata::builder().code("X").build()),
            HttpResponse::try_from(raw).unwrap(),
        )
    }

    #[test]
    fn s3_server_errors_and_throttling_are_retryable_but_forbidden_is_not() {
        for status in [500, 503, 429] {
            assert!(matches!(
                classify(&service_error(status)),
                S3Failure::Retryable(_)
            ));
        }
        assert!(matches!(classify(&service_error(404)), S3Failure::NotFound));
        assert!(matches!(
            classify(&service_error(403)),
            S3Failure::Permanent(_)
        ));
    }

    #[test]
    fn a_missing_bucket_is_permanent_not_a_missing_object() {
        let raw = http::Response::builder()
            .status(404)
            .body(SdkBody::empty())
            .unwrap();
        let err: SdkError<HeadObjectError, HttpResponse> = SdkError::service_error(
            HeadObjectError::generic(ErrorMetadata::builder().code("NoSuchBucket").build()),
            HttpResponse::try_from(raw).unwrap(),
        );
        assert!(matches!(classify(&err), S3Failure::Permanent(_)));
    }
}
