//! The Lambda: a "CloudFormation Stack Status Change" event for this stack → one sync.

use encache_shared::config::{ConfigError, Env};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Serialize;

use crate::contract::Contract;
use crate::event::{self, Decision};
use crate::plan::validate_level;
use crate::store::Clients;
use crate::sync::{Mode, Report, sync_stack};

#[derive(Debug, Clone)]
pub struct Settings {
    /// `ENCACHE_ENV`: selects `/encache/{env}/stack/`.
    pub env: String,
    /// `STACK_NAME`: the one stack whose events are acted on.
    pub stack_name: String,
    pub contract: Contract,
}

impl Settings {
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let settings = Self {
            env: env.required("ENCACHE_ENV")?,
            stack_name: env.required("STACK_NAME")?,
            contract: Contract::load().map_err(|e| ConfigError::Invalid {
                name: "contracts/stack-outputs.json".into(),
                reason: format!("{e:#}"),
            })?,
        };
        check_env_name(&settings.env).map_err(|reason| ConfigError::Invalid {
            name: "ENCACHE_ENV".into(),
            reason,
        })?;
        Ok(settings)
    }
}

/// The environment becomes one level of every parameter name.
pub fn check_env_name(env: &str) -> Result<(), String> {
    validate_level(env)
        .map_err(|e| format!("{env:?} cannot be a level of a parameter name: it {e}"))
}

/// What the function did with an event (its JSON response).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "result")]
pub enum Outcome {
    Ignored { reason: String },
    Synced(Report),
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The payload is not a stack status change with a stack ARN; retrying cannot help.
    #[error("malformed CloudFormation stack status change event: {0}")]
    MalformedEvent(String),
    /// Outputs that break SSM's rules or collide with a parameter stack-sync did not
    /// create. The rest were synced; fixing the template (or the parameter) is needed.
    #[error("stack {stack}: outputs not synced: {details} (the others were synced)")]
    RejectedOutputs { stack: String, details: String },
    /// Some writes failed after the SDK's retries; a retry of the event may succeed.
    #[error("stack {stack}: {failed} parameter write(s) failed: {details}")]
    PartialFailure {
        stack: String,
        failed: usize,
        details: String,
    },
    /// Reading the stack or the parameters failed; nothing was written.
    #[error("stack sync failed: {0:#}")]
    Unexpected(#[from] anyhow::Error),
}

impl SyncError {
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            SyncError::PartialFailure { .. } | SyncError::Unexpected(_)
        )
    }
}

impl From<SyncError> for Diagnostic {
    fn from(e: SyncError) -> Self {
        let kind = match e {
            SyncError::MalformedEvent(_) => "StackSync.MalformedEvent.NotRetryable",
            SyncError::RejectedOutputs { .. } => "StackSync.RejectedOutputs.NotRetryable",
            SyncError::PartialFailure { .. } => "StackSync.PartialFailure.Retryable",
            SyncError::Unexpected(_) => "StackSync.Unexpected.Retryable",
        };
        Diagnostic {
            error_type: kind.into(),
            error_message: e.to_string(),
        }
    }
}

/// Handles one EventBridge event. The payload is taken raw so that a malformed event is
/// a clear error of ours, not a deserialization failure in the runtime. Any `Err` makes
/// Lambda retry the event (then send it to the dead-letter queue); a sync is idempotent.
pub async fn handle(
    event: LambdaEvent<serde_json::Value>,
    clients: &Clients,
    settings: &Settings,
) -> Result<Outcome, SyncError> {
    let result = run(event.payload, clients, settings).await;
    match &result {
        Ok(Outcome::Ignored { reason }) => tracing::info!(%reason, "event ignored"),
        Ok(Outcome::Synced(report)) => {
            tracing::info!(stack = %report.stack, summary = %report.summary(), "stack outputs synced")
        }
        Err(e) => tracing::error!(error = %e, retryable = e.is_retryable(), "stack sync failed"),
    }
    result
}

async fn run(
    payload: serde_json::Value,
    clients: &Clients,
    settings: &Settings,
) -> Result<Outcome, SyncError> {
    let event = event::parse(payload).map_err(SyncError::MalformedEvent)?;
    let stack =
        match event::decide(&event, &settings.stack_name).map_err(SyncError::MalformedEvent)? {
            Decision::Ignore { reason } => return Ok(Outcome::Ignored { reason }),
            Decision::Sync { stack_name } => stack_name,
        };
    let report = sync_stack(
        clients,
        &settings.contract,
        &stack,
        &settings.env,
        Mode::Apply,
    )
    .await?;
    let failed: Vec<String> = report
        .failed()
        .map(|e| match &e.status {
            crate::sync::Status::Failed(err) => format!("{} ({err})", e.change.parameter),
            _ => e.change.parameter.clone(),
        })
        .collect();
    if !failed.is_empty() {
        return Err(SyncError::PartialFailure {
            stack,
            failed: failed.len(),
            details: failed.join("; "),
        });
    }
    let rejected: Vec<String> = report
        .rejected()
        .map(|e| {
            format!(
                "{}: {}",
                e.change.output_key,
                e.change.reason.as_deref().unwrap_or("rejected")
            )
        })
        .collect();
    if !rejected.is_empty() {
        return Err(SyncError::RejectedOutputs {
            stack,
            details: rejected.join("; "),
        });
    }
    Ok(Outcome::Synced(report))
}
