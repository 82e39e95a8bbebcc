//! The daily digest: the scheduled event makes the same function post one summary of
//! every budget in the account.

mod support;

use aws_sdk_budgets::types::TimeUnit;
use encache_cost_alerts::handle;
use encache_shared::error::EventFailure;
use encache_testkit::{lambda_event, sample_event};
use serde_json::Value;
use support::*;

#[tokio::test]
async fn the_schedule_posts_one_digest_of_every_budget_with_its_share_used() {
    // Given an account with a monthly and a daily budget
    let discord = FakeDiscord::start().await;
    let account = new_account();
    let monthly = unique("monthly");
    let daily = unique("daily");
    create_budget(&account, &monthly, TimeUnit::Monthly, "100", "42.5", "95").await;
    create_budget(&account, &daily, TimeUnit::Daily, "5", "6.25", "7").await;
    let mut s = settings(store_webhook(&discord.new_webhook()).await);
    s.account_id = Some(account.clone());
    let deps = forwarder(s).await;
    let event: Value = sample_event("cost-alert-digest-schedule.json");

    // When the schedule fires (and EventBridge delivers it twice)
    let out = handle(&deps, lambda_event(event.clone())).await.unwrap();
    handle(&deps, lambda_event(event)).await.unwrap();

    // Then one message lists both budgets, red because the daily one is over
    assert_eq!(out["digest"], true);
    let posted = discord.accepted();
    assert_eq!(posted.len(), 1);
    let e = embed(&posted[0]);
    assert_eq!(e["title"], "Daily budget digest");
    assert_eq!(e["color"], 0xE74C3C);
    let m = field(e, &monthly).unwrap();
    assert!(
        m.contains("Limit $100.00 (monthly)") && m.contains("Actual $42.50 · 42.5% used"),
        "{m}"
    );
    assert!(m.contains("Forecast $95.00 · 95%"), "{m}");
    let d = field(e, &daily).unwrap();
    assert!(d.contains("125% used"), "{d}");
}

#[tokio::test]
async fn an_event_of_an_unknown_shape_is_a_non_retryable_error() {
    let discord = FakeDiscord::start().await;
    let deps = forwarder(settings(store_webhook(&discord.new_webhook()).await)).await;

    let err = handle(&deps, lambda_event(serde_json::json!({"hello": "world"})))
        .await
        .unwrap_err();

    assert!(!err.retryable());
    assert!(discord.accepted().is_empty());
}
