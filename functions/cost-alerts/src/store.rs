//! The idempotency record of each delivery, in DynamoDB (Lambda Powertools' pattern), so
//! a message SNS or Lambda delivers again is posted once across every container.
//!
//! One item per delivery id (the SNS MessageId, an alarm's ARN + state + time, a digest's
//! event id): a conditional put claims it `IN_PROGRESS` before the post, and it becomes
//! `COMPLETED` after. An item whose `expiration` (epoch seconds, the table's TTL
//! attribute) has passed counts as absent, since DynamoDB deletes expired items lazily.
//! A claim whose holder crashed between the claim and the post stays `IN_PROGRESS`
//! only until `in_progress_expiration` (epoch milliseconds), longer than the function's
//! timeout, so a live holder is never overtaken and a retry after a crash can post.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use sha2::{Digest, Sha256};

/// Delivery ids up to this many bytes are their own key (readable in the table); longer
/// ones (an alarm with a huge name) are keyed by their SHA-256, as DynamoDB keys hold at
/// most 2048 bytes.
const VERBATIM_KEY_BYTES: usize = 512;

const IN_PROGRESS: &str = "IN_PROGRESS";
const COMPLETED: &str = "COMPLETED";

/// Where the records live and how long they count.
#[derive(Debug, Clone)]
pub struct IdempotencySettings {
    /// The table's name (`IDEMPOTENCY_TABLE`).
    pub table: String,
    /// How long a completed delivery is remembered: beyond Lambda's retries (6 h maximum
    /// event age) and any SNS redelivery.
    pub record_ttl: Duration,
    /// How long a claim without a post blocks others: longer than the function's timeout.
    pub in_progress_timeout: Duration,
}

/// What a claim found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This invocation holds the delivery: post, then [`Store::complete`].
    Claimed,
    /// Another invocation already posted it.
    Completed,
    /// Another invocation holds it now (or crashed holding it, until its claim expires).
    InProgress,
}

#[derive(Debug, thiserror::Error)]
#[error("the idempotency table {table} could not be {action}: {cause}")]
pub struct StoreError {
    pub table: String,
    pub action: &'static str,
    pub cause: String,
}

/// The idempotency table, for one container.
#[derive(Debug, Clone)]
pub struct Store {
    client: encache_shared::aws::Lazy<aws_sdk_dynamodb::Client>,
    settings: IdempotencySettings,
}

fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

fn number(n: u128) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

/// The record's key for a delivery id.
pub fn record_key(id: &str) -> String {
    if id.len() <= VERBATIM_KEY_BYTES {
        return id.to_owned();
    }
    let digest = Sha256::digest(id.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn key(id: &str) -> AttributeValue {
    AttributeValue::S(record_key(id))
}

impl Store {
    pub fn new(
        client: impl Into<encache_shared::aws::Lazy<aws_sdk_dynamodb::Client>>,
        settings: IdempotencySettings,
    ) -> Self {
        Self {
            client: client.into(),
            settings,
        }
    }

    fn error(&self, action: &'static str, cause: impl std::fmt::Display) -> StoreError {
        StoreError {
            table: self.settings.table.clone(),
            action,
            cause: cause.to_string(),
        }
    }

    /// Claims `id` for this invocation unless a live record says otherwise.
    pub async fn claim(&self, id: &str) -> Result<Claim, StoreError> {
        let now = now();
        let put = self
            .client
            .put_item()
            .table_name(&self.settings.table)
            .item("id", key(id))
            .item("status", AttributeValue::S(IN_PROGRESS.into()))
            .item(
                "expiration",
                number((now + self.settings.record_ttl).as_secs().into()),
            )
            .item(
                "in_progress_expiration",
                number((now + self.settings.in_progress_timeout).as_millis()),
            )
            .condition_expression(
                "attribute_not_exists(#id) OR #expiration < :now \
                 OR (#status = :in_progress AND #in_progress_expiration < :now_ms)",
            )
            .expression_attribute_names("#id", "id")
            .expression_attribute_names("#expiration", "expiration")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#in_progress_expiration", "in_progress_expiration")
            .expression_attribute_values(":now", number(now.as_secs().into()))
            .expression_attribute_values(":now_ms", number(now.as_millis()))
            .expression_attribute_values(":in_progress", AttributeValue::S(IN_PROGRESS.into()))
            .send()
            .await;
        match put {
            Ok(_) => Ok(Claim::Claimed),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), PutItemError::ConditionalCheckFailedException(_)) =>
            {
                self.holder(id).await
            }
            Err(e) => Err(self.error("written", DisplayErrorContext(e))),
        }
    }

    /// Who holds `id`, after a claim was refused.
    async fn holder(&self, id: &str) -> Result<Claim, StoreError> {
        let item = self
            .client
            .get_item()
            .table_name(&self.settings.table)
            .key("id", key(id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.error("read", DisplayErrorContext(e)))?;
        let status = item
            .item()
            .and_then(|i| i.get("status"))
            .and_then(|s| s.as_s().ok());
        // Gone between the two calls (expired, or released after a failed post): the
        // caller's retry claims it.
        Ok(match status.map(String::as_str) {
            Some(COMPLETED) => Claim::Completed,
            _ => Claim::InProgress,
        })
    }

    /// Marks `id` delivered, remembered for the record TTL.
    pub async fn complete(&self, id: &str) -> Result<(), StoreError> {
        let expiration = (now() + self.settings.record_ttl).as_secs();
        self.client
            .update_item()
            .table_name(&self.settings.table)
            .key("id", key(id))
            .update_expression("SET #status = :completed, #expiration = :expiration REMOVE #in_progress_expiration")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#expiration", "expiration")
            .expression_attribute_names("#in_progress_expiration", "in_progress_expiration")
            .expression_attribute_values(":completed", AttributeValue::S(COMPLETED.into()))
            .expression_attribute_values(":expiration", number(expiration.into()))
            .send()
            .await
            .map_err(|e| self.error("updated", DisplayErrorContext(e)))?;
        Ok(())
    }

    /// Gives `id` up after a failed post, so Lambda's retry can claim it at once. Only an
    /// `IN_PROGRESS` record goes: a completed one is never forgotten early.
    pub async fn release(&self, id: &str) -> Result<(), StoreError> {
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.settings.table)
            .key("id", key(id))
            .condition_expression("#status = :in_progress")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":in_progress", AttributeValue::S(IN_PROGRESS.into()))
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Ok(())
            }
            Err(e) => Err(self.error("released", DisplayErrorContext(e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ids_are_their_own_key_and_long_ones_a_digest_within_dynamodbs_limit() {
        assert_eq!(
            record_key("6b2f1a3c-sns-message-id"),
            "6b2f1a3c-sns-message-id"
        );
        let long = format!("alarm:{}:ALARM:2026-11-30", "x".repeat(5000));
        let k = record_key(&long);
        assert!(k.starts_with("sha256:") && k.len() == 7 + 64, "{k}");
        assert_eq!(k, record_key(&long));
        assert_ne!(k, record_key(&format!("{long}y")));
    }
}
