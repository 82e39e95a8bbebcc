//! The asynchronous event sources against the moto emulator: SNS subscriptions with their
//! filter policies, the EventBridge bus (the stack-status change `provision` emits,
//! `events put`), and `cron(...)` schedules on an injected clock.

mod common;

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use encache_local::commands::provision::{self, ProvisionArgs};
use encache_local::emulators::event_sources::schedule::{self, Clock};
use encache_local::emulators::gateway::GatewaySettings;
use encache_local::emulators::{self, Running, StartOptions};
use encache_local::stack::Stack;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

/// The fixture stack whose EventsFunction records every event it gets.
fn events_stack() -> (Stack, PathBuf) {
    std::env::var("AWS_ENDPOINT_URL")
        .expect("AWS_ENDPOINT_URL: run with the dev services (scripts/dev-services.sh env)");
    let record = scratch().join("events.jsonl");
    let stack = fixture_stack(
        json!({"Parameters": {"PoolId": "p", "ClientId": "c",
                              "FixtureBucketName": unique("enclocal-async")},
               "EventsFunction": {"FIXTURE_RECORD_FILE": record.display().to_string()}}),
        None,
    );
    (stack, record)
}

async fn start_with_events(stack: &Stack) -> Running {
    emulators::start(
        stack,
        &StartOptions {
            addr: "127.0.0.1:0".into(),
            gateway: GatewaySettings::default(),
            event_sources: true,
        },
    )
    .await
    .expect("starts with event sources")
}

fn recorded(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Waits until `n` events are recorded (or `limit` passes), then `settle` more, so an
/// extra delivery would show.
async fn wait_for(path: &Path, n: usize, limit: Duration, settle: Duration) -> Vec<Value> {
    let deadline = std::time::Instant::now() + limit;
    while recorded(path).len() < n && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(settle).await;
    recorded(path)
}

#[tokio::test]
async fn an_sns_message_reaches_its_function_as_an_sns_event_when_the_filter_policy_matches() {
    // given the running stack subscribed to its topic with a filter policy
    let (stack, record) = events_stack();
    let running = start_with_events(&stack).await;
    let sdk = encache_shared::aws::sdk_config().await;
    let sns = aws_sdk_sns::Client::new(&sdk);
    let topic = stack
        .resolver()
        .string(&serde_yaml::from_str("!Ref FixtureTopic").expect("yaml"))
        .expect("the topic's ARN");
    let attr = |t: &str, v: &str| {
        aws_sdk_sns::types::MessageAttributeValue::builder()
            .data_type(t)
            .string_value(v)
            .build()
            .expect("attribute")
    };

    // when one message fails the policy (severity info) and one passes it
    sns.publish()
        .topic_arn(&topic)
        .message("filtered out")
        .message_attributes("severity", attr("String", "info"))
        .message_attributes("count", attr("Number", "5"))
        .send()
        .await
        .expect("publish");
    let published = sns
        .publish()
        .topic_arn(&topic)
        .subject("Disk")
        .message(r#"{"alarm":"disk"}"#)
        .message_attributes("severity", attr("String", "critical"))
        .message_attributes("count", attr("Number", "3"))
        .message_attributes("team", attr("String", "core"))
        .send()
        .await
        .expect("publish");

    // then only the matching one arrives, as Lambda's SNS event
    let events = wait_for(
        &record,
        1,
        Duration::from_secs(10),
        Duration::from_millis(1500),
    )
    .await;
    assert_eq!(events.len(), 1, "{events:?}");
    let rec = &events[0]["Records"][0];
    assert_eq!(rec["EventSource"], "aws:sns");
    assert_eq!(rec["EventVersion"], "1.0");
    assert!(
        rec["EventSubscriptionArn"]
            .as_str()
            .expect("subscription")
            .starts_with(&topic)
    );
    let sns_msg = &rec["Sns"];
    assert_eq!(sns_msg["Type"], "Notification");
    assert_eq!(sns_msg["TopicArn"], topic.as_str());
    assert_eq!(sns_msg["MessageId"], published.message_id().expect("id"));
    assert_eq!(sns_msg["Message"], r#"{"alarm":"disk"}"#);
    assert_eq!(sns_msg["Subject"], "Disk");
    assert!(sns_msg["SigningCertUrl"].is_string() && sns_msg["UnsubscribeUrl"].is_string());
    assert_eq!(
        sns_msg["MessageAttributes"]["severity"],
        json!({"Type": "String", "Value": "critical"})
    );
    assert_eq!(
        sns_msg["MessageAttributes"]["count"],
        json!({"Type": "Number", "Value": "3"})
    );
    running.stop().await;
}

fn events_put(stack: &Stack, file: &Path) -> String {
    let dir = stack.config.env_vars.parent().expect("scratch dir");
    let out = stack_env(
        &mut std::process::Command::new(env!("CARGO_BIN_EXE_encache-local")),
        &stack.config.template,
        dir,
        &stack.config.stack_name,
    )
    .args(["events", "put"])
    .arg(file)
    .output()
    .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn provision_emits_the_stack_status_change_and_events_put_reaches_the_matching_rules() {
    // given a provisioned stack (its first deploy), then started
    let (stack, record) = events_stack();
    provision::run(
        &stack,
        &ProvisionArgs {
            api_url: "http://127.0.0.1:3000".into(),
            no_custom_resources: true,
            no_traffic_hooks: true,
        },
    )
    .await
    .expect("provisions");
    let running = start_with_events(&stack).await;

    // then the stack's status change reaches the post-deploy rule by itself
    let events = wait_for(&record, 1, Duration::from_secs(10), Duration::ZERO).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        events[0]["detail-type"],
        "CloudFormation Stack Status Change"
    );
    assert_eq!(
        events[0]["detail"]["status-details"]["status"],
        "CREATE_COMPLETE"
    );
    let stack_id = events[0]["detail"]["stack-id"].as_str().expect("stack id");
    assert!(stack_id.contains(&format!(":stack/{}/", stack.config.stack_name)));
    assert_eq!(events[0]["resources"], json!([stack_id]));

    // when events are put from files: one matching the custom rule, one not
    let dir = scratch();
    let (hit, miss) = (dir.join("hit.json"), dir.join("miss.json"));
    std::fs::write(
        &hit,
        json!({"source": "encache.test", "detail-type": "Ping", "detail": {"n": 5}}).to_string(),
    )
    .expect("write");
    std::fs::write(
        &miss,
        json!({"source": "encache.test", "detail-type": "Ping", "detail": {"n": 1}}).to_string(),
    )
    .expect("write");
    let printed_hit = events_put(&stack, &hit);
    let printed_miss = events_put(&stack, &miss);

    // then each prints its rules, and only the matching one is delivered, completed
    assert!(
        printed_hit.contains("matched EventsFunction.Custom"),
        "{printed_hit}"
    );
    assert!(!printed_hit.contains("StackStatus"), "{printed_hit}");
    assert!(printed_miss.contains("matched no rule"), "{printed_miss}");
    let events = wait_for(
        &record,
        2,
        Duration::from_secs(10),
        Duration::from_millis(1500),
    )
    .await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[1]["detail"]["n"], 5);
    assert_eq!(events[1]["account"], "123456789012");
    assert!(events[1]["id"].is_string() && events[1]["time"].is_string());
    running.stop().await;
}

/// A clock that jumps to each firing at once and stops at `until`.
struct Jumping {
    now: Mutex<OffsetDateTime>,
    until: OffsetDateTime,
}

impl Clock for Jumping {
    fn now(&self) -> OffsetDateTime {
        *self.now.lock().expect("not poisoned")
    }

    fn sleep_until(
        &self,
        at: OffsetDateTime,
    ) -> Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            if at > self.until {
                std::future::pending::<()>().await;
            }
            *self.now.lock().expect("not poisoned") = at;
        })
    }
}

