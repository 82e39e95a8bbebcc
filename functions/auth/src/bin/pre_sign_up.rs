use encache_auth::policy::SignUpPolicy;
use encache_auth::pre_sign_up::handle;
use encache_shared::config::{Env, ProcessEnv};
use encache_shared::telemetry;
use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let policy = SignUpPolicy::from_env(&Env::new(&ProcessEnv))?;
    run(service_fn(|event| handle(event, &policy))).await
}
