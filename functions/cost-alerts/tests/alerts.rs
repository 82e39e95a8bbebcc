//! Budgets and anomaly alerts through the real handler: parsed, enriched from the
//! emulated Budgets API, and posted as one embed within Discord's limits.

mod support;

use aws_sdk_budgets::types::TimeUnit;
use encache_cost_alerts::embed::{FIELD_VALUE_MAX, TITLE_MAX, TOTAL_MAX};
use encache_cost_alerts::handle;
use encache_cost_alerts::render::BUDGETS_CONSOLE;
use encache_testkit::{lambda_event, sample_event};
use serde_json::{Value, json};
use support::*;

const RED: u64 = 0xE74C3C;
const ORANGE: u64 = 0xE67E22;
const YELLOW: u64 = 0xF1C40F;
const GREY: u64 = 0x95A5A6;

async fn setup() -> (FakeDiscord, encache_cost_alerts::Deps) {
    let discord = FakeDiscord::start().await;
    let param = store_webhook(&discord.new_webhook()).await;
    (discord, forwarder(settings(param)).await)
}

#[tokio::test]
async fn an_actual_budget_alert_is_posted_with_its_labelled_amount_and_live_details() {
    // Given a monthly budget of $100 in the account, and its ACTUAL alert
    let (discord, deps) = setup().await;
    let account = new_account();
    let name = unique("monthly");
    create_budget(
        &account,
        &name,
        TimeUnit::Monthly,
        "100.0",
        "84.1234",
        "131.5",
    )
    .await;
    let text = Notice {
        account: &account,
        name: &name,
        alert_type: "ACTUAL",
        amount_label: "ACTUAL Amount",
        budgeted: "$100.00",
        threshold: "$80.00",
        amount: "$84.1234",
        period: "month",
    }
    .text();
    let event = sns_event(
        &text,
        Some(&format!(
            "AWS Budgets: {name} has exceeded your alert threshold"
        )),
    );

    // When it is handled
    let out = handle(&deps, lambda_event(event.clone())).await.unwrap();

    // Then one embed carries the labelled amount (not the prose's $1.00), the share and
    // the live figures, in orange (80-100 % of actual spend)
    assert_eq!(out["posted"], 1);
    let posted = discord.accepted();
    assert_eq!(posted.len(), 1);
    let e = embed(&posted[0]);
    assert_eq!(e["title"], format!("Budget alert: {name}"));
    assert_eq!(e["url"], BUDGETS_CONSOLE);
    assert_eq!(e["color"], ORANGE);
    assert_eq!(field(e, "ACTUAL amount"), Some("$84.1234"));
    assert_eq!(field(e, "Budgeted amount"), Some("$100.00"));
    assert_eq!(field(e, "Alert threshold"), Some("> $80.00"));
    assert!(e["description"].as_str().unwrap().contains("84.1%"), "{e}");
    assert_eq!(
        field(e, "Forecasted spend (live)"),
        Some("$131.50 (131.5%)")
    );
    assert!(field(e, "Period").unwrap().starts_with("monthly"));
    let thresholds = field(e, "Thresholds").unwrap();
    for t in [
        "ACTUAL > 50%",
        "ACTUAL > 80%",
        "ACTUAL > 100%",
        "FORECASTED > 100%",
    ] {
        assert!(thresholds.contains(t), "{thresholds}");
    }
    assert!(
        e["footer"]["text"]
            .as_str()
            .unwrap()
            .contains(&message_id(&event))
    );
    assert!(e["footer"]["text"].as_str().unwrap().contains(&account));
    assert_eq!(posted[0]["allowed_mentions"], json!({"parse": []}));
    assert!(posted[0].get("content").is_none());
}

#[tokio::test]
async fn a_forecasted_alert_over_the_budget_is_orange_not_red() {
    let (discord, deps) = setup().await;
    let account = new_account();
    let name = unique("forecast");
    create_budget(&account, &name, TimeUnit::Monthly, "200", "90", "250.75").await;
    let text = Notice {
        account: &account,
        name: &name,
        alert_type: "FORECASTED",
        amount_label: "FORECASTED Amount",
        budgeted: "$200.00",
        threshold: "$200.00",
        amount: "$250.75",
        period: "month",
    }
    .text();

    handle(&deps, lambda_event(sns_event(&text, None)))
        .await
        .unwrap();

    let posted = discord.accepted();
    let e = embed(&posted[0]);
    assert_eq!(field(e, "Alert type"), Some("FORECASTED"));
    assert_eq!(field(e, "FORECASTED amount"), Some("$250.75"));
    assert_eq!(e["color"], ORANGE);
    assert!(
        e["description"]
            .as_str()
            .unwrap()
            .starts_with("Forecasted spend **$250.75** is **125.4%**"),
        "{e}"
    );
}

