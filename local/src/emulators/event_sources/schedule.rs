//! Schedules: every `rate(...)` `Schedule` event of the template's functions invokes its
//! function on that interval with the event EventBridge sends (or the event's `Input`).
//! `cron(...)` expressions are not run locally.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;

use crate::emulators::runtime::Runtime;
use crate::stack::Stack;
use crate::template::{EventKind, LOCAL_ACCOUNT_ID};

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
        "account": LOCAL_ACCOUNT_ID,
        "time": now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "region": region,
        "resources": [rule_arn],
        "detail": {}
    })
}

/// Runs every `rate(...)` schedule of the template's functions on its interval.
pub(super) fn start(
    stack: &Stack,
    runtime: Arc<Runtime>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let resolver = stack.resolver();
    let mut tasks = Vec::new();
    for f in stack.functions()? {
        for ev in &f.events {
            let EventKind::Schedule { schedule, input } = &ev.kind else {
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
                LOCAL_ACCOUNT_ID,
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
