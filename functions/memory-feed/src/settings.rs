//! Every environment variable the memory feed reads (the database's and the cursor key's
//! are read by `encache_shared::db` and `encache_shared::pagination`).

use std::time::Duration;

use encache_shared::config::{ConfigError, Env};
use encache_shared::db::step_timeout;

/// The most the database may take per request unless `DB_TIMEOUT_MS` says otherwise: a
/// clear 503 well inside the function's 5 s timeout.
pub const DEFAULT_DB_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone)]
pub struct Settings {
    /// The bucket the memories' objects live in (`UPLOAD_BUCKET`).
    pub bucket: String,
    /// How long a download URL stays valid (`DOWNLOAD_URL_TTL_SECONDS`, 1..=3600).
    pub download_ttl: Duration,
    /// The most the database may take per request (`DB_TIMEOUT_MS`).
    pub db_timeout: Duration,
}

impl Settings {
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let ttl: u64 = env.parsed("DOWNLOAD_URL_TTL_SECONDS", 300)?;
        if !(1..=3600).contains(&ttl) {
            return Err(ConfigError::Invalid {
                name: "DOWNLOAD_URL_TTL_SECONDS".into(),
                reason: "must be from 1 to 3600".into(),
            });
        }
        Ok(Self {
            bucket: env.required("UPLOAD_BUCKET")?,
            download_ttl: Duration::from_secs(ttl),
            db_timeout: step_timeout(env, DEFAULT_DB_TIMEOUT)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(p: &[(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> + use<> {
        encache_shared::config::pairs(p)
    }

    #[test]
    fn settings_need_the_bucket_and_default_to_a_five_minute_download_url() {
        let src = env_of(&[("UPLOAD_BUCKET", "encache-dev-uploads")]);
        let settings = Settings::from_env(&Env::new(&src)).unwrap();
        assert_eq!(settings.bucket, "encache-dev-uploads");
        assert_eq!(settings.download_ttl, Duration::from_secs(300));

        let none = env_of(&[]);
        assert_eq!(
            Settings::from_env(&Env::new(&none)).unwrap_err(),
            ConfigError::Missing("UPLOAD_BUCKET".into())
        );
    }

    #[test]
    fn a_download_url_lifetime_over_an_hour_is_refused() {
        let src = env_of(&[
            ("UPLOAD_BUCKET", "b"),
            ("DOWNLOAD_URL_TTL_SECONDS", "86400"),
        ]);
        assert!(Settings::from_env(&Env::new(&src)).is_err());
    }
}
