//! How a trigger fails. Cognito shows any trigger error's message to the user
//! ("PreSignUp failed with error <message>."), so only [`TriggerError::Rejected`] passes
//! its own words through; an outage says "try again" and an unexpected error says
//! "internal error", their details stay in the log. Every variant tells the Lambda
//! `Diagnostic` whether a retry can help (`Retryable.<Kind>` / `NotRetryable.<Kind>`).

use encache_shared::db::StepError;
use encache_shared::error::{EventFailure, diagnostic};
use lambda_runtime::Diagnostic;

#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    /// The sign-up breaks the policy. The message is shown to the user as is.
    #[error("{0}")]
    Rejected(String),
    /// The event is not one this function handles (wrong trigger source, missing or
    /// malformed attributes). Retrying the same event cannot help.
    #[error("invalid event: {0}")]
    InvalidEvent(String),
    /// The database did not answer within the trigger's budget; a retry may help.
    #[error("{0}")]
    Unavailable(String),
    /// Anything else; logged with its whole cause chain.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl TriggerError {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidEvent(message.into())
    }

    /// Logs the error once, at the edge.
    pub fn log(&self) {
        match self {
            Self::Rejected(reason) => tracing::info!(reason = %reason, "sign-up rejected"),
            Self::InvalidEvent(m) => tracing::error!(error = %m, "invalid trigger event"),
            Self::Unavailable(m) => {
                tracing::warn!(error = %m, retryable = true, "dependency unavailable")
            }
            Self::Unexpected(e) => tracing::error!(
                error = format!("{e:#}"),
                retryable = true,
                "unexpected error"
            ),
        }
    }
}

impl EventFailure for TriggerError {
    fn retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::Unexpected(_))
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Rejected(_) => "Rejected",
            Self::InvalidEvent(_) => "InvalidEvent",
            Self::Unavailable(_) => "Unavailable",
            Self::Unexpected(_) => "Unexpected",
        }
    }

    /// Cognito shows this to the person signing in: the causes (database client errors
    /// included) are in the log, not in the reply.
    fn message(&self) -> String {
        match self {
            Self::Unexpected(_) => "internal error".to_owned(),
            Self::Unavailable(_) => "temporarily unavailable, please try again".to_owned(),
            other => other.to_string(),
        }
    }
}

impl From<sqlx::Error> for TriggerError {
    fn from(e: sqlx::Error) -> Self {
        if encache_shared::db::is_unavailable(&e) {
            Self::Unavailable(format!("database unavailable: {e}"))
        } else {
            Self::Unexpected(anyhow::Error::new(e).context("database query failed"))
        }
    }
}

impl From<StepError> for TriggerError {
    fn from(e: StepError) -> Self {
        match e {
            StepError::TimedOut(_) => Self::Unavailable(e.to_string()),
            StepError::Failed(e) => e.into(),
        }
    }
}

impl From<TriggerError> for Diagnostic {
    fn from(e: TriggerError) -> Self {
        diagnostic(&e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejection_reaches_cognito_as_the_bare_user_facing_reason() {
        let d: Diagnostic =
            TriggerError::Rejected("email addresses at spam.test cannot sign up".into()).into();
        assert_eq!(
            d.error_message,
            "email addresses at spam.test cannot sign up"
        );
        assert_eq!(d.error_type, "NotRetryable.Rejected");
    }

    #[test]
    fn a_database_outage_is_marked_retryable() {
        let e: TriggerError = sqlx::Error::PoolTimedOut.into();
        assert!(e.retryable());
        assert!(Diagnostic::from(e).error_type.starts_with("Retryable."));
    }

    #[test]
    fn an_outage_tells_the_user_to_retry_without_the_database_error() {
        let e: TriggerError = sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused (os error 111)",
        ))
        .into();
        let d = Diagnostic::from(e);
        assert_eq!(d.error_message, "temporarily unavailable, please try again");
    }

    #[test]
    fn unexpected_errors_leak_nothing() {
        let d: Diagnostic = TriggerError::Unexpected(anyhow::anyhow!("password=hunter2")).into();
        assert_eq!(d.error_message, "internal error");
    }
}
