//! `db-migrate`: the function behind the `DatabaseSchema` custom resource (wiring only).

use encache_migrate::{Deps, handle};
use encache_shared::config::{Env, ProcessEnv};
use encache_shared::{db, telemetry};
use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let env = Env::new(&ProcessEnv);
    // A database that cannot be set up is the handler's to report (a FAILED answer),
    // not an init error that CloudFormation would wait an hour on.
    let database = db::pool_from_env(&env, None)
        .await
        .map_err(|e| format!("{e:#}"));
    let deps = Deps::new(database)?;
    run(service_fn(|event| handle(&deps, event))).await
}
