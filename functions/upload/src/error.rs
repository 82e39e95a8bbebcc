//! How the upload event functions fail, as Lambda reports it: `Retryable.<Kind>` or
//! `NotRetryable.<Kind>` (`encache_shared::error::EventFailure`). The API answers every
//! failure as an HTTP response (`encache_shared::ApiError`) and has no error type of its
//! own.

use encache_shared::db::is_unavailable;
use encache_shared::error::{EventFailure, diagnostic};
use lambda_runtime::Diagnostic;

/// upload-complete: some records failed in a way a retry may fix (the database or S3
/// out of reach); the others' effects are already applied and a redelivery re-applies
/// nothing. Records that no retry can fix are reported per record, not here.
#[derive(Debug, thiserror::Error)]
#[error("{failed} of {total} records failed temporarily and should be retried; first: {first}")]
pub struct RetryableFailure {
    pub failed: usize,
    pub total: usize,
    pub first: String,
}

impl EventFailure for RetryableFailure {
    fn retryable(&self) -> bool {
        true
    }

    fn kind(&self) -> &'static str {
        "Unavailable"
    }
}

impl From<RetryableFailure> for Diagnostic {
    fn from(e: RetryableFailure) -> Self {
        diagnostic(&e)
    }
}

/// upload-expiry: the sweep could not finish; what it did so far stays done, and the
/// next run (or EventBridge's retry) picks up the rest.
#[derive(Debug, thiserror::Error)]
#[error("expiry sweep stopped after {expired} memories: {source}")]
pub struct SweepError {
    pub expired: usize,
    #[source]
    pub source: sqlx::Error,
}

impl EventFailure for SweepError {
    fn retryable(&self) -> bool {
        is_unavailable(&self.source)
    }

    fn kind(&self) -> &'static str {
        if self.retryable() {
            "Unavailable"
        } else {
            "QueryFailed"
        }
    }
}

impl From<SweepError> for Diagnostic {
    fn from(e: SweepError) -> Self {
        diagnostic(&e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retryable_failure_becomes_a_diagnostic_that_says_so() {
        let d = Diagnostic::from(RetryableFailure {
            failed: 1,
            total: 3,
            first: "HeadObject: 503".into(),
        });
        assert_eq!(d.error_type, "Retryable.Unavailable");
        assert!(
            d.error_message.contains("1 of 3 records"),
            "{}",
            d.error_message
        );
    }

    #[test]
    fn a_sweep_stopped_by_an_outage_is_retryable_and_any_other_failure_is_not() {
        let outage = SweepError {
            expired: 2,
            source: sqlx::Error::PoolTimedOut,
        };
        let broken = SweepError {
            expired: 0,
            source: sqlx::Error::RowNotFound,
        };
        assert_eq!(Diagnostic::from(outage).error_type, "Retryable.Unavailable");
        assert_eq!(
            Diagnostic::from(broken).error_type,
            "NotRetryable.QueryFailed"
        );
    }
}
