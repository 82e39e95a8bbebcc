//! The hook's verdict on each kind of answer a new version can give.

use encache_deploy_hook::{CHECKS, Check, Expect};
use serde_json::json;

fn check(expect: Expect) -> Check {
    *CHECKS
        .iter()
        .find(|c| c.expect == expect)
        .expect("a check of that kind")
}

fn response(status: i64, body: serde_json::Value) -> Vec<u8> {
    json!({"statusCode": status, "headers": {"content-type": "application/json"},
           "body": body.to_string(), "isBase64Encoded": false})
    .to_string()
    .into_bytes()
}

#[test]
fn a_healthy_answer_passes() {
    let c = check(Expect::Healthy);
    assert_eq!(
        c.judge(None, &response(200, json!({"status": "ok", "db": "ok"}))),
        Ok(())
    );
}

#[test]
fn a_health_503_fails_naming_what_came_back() {
    let c = check(Expect::Healthy);
    let why = c
        .judge(None, &response(503, json!({"status": 503, "code": "unavailable", "message": "the database did not answer"})))
        .unwrap_err();
    assert!(
        why.contains("got 503") && why.contains("did not answer"),
        "{why}"
    );
}

#[test]
fn an_unauthorized_standard_error_passes() {
    let c = check(Expect::Unauthorized);
    let body = json!({"status": 401, "code": "unauthorized", "message": "Unauthorized"});
    assert_eq!(c.judge(None, &response(401, body)), Ok(()));
}

#[test]
fn a_401_that_is_no_standard_error_fails() {
    let c = check(Expect::Unauthorized);
    assert!(
        c.judge(None, &response(401, json!({"error": "nope"})))
            .is_err()
    );
}

#[test]
fn a_200_where_a_401_belongs_fails() {
    // A route that answers without claims would serve data to anyone.
    let c = check(Expect::Unauthorized);
    let why = c
        .judge(None, &response(200, json!({"items": []})))
        .unwrap_err();
    assert!(why.contains("got 200"), "{why}");
}

#[test]
fn a_function_error_fails_with_its_payload() {
    let c = check(Expect::Unauthorized);
    let payload = json!({"errorType": "Runtime.InitError", "errorMessage": "DB_HOST is not set"});
    let why = c
        .judge(Some("Unhandled"), payload.to_string().as_bytes())
        .unwrap_err();
    assert!(
        why.contains("Unhandled") && why.contains("DB_HOST is not set"),
        "{why}"
    );
}

#[test]
fn an_answer_that_is_no_http_response_fails() {
    let c = check(Expect::Healthy);
    assert!(c.judge(None, b"null").is_err());
    assert!(c.judge(None, b"not json").is_err());
}

#[test]
fn every_check_sends_a_complete_http_api_event_without_claims() {
    for c in CHECKS {
        let event: aws_lambda_events::apigw::ApiGatewayV2httpRequest =
            serde_json::from_value(c.event("d-1-0")).expect("an HTTP API event");
        assert_eq!(
            event.route_key.as_deref(),
            Some(format!("{} {}", c.method, c.path).as_str())
        );
        assert_eq!(event.raw_path.as_deref(), Some(c.path));
        assert!(
            event.request_context.authorizer.is_none(),
            "{c:?} carries no claims"
        );
    }
}

#[test]
fn the_sample_hook_event_is_what_codedeploy_sends() {
    let event: aws_lambda_events::event::codedeploy::CodeDeployLifecycleEvent =
        encache_testkit::sample_event("codedeploy-pre-traffic.json");
    assert_eq!(event.deployment_id, "d-ABCDEF123");
    assert!(!event.lifecycle_event_hook_execution_id.is_empty());
}
