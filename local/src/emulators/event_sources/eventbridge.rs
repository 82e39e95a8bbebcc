//! The default event bus, locally: every `EventBridgeRule` / `CloudWatchEvent` event of
//! the template's functions is a rule with its `Pattern`. Events are put on the bus (the
//! stack-status change `provision` emits, `encache-local events put FILE`) as messages of
//! one queue in the emulator, `<stack>-event-bus`; `start` polls it and invokes every
//! function whose rule matches, asynchronously (a failed invocation is logged, not retried).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::body::Bytes;
use serde_json::{Value, json};

use super::pattern;
use crate::emulators::runtime::Runtime;
use crate::stack::Stack;
use crate::template::{EventKind, LOCAL_ACCOUNT_ID};

/// One rule: a function's EventBridge event with its resolved pattern.
#[derive(Debug, Clone)]
pub struct Rule {
    pub function: String,
    pub event: String,
    pub pattern: Value,
}

impl Rule {
    /// `<Function>.<Event>`, as `start` and `events put` print it.
    pub fn name(&self) -> String {
        format!("{}.{}", self.function, self.event)
    }
}

/// Every EventBridge rule of the template's functions, patterns resolved and checked.
pub fn rules(stack: &Stack) -> anyhow::Result<Vec<Rule>> {
    let resolver = stack.resolver();
    let mut out = Vec::new();
    for f in stack.functions()? {
        for ev in &f.events {
            let EventKind::EventBridgeRule { pattern: raw } = &ev.kind else {
                continue;
            };
            let pattern = super::json_document(&resolver, raw)
                .map_err(|e| anyhow::anyhow!("{}.{}: the pattern: {e}", f.logical_id, ev.name))?;
            pattern::validate(&pattern).with_context(|| format!("{}.{}", f.logical_id, ev.name))?;
            out.push(Rule {
                function: f.logical_id.clone(),
                event: ev.name.clone(),
                pattern,
            });
        }
    }
    Ok(out)
}

/// The rules `event` matches.
pub fn matching<'r>(rules: &'r [Rule], event: &Value) -> anyhow::Result<Vec<&'r Rule>> {
    let mut out = Vec::new();
    for r in rules {
        if pattern::matches(&r.pattern, event).with_context(|| r.name())? {
            out.push(r);
        }
    }
    Ok(out)
}

/// The bus queue's name for a stack (SQS names: 80 chars of [A-Za-z0-9_-]).
pub fn bus_queue_name(stack_name: &str) -> String {
    super::s3::queue_name(stack_name, "event", "bus")
}

async fn bus_queue(stack: &Stack, sqs: &aws_sdk_sqs::Client) -> anyhow::Result<String> {
    let name = bus_queue_name(&stack.config.stack_name);
    sqs.create_queue()
        .queue_name(&name)
        .send()
        .await
        .with_context(|| format!("creating the event bus queue {name}"))?
        .queue_url
        .context("the emulator returned no queue URL")
}

/// Completes an event as `PutEvents` does (id, time, account, region, version) and checks
/// the fields EventBridge requires of one (`source`, `detail-type`, an object `detail`).
pub fn complete(mut event: Value, region: &str) -> anyhow::Result<Value> {
    let obj = event
        .as_object_mut()
        .context("an event must be a JSON object")?;
    for key in ["source", "detail-type"] {
        if !obj.get(key).is_some_and(Value::is_string) {
            anyhow::bail!("the event has no {key} (a string)");
        }
    }
    let detail = obj.entry("detail").or_insert_with(|| json!({}));
    if !detail.is_object() {
        anyhow::bail!("the event's detail must be an object");
    }
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc());
    let defaults = [
        ("version", json!("0")),
        ("id", json!(uuid::Uuid::new_v4().to_string())),
        (
            "time",
            json!(
                now.format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default()
            ),
        ),
        ("account", json!(LOCAL_ACCOUNT_ID)),
        ("region", json!(region)),
        ("resources", json!([])),
    ];
    for (k, v) in defaults {
        obj.entry(k).or_insert(v);
    }
    Ok(event)
}

