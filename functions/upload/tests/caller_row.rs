//! The caller → `users` row of an upload is `encache_shared::users`, the code auth's
//! post-confirmation and `GET /v1/me` run too: a person whose first request is an upload
//! is stored exactly as if they had signed up first, and a later provisioning refreshes
//! the row the same way. (Auth pins the other side: post-confirmation stores
//! `" Ada@Example.COM"` as `"Ada@example.com"`, functions/auth/tests/post_confirmation.rs.)

use std::time::Duration;

use encache_shared::users::{self, Email, Provisioned};
use encache_testkit::{HttpEvent, TestDb, lambda_event, status_and_json};
use encache_upload::{ApiSettings, api};
use serde_json::Value;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

const SUB: &str = "3f6b2c1d-5e4a-4b7c-8d9e-0a1b2c3d4e5f";
/// How the address arrives in the token's claims (and in Cognito's attributes).
const RAW_EMAIL: &str = " Ada@Example.COM";
/// How every function stores it: trimmed, the domain lower-cased, the local part kept.
const STORED_EMAIL: &str = "Ada@example.com";

/// `POST /v1/memories/uploads` as `SUB` with `email` in the token's claims. Presigning
/// needs no bucket, so none is created.
async fn upload(pool: &PgPool, email: &str) -> (i64, Value) {
    let sdk = encache_shared::aws::sdk_config().await;
    let deps = api::Deps {
        db: pool.clone().into(),
        s3: encache_shared::aws::s3_client(&sdk).into(),
        settings: ApiSettings {
            bucket: "encache-test-uploads".into(),
            allowed_content_types: vec!["text/plain".into()],
            max_size_bytes: 1000,
            url_expiry: Duration::from_secs(900),
            db_timeout: Duration::from_secs(3),
        },
    };
    let req = HttpEvent::sample("upload-create.json")
        .caller(SUB)
        .claim("email", email)
        .raw_body(r#"{"content_type":"text/plain","size_bytes":5}"#)
        .build();
    status_and_json(&api::handle(&deps, lambda_event(req)).await.unwrap())
}

/// What auth's post-confirmation runs for a confirmed sign-up of `SUB` whose `email`
/// attribute is `raw` (functions/auth/src/post_confirmation.rs).
async fn post_confirmation_provisions(pool: &PgPool, raw: &str) -> Provisioned {
    let email = Email::parse(raw).expect("a valid address");
    users::upsert(pool, SUB, &email, true)
        .await
        .unwrap()
        .unwrap()
}

async fn rows(pool: &PgPool) -> Vec<(Uuid, String, OffsetDateTime, OffsetDateTime)> {
    sqlx::query_as("SELECT id, email, created_at, updated_at FROM users WHERE cognito_sub = $1")
        .bind(SUB)
        .fetch_all(pool)
        .await
        .unwrap()
}

/// The user id in the upload's object key, `users/{user_id}/memories/{memory_id}`.
async fn uploaded_by(pool: &PgPool, body: &Value) -> Uuid {
    let memory_id: Uuid = body["memory_id"].as_str().unwrap().parse().unwrap();
    sqlx::query_scalar("SELECT user_id FROM memories WHERE id = $1")
        .bind(memory_id)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_person_whose_first_request_is_an_upload_is_stored_as_post_confirmation_stores_them() {
    let db = TestDb::new().await;

    let (status, body) = upload(&db.pool, RAW_EMAIL).await;

    assert_eq!(status, 201, "{body}");
    let stored = rows(&db.pool).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].1, STORED_EMAIL);
    assert_eq!(stored[0].1, Email::parse(RAW_EMAIL).unwrap().as_str());
    assert_eq!(uploaded_by(&db.pool, &body).await, stored[0].0);
}

#[tokio::test]
async fn post_confirmation_arriving_after_the_first_upload_finds_the_same_row_and_email() {
    let db = TestDb::new().await;
    upload(&db.pool, RAW_EMAIL).await;
    let before = rows(&db.pool).await;

    let provisioned = post_confirmation_provisions(&db.pool, RAW_EMAIL).await;

    assert!(!provisioned.created);
    assert_eq!(provisioned.user.email, STORED_EMAIL);
    assert_eq!(
        rows(&db.pool).await,
        before,
        "the same address changes nothing, updated_at included"
    );
}

#[tokio::test]
async fn an_upload_after_signing_up_uses_the_row_post_confirmation_made() {
    let db = TestDb::new().await;
    let provisioned = post_confirmation_provisions(&db.pool, RAW_EMAIL).await;

    let (status, body) = upload(&db.pool, RAW_EMAIL).await;

    assert_eq!(status, 201, "{body}");
    assert_eq!(uploaded_by(&db.pool, &body).await, provisioned.user.id);
    let stored = rows(&db.pool).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].1, STORED_EMAIL);
}

#[tokio::test]
async fn a_later_provisioning_with_another_address_refreshes_the_uploaders_row_normalised() {
    let db = TestDb::new().await;
    upload(&db.pool, RAW_EMAIL).await;
    let (id, _, created_at, updated_at) = rows(&db.pool).await.remove(0);

    let provisioned = post_confirmation_provisions(&db.pool, " ada@Analytical.ENGINE ").await;

    assert_eq!(provisioned.user.id, id);
    let stored = rows(&db.pool).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].1, "ada@analytical.engine");
    assert_eq!(stored[0].2, created_at);
    assert!(stored[0].3 > updated_at, "updated_at moves with the email");
}

#[tokio::test]
async fn two_first_uploads_racing_leave_one_row_with_the_normalised_email() {
    let db = TestDb::new().await;

    let ((a, body_a), (b, body_b)) =
        tokio::join!(upload(&db.pool, RAW_EMAIL), upload(&db.pool, RAW_EMAIL));

    assert_eq!((a, b), (201, 201), "{body_a} {body_b}");
    let stored = rows(&db.pool).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].1, STORED_EMAIL);
    assert_eq!(uploaded_by(&db.pool, &body_a).await, stored[0].0);
    assert_eq!(uploaded_by(&db.pool, &body_b).await, stored[0].0);
}

#[tokio::test]
async fn an_email_claim_that_is_not_an_address_is_refused_like_a_missing_one() {
    let db = TestDb::new().await;

    let (status, body) = upload(&db.pool, "not-an-address").await;

    assert_eq!(status, 401, "{body}");
    assert_eq!(body["code"], "unauthorized");
    assert!(rows(&db.pool).await.is_empty());
}
