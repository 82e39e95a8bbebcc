//! SNS subscriptions: every `SNS` event of the template's functions becomes a queue in the
//! emulator subscribed to the topic, with the event's `FilterPolicy` and
//! `FilterPolicyScope` on the subscription (the emulator applies them as SNS does), and a
//! poller that delivers each notification to the function as Lambda's `SnsEvent`
//! (topic → SQS queue → poll → invoke). Delivery is asynchronous: a failed invocation is
//! logged and not retried.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use aws_lambda_events::sns::SnsEvent;
use axum::body::Bytes;
use serde_json::{Value, json};

use crate::emulators::runtime::Runtime;
use crate::stack::Stack;
use crate::template::EventKind;

/// One subscription the runtime delivers: messages published to `topic_arn` → `function`.
#[derive(Debug, Clone)]
pub struct SnsSubscription {
    pub function: String,
    pub event: String,
    pub topic_arn: String,
    pub queue_name: String,
    /// The filter policy as JSON text, if any.
    pub filter_policy: Option<String>,
    /// `MessageAttributes` (SNS's default) or `MessageBody`.
    pub filter_policy_scope: String,
}

/// Every SNS event of the template's functions, with local names.
pub fn subscriptions(stack: &Stack) -> anyhow::Result<Vec<SnsSubscription>> {
    let resolver = stack.resolver();
    let mut subs = Vec::new();
    for f in stack.functions()? {
        for ev in &f.events {
            let EventKind::Sns {
                topic,
                filter_policy,
                filter_policy_scope,
            } = &ev.kind
            else {
                continue;
            };
            let at = || format!("{}.{}", f.logical_id, ev.name);
            let topic_arn = resolver
                .string(topic)
                .map_err(|e| anyhow::anyhow!("{}: the topic: {e}", at()))?;
            if !topic_arn.starts_with("arn:") {
                anyhow::bail!(
                    "{}: Topic must be a topic ARN (!Ref of a topic), not {topic_arn}",
                    at()
                );
            }
            let filter_policy = match filter_policy {
                None => None,
                Some(p) => Some(
                    super::json_document(&resolver, p)
                        .map_err(|e| anyhow::anyhow!("{}: the FilterPolicy: {e}", at()))?
                        .to_string(),
                ),
            };
            let scope = match filter_policy_scope {
                None => "MessageAttributes".to_owned(),
                Some(s) => resolver
                    .string(s)
                    .map_err(|e| anyhow::anyhow!("{}: the FilterPolicyScope: {e}", at()))?,
            };
            if scope != "MessageAttributes" && scope != "MessageBody" {
                anyhow::bail!(
                    "{}: FilterPolicyScope must be MessageAttributes or MessageBody, not {scope}",
                    at()
                );
            }
            subs.push(SnsSubscription {
                function: f.logical_id.clone(),
                event: ev.name.clone(),
                topic_arn,
                queue_name: super::s3::queue_name(&resolver.stack_name, &f.logical_id, &ev.name),
                filter_policy,
                filter_policy_scope: scope,
            });
        }
    }
    Ok(subs)
}

/// Creates the topics, queues and subscriptions (idempotent); returns each subscription
/// with its queue URL and subscription ARN.
pub async fn provision(
    stack: &Stack,
    sdk: &aws_config::SdkConfig,
) -> anyhow::Result<Vec<(SnsSubscription, String, String)>> {
    let sns = aws_sdk_sns::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let resolver = stack.resolver();
    let mut out = Vec::new();
    for sub in subscriptions(stack)? {
        let topic_name = sub.topic_arn.rsplit(':').next().unwrap_or_default();
        let topic_arn = sns
            .create_topic()
            .name(topic_name)
            .send()
            .await
            .with_context(|| format!("creating the topic {topic_name}"))?
            .topic_arn
            .context("the emulator returned no topic ARN")?;
        let url = sqs
            .create_queue()
            .queue_name(&sub.queue_name)
            .send()
            .await
            .with_context(|| format!("creating the queue {}", sub.queue_name))?
            .queue_url
            .context("the emulator returned no queue URL")?;
        let subscription_arn = sns
            .subscribe()
            .topic_arn(&topic_arn)
            .protocol("sqs")
            .endpoint(resolver.arn("sqs", &sub.queue_name))
            .return_subscription_arn(true)
            .send()
            .await
            .with_context(|| format!("subscribing {} to {topic_arn}", sub.queue_name))?
            .subscription_arn
            .context("the emulator returned no subscription ARN")?;
        // The scope first: the policy is checked against it. An empty policy removes one
        // an earlier run set.
        for (name, value) in [
            ("FilterPolicyScope", sub.filter_policy_scope.clone()),
            (
                "FilterPolicy",
                sub.filter_policy.clone().unwrap_or_default(),
            ),
        ] {
            sns.set_subscription_attributes()
                .subscription_arn(&subscription_arn)
                .attribute_name(name)
                .attribute_value(value)
                .send()
                .await
                .with_context(|| format!("setting {name} of {}.{}", sub.function, sub.event))?;
        }
        out.push((sub, url, subscription_arn));
    }
    Ok(out)
}