#[tokio::test]
async fn a_daily_budget_alert_shows_the_daily_period_and_tiny_decimals() {
    let (discord, deps) = setup().await;
    let account = new_account();
    let name = unique("daily");
    create_budget(&account, &name, TimeUnit::Daily, "5", "5.0042", "6").await;
    let text = Notice {
        account: &account,
        name: &name,
        alert_type: "ACTUAL",
        amount_label: "ACTUAL Amount",
        budgeted: "$5.00",
        threshold: "$5.00",
        amount: "$5.0042",
        period: "day",
    }
    .text();

    handle(&deps, lambda_event(sns_event(&text, None)))
        .await
        .unwrap();

    let e = embed(&discord.accepted()[0]).clone();
    assert_eq!(field(&e, "ACTUAL amount"), Some("$5.0042"));
    assert!(field(&e, "Period").unwrap().starts_with("daily"), "{e}");
    assert_eq!(e["color"], RED, "actual spend over 100 % is red");
}

#[tokio::test]
async fn mixed_case_labels_are_read_like_upper_case_ones() {
    // Given a capture with `Alert Type: Actual` and `Actual Amount:` and no live budget
    let (discord, deps) = setup().await;
    let account = new_account();
    let name = unique("mixed");
    let text = Notice {
        account: &account,
        name: &name,
        alert_type: "Actual",
        amount_label: "Actual Amount",
        budgeted: "$1,000",
        threshold: "$500.5",
        amount: "$612.3",
        period: "month",
    }
    .text();

    handle(&deps, lambda_event(sns_event(&text, None)))
        .await
        .unwrap();

    let e = embed(&discord.accepted()[0]).clone();
    assert_eq!(field(&e, "Alert type"), Some("ACTUAL"));
    assert_eq!(field(&e, "ACTUAL amount"), Some("$612.30"));
    assert_eq!(field(&e, "Budgeted amount"), Some("$1000.00"));
    assert_eq!(e["color"], YELLOW, "61 % of the budget");
    // The budget does not exist in the account: the alert says it went without details
    let description = e["description"].as_str().unwrap();
    assert!(
        description
            .contains("Live budget details unavailable (DescribeBudget failed: NotFoundException)"),
        "{description}"
    );
}

#[tokio::test]
async fn the_budget_sample_event_posts_a_budget_embed() {
    let (discord, deps) = setup().await;
    let event: Value = sample_event("cost-alert-budget-sns.json");

    handle(&deps, lambda_event(event)).await.unwrap();

    let e = embed(&discord.accepted()[0]).clone();
    assert_eq!(e["title"], "Budget alert: encache-dev-monthly");
    assert_eq!(field(&e, "ACTUAL amount"), Some("$84.1234"));
}

#[tokio::test]
async fn an_anomaly_alert_is_posted_with_its_impact_and_root_causes() {
    let (discord, deps) = setup().await;
    let mut event: Value = sample_event("cost-alert-anomaly-sns.json");
    event["Records"][0]["Sns"]["MessageId"] = json!(uuid::Uuid::new_v4().to_string());

    handle(&deps, lambda_event(event)).await.unwrap();

    let posted = discord.accepted();
    let e = embed(&posted[0]);
    assert_eq!(e["title"], "Cost anomaly: encache-services");
    assert_eq!(e["color"], RED, "333 % above expected");
    assert!(e["url"].as_str().unwrap().contains("anomaly-detection"));
    assert!(e["description"].as_str().unwrap().contains("$1001.45"));
    assert!(e["description"].as_str().unwrap().contains("333.8%"));
    assert_eq!(field(e, "Actual spend"), Some("$1301.45"));
    assert_eq!(field(e, "Expected spend"), Some("$300.00"));
    let cause = field(e, "Root cause 1").unwrap();
    assert!(
        cause.contains("service: AWS Lambda")
            && cause.contains("usage type: USE1-Lambda-GB-Second"),
        "{cause}"
    );
    assert_eq!(posted[0]["allowed_mentions"], json!({"parse": []}));
}

