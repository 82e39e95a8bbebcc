//! The health function, called through its real handler with the sample HTTP API event.

use std::time::{Duration, Instant};

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use encache_health::{Deps, Settings, handle};
use encache_testkit::{
    TestDb, assert_standard_error, lambda_event, refused_pool, sample_event, silent_pool,
    status_and_json,
};

fn deps(pool: sqlx::PgPool) -> Deps {
    Deps {
        db: pool.into(),
        settings: Settings {
            db_timeout: Duration::from_millis(1500),
        },
    }
}

#[tokio::test]
async fn health_reports_ok_when_the_database_answers() {
    let db = TestDb::new().await;
    let event: ApiGatewayV2httpRequest = sample_event("health-get.json");

    let resp = handle(&deps(db.pool.clone()), lambda_event(event))
        .await
        .unwrap();

    let (status, body) = status_and_json(&resp);
    assert_eq!(status, 200);
    assert_eq!(body, serde_json::json!({"status": "ok", "db": "ok"}));
    assert_eq!(resp.headers["content-type"], "application/json");
    assert_eq!(resp.headers["x-request-id"], "LV7fzho-PHcEJPw=");
}

#[tokio::test]
async fn health_is_a_503_standard_error_within_its_bound_when_the_database_is_down() {
    let pool = refused_pool();
    let event: ApiGatewayV2httpRequest = sample_event("health-get.json");

    let started = Instant::now();
    let resp = handle(&deps(pool), lambda_event(event)).await.unwrap();

    let (status, body) = status_and_json(&resp);
    assert_standard_error(status, &body, 503, "service_unavailable");
    assert!(body["message"].as_str().unwrap().contains("database"));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn health_times_out_a_database_that_accepts_but_never_answers() {
    let pool = silent_pool().await;
    let event: ApiGatewayV2httpRequest = sample_event("health-get.json");

    let started = Instant::now();
    let resp = handle(&deps(pool), lambda_event(event)).await.unwrap();

    assert_eq!(resp.status_code, 503);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn init_reads_nothing_and_an_unreadable_password_is_the_first_requests_503() {
    // given the AWS shape of the settings (password in SSM) and a parameter that does not
    // exist: what an SSM outage or a missing grant looks like to the function
    let missing = format!(
        "/encache/test/missing-{}-{:?}/db/password",
        std::process::id(),
        Instant::now()
    )
    .replace([' ', '.', '{', '}', ':'], "");
    let source = encache_shared::config::pairs(&[
        ("DB_HOST", "127.0.0.1"),
        ("DB_NAME", "encache"),
        ("DB_USER", "app"),
        ("DB_PASSWORD_PARAMETER", &missing),
    ]);
    let env = encache_shared::config::Env::new(&source);

    // when the container starts, init succeeds without calling anything
    let db = encache_shared::db::Database::from_env(&env, None).expect("settings only");
    let deps = Deps {
        db,
        settings: Settings {
            db_timeout: Duration::from_millis(1500),
        },
    };

    // then the request that needs the database is a 503 StandardError naming no secret
    let event: ApiGatewayV2httpRequest = sample_event("health-get.json");
    let resp = handle(&deps, lambda_event(event)).await.unwrap();
    let (status, body) = status_and_json(&resp);
    assert_standard_error(status, &body, 503, "service_unavailable");
    assert!(!body.to_string().contains(&missing), "{body}");
}
