//! The functions' login role: after the migrations (which create the privileges' group
//! role `encache_app`), the role named by `DB_APP_USER` is created or updated to LOGIN,
//! a member of `encache_app` and nothing more, with the password from the SSM
//! SecureString `DB_APP_PASSWORD_PARAMETER`. Every deploy sets it again, so a password
//! rotated in SSM (`secrets_version`) reaches the database with the next deploy; warm
//! functions holding the old one re-read SSM on their next authentication failure
//! (`encache_shared::db::Database`). The scheduled rotation (functions/db-rotation)
//! changes it between deploys; the next deploy then sets the same value again.
//!
//! The password never travels as text: the statement carries its SCRAM-SHA-256 verifier
//! (`encache_shared::scram`), so `log_statement = 'ddl'` (the devops/ default) logs a
//! salted hash, never the password.

use encache_shared::aws::SecretCache;
use encache_shared::config::{ConfigError, Env, Secret};
use encache_shared::scram;
use sqlx::PgPool;

use crate::error::SchemaError;

/// The privileges' group role the migrations create and grant to (migrations/).
pub const GROUP_ROLE: &str = "encache_app";

/// Where the login role's name and password come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginSettings {
    pub user: String,
    pub password_parameter: String,
}

impl LoginSettings {
    /// `None` without `DB_APP_USER` (a database whose functions log in as its owner:
    /// the local stack's superuser URL); with it, the parameter name is required.
    pub fn from_env(env: &Env<'_>) -> Result<Option<Self>, ConfigError> {
        let Some(user) = env.optional("DB_APP_USER") else {
            return Ok(None);
        };
        Ok(Some(Self {
            user,
            password_parameter: env.required("DB_APP_PASSWORD_PARAMETER")?,
        }))
    }
}

/// A login role ready to be set: its name and where its password comes from.
pub struct Login {
    pub user: String,
    pub password: Password,
}

/// The login role's password: read from SSM when it is set (never from a container's
/// cache: a scheduled rotation may have changed it since), or given (tests).
pub enum Password {
    Ssm {
        secrets: SecretCache,
        parameter: String,
    },
    Given(Secret<String>),
}

impl From<Secret<String>> for Password {
    fn from(password: Secret<String>) -> Self {
        Self::Given(password)
    }
}

impl Password {
    async fn read(&self) -> Result<Secret<String>, SchemaError> {
        match self {
            Self::Given(password) => Ok(password.clone()),
            Self::Ssm { secrets, parameter } => {
                secrets.forget(parameter).await;
                secrets.get(parameter).await.map_err(|e| {
                    SchemaError::Unavailable(format!("the functions' login role: {e:#}"))
                })
            }
        }
    }
}

/// The lock every change of the login role's password takes (a transaction's here, the
/// rotation's session-long one: the same key).
const LOCK: &str = "SELECT pg_advisory_xact_lock(hashtext('encache login role'))";

/// Creates the login role or updates it (LOGIN, its password, membership of
/// [`GROUP_ROLE`]) in one transaction; idempotent.
pub async fn ensure(pool: &PgPool, login: &Login) -> Result<(), SchemaError> {
    if login.user == GROUP_ROLE || login.user.is_empty() {
        return Err(SchemaError::Failed(format!(
            "DB_APP_USER must name a login role other than {GROUP_ROLE} (the privileges' group)"
        )));
    }
    let mut tx = pool.begin().await?;
    // Two deploys racing: the second waits here instead of failing on CREATE ROLE. A
    // rotation (functions/db-rotation) holds the same lock from its first step to its
    // last: the password is read from SSM only once the lock is ours, so it is the one a
    // finished rotation left as current, never one it has replaced since.
    sqlx::query(LOCK).execute(&mut *tx).await?;
    let verifier = scram::salted_verifier(login.password.read().await?.expose());
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
            .bind(&login.user)
            .fetch_one(&mut *tx)
            .await?;
    // format(): %I quotes the name, %L the verifier, server-side. (NOSUPERUSER and the
    // like need a superuser, which RDS's master is not; a role this code made has none.)
    let statements = [
        if exists {
            "SELECT format('ALTER ROLE %I WITH LOGIN INHERIT NOCREATEDB NOCREATEROLE PASSWORD %L', $1::text, $2::text)"
        } else {
            "SELECT format('CREATE ROLE %I WITH LOGIN INHERIT PASSWORD %L', $1::text, $2::text)"
        },
        "SELECT format('GRANT %I TO %I', $2::text, $1::text)",
    ];
    for (sql, second) in statements.iter().zip([verifier.as_str(), GROUP_ROLE]) {
        let statement: String = sqlx::query_scalar(*sql)
            .bind(&login.user)
            .bind(second)
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_need_the_parameter_once_a_user_is_named() {
        let none = |_: &str| None;
        assert_eq!(LoginSettings::from_env(&Env::new(&none)).unwrap(), None);
        let user_only = |k: &str| (k == "DB_APP_USER").then(|| "encache_fn".to_string());
        assert_eq!(
            LoginSettings::from_env(&Env::new(&user_only)).unwrap_err(),
            ConfigError::Missing("DB_APP_PASSWORD_PARAMETER".into())
        );
    }
}
