//! Pre-token-generation V2: encache's claims in both tokens, groups preserved, the
//! response in the shape Cognito documents, and a database outage that costs the claims
//! but never the sign-in.

mod common;

use std::time::{Duration, Instant};

use common::{raw, with, without};
use encache_auth::TriggerError;
use encache_auth::pre_token_generation::{Deps, RESERVED_CLAIMS, TRIGGER_SOURCES, handle};
use encache_auth::settings::TriggerSettings;
use encache_shared::users::{self, Email};
use encache_testkit::{TestDb, lambda_event, refused_pool, silent_pool};
use serde_json::{Value, json};
use sqlx::PgPool;

const SUB: &str = "6c1f0d2e-8a4b-4f37-9d51-2b7e9c0a4f18";

fn deps(pool: &PgPool) -> Deps {
    Deps {
        db: pool.clone().into(),
        settings: TriggerSettings {
            db_timeout: Duration::from_millis(1000),
        },
    }
}

async fn generate(event: Value, pool: &PgPool) -> Result<Value, TriggerError> {
    handle(&deps(pool), lambda_event(event))
        .await
        .map(|e| serde_json::to_value(e).unwrap())
}

async fn provisioned(pool: &PgPool, plan: &str) -> String {
    let email = Email::parse("Ada.Lovelace@example.com").unwrap();
    let user = users::upsert(pool, SUB, &email, true)
        .await
        .unwrap()
        .unwrap()
        .user;
    sqlx::query("UPDATE users SET plan = $1 WHERE id = $2")
        .bind(plan)
        .bind(user.id)
        .execute(pool)
        .await
        .unwrap();
    user.id.to_string()
}

fn response_without_claims(groups: Value) -> Value {
    json!({
        "claimsAndScopeOverrideDetails": {
            "groupOverrideDetails": groups,
            "idTokenGeneration": {"claimsToAddOrOverride": {}, "claimsToSuppress": []},
            "accessTokenGeneration": {
                "claimsToAddOrOverride": {},
                "claimsToSuppress": [],
                "scopesToAdd": [],
                "scopesToSuppress": []
            }
        }
    })
}

fn sample_groups() -> Value {
    json!({"groupsToOverride": ["beta-testers", "staff"], "iamRolesToOverride": [], "preferredRole": null})
}

#[tokio::test]
async fn tokens_carry_the_users_id_and_plan_and_keep_their_groups_in_cognitos_documented_shape() {
    let db = TestDb::new().await;
    let user_id = provisioned(&db.pool, "plus").await;
    let event = raw("cognito-pre-token-generation-v2.json");

    let out = generate(event.clone(), &db.pool).await.unwrap();

    let claims = json!({"encache:user_id": user_id, "encache:plan": "plus"});
    assert_eq!(
        out["response"],
        json!({
            "claimsAndScopeOverrideDetails": {
                "groupOverrideDetails": {
                    "groupsToOverride": ["beta-testers", "staff"],
                    "iamRolesToOverride": [],
                    "preferredRole": null
                },
                "idTokenGeneration": {"claimsToAddOrOverride": claims, "claimsToSuppress": []},
                "accessTokenGeneration": {
                    "claimsToAddOrOverride": claims,
                    "claimsToSuppress": [],
                    "scopesToAdd": [],
                    "scopesToSuppress": []
                }
            }
        })
    );
    // The rest of the event goes back as it came.
    for field in [
        "version",
        "triggerSource",
        "region",
        "userPoolId",
        "userName",
        "callerContext",
    ] {
        assert_eq!(out[field], event[field], "{field}");
    }
    assert_eq!(
        out["request"]["groupConfiguration"],
        event["request"]["groupConfiguration"]
    );
}

#[tokio::test]
async fn a_row_whose_times_no_response_can_render_still_signs_in_with_its_claims() {
    // given the user's row written around the API with times beyond what the API renders
    // (sqlx's own decoding of them panicked, and a Lambda built with panic = abort dies)
    let db = TestDb::new().await;
    let user_id = provisioned(&db.pool, "pro").await;
    sqlx::query(
        "UPDATE users SET created_at = '-infinity', updated_at = '20000-01-01T00:00:00Z'
         WHERE id = $1::uuid",
    )
    .bind(&user_id)
    .execute(&db.pool)
    .await
    .unwrap();

    // when the user signs in
    let out = generate(raw("cognito-pre-token-generation-v2.json"), &db.pool)
        .await
        .unwrap();

    // then the tokens carry the user's claims as always
    let claims = &out["response"]["claimsAndScopeOverrideDetails"]["idTokenGeneration"]["claimsToAddOrOverride"];
    assert_eq!(
        claims,
        &json!({"encache:user_id": user_id, "encache:plan": "pro"})
    );
}

