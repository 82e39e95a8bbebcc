use encache_auth::post_confirmation::{deps_from_env, handle};
use encache_shared::telemetry;
use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let deps = deps_from_env().await?;
    run(service_fn(|event| {
        telemetry::traced(event, |e| handle(&deps, e))
    }))
    .await
}
