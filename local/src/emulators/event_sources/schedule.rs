//! Schedules: every `Schedule` / `ScheduleV2` event of the template's functions invokes
//! its function when EventBridge would, in UTC: `rate(...)` every interval from the
//! start, `cron(...)` at each of its times ([`super::cron`]), with the event EventBridge
//! sends (or the event's `Input`). A schedule with `Enabled: false` or `State: DISABLED`
//! does not run. The clock is injectable ([`Clock`]) so tests need not wait.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use time::OffsetDateTime;

use super::cron::{Cron, CronError};
use crate::emulators::runtime::Runtime;
use crate::stack::Stack;
use crate::template::{EventKind, LOCAL_ACCOUNT_ID};

/// `rate(5 minutes)` as a duration; anything else is `None`.
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

/// A schedule expression EventBridge takes.
#[derive(Debug, Clone, PartialEq)]
pub enum Expression {
    /// Every interval, counted from when the schedule starts.
    Rate(Duration),
    Cron(Box<Cron>),
}

impl Expression {
    pub fn parse(expression: &str) -> Result<Self, CronError> {
        let e = expression.trim();
        if e.starts_with("cron(") {
            return Cron::parse(e).map(|c| Self::Cron(Box::new(c)));
        }
        schedule_interval(e)
            .map(Self::Rate)
            .ok_or_else(|| CronError {
                expression: e.to_owned(),
                reason: "not rate(<n> minute(s)|hour(s)|day(s)) nor cron(...)".into(),
            })
    }

    /// The first firing strictly after `after`, for a schedule that started at `since`.
    pub fn next_after(
        &self,
        since: OffsetDateTime,
        after: OffsetDateTime,
    ) -> Option<OffsetDateTime> {
        match self {
            Self::Cron(c) => c.next_after(after),
            Self::Rate(every) => {
                let every = time::Duration::try_from(*every).ok()?;
                let elapsed = (after - since).max(time::Duration::ZERO);
                let n = (elapsed.whole_milliseconds() / every.whole_milliseconds()) as i32 + 1;
                Some(since + every * n)
            }
        }
    }
}

/// Where a schedule gets the time and waits: the system clock, or a test's.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> OffsetDateTime;
    /// Returns at `at` (or at once when it has passed).
    fn sleep_until(&self, at: OffsetDateTime) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// The real clock (UTC).
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    fn sleep_until(&self, at: OffsetDateTime) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            // In steps, so a suspended machine or a changed clock does not delay a firing long.
            loop {
                let left = super::cron::until(self.now(), at);
                if left.is_zero() {
                    return;
                }
                tokio::time::sleep(left.min(Duration::from_secs(60))).await;
            }
        })
    }
}

/// One schedule of one function, ready to run.
#[derive(Debug, Clone)]
pub struct ScheduledJob {
    pub function: String,
    pub event: String,
    pub expression_text: String,
    pub expression: Expression,
    pub rule_arn: String,
    pub region: String,
    pub input: Option<String>,
}

/// What the template's schedules are locally: the jobs that run, and one line for each
/// schedule that does not (disabled, or an expression EventBridge would refuse).
pub fn jobs(stack: &Stack) -> anyhow::Result<(Vec<ScheduledJob>, Vec<String>)> {
    let resolver = stack.resolver();
    let mut jobs = Vec::new();
    let mut skipped = Vec::new();
    for f in stack.functions()? {
        for ev in &f.events {
            let EventKind::Schedule {
                schedule,
                input,
                enabled,
                state,
            } = &ev.kind
            else {
                continue;
            };
            let name = format!("{}.{}", f.logical_id, ev.name);
            let text = resolver
                .string(schedule)
                .map_err(|e| anyhow::anyhow!("{name}: the schedule: {e}"))?;
            let flag =
                |v: &Option<serde_yaml::Value>| v.as_ref().and_then(|v| resolver.string(v).ok());
            let disabled = flag(enabled).is_some_and(|e| e.eq_ignore_ascii_case("false"))
                || flag(state).is_some_and(|s| s.eq_ignore_ascii_case("DISABLED"));
            if disabled {
                skipped.push(format!(
                    "{name}: {text} is disabled (Enabled/State): not run"
                ));
                continue;
            }
            let expression = match Expression::parse(&text) {
                Ok(e) => e,
                Err(e) => {
                    skipped.push(format!("{name}: not run: {e}"));
                    continue;
                }
            };
            jobs.push(ScheduledJob {
                rule_arn: format!(
                    "arn:aws:events:{}:{}:rule/{}-{}{}-local",
                    stack.config.region,
                    LOCAL_ACCOUNT_ID,
                    stack.config.stack_name,
                    f.logical_id,
                    ev.name
                ),
                function: f.logical_id.clone(),
                event: ev.name.clone(),
                expression_text: text,
                expression,
                region: stack.config.region.clone(),
                input: input.as_ref().and_then(|i| resolver.string(i).ok()),
            });
        }
    }
    Ok((jobs, skipped))
}

