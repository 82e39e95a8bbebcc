//! Restarting the AWS emulator keeps the local stack's users: `scripts/dev-services.sh`
//! records moto's requests and replays them on the next `up`, the user pool comes back
//! with the id the env file names (no `--init`), the user signs in with the same
//! password, and their new `sub` is relinked to the same `users` row by verified email.
//!
//! Runs its own moto (a private ENCACHE_DEV_DIR, `up moto` / `down moto`), so it can stop
//! it; the database is the dev services' (`eval "$(scripts/dev-services.sh env)"`). Needs
//! the functions' binaries as tests/local_stack.rs does (built here when missing).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use encache_local::emulators::cognito::{self, Pool};
use encache_local::emulators::gateway::GatewaySettings;
use encache_local::emulators::{self, Running, StartOptions};
use encache_local::stack::{Config, Stack};
use encache_testkit::{TestDb, profile_dir, repo_root};
use serde_json::{Value, json};

const PASSWORD: &str = "Passw0rd!long";

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

/// This test's own moto, under its own ENCACHE_DEV_DIR; forgotten (`reset`) when dropped,
/// whatever happened.
struct OwnMoto {
    dev_dir: PathBuf,
}

impl OwnMoto {
    fn services(&self, args: &[&str]) -> String {
        let out = Command::new(repo_root().join("scripts/dev-services.sh"))
            .args(args)
            .env("ENCACHE_DEV_DIR", &self.dev_dir)
            .output()
            .expect("running scripts/dev-services.sh");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "dev-services.sh {args:?} failed: {stderr}"
        );
        stderr
    }

    /// Starts moto (replaying its recording, if any) and points this process's AWS
    /// clients at it; returns what the script said.
    fn up(&self) -> String {
        let said = self.services(&["up", "moto"]);
        let port = std::fs::read_to_string(self.dev_dir.join("services/moto_port"))
            .expect("the moto port file");
        // SAFETY: this test binary runs one test, and sets the variable before any thread
        // of its own reads the environment (nextest runs each test in its own process).
        unsafe {
            std::env::set_var(
                "AWS_ENDPOINT_URL",
                format!("http://127.0.0.1:{}", port.trim()),
            )
        };
        said
    }
}

impl Drop for OwnMoto {
    fn drop(&mut self) {
        let _ = Command::new(repo_root().join("scripts/dev-services.sh"))
            .arg("reset")
            .env("ENCACHE_DEV_DIR", &self.dev_dir)
            .output();
        let _ = std::fs::remove_dir_all(&self.dev_dir);
    }
}

/// The template's stack on a free port, its env file in `scratch` naming `pool`.
async fn start_stack(scratch: &Path, db: &TestDb, pool: &Pool, env_name: &str) -> (Stack, Running) {
    let env_file = scratch.join("sam-env.local.json");
    if !env_file.exists() {
        let mut parameters = json!({
            "Env": env_name,
            "CognitoUserPoolId": pool.user_pool_id,
            "CognitoAppClientId": pool.client_id,
            "AutoConfirmUsers": "true",
            "AutoVerifyEmail": "true",
            "CURSOR_SIGNING_KEY": uuid::Uuid::new_v4().simple().to_string().repeat(2),
            "DataKeyArn": format!("alias/encache-{env_name}-data"),
        });
        for (k, v) in encache_local::commands::setup::database_parameters(&db.url) {
            parameters[k] = json!(v);
        }
        std::fs::write(&env_file, json!({ "Parameters": parameters }).to_string())
            .expect("writing the env file");
    }
    let mut config = Config::for_root(&repo_root(), profile_dir()).env_files_in(scratch);
    config.stack_name = format!("encache-{env_name}");
    let stack = Stack::load(config).expect("template.yaml loads with the local values");
    if stack
        .template
        .binaries()
        .iter()
        .any(|b| !stack.config.bin_dir.join(b).exists())
    {
        encache_local::commands::build::run(&stack, false).expect("building the function binaries");
    }
    // What every `encache-local start` checks first: the env file's pool exists. (It
    // also points the file at $DATABASE_URL, set to this test's database in the test.)
    encache_local::commands::setup::sync_env(&stack)
        .await
        .expect("the env file's user pool exists in the emulator (no --init needed)");
    let stack = Stack::load(stack.config.clone()).expect("the synced env file loads");
    let running = emulators::start(
        &stack,
        &StartOptions {
            addr: "127.0.0.1:0".into(),
            gateway: GatewaySettings::default(),
            event_sources: false,
        },
    )
    .await
    .expect("the local stack starts");
    (stack, running)
}

async fn me(running: &Running, token: &str) -> Value {
    let resp = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
        .get(format!("{}/v1/me", running.url))
        .bearer_auth(token)
        .send()
        .await
        .expect("GET /v1/me");
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.expect("a JSON body");
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn a_user_signs_in_after_the_emulator_restarts_and_keeps_their_row() {
    std::env::var("DATABASE_URL")
        .expect("DATABASE_URL is not set: eval \"$(scripts/dev-services.sh env)\"");
    let moto = OwnMoto {
        dev_dir: std::env::temp_dir().join(unique("encache-restart-")),
    };
    moto.up();
    let db = TestDb::new().await;
    // SAFETY: as in `OwnMoto::up`. sync_env points the env file at $DATABASE_URL.
    unsafe { std::env::set_var("DATABASE_URL", &db.url) };
    let scratch = moto.dev_dir.join("stack");
    std::fs::create_dir_all(&scratch).unwrap();
    let env_name = unique("rs");
    let sdk = encache_shared::aws::sdk_config().await;
    let (user_pool_id, client_id) = cognito::create_pool(&sdk, &unique("enc-restart-"))
        .await
        .expect("a Cognito pool in the emulator");
    let pool = Pool {
        user_pool_id,
        client_id,
    };

    // given a user who signed up through the triggers and has a row
    let (stack, running) = start_stack(&scratch, &db, &pool, &env_name).await;
    let email = "ada@example.com";
    cognito::create(&stack, &pool, email, PASSWORD)
        .await
        .expect("signing up");
    let token = cognito::token(&pool, email, PASSWORD)
        .await
        .expect("a token");
    let before = me(&running, &token).await;
    running.stop().await;
    let old_sub: String = sqlx::query_scalar("SELECT cognito_sub FROM users WHERE email = $1")
        .bind(email)
        .fetch_one(&db.pool)
        .await
        .unwrap();

    // when the emulator stops and starts again
    moto.services(&["down", "moto"]);
    let said = moto.up();
    assert!(
        said.contains("restored"),
        "the script says what it restored: {said}"
    );

    // then the env file's pool is there again (sync_env in start_stack), the user signs in
    // with the same password, and GET /v1/me is the same users row under the new sub
    let (_stack, running) = start_stack(&scratch, &db, &pool, &env_name).await;
    let token = cognito::token(&pool, email, PASSWORD)
        .await
        .expect("the user signs in with their old password after the restart");
    let after = me(&running, &token).await;
    running.stop().await;
    assert_eq!(after["id"], before["id"], "{before} / {after}");
    assert_eq!(after["email"], email);
    let rows: Vec<(String,)> = sqlx::query_as("SELECT cognito_sub FROM users WHERE email = $1")
        .bind(email)
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "one row for the email");
    assert_ne!(
        rows[0].0, old_sub,
        "the replayed user has a new sub, relinked to the row"
    );
}
