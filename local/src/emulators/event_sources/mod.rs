//! Event sources, delivered locally as AWS delivers them: bucket notifications ([`s3`]),
//! SNS subscriptions with their filter policies ([`sns`]), EventBridge rules on the
//! default bus ([`eventbridge`], patterns in [`pattern`]) and schedules ([`schedule`],
//! `cron(...)` in [`cron`]). SQS event source mappings are not wired: `invoke` the
//! function with a sample instead.

pub mod cron;
pub mod eventbridge;
pub mod pattern;
pub mod s3;
pub mod schedule;
pub mod sns;

use std::sync::Arc;

use crate::emulators::runtime::Runtime;
use crate::stack::Stack;

pub use schedule::{schedule_interval, scheduled_event};

/// Provisions the buckets' notifications and the topics' subscriptions, starts one poller
/// per S3 and SNS subscription, the event bus's poller and one timer per schedule.
pub async fn start(
    stack: &Stack,
    runtime: Arc<Runtime>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut tasks = s3::start(stack, runtime.clone()).await?;
    tasks.extend(sns::start(stack, runtime.clone()).await?);
    tasks.extend(eventbridge::start(stack, runtime.clone()).await?);
    tasks.extend(schedule::start(stack, runtime)?);
    Ok(tasks)
}

/// A JSON document of the template (an event pattern, a filter policy) with its
/// intrinsics resolved and its numbers, booleans and nulls kept as they are (the
/// resolver gives scalars their string form, as environment variables need).
pub(crate) fn json_document(
    resolver: &crate::template::Resolver<'_>,
    v: &serde_yaml::Value,
) -> Result<serde_json::Value, crate::template::Unresolved> {
    use serde_json::Value as Json;
    use serde_yaml::Value;
    Ok(match v {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Number(n) => serde_json::to_value(n).unwrap_or(Json::Null),
        Value::String(s) => Json::String(s.clone()),
        Value::Sequence(items) => Json::Array(
            items
                .iter()
                .map(|i| json_document(resolver, i))
                .collect::<Result<_, _>>()?,
        ),
        Value::Mapping(m)
            if m.len() == 1
                && m.keys()
                    .next()
                    .and_then(Value::as_str)
                    .is_some_and(|k| k == "Ref" || k == "Condition" || k.starts_with("Fn::")) =>
        {
            resolver.resolve(v)?
        }
        Value::Mapping(m) => {
            let mut out = serde_json::Map::new();
            for (k, v) in m {
                out.insert(
                    k.as_str().unwrap_or_default().to_owned(),
                    json_document(resolver, v)?,
                );
            }
            Json::Object(out)
        }
        Value::Tagged(_) => resolver.resolve(v)?,
    })
}
