use encache_shared::config::{Env, ProcessEnv};
use encache_shared::{aws, telemetry};
use encache_stack_sync::{Clients, Settings, handle};
use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let settings = Settings::from_env(&Env::new(&ProcessEnv))?;
    let clients = Clients::from_sdk(&aws::sdk_config().await);
    run(service_fn(|event| handle(event, &clients, &settings))).await
}
