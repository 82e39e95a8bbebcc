//! The `DatabaseSchema` custom resource: CloudFormation invokes this function during
//! `sam deploy`, and every function that uses the database `DependsOn` the resource, so
//! the schema reaches the database before their new code does.
//!
//! - Create, or an Update of a new deploy: the migrations run (under sqlx's advisory lock,
//!   so racing deploys take turns), unless the database has a migration the code does not
//!   know, or an applied migration was edited: then FAILED, and the deploy rolls back.
//! - An Update back to an older `DeployId` is CloudFormation rolling back: SUCCESS with the
//!   schema left as it is (migrations are expand-only; the previous code runs on it).
//! - Delete: SUCCESS; the schema is never dropped.
//!
//! Every request gets an answer at its `ResponseURL`, within the invocation's deadline,
//! whatever state the database is in: CloudFormation otherwise waits an hour.
//!
//! [`request`] reads what CloudFormation asks; [`store`] checks and migrates the schema;
//! [`response`] builds and delivers the answer; [`error`] says how each step fails;
//! [`login`] gives the functions' login role its password after each migration run. The
//! database's variables are `encache_shared::db`'s; `DB_APP_USER` and
//! `DB_APP_PASSWORD_PARAMETER` name the functions' login role and its SecureString.

pub mod error;
pub mod login;
pub mod request;
pub mod response;
pub mod store;

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::cloudformation::{
    CloudFormationCustomResourceRequest, CloudFormationCustomResourceResponse,
    CloudFormationCustomResourceResponseStatus as Status,
};
use encache_shared::config::{Env, ProcessEnv};
use encache_shared::db;
use encache_shared::error::diagnostic;
use lambda_runtime::{Diagnostic, LambdaEvent};
use sqlx::PgPool;
use tracing::Instrument;

pub use crate::error::{HandlerError, SchemaError};
use crate::request::{Action, Request};
use crate::response::join;

/// Time kept back from the invocation's deadline for the response PUT (and its timeout).
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(15);

/// What the handler needs, built once per container.
pub struct Deps {
    /// The pool, or why it could not be set up at cold start (reported as FAILED).
    pub database: Result<PgPool, String>,
    /// The functions' login role to set after migrating (none when the functions log in
    /// as the owner, as the local stack's superuser URL does), or why it could not be
    /// read (reported as FAILED).
    pub login: Option<Result<login::Login, String>>,
    pub http: reqwest::Client,
}

impl Deps {
    pub fn new(database: Result<PgPool, String>) -> Result<Self, reqwest::Error> {
        Ok(Self {
            database,
            login: None,
            http: response::client()?,
        })
    }

    /// A database that cannot be set up is the handler's to report (a FAILED answer),
    /// not an init error that CloudFormation would wait an hour on.
    pub async fn from_env() -> anyhow::Result<Self> {
        let env = Env::new(&ProcessEnv);
        // One SSM client and cache for both passwords.
        let secrets = encache_shared::aws::SecretCache::lazy();
        // Read eagerly here: a deploy waits on this function anyway, and its handler
        // reports a setup failure as FAILED instead of letting init fail.
        let database = match db::Database::from_env(&env, Some(&secrets)) {
            Ok(database) => database.pool().await.cloned().map_err(|e| e.to_string()),
            Err(e) => Err(format!("{e:#}")),
        };
        // The password itself is read when the role is set, under the login role's lock
        // (login::ensure): a warm container must not set one a rotation has replaced.
        let login = match login::LoginSettings::from_env(&env) {
            Ok(None) => None,
            Ok(Some(settings)) => Some(Ok(login::Login {
                user: settings.user,
                password: login::Password::Ssm {
                    secrets: secrets.clone(),
                    parameter: settings.password_parameter,
                },
            })),
            Err(e) => Some(Err(format!("the functions' login role: {e}"))),
        };
        let mut deps = Self::new(database)?;
        deps.login = login;
        Ok(deps)
    }
}

/// Handles one custom resource request and answers it at its `ResponseURL`; returns the
/// answer sent.
pub async fn handle(
    deps: &Deps,
    event: LambdaEvent<CloudFormationCustomResourceRequest>,
) -> Result<CloudFormationCustomResourceResponse, Diagnostic> {
    handle_request(deps, event)
        .await
        .map_err(|e| diagnostic(&e))
}

