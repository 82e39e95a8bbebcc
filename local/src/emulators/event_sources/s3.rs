//! Bucket notifications: every S3 event of the template's functions becomes a queue in the
//! emulator that the bucket notifies, and a poller that delivers each notification to the
//! function as a real-shaped `S3Event` (bucket → SQS queue → poll → invoke), at least
//! once, like S3's asynchronous invocation (a failed delivery is retried, twice at most).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use aws_lambda_events::s3::S3Event;
use aws_sdk_s3::types::{
    Event, FilterRule, FilterRuleName, NotificationConfiguration, NotificationConfigurationFilter,
    QueueConfiguration, S3KeyFilter, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
};
use axum::body::Bytes;

use crate::emulators::kms;
use crate::emulators::runtime::Runtime;
use crate::stack::Stack;
use crate::template::{EventKind, Resolver};

/// Lambda's asynchronous invocation: the first attempt plus two retries.
const MAX_ATTEMPTS: i32 = 3;

/// One bucket notification the runtime delivers: objects in `bucket` → `function`.
#[derive(Debug, Clone)]
pub struct S3Subscription {
    pub function: String,
    pub bucket: String,
    pub queue_name: String,
    pub prefix: Option<String>,
    pub suffix: Option<String>,
    /// The S3 event types (`s3:ObjectCreated:*`, ...).
    pub events: Vec<String>,
}

