//! The forwarder's typed settings, read once at cold start.

use std::time::Duration;

use encache_shared::config::{ConfigError, Env};

use crate::discord::RetryPolicy;
use crate::store::IdempotencySettings;

#[derive(Debug, Clone)]
pub struct Settings {
    /// Name (never the value) of the SSM SecureString holding the Discord webhook URL.
    pub webhook_parameter: String,
    /// A Discord role to ping on every alert; none means no mention can ever ping.
    pub mention_role_id: Option<String>,
    /// How long the Budgets API may take before the alert goes out without its details.
    pub enrichment_timeout: Duration,
    /// The account whose budgets are described when neither the message nor the topic
    /// names one (the digest, mostly).
    pub account_id: Option<String>,
    pub retry: RetryPolicy,
    pub idempotency: IdempotencySettings,
}

impl Settings {
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let mention_role_id = env.optional("DISCORD_MENTION_ROLE_ID");
        if let Some(role) = &mention_role_id
            && !role.chars().all(|c| c.is_ascii_digit())
        {
            return Err(ConfigError::Invalid {
                name: "DISCORD_MENTION_ROLE_ID".into(),
                reason: format!("{role:?} is not a Discord snowflake (digits only)"),
            });
        }
        Ok(Self {
            webhook_parameter: env.required("DISCORD_WEBHOOK_PARAMETER")?,
            mention_role_id,
            enrichment_timeout: env
                .millis("BUDGETS_ENRICHMENT_TIMEOUT_MS", Duration::from_millis(2000))?,
            account_id: env.optional("BUDGETS_ACCOUNT_ID"),
            retry: RetryPolicy {
                max_attempts: env.parsed("DISCORD_MAX_ATTEMPTS", 4)?,
                base_backoff: env.millis("DISCORD_BACKOFF_BASE_MS", Duration::from_millis(500))?,
                ..RetryPolicy::default()
            },
            idempotency: IdempotencySettings {
                table: env.required("IDEMPOTENCY_TABLE")?,
                record_ttl: Duration::from_secs(24 * 3600),
                // Longer than the function's 30 s timeout: a live claim is never overtaken.
                in_progress_timeout: env.millis(
                    "IDEMPOTENCY_IN_PROGRESS_TIMEOUT_MS",
                    Duration::from_secs(60),
                )?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_id_that_is_not_a_snowflake_is_rejected() {
        let src = |k: &str| match k {
            "DISCORD_WEBHOOK_PARAMETER" => Some("/encache/dev/cost-alerts/discord-webhook".into()),
            "DISCORD_MENTION_ROLE_ID" => Some("@everyone".into()),
            "IDEMPOTENCY_TABLE" => Some("encache-dev-cost-alert-idempotency".into()),
            _ => None,
        };
        let err = Settings::from_env(&Env::new(&src)).unwrap_err();
        assert!(err.to_string().contains("DISCORD_MENTION_ROLE_ID"), "{err}");
    }

    #[test]
    fn the_webhook_parameter_name_is_required() {
        let src = |_: &str| None;
        assert_eq!(
            Settings::from_env(&Env::new(&src)).unwrap_err(),
            ConfigError::Missing("DISCORD_WEBHOOK_PARAMETER".into())
        );
    }
}
