use encache_auth::post_confirmation::{Settings, handle};
use encache_shared::config::{Env, ProcessEnv};
use encache_shared::{db, telemetry};
use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let env = Env::new(&ProcessEnv);
    let settings = Settings::from_env(&env)?;
    let pool = db::pool_from_env(&env, None).await?;
    run(service_fn(|event| handle(event, &pool, settings))).await
}
