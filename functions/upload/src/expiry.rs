//! The expiry sweep, on an EventBridge schedule: pending memories whose upload window
//! (plus a grace period) has passed become `expired`. It never touches S3: an object that
//! arrives for an expired memory is deleted by the completion handler.

use std::time::SystemTime;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use encache_shared::db::is_unavailable;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::settings::ExpirySettings;
use crate::store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ExpiryReport {
    pub expired: usize,
}

/// The sweep could not finish; what it did so far stays done, and the next run (or
/// EventBridge's retry) picks up the rest.
#[derive(Debug, thiserror::Error)]
#[error("expiry sweep stopped after {expired} memories: {source}")]
pub struct SweepError {
    pub expired: usize,
    #[source]
    pub source: sqlx::Error,
}

impl From<SweepError> for Diagnostic {
    fn from(e: SweepError) -> Self {
        let error_type = if is_unavailable(&e.source) {
            "Retryable"
        } else {
            "Permanent"
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: e.to_string(),
        }
    }
}

pub async fn handle(
    event: LambdaEvent<EventBridgeEvent>,
    pool: &PgPool,
    settings: ExpirySettings,
) -> Result<ExpiryReport, SweepError> {
    tracing::info!(rule = ?event.payload.resources, "expiry sweep started");
    let report = sweep(pool, settings, SystemTime::now()).await?;
    tracing::info!(expired = report.expired, "expiry sweep finished");
    Ok(report)
}

/// Expires, batch by batch, every pending memory whose window closed before
/// `now - grace`.
pub async fn sweep(
    pool: &PgPool,
    settings: ExpirySettings,
    now: SystemTime,
) -> Result<ExpiryReport, SweepError> {
    let cutoff = OffsetDateTime::from(now - settings.grace);
    let mut expired = 0;
    loop {
        let ids = store::expire_batch(pool, cutoff, settings.batch_size)
            .await
            .map_err(|source| SweepError { expired, source })?;
        for id in &ids {
            tracing::info!(memory_id = %id, "upload expired");
        }
        expired += ids.len();
        if (ids.len() as i64) < settings.batch_size {
            return Ok(ExpiryReport { expired });
        }
    }
}
