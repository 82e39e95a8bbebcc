//! How the upload event functions fail, as Lambda reports it: `Retryable.<Kind>` or
//! `NotRetryable.<Kind>` (`encache_shared::error::EventFailure`). The API answers every
//! failure as an HTTP response (`encache_shared::ApiError`) and has no error type of its
//! own.

use encache_shared::db::is_unavailable;
use encache_shared::error::{EventFailure, diagnostic};
use lambda_runtime::Diagnostic;

/// upload-complete: some records could not be settled. Their failures are reported so
/// that Lambda's asynchronous retries, then the on-failure destination (the dead-letter
/// queue, with this message), see them: a temporary one (the database or S3 out of reach)
/// may pass on a retry; a permanent one (S3 refusing access, a missing bucket, a record
/// that is not a valid S3 record) will not, and must reach a human rather than be
/// acknowledged and forgotten. The other records' effects are already applied and a
/// redelivery re-applies nothing.
#[derive(Debug, thiserror::Error)]
#[error(
    "{} of {total} records failed ({retryable} temporarily, {permanent} permanently); first: {first}",
    retryable + permanent
)]
pub struct RecordsFailed {
    pub retryable: usize,
    pub permanent: usize,
    pub total: usize,
    pub first: String,
}

impl EventFailure for RecordsFailed {
    /// Retryable while any record may pass on a redelivery (Lambda retries either way;
    /// the class says what an operator replaying the dead-letter queue can expect).
    fn retryable(&self) -> bool {
        self.retryable > 0
    }

    fn kind(&self) -> &'static str {
        if self.retryable() {
            "Unavailable"
        } else {
            "RecordFailed"
        }
    }
}

impl From<RecordsFailed> for Diagnostic {
    fn from(e: RecordsFailed) -> Self {
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
        let d = Diagnostic::from(RecordsFailed {
            retryable: 1,
            permanent: 1,
            total: 3,
            first: "HeadObject: 503".into(),
        });
        assert_eq!(d.error_type, "Retryable.Unavailable");
        assert!(
            d.error_message.contains("2 of 3 records"),
            "{}",
            d.error_message
        );
    }

    #[test]
    fn only_permanent_failures_are_not_retryable() {
        let d = Diagnostic::from(RecordsFailed {
            retryable: 0,
            permanent: 1,
            total: 1,
            first: "HeadObject: AccessDenied".into(),
        });
        assert_eq!(d.error_type, "NotRetryable.RecordFailed");
        assert!(
            d.error_message.contains("AccessDenied"),
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