/// The event EventBridge Scheduler / a scheduled rule sends now (or the event's `Input`).
pub fn scheduled_event(rule_arn: &str, region: &str, input: Option<&str>) -> serde_json::Value {
    scheduled_event_at(rule_arn, region, input, OffsetDateTime::now_utc())
}

/// The event of the firing at `at` (its `time`), or the event's `Input`.
pub fn scheduled_event_at(
    rule_arn: &str,
    region: &str,
    input: Option<&str>,
    at: OffsetDateTime,
) -> serde_json::Value {
    if let Some(v) = input.and_then(|i| serde_json::from_str(i).ok()) {
        return v;
    }
    let at = at.replace_nanosecond(0).unwrap_or(at);
    serde_json::json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": LOCAL_ACCOUNT_ID,
        "time": at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "region": region,
        "resources": [rule_arn],
        "detail": {}
    })
}

/// Runs one schedule on `clock` until aborted: each firing invokes the function
/// asynchronously (a failure is logged; the next firing is not delayed by it).
pub fn spawn(
    job: ScheduledJob,
    runtime: Arc<Runtime>,
    clock: Arc<dyn Clock>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let since = clock.now();
        let mut last = since;
        while let Some(at) = job.expression.next_after(since, last) {
            clock.sleep_until(at).await;
            last = at;
            let event = scheduled_event_at(&job.rule_arn, &job.region, job.input.as_deref(), at);
            let (runtime, function, name) = (
                runtime.clone(),
                job.function.clone(),
                format!("{}.{}", job.function, job.event),
            );
            tokio::spawn(async move {
                if let Err(e) = runtime
                    .invoke(&function, Bytes::from(event.to_string()))
                    .await
                {
                    eprintln!(
                        "[events] {name}: the scheduled invocation FAILED: {e} \
                         (not retried locally; EventBridge retries)"
                    );
                }
            });
        }
        eprintln!(
            "[events] {}.{}: {} fires no more",
            job.function, job.event, job.expression_text
        );
    })
}

/// Runs every enabled schedule of the template's functions on the system clock.
pub(super) fn start(
    stack: &Stack,
    runtime: Arc<Runtime>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let (jobs, skipped) = jobs(stack)?;
    for s in skipped {
        eprintln!("  schedule {s}");
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    Ok(jobs
        .into_iter()
        .map(|job| {
            let now = clock.now();
            let next = job
                .expression
                .next_after(now, now)
                .and_then(|t| {
                    t.replace_nanosecond(0)
                        .unwrap_or(t)
                        .format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_else(|| "never".into());
            eprintln!(
                "  {} -> {}.{} (next {next})",
                job.expression_text, job.function, job.event
            );
            spawn(job, runtime.clone(), clock.clone())
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_rate_counts_from_its_start() {
        let e = Expression::parse("rate(5 minutes)").expect("rate");
        let since = datetime!(2026-11-30 10:00:30 UTC);
        assert_eq!(
            e.next_after(since, since),
            Some(datetime!(2026-11-30 10:05:30 UTC))
        );
        assert_eq!(
            e.next_after(since, datetime!(2026-11-30 10:05:30 UTC)),
            Some(datetime!(2026-11-30 10:10:30 UTC))
        );
        assert!(Expression::parse("rate(5 fortnights)").is_err());
        assert!(Expression::parse("at(2026-11-30T10:00:00)").is_err());
    }
}
