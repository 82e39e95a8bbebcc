//! At least once without duplicates: the idempotency table in the emulated DynamoDB makes
//! a message that SNS or Lambda delivers again one post, whichever container gets it, and
//! a claim left by a crashed invocation blocks only until it expires.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::AttributeValue;
use encache_cost_alerts::store::{Claim, Store};
use encache_cost_alerts::{ForwardError, handle};
use encache_shared::aws::sdk_config;
use encache_shared::error::EventFailure;
use encache_testkit::lambda_event;
use lambda_runtime::Diagnostic;
use support::*;

async fn dynamodb() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&sdk_config().await)
}

/// The stored record of one delivery: (status, expiration in epoch seconds).
async fn record(table: &str, id: &str) -> Option<(String, u64)> {
    let out = dynamodb()
        .await
        .get_item()
        .table_name(table)
        .key("id", AttributeValue::S(id.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .expect("reading the idempotency table");
    let item = out.item()?;
    let status = item.get("status")?.as_s().ok()?.clone();
    let expiration = item.get("expiration")?.as_n().ok()?.parse().ok()?;
    Some((status, expiration))
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn two_containers_given_the_same_sns_message_post_it_once() {
    // Given two containers (each with its own warm memory) sharing one table
    let discord = FakeDiscord::start().await;
    let s = settings(store_webhook(&discord.new_webhook()).await);
    let table = s.idempotency.table.clone();
    let first = forwarder(s.clone()).await;
    let second = forwarder(s).await;
    let event = sns_event("hello", None);

    // When SNS delivers the same message to each
    let a = handle(&first, lambda_event(event.clone())).await.unwrap();
    let b = handle(&second, lambda_event(event.clone())).await.unwrap();

    // Then it was posted once, and its record is completed and expires after the TTL
    assert_eq!(
        (a["posted"].as_u64(), b["posted"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(discord.accepted().len(), 1);
    let (status, expiration) = record(&table, &message_id(&event)).await.unwrap();
    assert_eq!(status, "COMPLETED");
    let ttl = expiration.saturating_sub(now_secs());
    assert!((3500..=3600).contains(&ttl), "expires in {ttl} s");
}

#[tokio::test]
async fn two_containers_racing_on_one_message_post_it_once() {
    let discord = FakeDiscord::start().await;
    let s = settings(store_webhook(&discord.new_webhook()).await);
    let first = forwarder(s.clone()).await;
    let second = forwarder(s).await;
    let event = sns_event("hello", None);

    // When both handle it at the same time
    let (a, b) = tokio::join!(
        handle(&first, lambda_event(event.clone())),
        handle(&second, lambda_event(event.clone()))
    );

    // Then one posted; the other skipped it, or found it in progress and failed as
    // retryable, and Lambda's retry of that one skips it
    for (deps, result) in [(&first, a), (&second, b)] {
        match result {
            Ok(_) => {}
            Err(ForwardError::InProgress(_)) => {
                let retried = handle(deps, lambda_event(event.clone())).await.unwrap();
                assert_eq!(retried["posted"].as_u64(), Some(0));
            }
            Err(e) => panic!("unexpected failure: {e}"),
        }
    }
    assert_eq!(discord.accepted().len(), 1);
}

#[tokio::test]
async fn a_claim_left_by_a_crash_blocks_until_it_expires_then_a_retry_posts_once() {
    // Given an invocation that claimed the message and crashed before posting
    let discord = FakeDiscord::start().await;
    let mut s = settings(store_webhook(&discord.new_webhook()).await);
    s.idempotency.in_progress_timeout = Duration::from_millis(1500);
    let survivor = forwarder(s.clone()).await;
    let crashed = Store::new(dynamodb().await, s.idempotency.clone());
    let event = sns_event("hello", None);
    assert_eq!(
        crashed.claim(&message_id(&event)).await.unwrap(),
        Claim::Claimed
    );

    // When another container gets the message while the claim is live
    let err = handle(&survivor, lambda_event(event.clone()))
        .await
        .unwrap_err();

    // Then it posts nothing and fails as retryable
    assert!(err.retryable(), "{err}");
    assert_eq!(Diagnostic::from(err).error_type, "Retryable.InProgress");
    assert!(discord.accepted().is_empty());

    // And once the claim has expired, Lambda's retry posts it, once
    tokio::time::sleep(Duration::from_millis(1700)).await;
    let out = handle(&survivor, lambda_event(event.clone()))
        .await
        .unwrap();
    assert_eq!(out["posted"].as_u64(), Some(1));
    let again = handle(&survivor, lambda_event(event)).await.unwrap();
    assert_eq!(again["posted"].as_u64(), Some(0));
    assert_eq!(discord.accepted().len(), 1);
}

#[tokio::test]
async fn a_failed_post_gives_its_claim_up_so_another_container_can_post_at_once() {
    let discord = FakeDiscord::start().await;
    let s = settings(store_webhook(&discord.new_webhook()).await);
    let first = forwarder(s.clone()).await;
    let second = forwarder(s).await;
    discord.fail_next(&[503, 503, 503, 503]);
    let event = sns_event("hello", None);

    let err = handle(&first, lambda_event(event.clone()))
        .await
        .unwrap_err();
    assert!(err.retryable(), "{err}");
    let out = handle(&second, lambda_event(event)).await.unwrap();

    assert_eq!(out["posted"].as_u64(), Some(1));
    assert_eq!(discord.accepted().len(), 1);
}
