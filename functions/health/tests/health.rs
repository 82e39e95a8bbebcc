//! The health function, called through its real handler with the sample HTTP API event.

use std::time::{Duration, Instant};

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use encache_health::{Settings, handle};
use encache_shared::config::Secret;
use encache_shared::db::{DbLimits, lazy_pool};
use encache_tests::{TestDb, lambda_event, sample_event, unreachable_database_url};

fn settings() -> Settings {
    Settings {
        db_timeout: Duration::from_millis(1500),
    }
}

fn body(resp: &ApiGatewayV2httpResponse) -> serde_json::Value {
    match &resp.body {
        Some(Body::Text(t)) => serde_json::from_str(t).expect("JSON body"),
        other => panic!("expected a text body, got {other:?}"),
    }
}

#[tokio::test]
async fn health_reports_ok_when_the_database_answers() {
    let db = TestDb::new().await;
    let event: ApiGatewayV2httpRequest = sample_event("health-get.json");

    let resp = handle(lambda_event(event), &db.pool, settings())
        .await
        .unwrap();

    assert_eq!(resp.status_code, 200);
    assert_eq!(body(&resp), serde_json::json!({"status": "ok", "db": "ok"}));
    assert_eq!(resp.headers["content-type"], "application/json");
    assert_eq!(resp.headers["x-request-id"], "LV7fzho-PHcEJPw=");
}

#[tokio::test]
async fn health_is_a_503_standard_error_within_its_bound_when_the_database_is_down() {
    let limits = DbLimits {
        acquire_timeout: Duration::from_secs(1),
        statement_timeout: Duration::from_secs(1),
        max_connections: 1,
    };
    let pool = lazy_pool(&Secret::new(unreachable_database_url()), limits).unwrap();
    let event: ApiGatewayV2httpRequest = sample_event("health-get.json");

    let started = Instant::now();
    let resp = handle(lambda_event(event), &pool, settings())
        .await
        .unwrap();

    assert_eq!(resp.status_code, 503);
    let body = body(&resp);
    assert_eq!(body["status"], 503);
    assert_eq!(body["code"], "service_unavailable");
    assert!(body["message"].as_str().unwrap().contains("database"));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn health_times_out_a_database_that_accepts_but_never_answers() {
    // A listener that accepts TCP connections and says nothing: the worst kind of down.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    let limits = DbLimits {
        acquire_timeout: Duration::from_secs(10),
        statement_timeout: Duration::from_secs(10),
        max_connections: 1,
    };
    let url = Secret::new(format!("postgres://postgres@127.0.0.1:{port}/encache"));
    let pool = lazy_pool(&url, limits).unwrap();
    let event: ApiGatewayV2httpRequest = sample_event("health-get.json");

    let started = Instant::now();
    let resp = handle(lambda_event(event), &pool, settings())
        .await
        .unwrap();

    assert_eq!(resp.status_code, 503);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}
