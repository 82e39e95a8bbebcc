//! The one error story for HTTP handlers: every failure a client can see becomes a
//! [`StandardError`] body with the status that [`ApiError::status`] maps it to.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// The body of every error response: `{"status"?: number, "code"?: string, "message": string}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StandardError {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    pub message: String,
}

/// Every way an HTTP handler can fail. The variant decides the status; the code and
/// message are what the client reads.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed: 400.
    #[error("{message}")]
    BadRequest {
        code: Cow<'static, str>,
        message: String,
    },
    /// 401, for routes that check identity themselves (the gateway usually does).
    #[error("{0}")]
    Unauthorized(String),
    /// Missing, or belonging to someone else — the two are indistinguishable: 404.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the resource's state: 409.
    #[error("{message}")]
    Conflict {
        code: Cow<'static, str>,
        message: String,
    },
    /// A dependency (the database) did not answer in time; a retry may help: 503.
    #[error("{0}")]
    Unavailable(String),
    /// Anything else. Logged with its whole cause chain, shown to no one: 500.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl ApiError {
    pub fn bad_request(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code: code.into(),
            message: message.into(),
        }
    }

    /// A 400 that names the offending field, e.g. `invalid_request: size_bytes must be positive`.
    pub fn invalid_field(field: &str, problem: impl std::fmt::Display) -> Self {
        Self::bad_request("invalid_request", format!("{field}: {problem}"))
    }

    pub fn not_found(what: &str) -> Self {
        Self::NotFound(format!("{what} not found"))
    }

    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest { .. } => 400,
            Self::Unauthorized(_) => 401,
            Self::NotFound(_) => 404,
            Self::Conflict { .. } => 409,
            Self::Unavailable(_) => 503,
            Self::Unexpected(_) => 500,
        }
    }

    pub fn code(&self) -> &str {
        match self {
            Self::BadRequest { code, .. } | Self::Conflict { code, .. } => code,
            Self::Unauthorized(_) => "unauthorized",
            Self::NotFound(_) => "not_found",
            Self::Unavailable(_) => "service_unavailable",
            Self::Unexpected(_) => "internal_error",
        }
    }

    /// What the client reads. Unexpected errors say nothing about their cause.
    pub fn body(&self) -> StandardError {
        let message = match self {
            Self::Unexpected(_) => "internal error".to_owned(),
            other => other.to_string(),
        };
        StandardError {
            status: Some(self.status()),
            code: Some(self.code().to_owned()),
            message,
        }
    }

    /// Logs the error once, at the edge: unexpected ones with their whole cause chain.
    pub fn log(&self) {
        match self {
            Self::Unexpected(e) => tracing::error!(error = format!("{e:#}"), "unexpected error"),
            Self::Unavailable(m) => tracing::warn!(error = %m, "dependency unavailable"),
            other => {
                tracing::info!(status = other.status(), code = other.code(), message = %other, "request rejected")
            }
        }
    }
}

#[cfg(feature = "db")]
impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        if crate::db::is_unavailable(&e) {
            Self::Unavailable("database unavailable".into())
        } else {
            Self::Unexpected(anyhow::Error::new(e).context("database query failed"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn every_kind_maps_to_its_status() {
        let cases: Vec<(ApiError, u16)> = vec![
            (ApiError::bad_request("invalid_cursor", "x"), 400),
            (ApiError::Unauthorized("x".into()), 401),
            (ApiError::not_found("memory"), 404),
            (
                ApiError::Conflict {
                    code: "conflict".into(),
                    message: "x".into(),
                },
                409,
            ),
            (ApiError::Unavailable("x".into()), 503),
            (ApiError::Unexpected(anyhow::anyhow!("boom")), 500),
        ];
        for (err, status) in cases {
            assert_eq!(err.status(), status, "{err:?}");
            assert_eq!(err.body().status, Some(status));
        }
    }

    #[test]
    fn unexpected_errors_leak_nothing_to_the_client() {
        let err: ApiError = Err::<(), _>(anyhow::anyhow!("password=hunter2 rejected"))
            .context("connecting")
            .unwrap_err()
            .into();
        let body = serde_json::to_string(&err.body()).unwrap();
        assert_eq!(
            body,
            r#"{"status":500,"code":"internal_error","message":"internal error"}"#
        );
    }

    #[test]
    fn the_body_omits_absent_fields() {
        let body = StandardError {
            status: None,
            code: None,
            message: "Unauthorized".into(),
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"message":"Unauthorized"}"#
        );
    }

    #[cfg(feature = "db")]
    #[test]
    fn a_pool_timeout_is_a_503_not_a_500() {
        let err: ApiError = sqlx::Error::PoolTimedOut.into();
        assert_eq!(err.status(), 503);
    }
}

/// An event function's failure as Lambda reports it. Every event function spells its
/// `errorType` `Retryable.<Kind>` or `NotRetryable.<Kind>`, so one log filter or metric
/// finds every failure a redelivery could fix. Implement it on the function's error enum
/// and convert with [`diagnostic`].
pub trait EventFailure: std::fmt::Display {
    /// Whether delivering the same event again could succeed.
    fn retryable(&self) -> bool;
    /// The failure's kind, in UpperCamelCase (`Unavailable`, `InvalidEvent`, ...).
    fn kind(&self) -> &'static str;
    /// What the invoker is shown (Cognito shows it to the person signing in): the
    /// `Display` text unless a function must hide its causes.
    fn message(&self) -> String {
        self.to_string()
    }
}

/// `Retryable.<Kind>` or `NotRetryable.<Kind>`.
pub fn error_type(e: &impl EventFailure) -> String {
    let class = if e.retryable() {
        "Retryable"
    } else {
        "NotRetryable"
    };
    format!("{class}.{}", e.kind())
}

/// The `Diagnostic` Lambda reports for an event function's failure.
pub fn diagnostic(e: &impl EventFailure) -> lambda_runtime::Diagnostic {
    lambda_runtime::Diagnostic {
        error_type: error_type(e),
        error_message: e.message(),
    }
}

#[cfg(test)]
mod event_failure_tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum Failure {
        #[error("down")]
        Down,
        #[error("bad")]
        Bad,
    }

    impl EventFailure for Failure {
        fn retryable(&self) -> bool {
            matches!(self, Self::Down)
        }
        fn kind(&self) -> &'static str {
            match self {
                Self::Down => "Unavailable",
                Self::Bad => "InvalidEvent",
            }
        }
    }

    #[test]
    fn the_error_type_says_retryable_or_not_retryable_then_the_kind() {
        assert_eq!(
            diagnostic(&Failure::Down).error_type,
            "Retryable.Unavailable"
        );
        assert_eq!(error_type(&Failure::Bad), "NotRetryable.InvalidEvent");
        assert_eq!(diagnostic(&Failure::Bad).error_message, "bad");
    }
}
