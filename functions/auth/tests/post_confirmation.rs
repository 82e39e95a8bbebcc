//! Post-confirmation against a real PostgreSQL: one row per `sub` however often Cognito
//! delivers, bounded database work, and bad events that write nothing.

mod common;

use std::time::{Duration, Instant};

use common::{raw, user_count, with, without};
use encache_auth::TriggerError;
use encache_auth::post_confirmation::{Deps, handle};
use encache_auth::settings::TriggerSettings;
use encache_shared::error::EventFailure;
use encache_testkit::{TestDb, lambda_event, refused_pool, silent_pool};
use serde_json::{Value, json};
use sqlx::PgPool;
use time::OffsetDateTime;

const SUB: &str = "6c1f0d2e-8a4b-4f37-9d51-2b7e9c0a4f18";

fn deps(pool: &PgPool) -> Deps {
    Deps {
        db: pool.clone().into(),
        settings: TriggerSettings {
            db_timeout: Duration::from_millis(2500),
        },
    }
}

async fn confirm(event: Value, pool: &PgPool) -> Result<Value, TriggerError> {
    handle(&deps(pool), lambda_event(event))
        .await
        .map(|e| serde_json::to_value(e).unwrap())
}

async fn row(pool: &PgPool, sub: &str) -> (String, String, OffsetDateTime, OffsetDateTime) {
    sqlx::query_as("SELECT email, plan, created_at, updated_at FROM users WHERE cognito_sub = $1")
        .bind(sub)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn confirming_a_sign_up_creates_the_user_with_a_normalised_email_and_returns_the_event() {
    let db = TestDb::new().await;
    let event = raw("cognito-post-confirmation.json");

    let out = confirm(event.clone(), &db.pool).await.unwrap();

    assert_eq!(
        out, event,
        "Cognito gets its event back, response {{}} included"
    );
    let (email, plan, _, _) = row(&db.pool, SUB).await;
    assert_eq!(email, "Ada.Lovelace@example.com");
    assert_eq!(plan, "free");
}

#[tokio::test]
async fn an_address_is_stored_trimmed_with_its_domain_lower_cased_as_upload_stores_it() {
    // functions/upload/tests/caller_row.rs pins the same stored form for an upload.
    let db = TestDb::new().await;
    let event = with(
        raw("cognito-post-confirmation.json"),
        "/request/userAttributes/email",
        json!(" Ada@Example.COM"),
    );

    confirm(event, &db.pool).await.unwrap();

    let (email, _, _, _) = row(&db.pool, SUB).await;
    assert_eq!(email, "Ada@example.com");
}

#[tokio::test]
async fn three_deliveries_leave_one_row_with_an_unchanged_created_at() {
    let db = TestDb::new().await;
    let event = raw("cognito-post-confirmation.json");

    confirm(event.clone(), &db.pool).await.unwrap();
    let first = row(&db.pool, SUB).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    confirm(event.clone(), &db.pool).await.unwrap();
    confirm(event, &db.pool).await.unwrap();

    assert_eq!(user_count(&db.pool).await, 1);
    assert_eq!(
        row(&db.pool, SUB).await,
        first,
        "created_at and updated_at unchanged"
    );
}

#[tokio::test]
async fn concurrent_deliveries_still_leave_one_row() {
    let db = TestDb::new().await;
    let event = raw("cognito-post-confirmation.json");

    let (a, b, c) = tokio::join!(
        confirm(event.clone(), &db.pool),
        confirm(event.clone(), &db.pool),
        confirm(event, &db.pool)
    );

    assert!(a.is_ok() && b.is_ok() && c.is_ok());
    assert_eq!(user_count(&db.pool).await, 1);
}

#[tokio::test]
async fn a_forgot_password_confirmation_keeps_the_row_and_its_plan() {
    let db = TestDb::new().await;
    confirm(raw("cognito-post-confirmation.json"), &db.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE users SET plan = 'pro' WHERE cognito_sub = $1")
        .bind(SUB)
        .execute(&db.pool)
        .await
        .unwrap();
    let (_, _, created_at, _) = row(&db.pool, SUB).await;
    let event = with(
        raw("cognito-post-confirmation.json"),
        "/triggerSource",
        json!("PostConfirmation_ConfirmForgotPassword"),
    );

    let out = confirm(event, &db.pool).await.unwrap();

    assert_eq!(
        out["triggerSource"],
        "PostConfirmation_ConfirmForgotPassword"
    );
    let (_, plan, created, _) = row(&db.pool, SUB).await;
    assert_eq!((plan.as_str(), created), ("pro", created_at));
    assert_eq!(user_count(&db.pool).await, 1);
}

#[tokio::test]
async fn a_changed_email_is_refreshed_without_a_second_row() {
    let db = TestDb::new().await;
    confirm(raw("cognito-post-confirmation.json"), &db.pool)
        .await
        .unwrap();
    let (_, _, created_at, updated_at) = row(&db.pool, SUB).await;
    let event = with(
        raw("cognito-post-confirmation.json"),
        "/request/userAttributes/email",
        json!("ada@Analytical.Engine"),
    );

    confirm(event, &db.pool).await.unwrap();

    let (email, _, created, updated) = row(&db.pool, SUB).await;
    assert_eq!(email, "ada@analytical.engine");
    assert_eq!(created, created_at);
    assert!(updated > updated_at);
}

#[tokio::test]
async fn bad_events_are_clear_non_retryable_errors_that_write_nothing() {
    let db = TestDb::new().await;
    let sample = raw("cognito-post-confirmation.json");
    let cases = [
        (
            without(sample.clone(), "/request/userAttributes", "email"),
            "request.userAttributes.email is missing",
        ),
        (
            with(sample.clone(), "/request/userAttributes/email", json!("  ")),
            "request.userAttributes.email is missing",
        ),
        (
            with(
                sample.clone(),
                "/request/userAttributes/email",
                json!("nobody"),
            ),
            "request.userAttributes.email: the email address is not valid",
        ),
        (
            without(sample.clone(), "/request/userAttributes", "sub"),
            "request.userAttributes.sub is missing",
        ),
        (
            with(
                sample.clone(),
                "/triggerSource",
                json!("PostConfirmation_Unknown"),
            ),
            "unexpected triggerSource \"PostConfirmation_Unknown\"",
        ),
        (
            with(sample.clone(), "/request/userAttributes/email", json!(42)),
            "invalid type",
        ),
        (without(sample, "", "request"), "request"),
    ];
    for (event, needle) in cases {
        let err = confirm(event, &db.pool).await.unwrap_err();
        assert!(matches!(err, TriggerError::InvalidEvent(_)), "{err:?}");
        assert!(!err.retryable());
        assert!(
            err.to_string().contains(needle),
            "{err} should mention {needle}"
        );
    }
    assert_eq!(user_count(&db.pool).await, 0);
}

#[tokio::test]
async fn a_refused_database_is_a_retryable_error_well_inside_cognitos_five_seconds() {
    let pool = refused_pool();

    let started = Instant::now();
    let err = confirm(raw("cognito-post-confirmation.json"), &pool)
        .await
        .unwrap_err();

    assert!(err.retryable(), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_database_that_never_answers_is_cut_off_by_the_trigger_budget() {
    let pool = silent_pool().await;

    let started = Instant::now();
    let err = confirm(raw("cognito-post-confirmation.json"), &pool)
        .await
        .unwrap_err();

    assert!(matches!(err, TriggerError::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains("2500 ms"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_new_sub_of_a_known_email_is_relinked_when_verified_and_refused_when_not() {
    let db = TestDb::new().await;
    confirm(raw("cognito-post-confirmation.json"), &db.pool)
        .await
        .unwrap();
    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM users WHERE cognito_sub = $1")
        .bind(SUB)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let again = |sub: &str, verified: &str| {
        let event = with(
            raw("cognito-post-confirmation.json"),
            "/request/userAttributes/sub",
            json!(sub),
        );
        with(
            event,
            "/request/userAttributes/email_verified",
            json!(verified),
        )
    };

    // when the address signs up again under a new sub without a verified email
    let err = confirm(again("sub-unverified", "false"), &db.pool)
        .await
        .expect_err("an unverified email cannot take the row");
    // then Cognito shows a clear reason, retrying cannot help, and the row is untouched
    assert!(matches!(err, TriggerError::Rejected(_)), "{err:?}");
    assert!(!err.retryable());
    assert!(
        err.message().contains("belongs to another account"),
        "{}",
        err.message()
    );
    assert_eq!(user_count(&db.pool).await, 1);

    // when it does so with a verified email
    confirm(again("sub-verified", "true"), &db.pool)
        .await
        .unwrap();
    // then the same row now answers to the new sub
    let relinked: uuid::Uuid = sqlx::query_scalar("SELECT id FROM users WHERE cognito_sub = $1")
        .bind("sub-verified")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(relinked, id);
    assert_eq!(user_count(&db.pool).await, 1);
}
