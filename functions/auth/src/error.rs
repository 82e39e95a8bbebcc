//! How a trigger fails. Cognito shows any trigger error's message to the user
//! ("PreSignUp failed with error <message>."), so only [`TriggerError::Rejected`] passes
//! its own words through; an outage says "try again" and an unexpected error says
//! "internal error", their details stay in the log. Every variant tells the Lambda
//! `Diagnostic` whether a retry can help.

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

    /// Whether delivering the same event again could succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::Unexpected(_))
    }

    /// The `errorType` Lambda reports: `Retryable.*` or `NotRetryable.*`.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Rejected(_) => "NotRetryable.Rejected",
            Self::InvalidEvent(_) => "NotRetryable.InvalidEvent",
            Self::Unavailable(_) => "Retryable.Unavailable",
            Self::Unexpected(_) => "Retryable.Unexpected",
        }
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

impl From<sqlx::Error> for TriggerError {
    fn from(e: sqlx::Error) -> Self {
        if encache_shared::db::is_unavailable(&e) {
            Self::Unavailable(format!("database unavailable: {e}"))
        } else {
            Self::Unexpected(anyhow::Error::new(e).context("database query failed"))
        }
    }
}

impl From<TriggerError> for Diagnostic {
    fn from(e: TriggerError) -> Self {
        Diagnostic {
            error_type: e.error_type().to_owned(),
            // Cognito shows this to the person signing in: the causes (database client
            // errors included) are in the log, not in the reply.
            error_message: match &e {
                TriggerError::Unexpected(_) => "internal error".to_owned(),
                TriggerError::Unavailable(_) => {
                    "temporarily unavailable, please try again".to_owned()
                }
                other => other.to_string(),
            },
        }
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
        assert!(e.is_retryable());
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
