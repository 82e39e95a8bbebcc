use encache_memory_feed::{Deps, Settings, handle};
use encache_shared::aws::{SecretCache, s3_client, sdk_config};
use encache_shared::config::{Env, ProcessEnv};
use encache_shared::pagination::CursorSigner;
use encache_shared::{db, telemetry};
use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let env = Env::new(&ProcessEnv);
    let settings = Settings::from_env(&env)?;
    let sdk = sdk_config().await;
    // One SSM client for both secrets, read side by side.
    let secrets = SecretCache::from_sdk(&sdk);
    let (cursors, pool) = tokio::try_join!(
        CursorSigner::from_env(&env, &secrets),
        db::pool_from_env(&env, Some(&secrets))
    )?;
    let deps = Deps {
        pool,
        s3: s3_client(&sdk),
        cursors,
        settings,
    };
    run(service_fn(|event| handle(event, &deps))).await
}
