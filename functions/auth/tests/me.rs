//! `GET /v1/me` through its real handler with the sample JWT-authorized request.

mod common;

use std::time::{Duration, Instant};

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use common::{me_deps, raw, user_count};
use encache_auth::me::handle;
use encache_auth::post_confirmation;
use encache_auth::settings::TriggerSettings;
use encache_testkit::{TestDb, lambda_event, refused_pool, sample_event, status_and_json};
use serde_json::{Value, json};
use sqlx::PgPool;

const SUB: &str = "6c1f0d2e-8a4b-4f37-9d51-2b7e9c0a4f18";

async fn get_me(req: ApiGatewayV2httpRequest, pool: &PgPool) -> (i64, Value) {
    // GET never touches the bucket.
    let deps = me_deps(pool, "no-bucket-needed", Duration::from_millis(2000)).await;
    status_and_json(&handle(&deps, lambda_event(req)).await.unwrap())
}

fn request() -> ApiGatewayV2httpRequest {
    sample_event("me-get.json")
}

fn claims(req: &mut ApiGatewayV2httpRequest) -> &mut std::collections::HashMap<String, String> {
    &mut req
        .request_context
        .authorizer
        .as_mut()
        .unwrap()
        .jwt
        .as_mut()
        .unwrap()
        .claims
}

#[tokio::test]
async fn me_returns_the_profile_post_confirmation_provisioned() {
    let db = TestDb::new().await;
    let confirmation = post_confirmation::Deps {
        db: db.pool.clone().into(),
        settings: TriggerSettings {
            db_timeout: Duration::from_secs(2),
        },
    };
    post_confirmation::handle(
        &confirmation,
        lambda_event(raw("cognito-post-confirmation.json")),
    )
    .await
    .unwrap();
    let (id,): (uuid::Uuid,) = sqlx::query_as("SELECT id FROM users WHERE cognito_sub = $1")
        .bind(SUB)
        .fetch_one(&db.pool)
        .await
        .unwrap();

    let (status, body) = get_me(request(), &db.pool).await;

    assert_eq!(status, 200);
    assert_eq!(
        body["id"],
        id.to_string(),
        "resolved by sub, not by the encache:user_id claim"
    );
    assert_eq!(body["email"], "Ada.Lovelace@example.com");
    assert_eq!(body["plan"], "free");
    assert_eq!(body["groups"], json!(["beta-testers", "staff"]));
    assert!(body["created_at"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn me_creates_the_row_from_the_claims_when_post_confirmation_never_ran() {
    let db = TestDb::new().await;

    let (first_status, first) = get_me(request(), &db.pool).await;
    let (second_status, second) = get_me(request(), &db.pool).await;

    assert_eq!((first_status, second_status), (200, 200));
    assert_eq!(first, second);
    assert_eq!(first["email"], "Ada.Lovelace@example.com");
    assert_eq!(user_count(&db.pool).await, 1);
}

#[tokio::test]
async fn me_without_a_row_or_an_email_claim_is_a_404_that_says_why() {
    let db = TestDb::new().await;
    let mut req = request();
    claims(&mut req).remove("email");

    let (status, body) = get_me(req, &db.pool).await;

    assert_eq!(status, 404);
    assert_eq!(body["code"], "not_found");
    assert!(
        body["message"].as_str().unwrap().contains("ID token"),
        "{body}"
    );
    assert_eq!(user_count(&db.pool).await, 0);
}

#[tokio::test]
async fn me_without_a_sub_claim_is_unauthorized() {
    let db = TestDb::new().await;
    let mut req = request();
    claims(&mut req).remove("sub");

    let (status, body) = get_me(req, &db.pool).await;

    assert_eq!(status, 401);
    assert_eq!(body["code"], "unauthorized");
}

#[tokio::test]
async fn me_is_a_503_within_its_bound_when_the_database_is_down() {
    let pool = refused_pool();

    let started = Instant::now();
    let (status, body) = get_me(request(), &pool).await;

    assert_eq!(status, 503);
    assert_eq!(body["code"], "service_unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn me_shows_times_no_rfc3339_text_can_hold_as_null_and_still_answers() {
    // given users rows written around the API, whose times the API cannot render
    let db = TestDb::new().await;
    for (i, at) in [
        "infinity",
        "-infinity",
        "20000-01-01T00:00:00Z",
        // Year -1 in ISO terms: before 0000-01-01, the first instant the API renders.
        "0002-12-31 23:00:00+00 BC",
        "4713-01-01 BC",
    ]
    .into_iter()
    .enumerate()
    {
        let sub = format!("written-around-the-api-{i}");
        // One email per row: emails are unique in `users`.
        let email = format!("kim{i}@example.com");
        let id: uuid::Uuid = sqlx::query_scalar(
            "INSERT INTO users (cognito_sub, email, created_at, updated_at)
             VALUES ($1, $3, $2::timestamptz, $2::timestamptz)
             RETURNING id",
        )
        .bind(&sub)
        .bind(at)
        .bind(&email)
        .fetch_one(&db.pool)
        .await
        .unwrap();
        let mut req = request();
        claims(&mut req).insert("sub".into(), sub);

        // when the caller asks for their profile
        let (status, body) = get_me(req, &db.pool).await;

        // then it answers, with the times it cannot show as null
        assert_eq!(status, 200, "{at}: {body}");
        assert_eq!(body["id"], id.to_string(), "{at}");
        assert_eq!(body["email"], email, "{at}");
        assert_eq!(body["created_at"], Value::Null, "{at}");
        assert_eq!(body["updated_at"], Value::Null, "{at}");
    }
}
