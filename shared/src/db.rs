//! One PostgreSQL pool per Lambda container, connected lazily and bounded in time.

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};

use crate::config::{ConfigError, Env, Secret};

/// The schema, embedded in every binary that needs it.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// Where the password comes from when there is no `DATABASE_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbLocation {
    Url(Secret<String>),
    Parts {
        host: String,
        port: u16,
        name: String,
        user: String,
        /// SSM SecureString parameter name holding the password.
        password_parameter: String,
    },
}

impl DbLocation {
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        if let Some(url) = env.optional("DATABASE_URL") {
            return Ok(Self::Url(Secret::new(url)));
        }
        Ok(Self::Parts {
            host: env.required("DB_HOST")?,
            port: env.parsed("DB_PORT", 5432)?,
            name: env.required("DB_NAME")?,
            user: env.required("DB_USER")?,
            password_parameter: env.required("DB_PASSWORD_PARAMETER")?,
        })
    }
}

/// Timeouts and pool size, shared by every database-backed function.
#[derive(Debug, Clone, Copy)]
pub struct DbLimits {
    pub acquire_timeout: Duration,
    pub statement_timeout: Duration,
    pub max_connections: u32,
}

impl DbLimits {
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            acquire_timeout: env.millis("DB_ACQUIRE_TIMEOUT_MS", Duration::from_secs(2))?,
            statement_timeout: env.millis("DB_STATEMENT_TIMEOUT_MS", Duration::from_secs(3))?,
            // One invocation at a time per container: two connections is plenty.
            max_connections: env.parsed("DB_MAX_CONNECTIONS", 2)?,
        })
    }
}

/// Builds the pool without connecting: the first query connects, within `acquire_timeout`.
pub fn lazy_pool(url: &Secret<String>, limits: DbLimits) -> Result<PgPool, sqlx::Error> {
    let options: PgConnectOptions = url.expose().parse()?;
    let statement_ms = limits.statement_timeout.as_millis().to_string();
    let options = options
        .options([("statement_timeout", statement_ms.as_str())])
        .application_name("encache");
    Ok(PgPoolOptions::new()
        .max_connections(limits.max_connections)
        .min_connections(0)
        .acquire_timeout(limits.acquire_timeout)
        .idle_timeout(Duration::from_secs(300))
        .connect_lazy_with(options))
}

/// Builds a URL from parts; the password is percent-encoded by the URL builder.
pub fn url_from_parts(
    host: &str,
    port: u16,
    name: &str,
    user: &str,
    password: &str,
) -> Secret<String> {
    let options = PgConnectOptions::new()
        .host(host)
        .port(port)
        .database(name)
        .username(user)
        .password(password);
    Secret::new(options.to_url_lossy().to_string())
}

/// Errors that mean "the database is not reachable right now": worth a 503 and a retry.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        // 57014: statement_timeout; 57P01..03: admin shutdown / cannot connect now; 53300: too many connections.
        sqlx::Error::Database(db) => matches!(
            db.code().as_deref(),
            Some("57014" | "57P01" | "57P02" | "57P03" | "53300")
        ),
        _ => false,
    }
}

/// A function's database: built at cold start without any I/O, connected on first use.
///
/// Cold start does only what it must: read the settings and build the lazy pool. The
/// password (an SSM SecureString when there is no `DATABASE_URL`) is read on the first
/// [`Database::pool`] call and the connection is opened by the first query, so a
/// transient SSM or database failure is a 503 / retryable error of that request, not a
/// failed init (which Lambda reports as `Runtime.InitError`, an API Gateway 502 without a
/// `StandardError` body, and retries on the next request anyway). The numbers that
/// decided it are in docs/benchmarks.md ("Cold start: what runs before the first
/// `next`").
pub struct Database {
    pool: tokio::sync::OnceCell<PgPool>,
    deferred: Option<Deferred>,
}

/// What the first [`Database::pool`] call needs when the password is in SSM.
struct Deferred {
    limits: DbLimits,
    host: String,
    port: u16,
    name: String,
    user: String,
    password_parameter: String,
    secrets: Option<crate::aws::SecretCache>,
    /// Without the function's cache, one of the database's own, made on first use and
    /// kept: a first attempt cut off by its time bound after the SSM read does not read
    /// the password again.
    own_secrets: tokio::sync::OnceCell<crate::aws::SecretCache>,
}

impl Database {
    /// Reads the settings; no I/O. A function that reads other secrets passes its
    /// `SecretCache` (one SSM client and cache per container); the others pass `None` and
    /// the SDK is loaded only if the password has to come from SSM.
    pub fn from_env(
        env: &Env<'_>,
        secrets: Option<&crate::aws::SecretCache>,
    ) -> anyhow::Result<Self> {
        use anyhow::Context;
        let limits = DbLimits::from_env(env)?;
        match DbLocation::from_env(env)? {
            DbLocation::Url(url) => Ok(Self::ready(
                lazy_pool(&url, limits).context("DATABASE_URL is not a valid PostgreSQL URL")?,
            )),
            DbLocation::Parts {
                host,
                port,
                name,
                user,
                password_parameter,
            } => Ok(Self {
                pool: tokio::sync::OnceCell::new(),
                deferred: Some(Deferred {
                    limits,
                    host,
                    port,
                    name,
                    user,
                    password_parameter,
                    secrets: secrets.cloned(),
                    own_secrets: tokio::sync::OnceCell::new(),
                }),
            }),
        }
    }

