//! The Runtime API emulator: real function processes, timeouts, crashes, scaling.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

#[tokio::test]
async fn a_function_over_its_timeout_fails_the_caller_and_is_replaced() {
    // given SlowFunction (Timeout: 1)
    let jwks = jwks_server().await;
    let (_stack, running) = start_fixture(&jwks).await;

    // when it sleeps for 5 s
    let started = Instant::now();
    let resp = client()
        .get(format!("{}/v1/slow?mode=sleep&ms=5000", running.url))
        .send()
        .await
        .expect("request");

    // then the caller gets an error after about a second, not five
    assert_eq!(resp.status(), 500);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    // and a new process serves the next request
    let next = client()
        .get(format!("{}/v1/slow", running.url))
        .send()
        .await
        .expect("request");
    assert_eq!(next.status(), 200);
    assert_eq!(running.runtime.started_instances("SlowFunction"), 2);
    running.stop().await;
}

#[tokio::test]
async fn a_crashing_function_fails_its_caller_at_once_and_is_restarted() {
    let jwks = jwks_server().await;
    let (_stack, running) = start_fixture(&jwks).await;

    let started = Instant::now();
    let crash = client()
        .get(format!("{}/v1/public?mode=crash", running.url))
        .send()
        .await
        .expect("request");
    assert_eq!(crash.status(), 500);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "no hang: {:?}",
        started.elapsed()
    );

    let next = client()
        .get(format!("{}/v1/public", running.url))
        .send()
        .await
        .expect("request");
    assert_eq!(next.status(), 200);
    assert_eq!(running.runtime.started_instances("EchoFunction"), 2);
    running.stop().await;
}

#[tokio::test]
async fn a_second_instance_serves_when_the_first_is_busy() {
    let jwks = jwks_server().await;
    let (_stack, running) = start_fixture(&jwks).await;
    let url = format!("{}/v1/public?mode=sleep&ms=800", running.url);

    let started = Instant::now();
    let (a, b) = tokio::join!(client().get(&url).send(), client().get(&url).send());

    assert_eq!(a.expect("a").status(), 200);
    assert_eq!(b.expect("b").status(), 200);
    assert_eq!(running.runtime.started_instances("EchoFunction"), 2);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "ran side by side: {:?}",
        started.elapsed()
    );
    running.stop().await;
}

#[tokio::test]
async fn the_process_gets_the_lambda_environment_and_the_resolved_template_variables() {
    // given a container env file that adds a debug variable
    let stack = fixture_stack(
        default_env(),
        Some(serde_json::json!({"Parameters": {"FIXTURE_DEBUG": "1"}})),
    );
    let runtime = encache_local::emulators::runtime::Runtime::new(vec![
        stack.function_spec("EchoFunction").expect("spec"),
    ]);

    // when
    let out = runtime
        .invoke("EchoFunction", r#"{"action":"echo"}"#.into())
        .await
        .expect("invoke");

    // then
    let out: Value = serde_json::from_slice(&out).expect("json");
    let env = &out["env"];
    assert_eq!(env["AWS_LAMBDA_FUNCTION_NAME"], "EchoFunction");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "256");
    assert_eq!(
        env["FIXTURE_TAG"], "test-us-east-1-tag",
        "Globals + !Sub with a pseudo parameter"
    );
    assert_eq!(
        env["FIXTURE_LIST"],
        "http://localhost:5173;http://example.test"
    );
    assert_eq!(env["FIXTURE_BUCKET"], "encache-local-fixture");
    assert_eq!(env["FIXTURE_DEBUG"], "1");
    assert_eq!(
        out["functionArn"],
        "arn:aws:lambda:us-east-1:123456789012:function:EchoFunction"
    );
    assert!(out["deadlineMs"].as_u64().expect("deadline") > now() * 1000);
    runtime.shutdown().await;
}

#[tokio::test]
async fn a_process_that_dies_during_init_fails_the_invocation_without_hanging() {
    let stack = fixture_stack(
        default_env(),
        Some(serde_json::json!({"EchoFunction": {"FIXTURE_INIT_CRASH": "1"}})),
    );
    let runtime = encache_local::emulators::runtime::Runtime::new(vec![
        stack.function_spec("EchoFunction").expect("spec"),
    ]);

    let started = Instant::now();
    let err = runtime
        .invoke("EchoFunction", "{}".into())
        .await
        .expect_err("init fails");

    assert!(err.to_string().contains("initialisation failed"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3));
    runtime.shutdown().await;
}

#[test]
fn a_variable_without_a_local_value_is_an_error_naming_function_and_variable() {
    // PoolId is SSM-typed: its default is a parameter name, so it needs a local value.
    let stack = fixture_stack(serde_json::json!({"Parameters": {}}), None);

    let err = stack
        .function_spec("PostConfirmationFunction")
        .expect_err("POOL has no value")
        .to_string();

    assert!(
        err.contains("PostConfirmationFunction: variable POOL"),
        "{err}"
    );
    assert!(err.contains("PoolId"), "{err}");
}

#[test]
fn invoke_prints_the_response_of_the_real_binary() {
    let dir = scratch();
    let env = dir.join("env.json");
    std::fs::write(&env, default_env().to_string()).expect("env");
    let event = dir.join("event.json");
    std::fs::write(&event, r#"{"action":"echo","n":7}"#).expect("event");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_encache-local"))
        .current_dir(fixtures())
        .env("ENCACHE_BIN_DIR", bin_dir())
        .env("ENCACHE_ENV_VARS", &env)
        .args(["invoke", "EchoFunction", "--event"])
        .arg(&event)
        .output()
        .expect("runs");

    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let response: Value = serde_json::from_slice(&out.stdout).expect("stdout is the response JSON");
    assert_eq!(response["echo"]["n"], 7);
    assert!(String::from_utf8_lossy(&out.stderr).contains("[EchoFunction] START RequestId"));
}

#[tokio::test]
async fn a_function_over_its_memory_size_fails_with_out_of_memory_and_is_replaced() {
    // given EchoFunction (MemorySize: 256, from Globals)
    let jwks = jwks_server().await;
    let (_stack, running) = start_fixture(&jwks).await;

    // when it makes 400 MiB resident
    let err = running
        .runtime
        .invoke(
            "EchoFunction",
            r#"{"action":"hog","mb":400,"ms":2000}"#.into(),
        )
        .await
        .expect_err("over its MemorySize");

    // then the invocation fails as Lambda reports it, and a new process serves the next
    let payload = err.payload();
    assert_eq!(payload["errorType"], "Runtime.OutOfMemory", "{err}");
    assert!(
        payload["errorMessage"]
            .as_str()
            .expect("message")
            .ends_with("Error: Runtime exited with error: signal: killed")
    );
    let ok = running
        .runtime
        .invoke("EchoFunction", r#"{"action":"hog","mb":16}"#.into())
        .await
        .expect("within its MemorySize");
    assert!(String::from_utf8_lossy(&ok).contains("\"echo\""));
    assert_eq!(running.runtime.started_instances("EchoFunction"), 2);
    running.stop().await;
}

#[tokio::test]
async fn the_requests_trace_header_reaches_the_function_as_its_trace_id() {
    // given the fixture API
    let jwks = jwks_server().await;
    let (_stack, running) = start_fixture(&jwks).await;
    let trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

    // when a request carries X-Amzn-Trace-Id
    let body: Value = client()
        .get(format!("{}/v1/public", running.url))
        .header("x-amzn-trace-id", trace)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");

    // then the function's context has it (Lambda-Runtime-Trace-Id)
    assert_eq!(body["traceId"], trace);
    running.stop().await;
}
