//! One PostgreSQL pool per Lambda container, connected lazily and bounded in time.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};

use crate::config::{ConfigError, Env, Secret};

/// The schema, embedded in every binary that needs it.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// The Amazon RDS root CAs (every region's, unexpired; `scripts/rds-ca-bundle.py` writes
/// them): what a deployed function verifies the database's certificate against.
pub static RDS_CA_BUNDLE: &[u8] = include_bytes!("../certs/rds-ca-bundle.pem");

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
        /// The SecureString a rotation keeps the next password in while it runs
        /// (functions/db-rotation), tried when the current one is refused.
        pending_password_parameter: Option<String>,
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
            pending_password_parameter: env.optional("DB_PASSWORD_PENDING_PARAMETER"),
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
            // One invocation at a time per container, and no handler runs two queries at
            // once: one connection each, so reserved concurrency is the connection budget
            // (docs/operations.md, "Database connections").
            max_connections: env.parsed("DB_MAX_CONNECTIONS", 1)?,
        })
    }

    /// `options` with what every connection of a function sets: its statement timeout
    /// and its name in `pg_stat_activity`.
    pub fn apply(&self, options: PgConnectOptions) -> PgConnectOptions {
        let statement_ms = self.statement_timeout.as_millis().to_string();
        options
            .options([("statement_timeout", statement_ms.as_str())])
            .application_name("encache")
    }
}

/// Builds the pool without connecting: the first query connects, within `acquire_timeout`.
pub fn lazy_pool(url: &Secret<String>, limits: DbLimits) -> Result<PgPool, sqlx::Error> {
    let options: PgConnectOptions = url.expose().parse()?;
    Ok(lazy_pool_with(limits.apply(options), limits))
}

fn lazy_pool_with(options: PgConnectOptions, limits: DbLimits) -> PgPool {
    PgPoolOptions::new()
        .max_connections(limits.max_connections)
        .min_connections(0)
        .acquire_timeout(limits.acquire_timeout)
        .idle_timeout(Duration::from_secs(300))
        .connect_lazy_with(options)
}

/// How a deployed function's connections are secured: always TLS with the server's
/// certificate and host name verified (`sslmode=verify-full`), against the RDS CAs the
/// binary embeds, or against the CA file `PGSSLROOTCERT` names (libpq's variable: the
/// local runtime hands every function the local database's CA with it). The variable
/// changes which CA, never whether the server is verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    Rds,
    File(String),
}

impl RootCert {
    pub fn from_env(env: &Env<'_>) -> Self {
        env.optional("PGSSLROOTCERT").map_or(Self::Rds, Self::File)
    }
}

/// The connection options of the parts a deployed function gets (no URL round trip:
/// the password is never in a string that could be logged).
pub fn parts_options(
    host: &str,
    port: u16,
    name: &str,
    user: &str,
    password: &str,
    root: &RootCert,
) -> PgConnectOptions {
    let options = PgConnectOptions::new_without_pgpass()
        .host(host)
        .port(port)
        .database(name)
        .username(user)
        .password(password)
        .ssl_mode(PgSslMode::VerifyFull);
    match root {
        RootCert::Rds => {
            options.ssl_root_cert_from_pem(rds_roots(std::env::var("AWS_REGION").ok().as_deref()))
        }
        RootCert::File(path) => options.ssl_root_cert(path),
    }
}

/// The RDS root CAs of `region` (an instance's certificate chains to its own region's
/// roots), else all of them: sqlx parses the roots on every new connection, and three
/// parse faster than eighty. Each certificate in the bundle follows its `# subject=` line.
pub fn rds_roots(region: Option<&str>) -> Vec<u8> {
    let text = std::str::from_utf8(RDS_CA_BUNDLE).unwrap_or_default();
    let Some(region) = region.filter(|r| !r.is_empty()) else {
        return RDS_CA_BUNDLE.to_vec();
    };
    let needle = format!(" {region} Root CA");
    let mine: String = text
        .split("# subject=")
        .filter(|block| block.lines().next().is_some_and(|s| s.contains(&needle)))
        .map(|block| block.split_once('\n').map_or("", |(_, pem)| pem))
        .collect();
    if mine.contains("-----BEGIN CERTIFICATE-----") {
        mine.into_bytes()
    } else {
        RDS_CA_BUNDLE.to_vec()
    }
}

/// The server refused the password (`28P01`): it was rotated since this container read it.
pub fn is_auth_failure(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("28P01"))
}

