use encache_conversation_feed::{Deps, Settings, handle};
use encache_shared::aws::{SecretCache, sdk_config};
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
    let cursors = CursorSigner::from_env(&env, &SecretCache::from_sdk(&sdk)).await?;
    let pool = db::pool_from_env(&env).await?;
    let deps = Deps {
        pool,
        cursors,
        settings,
    };
    run(service_fn(|event| handle(event, &deps))).await
}