/// Provisions the subscriptions and starts one poller per subscription.
pub(super) async fn start(
    stack: &Stack,
    runtime: Arc<Runtime>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    if subscriptions(stack)?.is_empty() {
        return Ok(vec![]);
    }
    if stack.config.endpoint.is_none() {
        eprintln!("warning: AWS_ENDPOINT_URL is not set: SNS messages are not delivered locally");
        return Ok(vec![]);
    }
    let sdk = encache_shared::aws::sdk_config().await;
    let mut tasks = Vec::new();
    for (sub, url, subscription_arn) in provision(stack, &sdk).await? {
        let filter = sub
            .filter_policy
            .as_deref()
            .map(|p| format!(" filter {p} on {}", sub.filter_policy_scope))
            .unwrap_or_default();
        eprintln!(
            "  sns {} -> {}{filter} (via queue {})",
            sub.topic_arn, sub.function, sub.queue_name
        );
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        tasks.push(tokio::spawn(poll(
            sqs,
            url,
            sub,
            subscription_arn,
            runtime.clone(),
        )));
    }
    Ok(tasks)
}

async fn poll(
    sqs: aws_sdk_sqs::Client,
    url: String,
    sub: SnsSubscription,
    subscription_arn: String,
    runtime: Arc<Runtime>,
) {
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
                eprintln!("[events] polling {}: {e}", sub.queue_name);
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
        };
        for m in messages {
            if let Some(handle) = m.receipt_handle() {
                let _ = sqs
                    .delete_message()
                    .queue_url(&url)
                    .receipt_handle(handle)
                    .send()
                    .await;
            }
            let event = match sns_event(m.body().unwrap_or_default(), &subscription_arn) {
                Ok(e) => e,
                Err(e) => {
                    eprintln!("[events] {}: {e:#}; dropped", sub.queue_name);
                    continue;
                }
            };
            let payload = match serde_json::to_vec(&event) {
                Ok(p) => Bytes::from(p),
                Err(e) => {
                    eprintln!("[events] {}: {e}; dropped", sub.queue_name);
                    continue;
                }
            };
            let (runtime, function, event_name, id) = (
                runtime.clone(),
                sub.function.clone(),
                sub.event.clone(),
                event
                    .records
                    .first()
                    .map(|r| r.sns.message_id.clone())
                    .unwrap_or_default(),
            );
            tokio::spawn(async move {
                if let Err(e) = runtime.invoke(&function, payload).await {
                    eprintln!(
                        "[events] {function}.{event_name}: the asynchronous invocation for SNS \
                         message {id} FAILED: {e} (not retried locally; Lambda retries twice)"
                    );
                }
            });
        }
    }
}

/// The `SnsEvent` Lambda receives for one notification as SNS hands it to a queue (its
/// JSON envelope: `Type`, `MessageId`, `TopicArn`, `Message`, `MessageAttributes`, ...).
pub fn sns_event(body: &str, subscription_arn: &str) -> anyhow::Result<SnsEvent> {
    let mut envelope: Value =
        serde_json::from_str(body).context("the queued notification is not JSON")?;
    if envelope.get("Type").and_then(Value::as_str) != Some("Notification") {
        anyhow::bail!("not an SNS notification");
    }
    // Lambda's event carries every attribute value as a string, and a null Subject when
    // there is none.
    if let Some(attrs) = envelope
        .get_mut("MessageAttributes")
        .and_then(Value::as_object_mut)
    {
        for attr in attrs.values_mut() {
            if let Some(v) = attr.get("Value")
                && !v.is_string()
            {
                attr["Value"] = json!(v.to_string());
            }
        }
    }
    if envelope.get("Subject").is_none() {
        envelope["Subject"] = Value::Null;
    }
    let record = json!({
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": subscription_arn,
        "Sns": envelope,
    });
    serde_json::from_value(json!({ "Records": [record] }))
        .context("the notification does not have the shape of an SNS message")
}