#[tokio::test]
async fn iam_roles_and_the_preferred_role_are_copied_back_too() {
    let db = TestDb::new().await;
    provisioned(&db.pool, "free").await;
    let groups = json!({
        "groupsToOverride": ["group-A", "group-B", "group-C"],
        "iamRolesToOverride": ["arn:aws:iam::123456789012:role/a", "arn:aws:iam::123456789012:role/b"],
        "preferredRole": "arn:aws:iam::123456789012:role/a"
    });
    let event = with(
        raw("cognito-pre-token-generation-v2.json"),
        "/request/groupConfiguration",
        groups.clone(),
    );

    let out = generate(event, &db.pool).await.unwrap();

    assert_eq!(
        out["response"]["claimsAndScopeOverrideDetails"]["groupOverrideDetails"],
        groups
    );
}

#[tokio::test]
async fn a_user_in_no_group_keeps_an_empty_group_list() {
    let db = TestDb::new().await;
    provisioned(&db.pool, "free").await;
    // Cognito sends null for a user in no group (the crate's null-group fixture).
    let event = with(
        raw("cognito-pre-token-generation-v2.json"),
        "/request/groupConfiguration",
        Value::Null,
    );

    let out = generate(event, &db.pool).await.unwrap();

    assert_eq!(
        out["response"]["claimsAndScopeOverrideDetails"]["groupOverrideDetails"],
        json!({"groupsToOverride": [], "iamRolesToOverride": [], "preferredRole": null})
    );
}

#[tokio::test]
async fn every_token_generation_source_gets_the_claims() {
    let db = TestDb::new().await;
    let user_id = provisioned(&db.pool, "free").await;
    for source in TRIGGER_SOURCES {
        let event = with(
            raw("cognito-pre-token-generation-v2.json"),
            "/triggerSource",
            json!(source),
        );

        let out = generate(event, &db.pool).await.unwrap();

        let id_claims = &out["response"]["claimsAndScopeOverrideDetails"]["idTokenGeneration"]["claimsToAddOrOverride"];
        assert_eq!(id_claims["encache:user_id"], user_id.as_str(), "{source}");
    }
}

#[tokio::test]
async fn no_reserved_claim_is_ever_added_or_suppressed() {
    let db = TestDb::new().await;
    provisioned(&db.pool, "pro").await;

    let out = generate(raw("cognito-pre-token-generation-v2.json"), &db.pool)
        .await
        .unwrap();

    let details = &out["response"]["claimsAndScopeOverrideDetails"];
    for token in ["idTokenGeneration", "accessTokenGeneration"] {
        let added = details[token]["claimsToAddOrOverride"].as_object().unwrap();
        assert!(
            added.keys().all(|k| !RESERVED_CLAIMS.contains(&k.as_str())),
            "{added:?}"
        );
        assert_eq!(details[token]["claimsToSuppress"], json!([]));
    }
}

#[tokio::test]
async fn a_user_without_a_row_gets_tokens_without_encache_claims() {
    let db = TestDb::new().await;

    let out = generate(raw("cognito-pre-token-generation-v2.json"), &db.pool)
        .await
        .unwrap();

    assert_eq!(out["response"], response_without_claims(sample_groups()));
}

#[tokio::test]
async fn a_database_that_is_down_still_issues_tokens_without_encache_claims() {
    let pool = refused_pool();

    let started = Instant::now();
    let out = generate(raw("cognito-pre-token-generation-v2.json"), &pool)
        .await
        .unwrap();

    assert_eq!(out["response"], response_without_claims(sample_groups()));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_database_that_never_answers_costs_at_most_the_lookup_budget() {
    let pool = silent_pool().await;

    let started = Instant::now();
    let out = generate(raw("cognito-pre-token-generation-v2.json"), &pool)
        .await
        .unwrap();

    assert_eq!(out["response"], response_without_claims(sample_groups()));
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_event_without_scopes_is_still_answered() {
    let db = TestDb::new().await;
    let event = without(
        raw("cognito-pre-token-generation-v2.json"),
        "/request",
        "scopes",
    );

    let out = generate(event, &db.pool).await.unwrap();

    assert_eq!(out["response"], response_without_claims(sample_groups()));
}

#[tokio::test]
async fn malformed_token_events_are_clear_errors() {
    let db = TestDb::new().await;
    let sample = raw("cognito-pre-token-generation-v2.json");
    let cases = [
        (
            without(sample.clone(), "/request/userAttributes", "sub"),
            "request.userAttributes.sub is missing",
        ),
        (
            with(
                sample.clone(),
                "/triggerSource",
                json!("TokenGeneration_Unknown"),
            ),
            "unexpected triggerSource",
        ),
        (
            with(
                sample,
                "/request/groupConfiguration",
                json!({"groupsToOverride": "admin"}),
            ),
            "groupsToOverride",
        ),
    ];
    for (event, needle) in cases {
        let err = generate(event, &db.pool).await.unwrap_err();
        assert!(matches!(err, TriggerError::InvalidEvent(_)), "{err:?}");
        assert!(
            err.to_string().contains(needle),
            "{err} should mention {needle}"
        );
    }
}
