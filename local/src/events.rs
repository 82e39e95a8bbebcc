//! Event sources: bucket notifications reach the subscribed function as a real-shaped
//! `S3Event` (bucket → SQS queue in the emulator → poll → invoke), at least once, like
//! S3's asynchronous invocation (a failed delivery is retried, twice at most).

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::s3::S3Event;
use axum::body::Bytes;

use crate::provision::{self, S3Subscription};
use crate::runtime::Runtime;
use crate::stack::Stack;

/// Lambda's asynchronous invocation: the first attempt plus two retries.
const MAX_ATTEMPTS: i32 = 3;

/// Provisions the template's buckets and notifications and starts one poller per subscription.
pub async fn start(
    stack: &Stack,
    runtime: Arc<Runtime>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let subs = provision::s3_subscriptions(stack)?;
    if subs.is_empty() {
        return Ok(vec![]);
    }
    if stack.config.endpoint.is_none() {
        eprintln!("warning: AWS_ENDPOINT_URL is not set: S3 events are not delivered locally");
        return Ok(vec![]);
    }
    let sdk = encache_shared::aws::sdk_config().await;
    let mut tasks = Vec::new();
    for (sub, url) in provision::s3(stack, &sdk).await? {
        eprintln!(
            "  s3://{}/{}* -> {} (via queue {})",
            sub.bucket,
            sub.prefix.clone().unwrap_or_default(),
            sub.function,
            sub.queue_name
        );
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let timeout = stack
            .template
            .functions
            .get(&sub.function)
            .map_or(30, |f| f.timeout_secs);
        tasks.push(tokio::spawn(poll(sqs, url, sub, runtime.clone(), timeout)));
    }
    Ok(tasks)
}

