//! Event sources and the local Cognito flow, against the moto emulator.

mod common;

use std::time::Duration;

use common::*;
use encache_local::emulators::cognito::{self, Pool};
use encache_local::emulators::gateway::GatewaySettings;
use encache_local::emulators::{self, StartOptions};
use serde_json::{Value, json};

fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL")
        .expect("AWS_ENDPOINT_URL: run with the dev services (scripts/dev-services.sh env)")
}

async fn wait_for_lines(path: &std::path::Path, n: usize, limit: Duration) -> Vec<Value> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let lines: Vec<Value> = std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        if lines.len() >= n || std::time::Instant::now() > deadline {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn an_object_uploaded_to_the_bucket_reaches_the_subscribed_function_as_an_s3_event() {
    // given the fixture stack with its own bucket, its events recorded to a file
    let _ = endpoint();
    let record = scratch().join("records.jsonl");
    let bucket = unique("enclocal-bucket");
    let stack = fixture_stack(
        json!({"Parameters": {"PoolId": "p", "ClientId": "c", "FixtureBucketName": bucket},
               "EchoFunction": {"FIXTURE_RECORD_FILE": record.display().to_string()}}),
        None,
    );
    let running = emulators::start(
        &stack,
        &StartOptions {
            addr: "127.0.0.1:0".into(),
            gateway: GatewaySettings::default(),
            event_sources: true,
        },
    )
    .await
    .expect("starts with event sources");

    // when an object is put under the filtered prefix, and one outside it
    let sdk = encache_shared::aws::sdk_config().await;
    let s3 = encache_shared::aws::s3_client(&sdk);
    for key in ["elsewhere/skip.txt", "uploads/my photo.jpg"] {
        s3.put_object()
            .bucket(&bucket)
            .key(key)
            .content_type("image/jpeg")
            .body(b"jpegbytes".to_vec().into())
            .send()
            .await
            .expect("put");
    }

    // then exactly the matching object arrives, real-shaped
    let events = wait_for_lines(&record, 1, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let events = if events.is_empty() {
        events
    } else {
        wait_for_lines(&record, 1, Duration::ZERO).await
    };
    assert_eq!(
        events.len(),
        1,
        "one delivery (no s3:TestEvent, no filtered key): {events:?}"
    );
    let rec = &events[0]["Records"][0];
    assert_eq!(rec["eventSource"], "aws:s3");
    assert!(
        rec["eventName"]
            .as_str()
            .expect("name")
            .starts_with("ObjectCreated:")
    );
    assert_eq!(rec["s3"]["bucket"]["name"], bucket.as_str());
    assert_eq!(
        rec["s3"]["object"]["key"], "uploads/my+photo.jpg",
        "encoded as S3 encodes keys"
    );
    assert!(rec["s3"]["object"]["sequencer"].is_string());
    assert!(rec["eventTime"].as_str().expect("time").ends_with('Z'));
    assert_eq!(rec["s3"]["object"]["size"], 9);
    running.stop().await;
}

#[tokio::test]
async fn a_local_sign_up_runs_the_triggers_and_its_token_passes_the_gateway() {
    // given a fresh emulated pool and the fixture triggers
    let sdk = encache_shared::aws::sdk_config().await;
    let (pool_id, client_id) = cognito::create_pool(&sdk, &unique("enclocal-pool"))
        .await
        .expect("pool");
    let record = scratch().join("triggers.jsonl");
    let stack = fixture_stack(
        json!({"Parameters": {"PoolId": pool_id, "ClientId": client_id,
                              "CognitoUserPoolId": pool_id, "CognitoAppClientId": client_id},
               "PostConfirmationFunction": {"FIXTURE_RECORD_FILE": record.display().to_string()}}),
        None,
    );
    let pool = Pool {
        user_pool_id: pool_id.clone(),
        client_id: client_id.clone(),
    };

    // when pre-sign-up rejects the address
    let rejected = cognito::create(&stack, &pool, "reject@example.test", "Passw0rd!long")
        .await
        .expect_err("rejected");
    // then its message surfaces and no user exists
    assert_eq!(
        rejected.to_string(),
        "PreSignUp failed with error reject@example.test may not sign up."
    );
    let idp = aws_sdk_cognitoidentityprovider::Client::new(&sdk);
    assert!(
        idp.admin_get_user()
            .user_pool_id(&pool_id)
            .username("reject@example.test")
            .send()
            .await
            .is_err()
    );

    // when an accepted address signs up
    cognito::create(&stack, &pool, "ada@example.test", "Passw0rd!long")
        .await
        .expect("created");
    // then post-confirmation saw the confirmed user with its sub
    let events = wait_for_lines(&record, 1, Duration::from_secs(5)).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["triggerSource"], "PostConfirmation_ConfirmSignUp");
    assert!(events[0]["request"]["userAttributes"]["sub"].is_string());

    // and the user's token passes the gateway's authorizer (issuer in the real AWS form,
    // JWKS from the emulator), while no token does not
    let token = cognito::token(&pool, "ada@example.test", "Passw0rd!long")
        .await
        .expect("token");
    let running = emulators::start(
        &stack,
        &StartOptions {
            addr: "127.0.0.1:0".into(),
            gateway: GatewaySettings {
                jwks_url: None,
                issuer: Some(format!(
                    "https://cognito-idp.us-east-1.amazonaws.com/{pool_id}"
                )),
            },
            event_sources: false,
        },
    )
    .await
    .expect("starts");
    let ok = client()
        .post(format!("{}/v1/private", running.url))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.expect("json");
    assert_eq!(
        body["event"]["requestContext"]["authorizer"]["jwt"]["claims"]["email"],
        "ada@example.test"
    );
    let denied = client()
        .post(format!("{}/v1/private", running.url))
        .send()
        .await
        .expect("request");
    assert_eq!(denied.status(), 401);
    running.stop().await;
    let _ = endpoint();
}

#[tokio::test]
async fn init_writes_the_local_files_from_the_examples_and_a_pool_in_the_emulator() {
    // given the repository's example files and an empty scratch folder
    let root = fixtures().join("../../..");
    let dir = scratch();

    // when
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_encache-local"))
        .current_dir(&root)
        .env("ENCACHE_ENV_VARS", dir.join("sam-env.local.json"))
        .env(
            "ENCACHE_CONTAINER_ENV_VARS",
            dir.join("sam-container-env.local.json"),
        )
        .arg("init")
        .output()
        .expect("runs");

    // then both files exist, the pool ids are real, the database is the running one
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let env: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("sam-env.local.json")).expect("env file"),
    )
    .expect("json");
    let pool_id = env["Parameters"]["CognitoUserPoolId"]
        .as_str()
        .expect("pool id");
    assert!(!pool_id.starts_with("REPLACE_WITH"), "{pool_id}");
    assert!(
        !env["Parameters"]["CognitoAppClientId"]
            .as_str()
            .expect("client id")
            .starts_with("REPLACE_WITH")
    );
    assert_eq!(
        env["Parameters"]["DATABASE_URL"].as_str(),
        std::env::var("DATABASE_URL").ok().as_deref()
    );
    assert!(dir.join("sam-container-env.local.json").exists());
    let sdk = encache_shared::aws::sdk_config().await;
    aws_sdk_cognitoidentityprovider::Client::new(&sdk)
        .describe_user_pool()
        .user_pool_id(pool_id)
        .send()
        .await
        .expect("the pool exists in the emulator");
}
