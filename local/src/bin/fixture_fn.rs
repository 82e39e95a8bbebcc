//! A tiny Lambda for encache-local's own tests: it echoes, sleeps, hogs memory, crashes or fails on
//! request, answers HTTP events with what it received, plays Cognito triggers, and
//! appends every event it gets to `FIXTURE_RECORD_FILE` so a test can see deliveries, and
//! reports which "code" it runs (`<its path>.code`, read at start).

use std::io::Write;

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    if std::env::var("FIXTURE_INIT_CRASH").is_ok() {
        std::process::exit(2);
    }
    code();
    run(service_fn(handle)).await
}

async fn handle(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let (payload, ctx) = event.into_parts();
    record(&payload);
    let query = |k: &str| {
        payload
            .pointer(&format!("/queryStringParameters/{k}"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let action = payload
        .get("action")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| query("mode"))
        .unwrap_or_default();
    let ms = payload
        .get("ms")
        .and_then(Value::as_u64)
        .or_else(|| query("ms").and_then(|m| m.parse().ok()))
        .unwrap_or(0);
    match action.as_str() {
        "crash" => {
            eprintln!("crashing on purpose");
            std::process::exit(3)
        }
        "fail" => return Err("failing on purpose".into()),
        "sleep" => tokio::time::sleep(std::time::Duration::from_millis(ms)).await,
        "hog" => {
            // Touch `mb` MiB so they are resident, then hold them for `ms`.
            let mb = payload.get("mb").and_then(Value::as_u64).unwrap_or(0) as usize;
            let hog = vec![1u8; mb << 20];
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            std::hint::black_box(&hog);
        }
        _ => {}
    }
    if let Some(source) = payload.get("triggerSource").and_then(Value::as_str) {
        return cognito(payload.clone(), source);
    }
    if payload.get("version").and_then(Value::as_str) == Some("2.0") {
        return Ok(match action.as_str() {
            "plain" => json!({"plain": true}),
            "base64" => json!({"statusCode": 201, "isBase64Encoded": true, "body": "aGVsbG8=",
                               "headers": {"content-type": "text/plain"}}),
            _ => json!({
                "statusCode": 200,
                "headers": {"content-type": "application/json", "x-fixture": "yes"},
                "cookies": ["session=abc; Path=/", "theme=dark"],
                "body": json!({"event": payload, "tag": std::env::var("FIXTURE_TAG").ok(),
                               "traceId": ctx.xray_trace_id, "code": code(),
                               "pid": std::process::id()}).to_string(),
            }),
        });
    }
    Ok(json!({
        "echo": payload,
        "requestId": ctx.request_id,
        "functionArn": ctx.invoked_function_arn,
        "deadlineMs": ctx.deadline,
        "env": {
            "AWS_LAMBDA_FUNCTION_NAME": std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok(),
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").ok(),
            "AWS_ENDPOINT_URL": std::env::var("AWS_ENDPOINT_URL").ok(),
            "FIXTURE_TAG": std::env::var("FIXTURE_TAG").ok(),
            "FIXTURE_LIST": std::env::var("FIXTURE_LIST").ok(),
            "FIXTURE_BUCKET": std::env::var("FIXTURE_BUCKET").ok(),
            "FIXTURE_DEBUG": std::env::var("FIXTURE_DEBUG").ok(),
        }
    }))
}

fn cognito(mut event: Value, source: &str) -> Result<Value, Error> {
    if source.starts_with("PreSignUp") {
        let email = event
            .pointer("/request/userAttributes/email")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if email.contains("reject") {
            return Err(format!("{email} may not sign up").into());
        }
        event["response"] =
            json!({"autoConfirmUser": true, "autoVerifyEmail": true, "autoVerifyPhone": false});
    }
    if source.starts_with("TokenGeneration") {
        // Adds, overrides and suppresses claims, adds a scope, replaces the groups; a user
        // named "reserved..." asks to override `sub`, which Cognito refuses.
        let email = event
            .pointer("/request/userAttributes/email")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let mut id_claims = json!({
            "fixture:added": "id",
            "fixture:object": {"tier": 2, "tags": ["a", "b"]},
            "email": format!("override.{email}"),
            "fixture:metadata": event.pointer("/request/clientMetadata/note").cloned(),
            "fixture:groups_in": event.pointer("/request/groupConfiguration/groupsToOverride").cloned(),
            "fixture:scopes_in": event.pointer("/request/scopes").cloned(),
            "fixture:source": event["triggerSource"].clone(),
        });
        if email.starts_with("reserved") {
            id_claims["sub"] = json!("someone-else");
        }
        let mut groups = event["request"]["groupConfiguration"].clone();
        groups["groupsToOverride"] = json!(["fixture-group"]);
        event["response"] = json!({"claimsAndScopeOverrideDetails": {
            "idTokenGeneration": {"claimsToAddOrOverride": id_claims,
                                  "claimsToSuppress": ["email_verified"]},
            "accessTokenGeneration": {"claimsToAddOrOverride": {"fixture:added": "access"},
                                      "claimsToSuppress": [],
                                      "scopesToAdd": ["fixture/read"],
                                      "scopesToSuppress": []},
            "groupOverrideDetails": groups,
        }});
    }
    Ok(event)
}

/// Which "code" this process runs: `<its own path>.code` as it was when the process
/// started (watch tests stand in for a rebuild by changing that file).
fn code() -> Option<String> {
    static CODE: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    CODE.get_or_init(|| {
        let exe = std::env::current_exe().ok()?;
        std::fs::read_to_string(format!("{}.code", exe.display()))
            .ok()
            .map(|c| c.trim().to_owned())
    })
    .clone()
}

fn record(payload: &Value) {
    let Ok(path) = std::env::var("FIXTURE_RECORD_FILE") else {
        return;
    };
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{payload}");
    }
}
