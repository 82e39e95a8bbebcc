//! Local sign-in tokens as Cognito issues them: the pre-token-generation trigger's
//! response in the ID and access tokens, and those claims through the local gateway.
//! Against the moto emulator, with the fixture function as the trigger.

mod common;

use std::collections::BTreeMap;

use common::*;
use encache_local::emulators::cognito::issuer::{Issuer, issuer_url};
use encache_local::emulators::cognito::{self, Pool};
use encache_local::emulators::gateway::GatewaySettings;
use encache_local::emulators::{self, StartOptions};
use encache_local::stack::Stack;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value, json};

const PASSWORD: &str = "Passw0rd!long";

/// A fresh emulated pool, a group, and the fixture stack wired to it.
async fn pool_and_stack() -> (Pool, Stack) {
    let sdk = encache_shared::aws::sdk_config().await;
    let (pool_id, client_id) = cognito::create_pool(&sdk, &unique("enclocal-tokens"))
        .await
        .expect("pool");
    aws_sdk_cognitoidentityprovider::Client::new(&sdk)
        .create_group()
        .user_pool_id(&pool_id)
        .group_name("testers")
        .send()
        .await
        .expect("group");
    let stack = fixture_stack(
        json!({"Parameters": {"PoolId": pool_id, "ClientId": client_id,
                              "CognitoUserPoolId": pool_id, "CognitoAppClientId": client_id}}),
        None,
    );
    (
        Pool {
            user_pool_id: pool_id,
            client_id,
        },
        stack,
    )
}

async fn add_to_group(pool: &Pool, email: &str, group: &str) {
    let sdk = encache_shared::aws::sdk_config().await;
    aws_sdk_cognitoidentityprovider::Client::new(&sdk)
        .admin_add_user_to_group()
        .user_pool_id(&pool.user_pool_id)
        .username(email)
        .group_name(group)
        .send()
        .await
        .expect("added to the group");
}

/// The claims of a token the local issuer signed (signature, issuer and expiry checked).
fn verified(stack: &Stack, token: &str, issuer: &str) -> Map<String, Value> {
    let (kid, key) = Issuer::for_stack(stack)
        .and_then(|i| i.decoding_key())
        .expect("the issuer's key");
    let header = jsonwebtoken::decode_header(token).expect("header");
    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(header.kid.as_deref(), Some(kid.as_str()));
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_aud = false;
    validation.set_issuer(&[issuer]);
    jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
        .expect("verifies")
        .claims
}

#[tokio::test]
async fn tokens_carry_what_the_pre_token_generation_trigger_answered() {
    // given a user in a group, and the fixture trigger that adds, overrides, suppresses
    // and replaces the groups
    let (pool, stack) = pool_and_stack().await;
    let email = "ada.tokens@example.test";
    cognito::create(&stack, &pool, email, PASSWORD)
        .await
        .expect("created");
    add_to_group(&pool, email, "testers").await;

    // when the user signs in with client metadata
    let metadata = BTreeMap::from([("note".to_owned(), "hello".to_owned())]);
    let tokens = cognito::tokens(&stack, &pool, email, PASSWORD, &metadata)
        .await
        .expect("tokens");
    let issuer = issuer_url(&stack.config.region, &pool.user_pool_id);

    // then the ID token has Cognito's claims and the trigger's changes
    let id = verified(&stack, &tokens.id_token, &issuer);
    assert_eq!(id["token_use"], "id");
    assert_eq!(id["aud"], pool.client_id.as_str());
    assert!(id["sub"].is_string());
    assert!(id["cognito:username"].is_string());
    assert_eq!(
        id["exp"].as_u64().expect("exp") - id["iat"].as_u64().expect("iat"),
        3600
    );
    assert_eq!(id["fixture:source"], "TokenGeneration_Authentication");
    assert_eq!(id["fixture:added"], "id");
    assert_eq!(id["fixture:object"], json!({"tier": 2, "tags": ["a", "b"]}));
    assert_eq!(id["email"], format!("override.{email}"), "overridden");
    assert!(id.get("email_verified").is_none(), "suppressed: {id:?}");
    assert_eq!(id["fixture:metadata"], "hello", "clientMetadata reached it");
    assert_eq!(id["fixture:groups_in"], json!(["testers"]));
    assert_eq!(
        id["fixture:scopes_in"],
        json!(["aws.cognito.signin.user.admin"])
    );
    assert_eq!(id["cognito:groups"], json!(["fixture-group"]), "replaced");

    // and the access token has its own
    let access = verified(&stack, &tokens.access_token, &issuer);
    assert_eq!(access["token_use"], "access");
    assert_eq!(access["client_id"], pool.client_id.as_str());
    assert!(access.get("aud").is_none());
    assert_eq!(access["sub"], id["sub"]);
    assert_eq!(access["origin_jti"], id["origin_jti"]);
    assert_eq!(access["fixture:added"], "access");
    assert_eq!(
        access["scope"],
        "aws.cognito.signin.user.admin fixture/read"
    );
    assert_eq!(access["cognito:groups"], json!(["fixture-group"]));
    assert!(access.get("email").is_none());

    // and a trigger that overrides a reserved claim fails the sign-in
    cognito::create(&stack, &pool, "reserved@example.test", PASSWORD)
        .await
        .expect("created");
    let refused = cognito::tokens(
        &stack,
        &pool,
        "reserved@example.test",
        PASSWORD,
        &BTreeMap::new(),
    )
    .await
    .expect_err("refused");
    assert!(
        format!("{refused:#}").contains("InvalidLambdaResponseException"),
        "{refused:#}"
    );
    // and a wrong password is the emulator's refusal, before any trigger
    assert!(
        cognito::tokens(&stack, &pool, email, "Wr0ng!password", &BTreeMap::new())
            .await
            .is_err()
    );
}