/// Errors that mean "the database is not reachable right now": worth a 503 and a retry.
/// A refused password is one of them: during a rotation the next attempt re-reads it.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        // 57014: statement_timeout; 57P01..03: admin shutdown / cannot connect now; 53300:
        // too many connections; 28P01: password refused (rotated; re-read on the next try).
        sqlx::Error::Database(db) => matches!(
            db.code().as_deref(),
            Some("57014" | "57P01" | "57P02" | "57P03" | "53300" | "28P01")
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
    pending_password_parameter: Option<String>,
    root: RootCert,
    /// The function's cache, or without one the database's own (its SSM client built on
    /// the first read), kept: a first attempt cut off by its time bound after the SSM
    /// read does not read the password again.
    secrets: crate::aws::SecretCache,
    /// The password the pool's connect options carry (the one to skip once refused).
    in_use: std::sync::Mutex<Option<Secret<String>>>,
}

impl Database {
    /// Reads the settings; no I/O. A function that reads other secrets passes its
    /// `SecretCache` (one SSM client and cache per container); the others pass `None` and
    /// an SSM client is built only if the password has to come from SSM.
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
                pending_password_parameter,
            } => Ok(Self {
                pool: tokio::sync::OnceCell::new(),
                deferred: Some(Deferred {
                    limits,
                    host,
                    port,
                    name,
                    user,
                    password_parameter,
                    pending_password_parameter,
                    root: RootCert::from_env(env),
                    secrets: secrets
                        .cloned()
                        .unwrap_or_else(crate::aws::SecretCache::lazy),
                    in_use: std::sync::Mutex::new(None),
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
    ///
    /// When the pool holds no connection (cold, or idle ones reaped) this opens one, for
    /// every database (a `DATABASE_URL` one too): a caller that reads something else on its
    /// first request (a feed's cursor key) connects side by side with that read, not after
    /// it. A password rotation is survived: the next query would open the connection with
    /// the password read earlier, so this opens it here first; if the server refuses the password (`28P01`), the current and
    /// the pending password (`DB_PASSWORD_PENDING_PARAMETER`, while a rotation runs) are
    /// read from SSM in one call, and each one other than the refused one is tried once:
    /// at every moment of a rotation the database accepts one of the two. The connection
    /// goes back to the pool, and the caller's query uses it.
    pub async fn pool(&self) -> Result<&PgPool, sqlx::Error> {
        if let Some(pool) = self.pool.get()
            && pool.size() > 0
        {
            return Ok(pool);
        }
        // Boxed: reading SSM (the SDK's config loader is a deep future) and connecting
        // would otherwise be carried in the layout of every handler that awaits the pool.
        type Open<'a> = std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<&'a PgPool, sqlx::Error>> + Send + 'a>,
        >;
        let open: Open<'_> = Box::pin(self.open());
        open.await
    }

    /// [`Database::pool`]'s slow path: builds the pool on the first call, and opens its
    /// connection when it has none, reading the password again once if it is refused.
    async fn open(&self) -> Result<&PgPool, sqlx::Error> {
        let pool = self
            .pool
            .get_or_try_init(|| async {
                let d = self
                    .deferred
                    .as_ref()
                    .ok_or_else(|| sqlx::Error::Configuration("no database settings".into()))?;
                let password = d.current().await?;
                Ok::<_, sqlx::Error>(lazy_pool_with(d.options(password), d.limits))
            })
            .await?;
        if pool.size() > 0 {
            return Ok(pool);
        }
        let refused = match pool.acquire().await {
            Ok(mut connection) => {
                // Back in the pool before the caller's query asks for one (a dropped
                // connection goes back on a spawned task, and the query would wait for it).
                connection.return_to_pool().await;
                return Ok(pool);
            }
            Err(e) if is_auth_failure(&e) => e,
            Err(e) => return Err(e),
        };
        let Some(d) = &self.deferred else {
            return Err(refused);
        };
        tracing::warn!(
            parameter = %d.password_parameter,
            pending_parameter = d.pending_password_parameter.as_deref().unwrap_or(""),
            error = %refused,
            "the database refused the password: reading it again (rotated?)"
        );
        let mut last = refused;
        let mut refused: Vec<Secret<String>> = d.in_use().into_iter().collect();
        // One round per rotation: a second one right after the first (back to back, as
        // two runs that waited for each other's lock) may move on between the read and
        // the connection; no round reads twice what the database refused.
        for _round in 0..2 {
            let untried = d.untried(&refused).await?;
            if untried.is_empty() {
                break;
            }
            for password in untried {
                pool.set_connect_options(d.options(password.clone()));
                match pool.acquire().await {
                    Ok(mut connection) => {
                        connection.return_to_pool().await;
                        return Ok(pool);
                    }
                    Err(e) if is_auth_failure(&e) => {
                        last = e;
                        refused.push(password);
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Err(last)
    }
}

impl Deferred {
    /// The current password (SSM, cached per container).
    async fn current(&self) -> Result<Secret<String>, sqlx::Error> {
        self.secrets
            .get(&self.password_parameter)
            .await
            .map_err(|e| unavailable(&e))
    }

    /// The password the pool's connect options carry.
    fn in_use(&self) -> Option<Secret<String>> {
        self.in_use.lock().ok().and_then(|p| p.clone())
    }

    /// After a refusal: the current and pending passwords read again (one `GetParameters`
    /// call), in that order, without the `refused` ones and without repeats.
    async fn untried(
        &self,
        refused: &[Secret<String>],
    ) -> Result<Vec<Secret<String>>, sqlx::Error> {
        let mut names = vec![self.password_parameter.as_str()];
        names.extend(self.pending_password_parameter.as_deref());
        let found = self
            .secrets
            .reread(&names)
            .await
            .map_err(|e| unavailable(&e))?;
        let mut untried: Vec<Secret<String>> = Vec::new();
        for name in names {
            if let Some(password) = found.get(name)
                && !refused.contains(password)
                && !untried.contains(password)
            {
                untried.push(password.clone());
            }
        }
        Ok(untried)
    }

    /// The connection options with `password` (remembered as the one in use).
    fn options(&self, password: Secret<String>) -> PgConnectOptions {
        let options = self.limits.apply(parts_options(
            &self.host,
            self.port,
            &self.name,
            &self.user,
            password.expose(),
            &self.root,
        ));
        if let Ok(mut in_use) = self.in_use.lock() {
            *in_use = Some(password);
        }
        options
    }
}

/// An SSM failure as the database being out of reach: a 503 / retry, like a refused
/// connection. The message names the parameters, never a value.
fn unavailable(e: &anyhow::Error) -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::other(format!(
        "database password unavailable: {e:#}"
    )))
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
    fn deployed_connections_verify_the_server_against_the_rds_cas() {
        let src = |_: &str| None;
        assert_eq!(RootCert::from_env(&Env::new(&src)), RootCert::Rds);
        let options = parts_options(
            "db.internal",
            5432,
            "encache",
            "app",
            "p@ss/w:rd#1",
            &RootCert::Rds,
        );
        assert_eq!(options.get_host(), "db.internal");
        assert_eq!(options.get_database(), Some("encache"));
        assert!(matches!(options.get_ssl_mode(), PgSslMode::VerifyFull));
        let pem = std::str::from_utf8(RDS_CA_BUNDLE).unwrap();
        assert!(
            pem.matches("-----BEGIN CERTIFICATE-----").count() >= 50,
            "the RDS bundle is embedded"
        );
        assert!(pem.contains("Amazon RDS us-east-1 Root CA RSA2048 G1"));
    }

    #[test]
    fn a_function_trusts_its_own_regions_rds_roots_or_all_of_them() {
        let mine = String::from_utf8(rds_roots(Some("eu-west-1"))).unwrap();
        assert_eq!(
            mine.matches("-----BEGIN CERTIFICATE-----").count(),
            3,
            "{mine}"
        );
        assert!(!mine.contains("subject="));
        let all = RDS_CA_BUNDLE.len();
        assert_eq!(rds_roots(Some("xx-nowhere-9")).len(), all);
        assert_eq!(rds_roots(None).len(), all);
    }

    #[test]
    fn a_root_cert_file_changes_the_ca_never_the_mode() {
        let src = |k: &str| (k == "PGSSLROOTCERT").then(|| "/tmp/ca.pem".to_string());
        let root = RootCert::from_env(&Env::new(&src));
        assert_eq!(root, RootCert::File("/tmp/ca.pem".into()));
        let options = parts_options("localhost", 5432, "encache", "app", "x", &root);
        assert!(matches!(options.get_ssl_mode(), PgSslMode::VerifyFull));
    }
}
