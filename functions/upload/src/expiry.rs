//! The expiry sweep, on an EventBridge schedule: pending memories whose upload window
//! (plus a grace period) has passed become `expired`. It never touches S3: an object that
//! arrives for an expired memory is deleted by the completion handler.

use std::time::SystemTime;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use encache_shared::config::{Env, ProcessEnv};
use encache_shared::db::Database;
use lambda_runtime::LambdaEvent;
use serde::Serialize;
use time::OffsetDateTime;

pub use crate::error::SweepError;
use crate::settings::ExpirySettings;
use crate::store;

/// What the sweep needs, built once per container.
pub struct Deps {
    pub db: Database,
    pub settings: ExpirySettings,
}

impl Deps {
    pub async fn from_env() -> anyhow::Result<Self> {
        let env = Env::new(&ProcessEnv);
        Ok(Self {
            settings: ExpirySettings::from_env(&env)?,
            db: Database::from_env(&env, None)?,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ExpiryReport {
    pub expired: usize,
}

/// The Lambda entry point; a sweep stopped by an outage is `Retryable.Unavailable`.
pub async fn handle(
    deps: &Deps,
    event: LambdaEvent<EventBridgeEvent>,
) -> Result<ExpiryReport, SweepError> {
    tracing::info!(rule = ?event.payload.resources, "expiry sweep started");
    let pool = deps
        .db
        .pool()
        .await
        .map_err(|source| SweepError { expired: 0, source })?;
    let report = sweep(pool, deps.settings, SystemTime::now()).await?;
    tracing::info!(expired = report.expired, "expiry sweep finished");
    Ok(report)
}

/// Expires, batch by batch, every pending memory whose window closed before
/// `now - grace`.
pub async fn sweep(
    pool: &sqlx::PgPool,
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
