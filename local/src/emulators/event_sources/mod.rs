//! Event sources, delivered locally as AWS delivers them: bucket notifications ([`s3`])
//! and schedules ([`schedule`]). SNS topics, EventBridge rules and queues are not wired
//! (nothing publishes to them locally): `invoke` the function with a sample instead.

pub mod s3;
pub mod schedule;

use std::sync::Arc;

use crate::emulators::runtime::Runtime;
use crate::stack::Stack;

pub use schedule::{schedule_interval, scheduled_event};

/// Provisions the buckets' notifications and starts one poller per S3 subscription and
/// one timer per `rate(...)` schedule.
pub async fn start(
    stack: &Stack,
    runtime: Arc<Runtime>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut tasks = s3::start(stack, runtime.clone()).await?;
    tasks.extend(schedule::start(stack, runtime)?);
    Ok(tasks)
}