/// The queue name for one function's S3 event (SQS names: 80 chars of [A-Za-z0-9_-]).
pub(super) fn queue_name(stack_name: &str, function: &str, event: &str) -> String {
    let name: String = format!("{stack_name}-{function}-{event}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    name.chars().take(80).collect()
}

/// Every S3 event of the template's functions, with local names.
pub fn subscriptions(stack: &Stack) -> anyhow::Result<Vec<S3Subscription>> {
    let resolver = stack.resolver();
    let mut subs = Vec::new();
    for f in stack.functions()? {
        for ev in &f.events {
            if let EventKind::S3 {
                bucket,
                events,
                prefix,
                suffix,
            } = &ev.kind
            {
                subs.push(S3Subscription {
                    function: f.logical_id.clone(),
                    bucket: resolver.physical_name(bucket).with_context(|| {
                        format!("{}.{}: the bucket name", f.logical_id, ev.name)
                    })?,
                    queue_name: queue_name(&resolver.stack_name, &f.logical_id, &ev.name),
                    prefix: prefix.clone(),
                    suffix: suffix.clone(),
                    events: events.clone(),
                });
            }
        }
    }
    Ok(subs)
}

/// Creates the buckets, queues and notifications; returns the subscriptions with queue URLs.
pub async fn provision(
    stack: &Stack,
    sdk: &aws_config::SdkConfig,
) -> anyhow::Result<Vec<(S3Subscription, String)>> {
    let s3 = encache_shared::aws::s3_client(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let resolver = stack.resolver();
    // Every bucket the template declares exists locally, subscribed or not, with its
    // default encryption (the data key: it exists first).
    kms::provision(stack, sdk).await?;
    for (id, res) in &stack.template.resources {
        if res.kind == "AWS::S3::Bucket" {
            let name = resolver.physical_name(id)?;
            create_bucket(&s3, &name).await?;
            set_default_encryption(&s3, &resolver, &name, &res.properties)
                .await
                .with_context(|| format!("the default encryption of bucket {id} ({name})"))?;
        }
    }
    let subs = subscriptions(stack)?;
    let mut out = Vec::new();
    let mut per_bucket: std::collections::BTreeMap<String, Vec<QueueConfiguration>> =
        Default::default();
    for sub in subs {
        let url = sqs
            .create_queue()
            .queue_name(&sub.queue_name)
            .send()
            .await
            .with_context(|| format!("creating the queue {}", sub.queue_name))?
            .queue_url
            .context("the emulator returned no queue URL")?;
        let arn = resolver.arn("sqs", &sub.queue_name);
        let mut rules = Vec::new();
        for (name, value) in [
            (FilterRuleName::Prefix, &sub.prefix),
            (FilterRuleName::Suffix, &sub.suffix),
        ] {
            if let Some(v) = value {
                rules.push(FilterRule::builder().name(name).value(v).build());
            }
        }
        let mut config = QueueConfiguration::builder()
            .id(sub.queue_name.clone())
            .queue_arn(arn)
            .set_events(Some(
                sub.events.iter().map(|e| Event::from(e.as_str())).collect(),
            ));
        if !rules.is_empty() {
            config = config.filter(
                NotificationConfigurationFilter::builder()
                    .key(S3KeyFilter::builder().set_filter_rules(Some(rules)).build())
                    .build(),
            );
        }
        per_bucket
            .entry(sub.bucket.clone())
            .or_default()
            .push(config.build().context("a queue notification")?);
        out.push((sub, url));
    }
    for (bucket, configs) in per_bucket {
        s3.put_bucket_notification_configuration()
            .bucket(&bucket)
            .notification_configuration(
                NotificationConfiguration::builder()
                    .set_queue_configurations(Some(configs))
                    .build(),
            )
            .send()
            .await
            .with_context(|| format!("setting the notifications of bucket {bucket}"))?;
    }
    Ok(out)
}

async fn create_bucket(s3: &aws_sdk_s3::Client, name: &str) -> anyhow::Result<()> {
    match s3.create_bucket().bucket(name).send().await {
        Ok(_) => Ok(()),
        Err(e) => {
            let service = e.as_service_error();
            if service
                .is_some_and(|s| s.is_bucket_already_owned_by_you() || s.is_bucket_already_exists())
            {
                Ok(())
            } else {
                Err(anyhow::Error::new(e).context(format!("creating bucket {name}")))
            }
        }
    }
}

/// The bucket's `BucketEncryption` as CloudFormation sets it (its one default rule: the
/// algorithm, the KMS key and the bucket key), so objects put locally are encrypted as
/// they are in a deploy; none declared, none set.
async fn set_default_encryption(
    s3: &aws_sdk_s3::Client,
    resolver: &Resolver<'_>,
    bucket: &str,
    props: &serde_yaml::Mapping,
) -> anyhow::Result<()> {
    let Some(rules) = props
        .get("BucketEncryption")
        .and_then(|e| e.get("ServerSideEncryptionConfiguration"))
        .and_then(serde_yaml::Value::as_sequence)
    else {
        return Ok(());
    };
    let mut config = ServerSideEncryptionConfiguration::builder();
    for rule in rules {
        let default = rule
            .get("ServerSideEncryptionByDefault")
            .context("a rule without ServerSideEncryptionByDefault")?;
        let algorithm = default
            .get("SSEAlgorithm")
            .context("ServerSideEncryptionByDefault without SSEAlgorithm")?;
        let key = default
            .get("KMSMasterKeyID")
            .map(|k| resolver.string(k))
            .transpose()?;
        config = config.rules(
            ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(
                    ServerSideEncryptionByDefault::builder()
                        .sse_algorithm(ServerSideEncryption::from(
                            resolver.string(algorithm)?.as_str(),
                        ))
                        .set_kms_master_key_id(key)
                        .build()?,
                )
                .set_bucket_key_enabled(rule.get("BucketKeyEnabled").and_then(|b| b.as_bool()))
                .build(),
        );
    }
    s3.put_bucket_encryption()
        .bucket(bucket)
        .server_side_encryption_configuration(config.build()?)
        .send()
        .await?;
    Ok(())
}

/// Provisions the template's buckets and notifications and starts one poller per subscription.
pub(super) async fn start(
    stack: &Stack,
    runtime: Arc<Runtime>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let subs = subscriptions(stack)?;
    if subs.is_empty() {
        return Ok(vec![]);
    }
    if stack.config.endpoint.is_none() {
        eprintln!("warning: AWS_ENDPOINT_URL is not set: S3 events are not delivered locally");
        return Ok(vec![]);
    }
    let sdk = encache_shared::aws::sdk_config().await;
    let mut tasks = Vec::new();
    for (sub, url) in provision(stack, &sdk).await? {
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