#[tokio::test]
async fn a_cron_schedule_fires_at_its_utc_time_and_a_disabled_one_does_not_run() {
    // given the fixture's schedules
    let (stack, record) = events_stack();
    let (jobs, skipped) = schedule::jobs(&stack).expect("schedules");
    assert!(
        skipped
            .iter()
            .any(|s| s.starts_with("EventsFunction.Paused") && s.contains("disabled")),
        "{skipped:?}"
    );
    assert!(!jobs.iter().any(|j| j.event == "Paused"));
    let digest = jobs
        .into_iter()
        .find(|j| j.event == "Digest")
        .expect("the cron schedule runs");

    // when its clock reaches 08:00 UTC (from 07:59, stopping before the next day)
    let running = emulators::start(
        &stack,
        &StartOptions {
            addr: "127.0.0.1:0".into(),
            gateway: GatewaySettings::default(),
            event_sources: false,
        },
    )
    .await
    .expect("starts");
    let clock = Arc::new(Jumping {
        now: Mutex::new(datetime!(2026-11-30 07:59:00 UTC)),
        until: datetime!(2026-11-30 12:00 UTC),
    });
    let task = schedule::spawn(digest, running.runtime.clone(), clock);

    // then the function gets one scheduled event, stamped with the firing time
    let events = wait_for(
        &record,
        1,
        Duration::from_secs(10),
        Duration::from_millis(300),
    )
    .await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["detail-type"], "Scheduled Event");
    assert_eq!(events[0]["source"], "aws.events");
    assert_eq!(events[0]["time"], "2026-11-30T08:00:00Z");
    assert!(
        events[0]["resources"][0]
            .as_str()
            .expect("rule arn")
            .contains(":rule/")
    );
    task.abort();
    running.stop().await;
}
