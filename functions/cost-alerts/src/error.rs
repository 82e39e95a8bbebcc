//! Why an invocation failed, and whether Lambda's retry (then the dead-letter queue) can
//! help: `errorType` is `Retryable.<Kind>` or `NotRetryable.<Kind>`.

use encache_shared::error::{EventFailure, diagnostic};
use lambda_runtime::Diagnostic;

use crate::discord::DeliveryError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("the Discord webhook URL could not be read: {0}")]
    WebhookSecret(String),
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
    #[error("reading the budgets for the digest failed: {0}")]
    Digest(String),
    #[error("the event is neither an SNS notification nor a scheduled event: {0}")]
    UnknownEvent(String),
    #[error(transparent)]
    Idempotency(#[from] StoreError),
    /// Another invocation holds this delivery (or crashed holding it): Lambda's retry
    /// finds it completed, or claims it once the claim has expired.
    #[error("delivery {0} is in progress in another invocation")]
    InProgress(String),
}

impl EventFailure for ForwardError {
    fn retryable(&self) -> bool {
        match self {
            Self::WebhookSecret(_) | Self::Digest(_) => true,
            Self::Idempotency(_) | Self::InProgress(_) => true,
            Self::Delivery(d) => d.retryable(),
            Self::UnknownEvent(_) => false,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::WebhookSecret(_) => "WebhookSecret",
            Self::Delivery(DeliveryError::RateLimited { .. }) => "DiscordRateLimited",
            Self::Delivery(DeliveryError::ServerError { .. }) => "DiscordServerError",
            Self::Delivery(DeliveryError::Network { .. }) => "DiscordUnreachable",
            Self::Delivery(DeliveryError::OutOfTime) => "OutOfTime",
            Self::Delivery(DeliveryError::Rejected { .. }) => "DiscordRejected",
            Self::Delivery(DeliveryError::WebhookGone { .. }) => "WebhookGone",
            Self::Digest(_) => "DigestBudgets",
            Self::UnknownEvent(_) => "UnknownEvent",
            Self::Idempotency(_) => "IdempotencyStore",
            Self::InProgress(_) => "InProgress",
        }
    }
}

/// What the runtime reports (the handler returns the typed error so tests can match it).
impl From<ForwardError> for Diagnostic {
    fn from(e: ForwardError) -> Self {
        diagnostic(&e)
    }
}
