//! Every environment variable the conversation feed reads (the database's and the cursor
//! key's are read by `encache_shared::db` and `encache_shared::pagination`).

use std::time::Duration;

use encache_shared::config::{ConfigError, Env};
use encache_shared::db::step_timeout;

/// The most the database may take per request unless `DB_TIMEOUT_MS` says otherwise: a
/// clear 503 well inside the function's 5 s timeout.
pub const DEFAULT_DB_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// The most the database may take per request (`DB_TIMEOUT_MS`).
    pub db_timeout: Duration,
}

impl Settings {
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            db_timeout: step_timeout(env, DEFAULT_DB_TIMEOUT)?,
        })
    }
}
