//! Local sign-in tokens with the real template's PreTokenGenerationFunction: the token
//! `encache-local user token` issues carries `encache:user_id` and `encache:plan`, as
//! production's do, and the local HTTP API accepts it.
//!
//! Needs the dev services and the functions' binaries (see tests/local_stack.rs).

use std::collections::BTreeMap;

use encache_local::emulators::cognito::{self, Issuer, Pool};
use encache_local::emulators::gateway::GatewaySettings;
use encache_local::emulators::{self, StartOptions};
use encache_local::stack::{Config, Stack};
use encache_testkit::{TestDb, profile_dir, repo_root};
use serde_json::json;

const PASSWORD: &str = "Passw0rd!long";

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

#[tokio::test]
async fn a_local_token_carries_the_pre_token_generation_claims_and_opens_the_api() {
    // given the real template on a fresh database and pool, and a signed-up user
    let db = TestDb::new().await;
    let sdk = encache_shared::aws::sdk_config().await;
    let (pool_id, client_id) = cognito::create_pool(&sdk, &unique("enc-tokens-"))
        .await
        .expect("a Cognito pool in the emulator");
    let env_name = unique("tok");
    let scratch = std::env::temp_dir().join(unique("encache-local-tokens-"));
    std::fs::create_dir_all(&scratch).expect("a scratch folder");
    let mut parameters = json!({
        "Env": env_name,
        "CognitoUserPoolId": pool_id,
        "CognitoAppClientId": client_id,
        "AutoConfirmUsers": "true",
        "AutoVerifyEmail": "true",
        "CURSOR_SIGNING_KEY": uuid::Uuid::new_v4().simple().to_string().repeat(2),
        "DataKeyArn": format!("alias/encache-{env_name}-data"),
    });
    for (k, v) in encache_local::commands::setup::database_parameters(&db.url) {
        parameters[k] = json!(v);
    }
    let mut config = Config::for_root(&repo_root(), profile_dir()).env_files_in(&scratch);
    config.stack_name = format!("encache-{env_name}");
    std::fs::write(
        &config.env_vars,
        json!({ "Parameters": parameters }).to_string(),
    )
    .expect("writing the env file");
    let stack = Stack::load(config).expect("template.yaml loads with the local values");
    for b in stack.template.binaries() {
        assert!(
            stack.config.bin_dir.join(&b).exists(),
            "{b} is not built (cargo build --workspace)"
        );
    }
    let pool = Pool {
        user_pool_id: pool_id,
        client_id,
    };
    let email = "ada.tokens@example.com";
    cognito::create(&stack, &pool, email, PASSWORD)
        .await
        .unwrap_or_else(|e| panic!("signing up {email}: {e:#}"));
    let (user_id, plan): (uuid::Uuid, String) =
        sqlx::query_as("SELECT id, plan FROM users WHERE email = $1")
            .bind(email)
            .fetch_one(&db.pool)
            .await
            .expect("post-confirmation wrote the users row");

    // when the user signs in locally
    let tokens = cognito::tokens(&stack, &pool, email, PASSWORD, &BTreeMap::new())
        .await
        .unwrap_or_else(|e| panic!("tokens for {email}: {e:#}"));

    // then both tokens carry encache's claims, as the trigger answered them
    let issuer = Issuer::for_stack(&stack).expect("the local issuer");
    for token in [&tokens.id_token, &tokens.access_token] {
        let claims = issuer.verify(token).expect("the local issuer's token");
        assert_eq!(claims["encache:user_id"], user_id.to_string(), "{claims:?}");
        assert_eq!(claims["encache:plan"], plan.as_str(), "{claims:?}");
        assert_eq!(
            claims["iss"],
            format!(
                "https://cognito-idp.{}.amazonaws.com/{}",
                stack.config.region, pool.user_pool_id
            )
        );
    }

    // and the template's JWT authorizer accepts both on GET /v1/me
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
    let http = reqwest::Client::new();
    for token in [&tokens.id_token, &tokens.access_token] {
        let me = http
            .get(format!("{}/v1/me", running.url))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET /v1/me");
        assert_eq!(me.status(), 200, "{}", me.text().await.unwrap_or_default());
    }
    running.stop().await;
    let _ = std::fs::remove_dir_all(&scratch);
}
