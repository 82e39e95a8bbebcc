//! Every environment variable the auth functions read, read once at cold start.
//!
//! The database step bound is `DB_TIMEOUT_MS` in every function, each with its own
//! default: Cognito gives a trigger 5 s, so the triggers stay well under that.

use std::time::Duration;

use encache_shared::config::{ConfigError, Env};
use encache_shared::db::step_timeout;

use crate::policy::SignUpPolicy;

/// Post-confirmation's default: 2.5 s for the upsert, connecting included (half of
/// Cognito's 5 s).
pub const POST_CONFIRMATION_DB_TIMEOUT: Duration = Duration::from_millis(2500);
/// Pre-token-generation's default: 1 s for the claim lookup, connecting included; it runs
/// on every sign-in and refresh.
pub const PRE_TOKEN_GENERATION_DB_TIMEOUT: Duration = Duration::from_millis(1000);
/// `/v1/me`'s default, per database step.
pub const ME_DB_TIMEOUT: Duration = Duration::from_millis(2000);

/// A trigger's settings: how long its database step may take, connecting included.
#[derive(Debug, Clone, Copy)]
pub struct TriggerSettings {
    pub db_timeout: Duration,
}

impl TriggerSettings {
    pub fn post_confirmation(env: &Env<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            db_timeout: step_timeout(env, POST_CONFIRMATION_DB_TIMEOUT)?,
        })
    }

    pub fn pre_token_generation(env: &Env<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            db_timeout: step_timeout(env, PRE_TOKEN_GENERATION_DB_TIMEOUT)?,
        })
    }
}

/// `GET/DELETE /v1/me`.
#[derive(Debug, Clone)]
pub struct MeSettings {
    /// The most each database step may take, connecting included (`DB_TIMEOUT_MS`).
    pub db_timeout: Duration,
    /// The upload bucket, where the caller's memories' objects live (`UPLOAD_BUCKET`).
    pub bucket: String,
}

impl MeSettings {
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            db_timeout: step_timeout(env, ME_DB_TIMEOUT)?,
            bucket: env.required("UPLOAD_BUCKET")?,
        })
    }
}

impl SignUpPolicy {
    /// `ALLOWED_EMAIL_DOMAINS` / `BLOCKED_EMAIL_DOMAINS` (comma-separated; a domain also
    /// covers its subdomains; an empty allow-list allows every domain that is not
    /// blocked), `AUTO_CONFIRM_USERS` and `AUTO_VERIFY_EMAIL` (booleans, default false).
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let allowed_domains = domains(env, "ALLOWED_EMAIL_DOMAINS")?;
        let blocked_domains = domains(env, "BLOCKED_EMAIL_DOMAINS")?;
        // A domain on both lists is a configuration mistake, not a policy.
        if let Some(both) = allowed_domains.iter().find(|d| blocked_domains.contains(d)) {
            return Err(ConfigError::Invalid {
                name: "BLOCKED_EMAIL_DOMAINS".into(),
                reason: format!("{both} is also in ALLOWED_EMAIL_DOMAINS"),
            });
        }
        Ok(Self {
            allowed_domains,
            blocked_domains,
            auto_confirm_users: env.flag("AUTO_CONFIRM_USERS", false)?,
            auto_verify_email: env.flag("AUTO_VERIFY_EMAIL", false)?,
        })
    }
}

fn domains(env: &Env<'_>, name: &str) -> Result<Vec<String>, ConfigError> {
    env.list(name)
        .into_iter()
        .map(|raw| {
            let d = raw.trim_start_matches('@').to_ascii_lowercase();
            let valid = !d.is_empty()
                && d.split('.').all(|l| !l.is_empty())
                && d.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
            if valid {
                Ok(d)
            } else {
                Err(ConfigError::Invalid {
                    name: name.to_owned(),
                    reason: format!("{raw:?} is not a domain"),
                })
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(p: &[(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> + use<> {
        encache_shared::config::pairs(p)
    }

    #[test]
    fn the_upload_bucket_is_required_and_the_database_bound_defaults_to_two_seconds() {
        let missing = |_: &str| None;
        assert_eq!(
            MeSettings::from_env(&Env::new(&missing)).unwrap_err(),
            ConfigError::Missing("UPLOAD_BUCKET".into())
        );
        let set = |k: &str| (k == "UPLOAD_BUCKET").then(|| "encache-dev-uploads".to_owned());
        let settings = MeSettings::from_env(&Env::new(&set)).unwrap();
        assert_eq!(settings.bucket, "encache-dev-uploads");
        assert_eq!(settings.db_timeout, Duration::from_secs(2));
    }

    #[test]
    fn each_trigger_has_its_own_default_bound_and_db_timeout_ms_overrides_it() {
        let unset = env_of(&[]);
        let env = Env::new(&unset);
        assert_eq!(
            TriggerSettings::post_confirmation(&env).unwrap().db_timeout,
            Duration::from_millis(2500)
        );
        assert_eq!(
            TriggerSettings::pre_token_generation(&env)
                .unwrap()
                .db_timeout,
            Duration::from_millis(1000)
        );
        let set = env_of(&[("DB_TIMEOUT_MS", "700")]);
        assert_eq!(
            TriggerSettings::post_confirmation(&Env::new(&set))
                .unwrap()
                .db_timeout,
            Duration::from_millis(700)
        );
    }
}