#[tokio::test]
async fn an_unrecognised_message_is_still_forwarded_as_a_short_plain_notice() {
    let (discord, deps) = setup().await;
    let garbage = format!("@everyone \u{1F4B8} {}", "lorem ipsum ".repeat(1000));

    let out = handle(
        &deps,
        lambda_event(sns_event(&garbage, Some("Something odd"))),
    )
    .await
    .unwrap();

    assert_eq!(out["posted"], 1);
    let posted = discord.accepted();
    let e = embed(&posted[0]);
    assert_eq!(e["title"], "Something odd");
    assert_eq!(e["color"], GREY);
    assert!(
        e["description"].as_str().unwrap().chars().count() < 700,
        "short"
    );
    assert_eq!(
        posted[0]["allowed_mentions"],
        json!({"parse": []}),
        "@everyone cannot ping"
    );
}

#[tokio::test]
async fn an_over_long_budget_name_is_truncated_within_every_discord_limit() {
    let (discord, deps) = setup().await;
    let account = new_account();
    let name = format!("{}-é", "x".repeat(5000));
    let text = Notice {
        account: &account,
        name: &name,
        alert_type: "ACTUAL",
        amount_label: "ACTUAL Amount",
        budgeted: "$10",
        threshold: "$8",
        amount: "$9",
        period: "month",
    }
    .text();

    handle(&deps, lambda_event(sns_event(&text, None)))
        .await
        .unwrap();

    // The fake Discord rejects anything over a limit, so acceptance is the proof
    assert!(discord.rejected().is_empty());
    let e = embed(&discord.accepted()[0]).clone();
    let title = e["title"].as_str().unwrap();
    assert_eq!(title.chars().count(), TITLE_MAX);
    assert!(title.ends_with('…'));
    for f in e["fields"].as_array().unwrap() {
        assert!(f["value"].as_str().unwrap().chars().count() <= FIELD_VALUE_MAX);
    }
    assert!(encache_testkit::fake_discord::validate(&discord.accepted()[0]).is_empty());
    let total: usize = [&e["title"], &e["description"], &e["footer"]["text"]]
        .iter()
        .map(|v| v.as_str().unwrap_or("").chars().count())
        .sum();
    assert!(total <= TOTAL_MAX);
}

#[tokio::test]
async fn a_failing_budgets_api_does_not_block_the_alert_and_the_embed_says_so() {
    // Given a Budgets endpoint that refuses connections
    let discord = FakeDiscord::start().await;
    let param = store_webhook(&discord.new_webhook()).await;
    let deps = forwarder_with_budgets_at(settings(param), &closed_endpoint()).await;
    let text = Notice {
        account: &new_account(),
        name: "team",
        alert_type: "ACTUAL",
        amount_label: "ACTUAL Amount",
        budgeted: "$100",
        threshold: "$80",
        amount: "$85",
        period: "month",
    }
    .text();

    handle(&deps, lambda_event(sns_event(&text, None)))
        .await
        .unwrap();

    let e = embed(&discord.accepted()[0]).clone();
    assert_eq!(field(&e, "ACTUAL amount"), Some("$85.00"));
    assert!(
        e["description"]
            .as_str()
            .unwrap()
            .contains("Live budget details unavailable"),
        "{e}"
    );
}

#[tokio::test]
async fn a_hung_budgets_api_delays_the_alert_only_by_the_enrichment_timeout() {
    let discord = FakeDiscord::start().await;
    let param = store_webhook(&discord.new_webhook()).await;
    let mut s = settings(param);
    s.enrichment_timeout = std::time::Duration::from_millis(400);
    let deps = forwarder_with_budgets_at(s, &silent_endpoint().await).await;
    let text = Notice {
        account: &new_account(),
        name: "team",
        alert_type: "ACTUAL",
        amount_label: "ACTUAL Amount",
        budgeted: "$100",
        threshold: "$80",
        amount: "$85",
        period: "month",
    }
    .text();

    let started = std::time::Instant::now();
    handle(&deps, lambda_event(sns_event(&text, None)))
        .await
        .unwrap();

    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let e = embed(&discord.accepted()[0]).clone();
    assert!(
        e["description"]
            .as_str()
            .unwrap()
            .contains("did not answer within 400 ms"),
        "{e}"
    );
}

#[tokio::test]
async fn a_configured_role_is_the_only_mention_allowed() {
    let discord = FakeDiscord::start().await;
    let mut s = settings(store_webhook(&discord.new_webhook()).await);
    s.mention_role_id = Some("987654321098765432".into());
    let deps = forwarder(s).await;

    handle(&deps, lambda_event(sns_event("hello", None)))
        .await
        .unwrap();

    let m = &discord.accepted()[0];
    assert_eq!(m["content"], "<@&987654321098765432>");
    assert_eq!(
        m["allowed_mentions"],
        json!({"parse": [], "roles": ["987654321098765432"]})
    );
}
