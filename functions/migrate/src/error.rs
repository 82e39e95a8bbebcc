//! How the schema function fails: [`SchemaError`], why the schema was not migrated (a
//! FAILED answer to CloudFormation, the deploy rolls back), and [`HandlerError`], why the
//! invocation itself failed (Lambda's `errorType`, `Retryable.<Kind>` /
//! `NotRetryable.<Kind>`).

use encache_shared::db::is_unavailable;
use encache_shared::error::EventFailure;
use sqlx::migrate::MigrateError;

use crate::response::join;

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The answer did not reach CloudFormation; Lambda's retry of the (asynchronous)
    /// invocation sends it again (a second run of the migrations applies nothing).
    #[error("the response did not reach CloudFormation: {0}")]
    ResponseNotDelivered(String),
    #[error("a custom resource request type this function does not know")]
    UnknownRequestType,
}

impl EventFailure for HandlerError {
    fn retryable(&self) -> bool {
        matches!(self, Self::ResponseNotDelivered(_))
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::ResponseNotDelivered(_) => "ResponseNotDelivered",
            Self::UnknownRequestType => "UnknownRequestType",
        }
    }
}

/// Why the schema was not migrated: the reason of a FAILED answer.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error(
        "the database has migration {} that this code does not know (the database is newer than the code): refusing to migrate; deploy code that includes it",
        join(.0)
    )]
    DatabaseNewer(Vec<i64>),
    #[error(
        "migration {0} was changed after it was applied (its checksum differs from the database's): refusing to migrate; restore the applied migration and add a new one instead"
    )]
    Edited(i64),
    #[error(
        "migration {0} is marked as failed in _sqlx_migrations (partially applied): refusing to migrate; repair it by hand, then deploy again"
    )]
    PartiallyApplied(i64),
    #[error("the database is unreachable: {0}")]
    Unavailable(String),
    #[error("migrating failed: {0}")]
    Failed(String),
}

impl From<sqlx::Error> for SchemaError {
    fn from(e: sqlx::Error) -> Self {
        if is_unavailable(&e) {
            Self::Unavailable(e.to_string())
        } else {
            Self::Failed(e.to_string())
        }
    }
}

impl From<MigrateError> for SchemaError {
    fn from(e: MigrateError) -> Self {
        match e {
            // Another deploy got here between the check and the run.
            MigrateError::VersionMissing(v) => Self::DatabaseNewer(vec![v]),
            MigrateError::VersionMismatch(v) => Self::Edited(v),
            MigrateError::Dirty(v) => Self::PartiallyApplied(v),
            MigrateError::Execute(e) => e.into(),
            MigrateError::ExecuteMigration(e, v) => Self::Failed(format!("migration {v}: {e}")),
            other => Self::Failed(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use encache_shared::error::error_type;

    #[test]
    fn an_undelivered_response_is_retryable_and_an_unknown_request_type_is_not() {
        assert_eq!(
            error_type(&HandlerError::ResponseNotDelivered("403".into())),
            "Retryable.ResponseNotDelivered"
        );
        assert_eq!(
            error_type(&HandlerError::UnknownRequestType),
            "NotRetryable.UnknownRequestType"
        );
    }
}
