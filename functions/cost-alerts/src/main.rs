use encache_cost_alerts::{Forwarder, Settings, budgets, handle};
use encache_shared::aws::{SecretCache, sdk_config};
use encache_shared::config::{Env, ProcessEnv};
use encache_shared::telemetry;
use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let settings = Settings::from_env(&Env::new(&ProcessEnv))?;
    let sdk = sdk_config().await;
    let forwarder = Forwarder::new(settings, SecretCache::from_sdk(&sdk), budgets::client(&sdk))?;
    run(service_fn(|event| handle(event, &forwarder))).await
}