async fn handle_request(
    deps: &Deps,
    event: LambdaEvent<CloudFormationCustomResourceRequest>,
) -> Result<CloudFormationCustomResourceResponse, HandlerError> {
    let budget = time_left(event.context.deadline).saturating_sub(DEADLINE_MARGIN);
    let Some(request) = Request::from_event(event.payload) else {
        tracing::error!("unknown custom resource request type: no response URL to answer");
        return Err(HandlerError::UnknownRequestType);
    };
    let span = tracing::info_span!(
        "schema",
        request_type = request.kind,
        request_id = %request.request_id,
        logical_resource_id = %request.logical_resource_id,
    );
    answer(deps, &request, budget).instrument(span).await
}

async fn answer(
    deps: &Deps,
    request: &Request,
    budget: Duration,
) -> Result<CloudFormationCustomResourceResponse, HandlerError> {
    let (status, reason, data) = match &request.action {
        Action::Migrate => migrate_within(deps, budget).await,
        Action::KeepForRollback { from, to } => {
            tracing::info!(from, to, "rollback: schema left as it is");
            (
                Status::Success,
                format!(
                    "rollback from deploy {from} to deploy {to}: the schema stays at its version, nothing migrated (migrations are expand-only; the previous code runs on it)"
                ),
                HashMap::from([("AppliedVersions".into(), String::new())]),
            )
        }
        Action::Keep => {
            tracing::info!("delete: schema left as it is");
            (
                Status::Success,
                "the resource left the stack; the database schema is never dropped".into(),
                HashMap::new(),
            )
        }
    };

    let response = response::build(request, status, &reason, data);
    match response::send(&deps.http, &request.response_url, &response).await {
        Ok(()) => Ok(response),
        Err(e) => {
            tracing::error!(error = %e, "could not deliver the response to CloudFormation");
            Err(HandlerError::ResponseNotDelivered(e))
        }
    }
}

/// Runs the migrations within `budget`; a failure of any kind is a FAILED answer.
async fn migrate_within(
    deps: &Deps,
    budget: Duration,
) -> (Status, String, HashMap<String, String>) {
    let result = match &deps.database {
        Err(setup) => Err(SchemaError::Unavailable(format!(
            "the database connection could not be set up: {setup}"
        ))),
        Ok(_) if budget.is_zero() => Err(SchemaError::Failed(
            "no time left in this invocation to migrate".into(),
        )),
        // The invocation's deadline, not a per-step DB_TIMEOUT_MS, bounds a migration.
        Ok(pool) => {
            match db::within(budget, async { Ok(migrate_and_login(deps, pool).await) }).await {
                Ok(result) => result,
                Err(_timed_out) => Err(SchemaError::Failed(format!(
                    "migrating did not finish within {} s (the invocation's deadline less {} s): a migration in progress was rolled back; deploy again once the database answers",
                    budget.as_secs(),
                    DEADLINE_MARGIN.as_secs()
                ))),
            }
        }
    };
    match result {
        Ok(done) => {
            let applied = join(&done.applied);
            let version = done
                .schema_version
                .map(|v| v.to_string())
                .unwrap_or_default();
            tracing::info!(
                applied = %applied,
                applied_count = done.applied.len(),
                schema_version = %version,
                "schema migrated"
            );
            let reason = if done.applied.is_empty() {
                format!("the schema is current at version {version}; nothing to apply")
            } else {
                format!("applied {applied}; the schema is at version {version}")
            };
            let data = HashMap::from([
                ("AppliedVersions".into(), applied),
                ("SchemaVersion".into(), version),
            ]);
            (Status::Success, reason, data)
        }
        Err(e) => {
            tracing::error!(error = %e, "schema not migrated");
            (Status::Failed, e.to_string(), HashMap::new())
        }
    }
}

/// The migrations, then the functions' login role (its password and membership): both
/// must hold before the new code runs.
async fn migrate_and_login(deps: &Deps, pool: &PgPool) -> Result<store::Migrated, SchemaError> {
    let done = store::migrate(pool).await?;
    match &deps.login {
        None => {}
        Some(Err(why)) => return Err(SchemaError::Unavailable(why.clone())),
        Some(Ok(login)) => {
            login::ensure(pool, login).await?;
            tracing::info!(role = %login.user, group = login::GROUP_ROLE, "login role set");
        }
    }
    Ok(done)
}

/// Time until the invocation's deadline (milliseconds since the epoch); zero once passed.
fn time_left(deadline_ms: u64) -> Duration {
    (UNIX_EPOCH + Duration::from_millis(deadline_ms))
        .duration_since(SystemTime::now())
        .unwrap_or_default()
}