    /// A database whose pool already exists (tests, tools).
    pub fn ready(pool: PgPool) -> Self {
        Self {
            pool: tokio::sync::OnceCell::new_with(Some(pool)),
            deferred: None,
        }
    }

    /// The pool, after reading the password on the first call. An SSM failure is a
    /// `sqlx::Error::Io` ("database password unavailable"): the database is out of reach,
    /// so [`is_unavailable`] holds and callers answer 503 / retry as for a refused
    /// connection. The error names the parameter, never a value.
    pub async fn pool(&self) -> Result<&PgPool, sqlx::Error> {
        // Boxed: the SDK's config loader is a deep future, and every handler that awaits
        // the pool would otherwise carry its layout.
        type Init<'a> = std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<PgPool, sqlx::Error>> + Send + 'a>,
        >;
        self.pool
            .get_or_try_init(|| -> Init<'_> {
                Box::pin(async {
                    let d = self
                        .deferred
                        .as_ref()
                        .ok_or_else(|| sqlx::Error::Configuration("no database settings".into()))?;
                    let secrets = match &d.secrets {
                        Some(secrets) => secrets,
                        None => {
                            d.own_secrets
                                .get_or_init(|| async {
                                    crate::aws::SecretCache::from_sdk(
                                        &crate::aws::sdk_config().await,
                                    )
                                })
                                .await
                        }
                    };
                    let password = secrets.get(&d.password_parameter).await.map_err(|e| {
                        sqlx::Error::Io(std::io::Error::other(format!(
                            "database password unavailable: {e:#}"
                        )))
                    })?;
                    let url = url_from_parts(&d.host, d.port, &d.name, &d.user, password.expose());
                    lazy_pool(&url, d.limits)
                })
            })
            .await
    }
}

impl From<PgPool> for Database {
    fn from(pool: PgPool) -> Self {
        Self::ready(pool)
    }
}

/// The one setting for how long one database step may take, connecting included:
/// `DB_TIMEOUT_MS`, the same name in every function; each function passes its own default
/// (a Cognito trigger must answer inside Cognito's 5 s, a feed may take longer).
pub const STEP_TIMEOUT_VAR: &str = "DB_TIMEOUT_MS";

/// Reads [`STEP_TIMEOUT_VAR`], `default` when it is unset.
pub fn step_timeout(
    env: &Env<'_>,
    default: std::time::Duration,
) -> Result<std::time::Duration, ConfigError> {
    env.millis(STEP_TIMEOUT_VAR, default)
}

/// Why a bounded database step failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("the database did not answer within {} ms", .0.as_millis())]
    TimedOut(std::time::Duration),
    #[error(transparent)]
    Failed(#[from] sqlx::Error),
}

impl StepError {
    /// The database is out of reach (timed out, refused, overloaded): worth a retry / 503.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::TimedOut(_) => true,
            Self::Failed(e) => is_unavailable(e),
        }
    }
}

impl From<StepError> for crate::ApiError {
    fn from(e: StepError) -> Self {
        match e {
            StepError::TimedOut(_) => crate::ApiError::Unavailable(e.to_string()),
            StepError::Failed(e) => crate::ApiError::from(e),
        }
    }
}

/// Runs a database step within `limit`, whatever the pool's own timeouts are: a database
/// that does not answer in time is [`StepError::TimedOut`], whatever state its socket is in.
pub async fn within<T, F>(limit: std::time::Duration, step: F) -> Result<T, StepError>
where
    F: std::future::Future<Output = Result<T, sqlx::Error>>,
{
    match tokio::time::timeout(limit, step).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(StepError::TimedOut(limit)),
    }
}

/// [`within`] for HTTP handlers: unavailable is a 503 `service_unavailable`.
pub async fn bounded<T, F>(limit: std::time::Duration, step: F) -> Result<T, crate::ApiError>
where
    F: std::future::Future<Output = Result<T, sqlx::Error>>,
{
    within(limit, step).await.map_err(crate::ApiError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_url_wins_over_parts() {
        let src = |k: &str| match k {
            "DATABASE_URL" => Some("postgres://u@h/db".to_string()),
            "DB_HOST" => Some("ignored".to_string()),
            _ => None,
        };
        let loc = DbLocation::from_env(&Env::new(&src)).unwrap();
        assert!(matches!(loc, DbLocation::Url(_)));
    }

    #[test]
    fn parts_without_a_password_parameter_name_it() {
        let src = |k: &str| match k {
            "DB_HOST" | "DB_NAME" | "DB_USER" => Some("x".to_string()),
            _ => None,
        };
        let err = DbLocation::from_env(&Env::new(&src)).unwrap_err();
        assert_eq!(err, ConfigError::Missing("DB_PASSWORD_PARAMETER".into()));
    }

    #[test]
    fn passwords_with_url_characters_survive_the_url() {
        let url = url_from_parts("db.internal", 5432, "encache", "app", "p@ss/w:rd#1");
        let parsed: PgConnectOptions = url.expose().parse().unwrap();
        assert_eq!(parsed.get_host(), "db.internal");
        assert_eq!(parsed.get_database(), Some("encache"));
    }
}
