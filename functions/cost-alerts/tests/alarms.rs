//! CloudWatch alarm state changes on the alarm topic, through the real handler: every
//! sample in `events/` (ALARM, OK, INSUFFICIENT_DATA, composite) reaches the fake Discord
//! as one embed within its limits; one change is one post; anything else on the topic is
//! still forwarded.

mod support;

use encache_cost_alerts::handle;
use encache_testkit::{lambda_event, sample_event};
use serde_json::{Value, json};
use support::*;

const RED: u64 = 0xE74C3C;
const GREEN: u64 = 0x2ECC71;
const YELLOW: u64 = 0xF1C40F;
const GREY: u64 = 0x95A5A6;

async fn setup() -> (FakeDiscord, encache_cost_alerts::Deps) {
    let discord = FakeDiscord::start().await;
    let mut s = settings(store_webhook(&discord.new_webhook()).await);
    s.mention_role_id = Some("987654321098765432".into());
    (discord, forwarder(s).await)
}

/// A sample with a fresh SNS message id and, so no other test's delivery dedupes it, a
/// fresh state-change time.
fn alarm_sample(name: &str) -> Value {
    let mut event: Value = sample_event(name);
    let sns = &mut event["Records"][0]["Sns"];
    sns["MessageId"] = json!(uuid::Uuid::new_v4().to_string());
    let mut message: Value = serde_json::from_str(sns["Message"].as_str().unwrap()).unwrap();
    message["StateChangeTime"] = json!(format!(
        "2026-11-30T10:{:02}:{:02}.{:03}+0000",
        rand_part(60),
        rand_part(60),
        rand_part(1000)
    ));
    sns["Message"] = json!(message.to_string());
    event
}

fn rand_part(n: u128) -> u128 {
    uuid::Uuid::new_v4().as_u128() % n
}

#[tokio::test]
async fn an_alarm_is_red_names_its_metric_and_threshold_links_the_console_and_pings_the_role() {
    let (discord, deps) = setup().await;

    let out = handle(&deps, lambda_event(alarm_sample("alarm-sns-alarm.json")))
        .await
        .unwrap();

    assert_eq!(out["posted"], 1);
    let posted = discord.accepted();
    let e = embed(&posted[0]);
    assert_eq!(e["title"], "ALARM: encache-dev-health-errors");
    assert_eq!(e["color"], RED);
    assert!(
        e["description"]
            .as_str()
            .unwrap()
            .contains("Threshold Crossed")
    );
    assert_eq!(field(e, "State"), Some("OK → ALARM"));
    assert_eq!(
        field(e, "Metric"),
        Some("AWS/Lambda Errors (FunctionName=encache-dev-HealthFunction-AbC123)")
    );
    assert_eq!(field(e, "Threshold"), Some("SUM ≥ 1 for 1 of 1 × 300 s"));
    assert_eq!(field(e, "Region"), Some("us-east-1"));
    assert!(
        e["url"]
            .as_str()
            .unwrap()
            .starts_with("https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#alarmsV2:alarm/"),
        "{}",
        e["url"]
    );
    assert!(e["timestamp"].as_str().unwrap().ends_with("+00:00"));
    assert_eq!(posted[0]["content"], "<@&987654321098765432>");
}

#[tokio::test]
async fn ok_is_green_insufficient_data_yellow_and_neither_pings_anyone() {
    let (discord, deps) = setup().await;

    for sample in ["alarm-sns-ok.json", "alarm-sns-insufficient-data.json"] {
        handle(&deps, lambda_event(alarm_sample(sample)))
            .await
            .unwrap();
    }

    let posted = discord.accepted();
    assert_eq!(posted.len(), 2);
    assert_eq!(embed(&posted[0])["title"], "OK: encache-dev-health-errors");
    assert_eq!(embed(&posted[0])["color"], GREEN);
    assert_eq!(field(embed(&posted[0]), "State"), Some("ALARM → OK"));
    let insufficient = embed(&posted[1]);
    assert_eq!(insufficient["color"], YELLOW);
    assert_eq!(
        field(insufficient, "Threshold"),
        Some("p99 > 2000 for 3 of 3 × 300 s")
    );
    for m in &posted {
        assert!(m.get("content").is_none(), "no mention: {m}");
    }
}

#[tokio::test]
async fn a_composite_alarm_shows_its_rule() {
    let (discord, deps) = setup().await;

    handle(
        &deps,
        lambda_event(alarm_sample("alarm-sns-composite.json")),
    )
    .await
    .unwrap();

    let e = embed(&discord.accepted()[0]).clone();
    assert_eq!(e["title"], "ALARM: encache-dev-api-degraded");
    assert_eq!(e["color"], RED);
    assert!(
        field(&e, "Rule")
            .unwrap()
            .contains("ALARM(\"encache-dev-api-5xx-rate\")")
    );
    assert_eq!(field(&e, "Metric"), None);
}

#[tokio::test]
async fn one_state_change_is_one_post_whatever_sns_message_carries_it() {
    let (discord, deps) = setup().await;
    let first = alarm_sample("alarm-sns-alarm.json");
    let mut again = first.clone();
    again["Records"][0]["Sns"]["MessageId"] = json!(uuid::Uuid::new_v4().to_string());

    handle(&deps, lambda_event(first)).await.unwrap();
    let out = handle(&deps, lambda_event(again)).await.unwrap();

    assert_eq!(out["posted"], 0);
    assert_eq!(discord.accepted().len(), 1);
}

#[tokio::test]
async fn unknown_json_and_garbage_on_the_topic_are_forwarded_as_they_came() {
    let (discord, deps) = setup().await;
    let oddities = [
        r#"{"AlarmName":"half an alarm"}"#.to_owned(),
        r#"{"version":"0","detail-type":"Something else"}"#.to_owned(),
        "\u{0}\u{1}not json at all ```".to_owned(),
        format!(
            r#"{{"AlarmName":"{}","NewStateValue":"ALARM"}}"#,
            "x".repeat(5000)
        ),
    ];

    for m in &oddities {
        let out = handle(&deps, lambda_event(sns_event(m, None)))
            .await
            .unwrap();
        assert_eq!(out["posted"], 1, "{m}");
    }

    let posted = discord.accepted();
    assert_eq!(posted.len(), 4, "none dropped, all within Discord's limits");
    assert_eq!(embed(&posted[0])["color"], GREY);
    assert!(
        embed(&posted[0])["description"]
            .as_str()
            .unwrap()
            .contains("half an alarm")
    );
    // the last one is an alarm (name and state are all it takes), its title cut to fit
    assert_eq!(embed(&posted[3])["color"], RED);
    assert!(embed(&posted[3])["title"].as_str().unwrap().chars().count() <= 256);
}
