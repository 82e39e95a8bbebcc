//! The `DatabaseSchema` custom resource, called through its real handler with the sample
//! CloudFormation event, against the real PostgreSQL and a local response URL.

mod support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use encache_migrate::{Deps, handle};
use encache_testkit::{TestDb, lambda_event, silent_pool, unreachable_database_url};
use lambda_runtime::Diagnostic;
use serde_json::json;

use support::{
    Receiver, applied_versions, code_versions, create_event, delete_event, deps_for,
    empty_database, record_unknown_migration, request, table_exists, update_event,
};

const FUTURE_VERSION: i64 = 20270101000000;

fn joined(versions: &[i64]) -> String {
    versions
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[tokio::test]
async fn create_on_an_empty_database_applies_every_migration_and_reports_them() {
    // given a database with no schema at all
    let db = empty_database().await;
    let receiver = Receiver::start().await;

    // when CloudFormation creates the resource
    handle(
        &deps_for(&db.url),
        lambda_event(request(create_event(&receiver))),
    )
    .await
    .unwrap();

    // then every migration is applied, and CloudFormation is told which
    let versions = code_versions();
    assert_eq!(applied_versions(&db.pool).await, versions);
    assert!(table_exists(&db.pool, "users").await);
    let sent = receiver.only_response();
    assert_eq!(sent.method, "PUT");
    assert_eq!(sent.content_type.as_deref(), Some(""));
    assert_eq!(sent.body["Status"], "SUCCESS", "{}", sent.body);
    assert_eq!(sent.body["PhysicalResourceId"], "encache-database-schema");
    assert_eq!(
        sent.body["RequestId"],
        "5f1c7a2e-9b3d-4c8e-a1f0-7d2e6b4c9a31"
    );
    assert_eq!(sent.body["LogicalResourceId"], "DatabaseSchema");
    assert_eq!(
        sent.body["StackId"],
        "arn:aws:cloudformation:us-east-1:123456789012:stack/encache-dev/6a3c9f00-2e1b-11ef-9f2a-0e5b8c1a7d55"
    );
    assert_eq!(
        sent.body["Data"],
        json!({
            "AppliedVersions": joined(&versions),
            "SchemaVersion": versions.last().unwrap().to_string(),
        })
    );
}

#[tokio::test]
async fn a_second_run_applies_nothing_and_reports_the_same_schema_version() {
    // given a database already at the code's schema
    let db = TestDb::new().await;
    let receiver = Receiver::start().await;

    // when a later deploy updates the resource
    let event = update_event(&receiver, "20261130101500", "20261129080000");
    handle(&deps_for(&db.url), lambda_event(request(event)))
        .await
        .unwrap();

    // then nothing is applied and the schema version is reported
    let versions = code_versions();
    assert_eq!(applied_versions(&db.pool).await, versions);
    let sent = receiver.only_response();
    assert_eq!(sent.body["Status"], "SUCCESS", "{}", sent.body);
    assert_eq!(sent.body["PhysicalResourceId"], "encache-database-schema");
    assert_eq!(
        sent.body["Data"],
        json!({
            "AppliedVersions": "",
            "SchemaVersion": versions.last().unwrap().to_string(),
        })
    );
}

#[tokio::test]
async fn a_database_with_a_migration_the_code_does_not_know_is_refused_and_nothing_is_applied() {
    // given a database a newer deploy migrated (only its own migration is recorded)
    let db = empty_database().await;
    record_unknown_migration(&db.pool, FUTURE_VERSION).await;
    let receiver = Receiver::start().await;

    // when this (older) code's deploy creates the resource
    handle(
        &deps_for(&db.url),
        lambda_event(request(create_event(&receiver))),
    )
    .await
    .unwrap();

    // then it refuses, names the version, and applies none of its own
    let sent = receiver.only_response();
    assert_eq!(sent.body["Status"], "FAILED", "{}", sent.body);
    let reason = sent.body["Reason"].as_str().unwrap();
    assert!(reason.contains(&FUTURE_VERSION.to_string()), "{reason}");
    assert!(reason.contains("newer than the code"), "{reason}");
    assert_eq!(applied_versions(&db.pool).await, vec![FUTURE_VERSION]);
    assert!(!table_exists(&db.pool, "users").await);
}

#[tokio::test]
async fn an_applied_migration_that_was_edited_fails_naming_its_version() {
    // given a migrated database whose first migration's file has since changed
    let db = TestDb::new().await;
    let first = code_versions()[0];
    sqlx::query("UPDATE _sqlx_migrations SET checksum = '\\x00' WHERE version = $1")
        .bind(first)
        .execute(&db.pool)
        .await
        .unwrap();
    let receiver = Receiver::start().await;

    // when a deploy updates the resource
    let event = update_event(&receiver, "20261130101500", "20261129080000");
    handle(&deps_for(&db.url), lambda_event(request(event)))
        .await
        .unwrap();

    // then it fails and says which migration
    let sent = receiver.only_response();
    assert_eq!(sent.body["Status"], "FAILED", "{}", sent.body);
    let reason = sent.body["Reason"].as_str().unwrap();
    assert!(reason.contains(&first.to_string()), "{reason}");
    assert!(reason.contains("changed after it was applied"), "{reason}");
}

#[tokio::test]
async fn an_update_back_to_an_older_deploy_is_a_rollback_that_succeeds_without_migrating() {
    // given a database the rolled-back deploy migrated past this code (and a schema
    // this code has not applied)
    let db = empty_database().await;
    record_unknown_migration(&db.pool, FUTURE_VERSION).await;
    let receiver = Receiver::start().await;

    // when CloudFormation rolls the resource back to the previous deploy's properties
    let event = update_event(&receiver, "20261130090000", "20261130101500");
    handle(&deps_for(&db.url), lambda_event(request(event)))
        .await
        .unwrap();

    // then it succeeds, leaves the schema as it is, and says so
    let sent = receiver.only_response();
    assert_eq!(sent.body["Status"], "SUCCESS", "{}", sent.body);
    assert_eq!(sent.body["PhysicalResourceId"], "encache-database-schema");
    let reason = sent.body["Reason"].as_str().unwrap();
    assert!(reason.contains("rollback"), "{reason}");
    assert!(reason.contains("schema stays"), "{reason}");
    assert_eq!(sent.body["Data"]["AppliedVersions"], "");
    assert_eq!(applied_versions(&db.pool).await, vec![FUTURE_VERSION]);
    assert!(!table_exists(&db.pool, "users").await);
}

#[tokio::test]
async fn delete_succeeds_and_leaves_the_schema_and_its_data() {
    // given a migrated database with a user in it
    let db = TestDb::new().await;
    encache_testkit::insert_user(&db.pool, "kept-sub").await;
    let receiver = Receiver::start().await;

    // when the resource leaves the stack
    handle(
        &deps_for(&db.url),
        lambda_event(request(delete_event(&receiver))),
    )
    .await
    .unwrap();

    // then it succeeds with CloudFormation's own physical id, and everything stays
    let sent = receiver.only_response();
    assert_eq!(sent.body["Status"], "SUCCESS", "{}", sent.body);
    assert_eq!(sent.body["PhysicalResourceId"], "encache-database-schema");
    assert_eq!(applied_versions(&db.pool).await, code_versions());
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(users, 1);
}

#[tokio::test]
async fn delete_never_connects_to_the_database() {
    // given a database that is down
    let deps = deps_for(&unreachable_database_url());
    let receiver = Receiver::start().await;
    let mut event = delete_event(&receiver);
    event["PhysicalResourceId"] = json!("a-physical-id-from-an-earlier-version");

    // when the resource leaves the stack
    handle(&deps, lambda_event(request(event))).await.unwrap();

    // then it still succeeds, answering the id CloudFormation holds
    let sent = receiver.only_response();
    assert_eq!(sent.body["Status"], "SUCCESS", "{}", sent.body);
    assert_eq!(
        sent.body["PhysicalResourceId"],
        "a-physical-id-from-an-earlier-version"
    );
}

#[tokio::test]
async fn an_unreachable_database_still_gets_a_failed_response_that_holds_no_password() {
    // given a database URL with a password, where nothing listens
    let url = unreachable_database_url().replace("postgres@", "app:s3cret-pw@");
    let receiver = Receiver::start().await;

    // when CloudFormation creates the resource
    let started = Instant::now();
    handle(
        &deps_for(&url),
        lambda_event(request(create_event(&receiver))),
    )
    .await
    .unwrap();

    // then it answers FAILED, promptly, and the reason names the database, not its secrets
    let sent = receiver.only_response();
    assert_eq!(sent.body["Status"], "FAILED", "{}", sent.body);
    assert_eq!(sent.body["PhysicalResourceId"], "encache-database-schema");
    let reason = sent.body["Reason"].as_str().unwrap();
    assert!(reason.contains("database"), "{reason}");
    assert!(!reason.contains("s3cret-pw"), "{reason}");
    assert!(!reason.contains("postgres://"), "{reason}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_database_that_never_answers_gets_a_failed_response_before_the_invocation_deadline() {
    // given a database that accepts connections and never answers, and an invocation
    // with 17 s left (2 s of work after the margin kept for the response)
    let deps = Deps::new(Ok(silent_pool().await)).unwrap();
    let receiver = Receiver::start().await;
    let mut event = lambda_event(request(create_event(&receiver)));
    event.context.deadline = (SystemTime::now() + Duration::from_secs(17))
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;

    // when CloudFormation creates the resource
    let started = Instant::now();
    handle(&deps, event).await.unwrap();

    // then the answer is FAILED within the invocation's time, saying it ran out
    let sent = receiver.only_response();
    assert_eq!(sent.body["Status"], "FAILED", "{}", sent.body);
    let reason = sent.body["Reason"].as_str().unwrap();
    assert!(reason.contains("did not finish within"), "{reason}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_database_that_could_not_be_set_up_at_cold_start_still_gets_a_failed_response() {
    // given a cold start that could not read the database password
    let deps = Deps::new(Err(
        "reading SSM parameter /encache/dev/db/password: access denied".into(),
    ))
    .unwrap();
    let receiver = Receiver::start().await;

    // when CloudFormation creates the resource
    handle(&deps, lambda_event(request(create_event(&receiver))))
        .await
        .unwrap();

    // then the answer is FAILED with the cause
    let sent = receiver.only_response();
    assert_eq!(sent.body["Status"], "FAILED", "{}", sent.body);
    let reason = sent.body["Reason"].as_str().unwrap();
    assert!(reason.contains("access denied"), "{reason}");
}

#[tokio::test]
async fn a_response_the_url_refuses_is_a_retryable_error_so_lambda_sends_it_again() {
    // given a migrated database and a response URL that refuses the answer
    let db = TestDb::new().await;
    let receiver = Receiver::refusing().await;

    // when CloudFormation creates the resource
    let diagnostic: Diagnostic = handle(
        &deps_for(&db.url),
        lambda_event(request(create_event(&receiver))),
    )
    .await
    .unwrap_err();

    // then the handler fails retryably, without the URL (its signature is a credential)
    assert_eq!(receiver.received().len(), 1);
    assert_eq!(diagnostic.error_type, "Retryable.ResponseNotDelivered");
    assert!(
        diagnostic.error_message.contains("403"),
        "{}",
        diagnostic.error_message
    );
    assert!(
        !diagnostic.error_message.contains("X-Amz-Signature"),
        "{}",
        diagnostic.error_message
    );
}

#[tokio::test]
async fn two_deploys_racing_on_an_empty_database_apply_each_migration_once() {
    // given an empty database and two deploys' functions at once
    let db = empty_database().await;
    let (a, b) = (Receiver::start().await, Receiver::start().await);
    let (deps_a, deps_b) = (deps_for(&db.url), deps_for(&db.url));

    // when both create the resource together
    let (ra, rb) = tokio::join!(
        handle(&deps_a, lambda_event(request(create_event(&a)))),
        handle(&deps_b, lambda_event(request(create_event(&b)))),
    );
    ra.unwrap();
    rb.unwrap();

    // then both succeed, and between them each migration was applied exactly once
    let (sa, sb) = (a.only_response(), b.only_response());
    assert_eq!(sa.body["Status"], "SUCCESS", "{}", sa.body);
    assert_eq!(sb.body["Status"], "SUCCESS", "{}", sb.body);
    let mut applied: Vec<String> = [&sa, &sb]
        .iter()
        .map(|s| {
            s.body["Data"]["AppliedVersions"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .filter(|v| !v.is_empty())
        .collect();
    applied.sort();
    assert_eq!(applied, vec![joined(&code_versions())]);
    assert_eq!(applied_versions(&db.pool).await, code_versions());
}
