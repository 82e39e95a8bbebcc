//! What the rotation reads once at cold start: where the database is, the login role it
//! rotates (the one it logs in as), and the two SecureStrings.

use encache_shared::config::{ConfigError, Env};
use encache_shared::db::{DbLimits, RootCert, parts_options};
use sqlx::postgres::PgConnectOptions;

#[derive(Debug, Clone)]
pub struct RotationSettings {
    pub host: String,
    pub port: u16,
    pub name: String,
    /// The functions' login role: the rotation logs in as it and changes its own password.
    pub user: String,
    /// `DB_PASSWORD_PARAMETER`: the current password, what every function reads.
    pub current_parameter: String,
    /// `DB_PASSWORD_PENDING_PARAMETER`: the next one, while a rotation runs.
    pub pending_parameter: String,
    /// `DB_PASSWORD_KEY_ID`: the KMS key both SecureStrings are written under (the
    /// environment's data key); SSM's default key when unset (local runs).
    pub key_id: Option<String>,
    pub root: RootCert,
    pub limits: DbLimits,
}

impl RotationSettings {
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let settings = Self {
            host: env.required("DB_HOST")?,
            port: env.parsed("DB_PORT", 5432)?,
            name: env.required("DB_NAME")?,
            user: env.required("DB_USER")?,
            current_parameter: env.required("DB_PASSWORD_PARAMETER")?,
            pending_parameter: env.required("DB_PASSWORD_PENDING_PARAMETER")?,
            key_id: env.optional("DB_PASSWORD_KEY_ID"),
            root: RootCert::from_env(env),
            limits: DbLimits::from_env(env)?,
        };
        if settings.pending_parameter == settings.current_parameter {
            return Err(ConfigError::Invalid {
                name: "DB_PASSWORD_PENDING_PARAMETER".into(),
                reason: "must name another parameter than DB_PASSWORD_PARAMETER".into(),
            });
        }
        Ok(settings)
    }

    /// A connection as the login role with `password`: verified TLS, as every function's.
    pub fn options(&self, password: &str) -> PgConnectOptions {
        self.limits.apply(parts_options(
            &self.host, self.port, &self.name, &self.user, password, &self.root,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use encache_shared::config::pairs;

    #[test]
    fn the_pending_parameter_is_required_and_distinct() {
        let base = [
            ("DB_HOST", "h"),
            ("DB_NAME", "n"),
            ("DB_USER", "encache_fn"),
            ("DB_PASSWORD_PARAMETER", "/encache/dev/db/app-password"),
        ];
        let missing = pairs(&base);
        assert_eq!(
            RotationSettings::from_env(&Env::new(&missing)).unwrap_err(),
            ConfigError::Missing("DB_PASSWORD_PENDING_PARAMETER".into())
        );
        let mut same = base.to_vec();
        same.push((
            "DB_PASSWORD_PENDING_PARAMETER",
            "/encache/dev/db/app-password",
        ));
        let same = pairs(&same);
        assert!(RotationSettings::from_env(&Env::new(&same)).is_err());
    }
}