/// Puts `event` on the stack's bus (the running `start` delivers it); returns the rules
/// it matches.
pub async fn put(
    stack: &Stack,
    sdk: &aws_config::SdkConfig,
    event: Value,
) -> anyhow::Result<(Value, Vec<Rule>)> {
    let event = complete(event, &stack.config.region)?;
    let rules = rules(stack)?;
    let matched: Vec<Rule> = matching(&rules, &event)?.into_iter().cloned().collect();
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let url = bus_queue(stack, &sqs).await?;
    sqs.send_message()
        .queue_url(&url)
        .message_body(event.to_string())
        .send()
        .await
        .context("putting the event on the local bus")?;
    Ok((event, matched))
}

/// What CloudFormation sends EventBridge when the stack reaches `status`
/// (`events/stack-status-change.json`), for the local stack.
pub fn stack_status_change(stack: &Stack, status: &str) -> Value {
    let stack_id = format!(
        "arn:aws:cloudformation:{}:{LOCAL_ACCOUNT_ID}:stack/{}/local",
        stack.config.region, stack.config.stack_name
    );
    json!({
        "version": "0",
        "detail-type": "CloudFormation Stack Status Change",
        "source": "aws.cloudformation",
        "account": LOCAL_ACCOUNT_ID,
        "region": stack.config.region,
        "resources": [stack_id],
        "detail": {
            "stack-id": stack_id,
            "status-details": {"status": status, "status-reason": ""},
            "client-request-token": format!("encache-local-provision-{}", uuid::Uuid::new_v4().simple()),
        }
    })
}

/// Starts the bus poller when the template has rules.
pub(super) async fn start(
    stack: &Stack,
    runtime: Arc<Runtime>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let rules = rules(stack)?;
    if rules.is_empty() {
        return Ok(vec![]);
    }
    if stack.config.endpoint.is_none() {
        eprintln!(
            "warning: AWS_ENDPOINT_URL is not set: EventBridge rules receive nothing locally"
        );
        return Ok(vec![]);
    }
    let sdk = encache_shared::aws::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let url = bus_queue(stack, &sqs).await?;
    for r in &rules {
        eprintln!("  event pattern {} -> {}", r.pattern, r.name());
    }
    Ok(vec![tokio::spawn(poll(sqs, url, rules, runtime))])
}

async fn poll(sqs: aws_sdk_sqs::Client, url: String, rules: Vec<Rule>, runtime: Arc<Runtime>) {
    loop {
        let messages = match sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
        {
            Ok(r) => r.messages.unwrap_or_default(),
            Err(e) => {
                eprintln!("[events] polling the event bus: {e}");
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
        };
        for m in messages {
            // Delivery is asynchronous: the message leaves the bus once it is handed out.
            if let Some(handle) = m.receipt_handle() {
                let _ = sqs
                    .delete_message()
                    .queue_url(&url)
                    .receipt_handle(handle)
                    .send()
                    .await;
            }
            let event: Value = match serde_json::from_str(m.body().unwrap_or_default()) {
                Ok(e) => e,
                Err(e) => {
                    eprintln!(
                        "[events] the event bus held a message that is not JSON ({e}); dropped"
                    );
                    continue;
                }
            };
            deliver(&rules, &event, &runtime);
        }
    }
}

/// Invokes every matching rule's function in the background, logging failures.
fn deliver(rules: &[Rule], event: &Value, runtime: &Arc<Runtime>) {
    let matched = match matching(rules, event) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("[events] {e:#}");
            return;
        }
    };
    let id = event.get("id").and_then(Value::as_str).unwrap_or("?");
    let kind = event
        .get("detail-type")
        .and_then(Value::as_str)
        .unwrap_or("?");
    if matched.is_empty() {
        eprintln!("[events] event {id} ({kind}) matched no rule");
    }
    for rule in matched {
        eprintln!("[events] event {id} ({kind}) -> {}", rule.name());
        let (runtime, name, function, id, payload) = (
            runtime.clone(),
            rule.name(),
            rule.function.clone(),
            id.to_owned(),
            Bytes::from(event.to_string()),
        );
        tokio::spawn(async move {
            if let Err(e) = runtime.invoke(&function, payload).await {
                eprintln!(
                    "[events] {name}: the asynchronous invocation for event {id} FAILED: {e} \
                     (not retried locally; Lambda retries twice)"
                );
            }
        });
    }
}
