use encache_shared::config::{Env, ProcessEnv};
use encache_shared::{aws, db, telemetry};
use encache_upload::{CompleteSettings, complete};
use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let env = Env::new(&ProcessEnv);
    let settings = CompleteSettings::from_env(&env)?;
    let sdk = aws::sdk_config().await;
    let pool = db::pool_from_env(&env, Some(&aws::SecretCache::from_sdk(&sdk))).await?;
    let s3 = aws::s3_client(&sdk);
    run(service_fn(|event| {
        complete::handle(event, &pool, &s3, &settings)
    }))
    .await
}
