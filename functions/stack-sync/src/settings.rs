//! The function's typed settings, read once at cold start.

use encache_shared::config::{ConfigError, Env};

use crate::contract::Contract;
use crate::plan::validate_level;

#[derive(Debug, Clone)]
pub struct Settings {
    /// `ENCACHE_ENV`: selects `/encache/{env}/stack/`.
    pub env: String,
    /// `STACK_NAME`: the one stack whose events are acted on.
    pub stack_name: String,
    pub contract: Contract,
}

impl Settings {
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let settings = Self {
            env: env.required("ENCACHE_ENV")?,
            stack_name: env.required("STACK_NAME")?,
            contract: Contract::load().map_err(|e| ConfigError::Invalid {
                name: "contracts/stack-outputs.json".into(),
                reason: format!("{e:#}"),
            })?,
        };
        check_env_name(&settings.env).map_err(|reason| ConfigError::Invalid {
            name: "ENCACHE_ENV".into(),
            reason,
        })?;
        Ok(settings)
    }
}

/// The environment becomes one level of every parameter name (the CLI's `--env` too).
pub fn check_env_name(env: &str) -> Result<(), String> {
    validate_level(env)
        .map_err(|e| format!("{env:?} cannot be a level of a parameter name: it {e}"))
}
