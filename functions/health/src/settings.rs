//! Every environment variable the health function reads (the database's own, `DATABASE_URL`
//! or `DB_*`, are read by `encache_shared::db::pool_from_env`).

use std::time::Duration;

use encache_shared::config::{ConfigError, Env};
use encache_shared::db::step_timeout;

/// Well under the function's 5 s timeout, so a dead database is a clear 503 rather than a
/// gateway timeout.
pub const DEFAULT_DB_TIMEOUT: Duration = Duration::from_millis(1500);

#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// How long the database may take to answer (`DB_TIMEOUT_MS`).
    pub db_timeout: Duration,
}

impl Settings {
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            db_timeout: step_timeout(env, DEFAULT_DB_TIMEOUT)?,
        })
    }
}