async fn poll(
    sqs: aws_sdk_sqs::Client,
    url: String,
    sub: S3Subscription,
    runtime: Arc<Runtime>,
    timeout_secs: u64,
) {
    loop {
        let received = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .visibility_timeout((timeout_secs + 5) as i32)
            .message_system_attribute_names(
                aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount,
            )
            .send()
            .await;
        let messages = match received {
            Ok(r) => r.messages.unwrap_or_default(),
            Err(e) => {
                eprintln!("[events] polling {}: {e}", sub.queue_name);
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
        };
        for m in messages {
            let attempts: i32 = m
                .attributes
                .as_ref()
                .and_then(|a| {
                    a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
                })
                .and_then(|c| c.parse().ok())
                .unwrap_or(1);
            let done = deliver(&runtime, &sub, m.body().unwrap_or_default()).await;
            if done || attempts >= MAX_ATTEMPTS {
                if !done {
                    eprintln!(
                        "[events] {}: giving up after {attempts} attempts",
                        sub.function
                    );
                }
                if let Some(handle) = m.receipt_handle() {
                    let _ = sqs
                        .delete_message()
                        .queue_url(&url)
                        .receipt_handle(handle)
                        .send()
                        .await;
                }
            }
        }
    }
}

/// True when the message is finished with (delivered, or nothing to deliver).
async fn deliver(runtime: &Runtime, sub: &S3Subscription, body: &str) -> bool {
    let Some(event) = s3_event(body, sub) else {
        return true;
    };
    let payload = match serde_json::to_vec(&event) {
        Ok(p) => p,
        Err(_) => return true,
    };
    match runtime.invoke(&sub.function, Bytes::from(payload)).await {
        Ok(_) => true,
        Err(e) => {
            eprintln!("[events] {}: {e} (will retry)", sub.function);
            false
        }
    }
}

/// Fills in what the emulator's records lack or write differently from S3's: a UTC
/// `eventTime`, the identity and request blocks, a `sequencer`, and the key encoded as S3
/// encodes it (`/` kept, space as `+`).
fn real_shape(record: &mut serde_json::Value) {
    use serde_json::json;
    if let Some(t) = record.get("eventTime").and_then(|t| t.as_str())
        && !t.ends_with('Z')
        && !t.contains('+')
    {
        record["eventTime"] = json!(format!("{t}Z"));
    }
    let defaults = [
        ("userIdentity", json!({"principalId": "AWS:LOCAL"})),
        ("requestParameters", json!({"sourceIPAddress": "127.0.0.1"})),
        (
            "responseElements",
            json!({"x-amz-request-id": "LOCAL", "x-amz-id-2": "LOCAL"}),
        ),
    ];
    for (k, v) in defaults {
        if record.get(k).is_none() {
            record[k] = v;
        }
    }
    let Some(s3) = record.get_mut("s3") else {
        return;
    };
    if s3.pointer("/bucket/ownerIdentity").is_none() && s3.get("bucket").is_some() {
        s3["bucket"]["ownerIdentity"] = json!({"principalId": "LOCAL"});
    }
    let Some(object) = s3.get_mut("object") else {
        return;
    };
    if let Some(key) = object.get("key").and_then(|k| k.as_str()) {
        let decoded = percent_encoding::percent_decode_str(&key.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned();
        object["key"] = json!(encode_key(&decoded));
    }
    if object.get("sequencer").is_none() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        object["sequencer"] = json!(format!("{nanos:018X}"));
    }
}

/// S3's notification key encoding: unreserved characters and `/` as is, space as `+`.
fn encode_key(key: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~')
        .remove(b'/')
        .remove(b' ');
    percent_encoding::utf8_percent_encode(key, KEEP)
        .to_string()
        .replace(' ', "+")
}

/// The S3 event in a notification message, without records outside the filter; `None`
/// for S3's `s3:TestEvent` and for anything that is not an S3 event.
pub fn s3_event(body: &str, sub: &S3Subscription) -> Option<S3Event> {
    let mut value: serde_json::Value = serde_json::from_str(body).ok()?;
    if value.get("Event").and_then(|e| e.as_str()) == Some("s3:TestEvent") {
        return None;
    }
    if let Some(records) = value.get_mut("Records").and_then(|r| r.as_array_mut()) {
        records.iter_mut().for_each(real_shape);
    }
    let mut event: S3Event = match serde_json::from_value(value) {
        Ok(e) => e,
        Err(e) => {
            eprintln!(
                "[events] {}: not an S3 event ({e}); dropped",
                sub.queue_name
            );
            return None;
        }
    };
    event.records.retain(|r| {
        let key = r.s3.object.key.clone().unwrap_or_default();
        let key = percent_encoding::percent_decode_str(&key.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned();
        sub.prefix
            .as_ref()
            .is_none_or(|p| key.starts_with(p.as_str()))
            && sub
                .suffix
                .as_ref()
                .is_none_or(|s| key.ends_with(s.as_str()))
    });
    (!event.records.is_empty()).then_some(event)
}

/// `rate(5 minutes)` as a duration; `cron(...)` and anything else are not run locally.
pub fn schedule_interval(expression: &str) -> Option<Duration> {
    let inner = expression.trim().strip_prefix("rate(")?.strip_suffix(')')?;
    let (n, unit) = inner.trim().split_once(' ')?;
    let n: u64 = n.parse().ok().filter(|n| *n > 0)?;
    let secs = match unit.trim().trim_end_matches('s') {
        "minute" => 60,
        "hour" => 3600,
        "day" => 86400,
        _ => return None,
    };
    Some(Duration::from_secs(n * secs))
}

/// The event EventBridge Scheduler / a scheduled rule sends (or the event's `Input`).
pub fn scheduled_event(rule_arn: &str, region: &str, input: Option<&str>) -> serde_json::Value {
    if let Some(v) = input.and_then(|i| serde_json::from_str(i).ok()) {
        return v;
    }
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc());
    serde_json::json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": crate::template::LOCAL_ACCOUNT_ID,
        "time": now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "region": region,
        "resources": [rule_arn],
        "detail": {}
    })
}

/// Runs every `rate(...)` schedule of the template's functions on its interval.
pub fn start_schedules(
    stack: &Stack,
    runtime: Arc<Runtime>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let resolver = stack.resolver();
    let mut tasks = Vec::new();
    for f in stack.functions()? {
        for ev in &f.events {
            let crate::template::EventKind::Schedule { schedule, input } = &ev.kind else {
                continue;
            };
            let expression = resolver.string(schedule).unwrap_or_default();
            let Some(every) = schedule_interval(&expression) else {
                eprintln!(
                    "  {} {}: {expression} is not run locally (only rate(...) is)",
                    f.logical_id, ev.name
                );
                continue;
            };
            let input = input.as_ref().and_then(|i| resolver.string(i).ok());
            let arn = format!(
                "arn:aws:events:{}:{}:rule/{}-{}-{}",
                stack.config.region,
                crate::template::LOCAL_ACCOUNT_ID,
                stack.config.stack_name,
                f.logical_id,
                ev.name
            );
            eprintln!("  {expression} -> {}", f.logical_id);
            let (function, region, runtime) = (
                f.logical_id.clone(),
                stack.config.region.clone(),
                runtime.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut ticks =
                    tokio::time::interval_at(tokio::time::Instant::now() + every, every);
                loop {
                    ticks.tick().await;
                    let event = scheduled_event(&arn, &region, input.as_deref());
                    if let Err(e) = runtime
                        .invoke(&function, Bytes::from(event.to_string()))
                        .await
                    {
                        eprintln!("[events] {function}: scheduled invocation failed: {e}");
                    }
                }
            }));
        }
    }
    Ok(tasks)
}
