//! Post-deploy sync: the encache stack's CloudFormation outputs, copied into SSM
//! parameters under `/encache/{env}/stack/`, where Terraform reads them.
//!
//! Two entry points share one core ([`sync::sync_stack`]):
//! - [`handle`]: the Lambda behind the EventBridge rule on
//!   "CloudFormation Stack Status Change" (`CREATE_COMPLETE` / `UPDATE_COMPLETE`);
//! - [`cli`]: `stack-sync-cli --stack NAME --env ENV [--dry-run]` after `sam deploy`.
//!
//! The sync reads the stack's outputs, compares them with the parameters it manages
//! (tagged `encache:managed-by=stack-sync`), and writes only the difference: it creates,
//! updates and deletes its own parameters and never touches one it did not create.
//!
//! Rooms: [`settings`] (environment), [`store`] (CloudFormation and SSM: its storage),
//! [`error`]; the domain: [`event`] (which events to act on), [`contract`] (the outputs
//! Terraform reads), [`plan`] (outputs vs parameters → changes), [`sync`] (plan + apply).

pub mod cli;
pub mod contract;
pub mod error;
pub mod event;
pub mod plan;
pub mod settings;
pub mod store;
pub mod sync;

use encache_shared::aws::Lazy;
use encache_shared::config::{Env, ProcessEnv};
use encache_shared::error::EventFailure;
use lambda_runtime::LambdaEvent;
use serde::Serialize;

use crate::event::Decision;

pub use contract::Contract;
pub use error::SyncError;
pub use plan::{Action, Change, Plan};
pub use settings::Settings;
pub use store::Clients;
pub use sync::{Mode, Report, Status, sync_stack};

/// Everything built once per container: the settings and the CloudFormation and SSM
/// clients.
#[derive(Debug, Clone)]
pub struct Deps {
    pub settings: Settings,
    pub clients: Lazy<Clients>,
}

impl Deps {
    /// The container's dependencies from the process environment and the AWS SDK config.
    pub async fn from_env() -> anyhow::Result<Self> {
        let settings = Settings::from_env(&Env::new(&ProcessEnv))?;
        // Built on the first event that needs them (shared::aws).
        Ok(Self::new(settings, Lazy::new(Clients::from_sdk)))
    }

    pub fn new(settings: Settings, clients: impl Into<Lazy<Clients>>) -> Self {
        Self {
            settings,
            clients: clients.into(),
        }
    }
}

/// What the function did with an event (its JSON response).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "result")]
pub enum Outcome {
    Ignored { reason: String },
    Synced(Report),
}

/// Handles one EventBridge event. The payload is taken raw so that a malformed event is
/// a clear error of ours, not a deserialization failure in the runtime. Any `Err` makes
/// Lambda retry the event (then send it to the dead-letter queue); a sync is idempotent.
pub async fn handle(
    deps: &Deps,
    event: LambdaEvent<serde_json::Value>,
) -> Result<Outcome, SyncError> {
    let result = run(deps, event.payload).await;
    match &result {
        Ok(Outcome::Ignored { reason }) => tracing::info!(%reason, "event ignored"),
        Ok(Outcome::Synced(report)) => {
            tracing::info!(stack = %report.stack, summary = %report.summary(), "stack outputs synced")
        }
        Err(e) => tracing::error!(error = %e, retryable = e.retryable(), "stack sync failed"),
    }
    result
}

async fn run(deps: &Deps, payload: serde_json::Value) -> Result<Outcome, SyncError> {
    let settings = &deps.settings;
    let event = event::parse(payload).map_err(SyncError::MalformedEvent)?;
    let stack =
        match event::decide(&event, &settings.stack_name).map_err(SyncError::MalformedEvent)? {
            Decision::Ignore { reason } => return Ok(Outcome::Ignored { reason }),
            Decision::Sync { stack_name } => stack_name,
        };
    let report = sync_stack(
        &deps.clients,
        &settings.contract,
        &stack,
        &settings.env,
        Mode::Apply,
    )
    .await?;
    let failed: Vec<String> = report
        .failed()
        .map(|e| match &e.status {
            Status::Failed(err) => format!("{} ({err})", e.change.parameter),
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
