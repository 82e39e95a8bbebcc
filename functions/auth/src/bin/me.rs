use encache_auth::me::{Deps, Settings, handle};
use encache_shared::config::{Env, ProcessEnv};
use encache_shared::{aws, db, telemetry};
use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let env = Env::new(&ProcessEnv);
    let settings = Settings::from_env(&env)?;
    let sdk = aws::sdk_config().await;
    let pool = db::pool_from_env(&env, Some(&aws::SecretCache::from_sdk(&sdk))).await?;
    let deps = Deps {
        pool,
        s3: aws::s3_client(&sdk),
        settings,
    };
    run(service_fn(|event| handle(event, &deps))).await
}
