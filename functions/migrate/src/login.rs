//! The functions' login role: after the migrations (which create the privileges' group
//! role `encache_app`), the role named by `DB_APP_USER` is created or updated to LOGIN,
//! a member of `encache_app` and nothing more, with the password from the SSM
//! SecureString `DB_APP_PASSWORD_PARAMETER`. Every deploy sets it again, so a password
//! rotated in SSM (`secrets_version`) reaches the database with the next deploy; warm
//! functions holding the old one re-read SSM on their next authentication failure
//! (`encache_shared::db::Database`).
//!
//! The password never travels as text: the statement carries its SCRAM-SHA-256 verifier
//! (RFC 5802 / 7677, PostgreSQL's `rolpassword` format), so `log_statement = 'ddl'` (the
//! devops/ default) logs a salted hash, never the password.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use encache_shared::config::{ConfigError, Env, Secret};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::error::SchemaError;

/// The privileges' group role the migrations create and grant to (migrations/).
pub const GROUP_ROLE: &str = "encache_app";

/// PostgreSQL's default `scram_iterations`.
const ITERATIONS: u32 = 4096;

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

/// A login role ready to be set: its name and password.
pub struct Login {
    pub user: String,
    pub password: Secret<String>,
}

/// Creates the login role or updates it (LOGIN, its password, membership of
/// [`GROUP_ROLE`]) in one transaction; idempotent.
pub async fn ensure(pool: &PgPool, login: &Login) -> Result<(), SchemaError> {
    if login.user == GROUP_ROLE || login.user.is_empty() {
        return Err(SchemaError::Failed(format!(
            "DB_APP_USER must name a login role other than {GROUP_ROLE} (the privileges' group)"
        )));
    }
    let verifier = scram_verifier(login.password.expose(), uuid::Uuid::new_v4().as_bytes());
    let mut tx = pool.begin().await?;
    // Two deploys racing: the second waits here instead of failing on CREATE ROLE.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('encache login role'))")
        .execute(&mut *tx)
        .await?;
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

/// The SCRAM-SHA-256 verifier PostgreSQL stores for `password` with `salt`:
/// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (RFC 5803's format).
/// The password is used as given (SASLprep leaves the generated ASCII ones unchanged).
pub fn scram_verifier(password: &str, salt: &[u8]) -> String {
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, ITERATIONS, &mut salted);
    let hmac = |msg: &[u8]| {
        let mut mac = Hmac::<Sha256>::new_from_slice(&salted).expect("HMAC takes any key length");
        mac.update(msg);
        mac.finalize().into_bytes()
    };
    let stored_key = Sha256::digest(hmac(b"Client Key"));
    let server_key = hmac(b"Server Key");
    format!(
        "SCRAM-SHA-256${ITERATIONS}:{}${}:{}",
        STANDARD.encode(salt),
        STANDARD.encode(stored_key),
        STANDARD.encode(server_key)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verifier_has_postgresqls_shape_and_never_the_password() {
        let v = scram_verifier("correct horse", b"0123456789abcdef");
        assert!(
            v.starts_with("SCRAM-SHA-256$4096:MDEyMzQ1Njc4OWFiY2RlZg==$"),
            "{v}"
        );
        assert!(!v.contains("correct horse"));
        let (_, keys) = v.rsplit_once('$').unwrap();
        let (stored, server) = keys.split_once(':').unwrap();
        assert_eq!(STANDARD.decode(stored).unwrap().len(), 32);
        assert_eq!(STANDARD.decode(server).unwrap().len(), 32);
        // Salted: the same password gives another verifier with another salt.
        assert_ne!(v, scram_verifier("correct horse", b"fedcba9876543210"));
    }

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
