//! How a rotation fails (Lambda's `errorType`: `Retryable.<Kind>` / `NotRetryable.<Kind>`).
//! Every step is idempotent, so whatever failed, the next run (Lambda's retry of the
//! scheduled event, the next schedule, or an operator's invoke) carries on from there.

use encache_shared::db::is_unavailable;
use encache_shared::error::EventFailure;

#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    /// The database or SSM did not answer: nothing is half done that a rerun cannot finish.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The database refuses both the current and the pending password: the login role's
    /// password was changed outside a rotation. A deploy sets it from the current one.
    #[error(
        "the database refuses both the current and the pending password of {user}: its password was changed outside a rotation; deploy (the migration sets the current one), then run the rotation again"
    )]
    PasswordsRefused { user: String },
    /// There is no current password to rotate from.
    #[error("SSM parameter {0} does not exist: apply devops/ first")]
    NoCurrentPassword(String),
    /// The pending password was set but a fresh connection with it failed its check.
    #[error("the new password did not pass its test: {0}")]
    TestFailed(String),
    #[error("SSM refused the change: {0}")]
    Parameters(String),
    #[error("the database refused the step: {0}")]
    Database(String),
}

impl From<sqlx::Error> for RotationError {
    fn from(e: sqlx::Error) -> Self {
        if is_unavailable(&e) {
            Self::Unavailable(e.to_string())
        } else {
            Self::Database(e.to_string())
        }
    }
}

impl EventFailure for RotationError {
    fn retryable(&self) -> bool {
        !matches!(
            self,
            Self::PasswordsRefused { .. } | Self::NoCurrentPassword(_)
        )
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "Unavailable",
            Self::PasswordsRefused { .. } => "PasswordsRefused",
            Self::NoCurrentPassword(_) => "NoCurrentPassword",
            Self::TestFailed(_) => "TestFailed",
            Self::Parameters(_) => "Parameters",
            Self::Database(_) => "Database",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use encache_shared::error::error_type;

    #[test]
    fn only_a_state_a_rerun_cannot_fix_is_not_retryable() {
        assert_eq!(
            error_type(&RotationError::Unavailable("x".into())),
            "Retryable.Unavailable"
        );
        assert_eq!(
            error_type(&RotationError::PasswordsRefused {
                user: "encache_fn".into()
            }),
            "NotRetryable.PasswordsRefused"
        );
    }
}
