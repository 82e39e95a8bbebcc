//! The CodeDeploy PreTraffic hook of every API function (`DeploymentPreference.Hooks`).
//!
//! CodeDeploy calls it once per function deployment, after the new versions are
//! published and before the `live` alias moves any traffic. It sends each API function's
//! new version a request it knows the answer to ([`checks`]), side by side, and reports
//! `Succeeded` only when every answer is right; `Failed` makes CodeDeploy keep the alias
//! on the old version and CloudFormation roll the stack back. Each call is complete on
//! its own (every version is checked every time), so a retried or repeated hook call
//! gives the same verdict.

pub mod checks;

use std::time::Duration;

use anyhow::Context;
use aws_lambda_events::event::codedeploy::CodeDeployLifecycleEvent;
use aws_sdk_codedeploy::types::LifecycleEventStatus;
use aws_sdk_lambda::primitives::Blob;
use encache_shared::aws::Lazy;
use encache_shared::config::{Env, ProcessEnv};
use lambda_runtime::{Error, LambdaEvent};
use serde::Serialize;

pub use checks::{CHECKS, Check, Expect};

/// One check with the version it targets.
#[derive(Debug, Clone)]
pub struct Target {
    pub check: Check,
    pub version_arn: String,
}

/// What the handler needs, built once per container.
pub struct Deps {
    pub lambda: Lazy<aws_sdk_lambda::Client>,
    pub codedeploy: Lazy<aws_sdk_codedeploy::Client>,
    pub targets: Vec<Target>,
    /// Bound on one check (a cold start in the VPC plus the database probe fits well).
    pub check_timeout: Duration,
}

impl Deps {
    pub async fn from_env() -> anyhow::Result<Self> {
        let env = Env::new(&ProcessEnv);
        Ok(Self {
            lambda: Lazy::new(aws_sdk_lambda::Client::new),
            codedeploy: Lazy::new(aws_sdk_codedeploy::Client::new),
            targets: targets(&env)?,
            check_timeout: env.millis("CHECK_TIMEOUT_MS", Duration::from_secs(20))?,
        })
    }
}

/// Every check with its version ARN; a missing variable is a configuration error.
pub fn targets(env: &Env) -> anyhow::Result<Vec<Target>> {
    CHECKS
        .iter()
        .map(|check| {
            Ok(Target {
                check: *check,
                version_arn: env.required(check.variable)?,
            })
        })
        .collect()
}

/// One check's outcome, as logged and counted.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Outcome {
    pub route: String,
    pub version: String,
    pub passed: bool,
    pub detail: String,
}

/// Runs every check side by side.
pub async fn run_checks(deps: &Deps, deployment_id: &str) -> Vec<Outcome> {
    let mut set = tokio::task::JoinSet::new();
    for (i, target) in deps.targets.iter().enumerate() {
        let lambda = deps.lambda.clone();
        let target = target.clone();
        let limit = deps.check_timeout;
        let request_id = format!("{deployment_id}-{i}");
        set.spawn(async move {
            let verdict = tokio::time::timeout(limit, invoke(&lambda, &target, &request_id))
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {} ms", limit.as_millis())));
            (
                i,
                Outcome {
                    route: format!("{} {}", target.check.method, target.check.path),
                    version: target.version_arn.clone(),
                    passed: verdict.is_ok(),
                    detail: verdict.err().unwrap_or_else(|| "ok".into()),
                },
            )
        });
    }
    let mut outcomes: Vec<(usize, Outcome)> = set.join_all().await;
    outcomes.sort_by_key(|(i, _)| *i);
    outcomes.into_iter().map(|(_, o)| o).collect()
}

async fn invoke(
    lambda: &aws_sdk_lambda::Client,
    target: &Target,
    request_id: &str,
) -> Result<(), String> {
    let out = lambda
        .invoke()
        .function_name(&target.version_arn)
        .payload(Blob::new(target.check.event(request_id).to_string()))
        .send()
        .await
        .map_err(|e| {
            format!(
                "could not invoke it: {}",
                aws_sdk_lambda::error::DisplayErrorContext(e)
            )
        })?;
    let payload = out.payload().map(Blob::as_ref).unwrap_or_default();
    target.check.judge(out.function_error(), payload)
}

pub async fn handle(
    deps: &Deps,
    event: LambdaEvent<CodeDeployLifecycleEvent>,
) -> Result<(), Error> {
    let hook = event.payload;
    let outcomes = run_checks(deps, &hook.deployment_id).await;
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| !o.passed).collect();
    for o in &outcomes {
        if o.passed {
            tracing::info!(route = %o.route, version = %o.version, "smoke check passed");
        } else {
            tracing::error!(route = %o.route, version = %o.version, detail = %o.detail, "smoke check FAILED");
        }
    }
    let status = if failed.is_empty() {
        LifecycleEventStatus::Succeeded
    } else {
        LifecycleEventStatus::Failed
    };
    tracing::info!(
        deployment_id = %hook.deployment_id,
        status = status.as_str(),
        checks = outcomes.len(),
        failed = failed.len(),
        "reporting the PreTraffic verdict to CodeDeploy"
    );
    // An error here (no verdict reached CodeDeploy) fails the invocation: Lambda retries
    // the asynchronous call, and CodeDeploy fails the deployment after an hour at worst.
    deps.codedeploy
        .put_lifecycle_event_hook_execution_status()
        .deployment_id(&hook.deployment_id)
        .lifecycle_event_hook_execution_id(&hook.lifecycle_event_hook_execution_id)
        .status(status)
        .send()
        .await
        .context("reporting the hook's verdict to CodeDeploy")?;
    Ok(())
}
