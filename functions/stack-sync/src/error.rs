//! Why a sync of an event failed, and whether Lambda's retry (then the dead-letter queue)
//! can help: `errorType` is `Retryable.<Kind>` or `NotRetryable.<Kind>`.

use encache_shared::error::{EventFailure, diagnostic};
use lambda_runtime::Diagnostic;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The payload is not a stack status change with a stack ARN; retrying cannot help.
    #[error("malformed CloudFormation stack status change event: {0}")]
    MalformedEvent(String),
    /// Outputs that break SSM's rules or collide with a parameter stack-sync did not
    /// create. The rest were synced; fixing the template (or the parameter) is needed.
    #[error("stack {stack}: outputs not synced: {details} (the others were synced)")]
    RejectedOutputs { stack: String, details: String },
    /// Some writes failed after the SDK's retries; a retry of the event may succeed.
    #[error("stack {stack}: {failed} parameter write(s) failed: {details}")]
    PartialFailure {
        stack: String,
        failed: usize,
        details: String,
    },
    /// Reading the stack or the parameters failed; nothing was written.
    #[error("stack sync failed: {0:#}")]
    Unexpected(#[from] anyhow::Error),
}

impl EventFailure for SyncError {
    fn retryable(&self) -> bool {
        matches!(self, Self::PartialFailure { .. } | Self::Unexpected(_))
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::MalformedEvent(_) => "MalformedEvent",
            Self::RejectedOutputs { .. } => "RejectedOutputs",
            Self::PartialFailure { .. } => "PartialFailure",
            Self::Unexpected(_) => "Unexpected",
        }
    }
}

/// What the runtime reports (the handler returns the typed error so tests can match it).
impl From<SyncError> for Diagnostic {
    fn from(e: SyncError) -> Self {
        diagnostic(&e)
    }
}
