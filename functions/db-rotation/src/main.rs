//! `db-rotate`: the scheduled rotation of the functions' database password (wiring only).

use encache_db_rotation::{Deps, handle};
use encache_shared::telemetry;
use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let deps = Deps::from_env().await?;
    run(service_fn(|event| {
        telemetry::traced(event, |e| handle(&deps, e))
    }))
    .await
}
