//! Typed settings for the three upload functions, read once at cold start: every
//! environment variable the upload functions read is read here.

use std::time::Duration;

use encache_shared::config::{ConfigError, Env};
use encache_shared::db::step_timeout;

/// Media types accepted when `UPLOAD_ALLOWED_CONTENT_TYPES` is not set.
pub const DEFAULT_ALLOWED_CONTENT_TYPES: &[&str] = &[
    "image/jpeg",
    "image/png",
    "image/heic",
    "image/webp",
    "image/gif",
    "video/mp4",
    "video/quicktime",
    "audio/mpeg",
    "audio/mp4",
    "audio/wav",
    "application/pdf",
    "text/plain",
];

/// The API's default bound on each database step: a clear 503 well inside the
/// function's timeout when the database does not answer.
pub const API_DB_TIMEOUT: Duration = Duration::from_secs(3);

/// `POST /v1/memories/uploads`.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    pub bucket: String,
    /// Lower-case media types, compared exactly after lower-casing the request's.
    pub allowed_content_types: Vec<String>,
    pub max_size_bytes: i64,
    /// How long the presigned PUT (and the pending memory) stays valid.
    pub url_expiry: Duration,
    /// The most each database step may take (`DB_TIMEOUT_MS`, [`API_DB_TIMEOUT`] by
    /// default): a clear 503 instead of the gateway's timeout when the database does not
    /// answer.
    pub db_timeout: Duration,
}

impl ApiSettings {
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let mut allowed: Vec<String> = env
            .list("UPLOAD_ALLOWED_CONTENT_TYPES")
            .into_iter()
            .map(|t| t.to_ascii_lowercase())
            .collect();
        if allowed.is_empty() {
            allowed = DEFAULT_ALLOWED_CONTENT_TYPES
                .iter()
                .map(|t| (*t).to_owned())
                .collect();
        }
        let max_size_bytes: i64 = env.parsed("UPLOAD_MAX_SIZE_BYTES", 100 * 1024 * 1024)?;
        if max_size_bytes <= 0 {
            return Err(invalid("UPLOAD_MAX_SIZE_BYTES", "must be positive"));
        }
        let expiry_seconds: u64 = env.parsed("UPLOAD_URL_EXPIRY_SECONDS", 15 * 60)?;
        // SigV4 presigned URLs live at most 7 days.
        if !(1..=7 * 24 * 3600).contains(&expiry_seconds) {
            return Err(invalid(
                "UPLOAD_URL_EXPIRY_SECONDS",
                "must be between 1 and 604800",
            ));
        }
        Ok(Self {
            bucket: env.required("UPLOAD_BUCKET")?,
            allowed_content_types: allowed,
            max_size_bytes,
            url_expiry: Duration::from_secs(expiry_seconds),
            db_timeout: step_timeout(env, API_DB_TIMEOUT)?,
        })
    }
}

/// The S3 completion handler.
#[derive(Debug, Clone)]
pub struct CompleteSettings {
    /// Records for any other bucket are ignored: this function never touches them.
    pub bucket: String,
    /// Records processed at once; each holds at most one database connection.
    pub concurrency: usize,
}

impl CompleteSettings {
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let concurrency: usize = env.parsed("UPLOAD_COMPLETE_CONCURRENCY", 8)?;
        if concurrency == 0 {
            return Err(invalid("UPLOAD_COMPLETE_CONCURRENCY", "must be positive"));
        }
        Ok(Self {
            bucket: env.required("UPLOAD_BUCKET")?,
            concurrency,
        })
    }
}

/// The expiry sweep.
#[derive(Debug, Clone, Copy)]
pub struct ExpirySettings {
    /// Extra time past `upload_expires_at` before a pending memory expires, so a PUT
    /// that started just before the deadline can still complete.
    pub grace: Duration,
    /// Rows expired per statement; the sweep loops until none are left.
    pub batch_size: i64,
}

impl ExpirySettings {
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let grace_seconds: u64 = env.parsed("UPLOAD_EXPIRY_GRACE_SECONDS", 300)?;
        let batch_size: i64 = env.parsed("UPLOAD_EXPIRY_BATCH_SIZE", 500)?;
        if batch_size <= 0 {
            return Err(invalid("UPLOAD_EXPIRY_BATCH_SIZE", "must be positive"));
        }
        Ok(Self {
            grace: Duration::from_secs(grace_seconds),
            batch_size,
        })
    }
}

fn invalid(name: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        name: name.to_owned(),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(p: &[(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> + use<> {
        encache_shared::config::pairs(p)
    }

    #[test]
    fn the_upload_window_defaults_to_fifteen_minutes() {
        let src = env_of(&[("UPLOAD_BUCKET", "b")]);
        let s = ApiSettings::from_env(&Env::new(&src)).unwrap();
        assert_eq!(s.url_expiry, Duration::from_secs(900));
        assert!(s.allowed_content_types.contains(&"image/jpeg".to_owned()));
    }

    #[test]
    fn the_database_bound_is_db_timeout_ms_three_seconds_by_default() {
        let src = env_of(&[("UPLOAD_BUCKET", "b")]);
        let s = ApiSettings::from_env(&Env::new(&src)).unwrap();
        assert_eq!(s.db_timeout, Duration::from_secs(3));
        let src = env_of(&[("UPLOAD_BUCKET", "b"), ("DB_TIMEOUT_MS", "750")]);
        let s = ApiSettings::from_env(&Env::new(&src)).unwrap();
        assert_eq!(s.db_timeout, Duration::from_millis(750));
    }

    #[test]
    fn the_allowlist_and_maximum_come_from_the_environment() {
        let src = env_of(&[
            ("UPLOAD_BUCKET", "b"),
            ("UPLOAD_ALLOWED_CONTENT_TYPES", "Image/PNG, text/plain"),
            ("UPLOAD_MAX_SIZE_BYTES", "1024"),
            ("UPLOAD_URL_EXPIRY_SECONDS", "60"),
        ]);
        let s = ApiSettings::from_env(&Env::new(&src)).unwrap();
        assert_eq!(s.allowed_content_types, vec!["image/png", "text/plain"]);
        assert_eq!(s.max_size_bytes, 1024);
        assert_eq!(s.url_expiry, Duration::from_secs(60));
    }

    #[test]
    fn a_missing_bucket_is_named() {
        let src = env_of(&[]);
        let err = ApiSettings::from_env(&Env::new(&src)).unwrap_err();
        assert_eq!(err, ConfigError::Missing("UPLOAD_BUCKET".into()));
    }

    #[test]
    fn an_expiry_beyond_seven_days_is_rejected() {
        let src = env_of(&[
            ("UPLOAD_BUCKET", "b"),
            ("UPLOAD_URL_EXPIRY_SECONDS", "604801"),
        ]);
        assert!(ApiSettings::from_env(&Env::new(&src)).is_err());
    }
}