fn tampered(token: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let payload = base64_url(parts[1]);
    let mut claims: Value = serde_json::from_slice(&payload).expect("payload");
    claims["fixture:added"] = json!("forged");
    let forged = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        claims.to_string(),
    );
    format!("{}.{forged}.{}", parts[0], parts[2])
}

fn base64_url(s: &str) -> Vec<u8> {
    base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, s).expect("b64")
}

#[tokio::test]
async fn the_trigger_claims_reach_the_function_through_the_local_gateway() {
    // given a signed-in user and the local stack, its authorizer on the pool's issuer
    let (pool, stack) = pool_and_stack().await;
    let email = "grace.tokens@example.test";
    cognito::create(&stack, &pool, email, PASSWORD)
        .await
        .expect("created");
    let tokens = cognito::tokens(&stack, &pool, email, PASSWORD, &BTreeMap::new())
        .await
        .expect("tokens");
    let issuer = issuer_url(&stack.config.region, &pool.user_pool_id);
    let running = emulators::start(
        &stack,
        &StartOptions {
            addr: "127.0.0.1:0".into(),
            gateway: GatewaySettings {
                jwks_url: None,
                issuer: Some(issuer.clone()),
            },
            event_sources: false,
        },
    )
    .await
    .expect("starts");
    let call = |token: Option<String>| {
        let mut request = client().post(format!("{}/v1/private", running.url));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        async move { request.send().await.expect("request") }
    };

    // when the ID token calls a protected route
    let ok = call(Some(tokens.id_token.clone())).await;
    // then the function sees the trigger's claims, as API Gateway passes them (strings)
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.expect("json");
    let claims = &body["event"]["requestContext"]["authorizer"]["jwt"]["claims"];
    assert_eq!(claims["fixture:added"], "id");
    assert_eq!(claims["email"], format!("override.{email}"));
    assert_eq!(claims["cognito:groups"], "[fixture-group]");
    assert_eq!(claims["token_use"], "id");
    assert!(claims.get("email_verified").is_none());

    // and the access token passes by its client_id, with its own claims and scopes
    let ok = call(Some(tokens.access_token.clone())).await;
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.expect("json");
    let claims = &body["event"]["requestContext"]["authorizer"]["jwt"]["claims"];
    assert_eq!(claims["fixture:added"], "access");
    assert_eq!(claims["client_id"], pool.client_id.as_str());
    assert_eq!(
        body["event"]["requestContext"]["authorizer"]["jwt"]["scopes"],
        json!(["aws.cognito.signin.user.admin", "fixture/read"])
    );

    // and a tampered, an expired or a foreign-audience token is 401 as before
    let key = Issuer::for_stack(&stack).expect("issuer");
    let now = now();
    let mut expired = verified(&stack, &tokens.id_token, &issuer);
    expired.insert("iat".into(), json!(now - 7200));
    expired.insert("exp".into(), json!(now - 3600));
    let mut foreign = verified(&stack, &tokens.id_token, &issuer);
    foreign.insert("aud".into(), json!("someone-elses-client"));
    for (case, token) in [
        ("tampered", Some(tampered(&tokens.id_token))),
        ("expired", Some(key.sign(&expired).expect("signed"))),
        (
            "foreign audience",
            Some(key.sign(&foreign).expect("signed")),
        ),
        ("none", None),
    ] {
        let denied = call(token).await;
        assert_eq!(denied.status(), 401, "{case}");
        let body: Value = denied.json().await.expect("json");
        assert_eq!(body, json!({"message": "Unauthorized"}), "{case}");
    }
    running.stop().await;
}

#[tokio::test]
async fn user_token_prints_the_id_token_or_the_access_token() {
    // given a user of a pool the env file names
    let (pool, stack) = pool_and_stack().await;
    let email = "linus.tokens@example.test";
    cognito::create(&stack, &pool, email, PASSWORD)
        .await
        .expect("created");
    let dir = stack
        .config
        .env_vars
        .parent()
        .expect("scratch dir")
        .to_owned();
    let issuer = issuer_url(&stack.config.region, &pool.user_pool_id);
    let run = |extra: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_encache-local"));
        stack_env(
            &mut cmd,
            &stack.config.template,
            &dir,
            &stack.config.stack_name,
        )
        .args(["user", "token", email, "--password", PASSWORD])
        .args(extra);
        let out = cmd.output().expect("runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    };

    // when it prints by default, with --access and with --both
    let id = run(&[]);
    let access = run(&["--access"]);
    let both = run(&["--both"]);

    // then the default is the ID token (as the README's scripts use it), both carrying
    // the trigger's claims
    let id = verified(&stack, id.trim(), &issuer);
    assert_eq!(id["token_use"], "id");
    assert_eq!(id["fixture:added"], "id");
    let access = verified(&stack, access.trim(), &issuer);
    assert_eq!(access["token_use"], "access");
    assert_eq!(access["fixture:added"], "access");
    let lines: Vec<&str> = both.lines().collect();
    assert_eq!(lines.len(), 2, "{both}");
    assert_eq!(verified(&stack, lines[0], &issuer)["token_use"], "id");
    assert_eq!(verified(&stack, lines[1], &issuer)["token_use"], "access");
}
