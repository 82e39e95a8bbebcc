//! What encache-local's tests share: the fixture stack, a JWKS server and signed tokens.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use encache_local::emulators::gateway::GatewaySettings;
use encache_local::emulators::{self, Running, StartOptions};
use encache_local::stack::{Config, Stack};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

pub const ISSUER_POOL: &str = "pool-test";
pub const CLIENT_ID: &str = "client-test";

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn bin_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_encache-local-fixture-fn"))
        .parent()
        .expect("bin dir")
        .to_path_buf()
}

pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

/// Points `cmd` (encache-local, or a script running it) at `template`, the env files in
/// `dir`, this build's binaries and the local stack name `stack_name`.
pub fn stack_env<'c>(
    cmd: &'c mut std::process::Command,
    template: &std::path::Path,
    dir: &std::path::Path,
    stack_name: &str,
) -> &'c mut std::process::Command {
    cmd.env("ENCACHE_TEMPLATE", template)
        .env("ENCACHE_ENV_VARS", dir.join("sam-env.local.json"))
        .env(
            "ENCACHE_CONTAINER_ENV_VARS",
            dir.join("sam-container-env.local.json"),
        )
        .env("ENCACHE_BIN_DIR", bin_dir())
        .env("ENCACHE_STACK_NAME", stack_name)
}

/// A scratch folder for one test's env files.
pub fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(unique("encache-local-test"));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// The fixture stack with `env` as its sam-env.local.json (container env optional).
pub fn fixture_stack(env: Value, container: Option<Value>) -> Stack {
    let dir = scratch();
    let mut config = Config::for_root(&fixtures(), bin_dir()).env_files_in(&dir);
    config.stack_name = unique("enclocal");
    std::fs::write(&config.env_vars, env.to_string()).expect("env file");
    if let Some(c) = container {
        std::fs::write(&config.container_env_vars, c.to_string()).expect("container file");
    }
    Stack::load(config).expect("fixture stack loads")
}

pub fn default_env() -> Value {
    json!({"Parameters": {"PoolId": ISSUER_POOL, "ClientId": CLIENT_ID}})
}

/// Serves `tests/fixtures/test-jwks.json` and counts the fetches.
pub struct Jwks {
    pub url: String,
    pub hits: Arc<AtomicUsize>,
}

pub async fn jwks_server() -> Jwks {
    let body = std::fs::read_to_string(fixtures().join("test-jwks.json")).expect("jwks");
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            let body = body.clone();
            async move { ([("content-type", "application/json")], body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/jwks.json", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    Jwks { url, hits }
}

pub fn issuer() -> String {
    format!("https://issuer.test/{ISSUER_POOL}")
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// Claims of a valid ID token for the fixture API.
pub fn id_claims() -> Value {
    json!({
        "sub": "5f3c1c1e-1111-2222-3333-444455556666",
        "iss": issuer(),
        "aud": CLIENT_ID,
        "token_use": "id",
        "email": "ada@example.test",
        "cognito:groups": ["admins", "beta"],
        "iat": now() - 10,
        "exp": now() + 600,
    })
}

pub fn sign_with(claims: &Value, kid: &str, pem_file: &str) -> String {
    let pem = std::fs::read(fixtures().join(pem_file)).expect("pem");
    let key = EncodingKey::from_rsa_pem(&pem).expect("rsa key");
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &key).expect("sign")
}

pub fn sign(claims: &Value) -> String {
    sign_with(claims, "test-key", "test-rsa.pem")
}

/// The fixture stack running in-process behind a gateway on a free port.
pub async fn start_fixture(jwks: &Jwks) -> (Stack, Running) {
    let stack = fixture_stack(default_env(), None);
    let running = emulators::start(
        &stack,
        &StartOptions {
            addr: "127.0.0.1:0".into(),
            gateway: GatewaySettings {
                jwks_url: Some(jwks.url.clone()),
                issuer: None,
            },
            event_sources: false,
        },
    )
    .await
    .expect("the fixture stack starts");
    (stack, running)
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .expect("client")
}
