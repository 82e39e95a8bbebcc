//! Support for encache's integration tests: each test gets its own fresh database on
//! the dev services' PostgreSQL, and the real sample events from `events/`;
//! [`fake_discord`] stands in for Discord's webhook API (also as the `fake-discord`
//! binary, for local runs).
//!
//! Start the services first: `eval "$(scripts/dev-services.sh up)"` (scripts/test.sh
//! does this for you).

pub mod fake_discord;

use std::path::PathBuf;
use std::time::Duration;

use aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use aws_lambda_events::encodings::Body;
use encache_shared::config::Secret;
use encache_shared::db::{DbLimits, lazy_pool};
use lambda_runtime::{Context, LambdaEvent};
use serde::de::DeserializeOwned;
use serde_json::Value;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

/// The repository root (where `events/` and `migrations/` live).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit/ sits in the repository root")
        .to_path_buf()
}

/// `<target>/<profile>`, where the workspace's binaries are: the running test or example
/// is `<target>/<profile>/deps/<name>` or `<target>/<profile>/examples/<name>`.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the running executable's path");
    exe.parent()
        .and_then(std::path::Path::parent)
        .expect("the executable sits in <target>/<profile>/<deps|examples>")
        .to_path_buf()
}

/// A sample event from `events/`, parsed into the `aws_lambda_events` type.
pub fn sample_event<T: DeserializeOwned>(name: &str) -> T {
    let path = repo_root().join("events").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// A sample HTTP API event from `events/`, re-addressed: another caller (`sub` claim),
/// query string, path `{id}` (also in `rawPath`) or body. Samples are read once per test
/// binary, so walks of thousands of pages stay cheap.
#[derive(Debug, Clone)]
pub struct HttpEvent(Value);

impl HttpEvent {
    pub fn sample(name: &str) -> Self {
        static SAMPLES: std::sync::OnceLock<
            std::sync::Mutex<std::collections::HashMap<String, Value>>,
        > = std::sync::OnceLock::new();
        let mut samples = SAMPLES
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Self(
            samples
                .entry(name.to_owned())
                .or_insert_with(|| sample_event(name))
                .clone(),
        )
    }

    pub fn caller(mut self, sub: &str) -> Self {
        self.0["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = Value::from(sub);
        self
    }

    /// Sets one JWT claim (as the gateway passes claims: strings).
    pub fn claim(mut self, name: &str, value: &str) -> Self {
        self.0["requestContext"]["authorizer"]["jwt"]["claims"][name] = Value::from(value);
        self
    }

    /// Replaces the whole query string.
    pub fn query(mut self, query: &[(&str, &str)]) -> Self {
        self.0["queryStringParameters"] = Value::Object(
            query
                .iter()
                .map(|(k, v)| (k.to_string(), Value::from(*v)))
                .collect(),
        );
        self
    }

    /// The path's `{id}`, in `pathParameters` and in `rawPath` where the sample's id was.
    pub fn id(mut self, id: &str) -> Self {
        if let Some(old) = self.0["pathParameters"]["id"].as_str().map(str::to_owned)
            && let Some(raw) = self.0["rawPath"].as_str()
        {
            self.0["rawPath"] = Value::from(raw.replace(&old, id));
        }
        self.0["pathParameters"] = serde_json::json!({ "id": id });
        self
    }

    /// The JSON body, as the gateway passes it (a string).
    pub fn body(self, body: &Value) -> Self {
        self.raw_body(&body.to_string())
    }

    /// The body as sent, valid JSON or not.
    pub fn raw_body(mut self, body: &str) -> Self {
        self.0["body"] = Value::from(body);
        self
    }

    pub fn build(self) -> aws_lambda_events::apigw::ApiGatewayV2httpRequest {
        serde_json::from_value(self.0).expect("a valid HTTP API event")
    }
}

/// Wraps a payload the way the runtime hands it to a handler.
pub fn lambda_event<T>(payload: T) -> LambdaEvent<T> {
    let mut context = Context::default();
    context.request_id = uuid::Uuid::new_v4().to_string();
    context.deadline = (std::time::SystemTime::now() + std::time::Duration::from_secs(30))
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64;
    LambdaEvent::new(payload, context)
}

fn admin_url() -> String {
    std::env::var("DATABASE_URL").expect(
        "DATABASE_URL is not set: start the dev services with `eval \"$(scripts/dev-services.sh up)\"`",
    )
}

/// A database of its own for one test, migrated to the current schema.
pub struct TestDb {
    pub pool: PgPool,
    pub url: String,
    pub name: String,
}

impl TestDb {
    pub async fn new() -> Self {
        let admin = admin_url();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        // The creation time in the name: later runs drop what earlier ones left.
        let name = format!(
            "test_{now}_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let mut conn = PgConnection::connect(&admin)
            .await
            .expect("connecting to the dev PostgreSQL (is it up?)");
        drop_stale_test_databases(&mut conn, now).await;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("creating the test database");
        conn.close().await.ok();
        let base = admin
            .rsplit_once('/')
            .expect("DATABASE_URL has a database")
            .0;
        let url = format!("{base}/{name}");
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect(&url)
            .await
            .expect("connecting to the test database");
        encache_shared::db::MIGRATOR
            .run(&pool)
            .await
            .expect("migrating the test database");
        Self { pool, url, name }
    }
}

/// Every test database older than an hour (or named before the creation time was in the
/// name): a test run leaves one per test, and the dev PostgreSQL would grow without end.
/// Errors are ignored: a parallel test may be dropping the same one.
async fn drop_stale_test_databases(conn: &mut PgConnection, now: u64) {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'test\\_%'")
            .fetch_all(&mut *conn)
            .await
            .unwrap_or_default();
    for name in names {
        let created = name
            .strip_prefix("test_")
            .and_then(|rest| rest.split_once('_'))
            .and_then(|(secs, _)| secs.parse::<u64>().ok());
        if created.is_some_and(|c| now.saturating_sub(c) < 3600) {
            continue;
        }
        // An hour-old one is abandoned; one named the old way may be in use by a test
        // built before this change, so it is dropped only when nothing is connected.
        let force = if created.is_some() {
            " WITH (FORCE)"
        } else {
            ""
        };
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{name}\"{force}"
        )))
        .execute(&mut *conn)
        .await;
    }
}

/// A URL where no database listens: connecting is refused at once.
pub fn unreachable_database_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a free port");
    let port = listener.local_addr().expect("local addr").port();
    drop(listener);
    format!("postgres://postgres@127.0.0.1:{port}/encache")
}

/// A pool whose database refuses connections: "the database is down". Its one-second
/// pool timeouts keep a test of that outage short even if a handler forgets its bound.
pub fn refused_pool() -> PgPool {
    let limits = DbLimits {
        acquire_timeout: Duration::from_secs(1),
        statement_timeout: Duration::from_secs(1),
        max_connections: 1,
    };
    lazy_pool(&Secret::new(unreachable_database_url()), limits).expect("a lazy pool")
}

/// A pool whose "database" accepts TCP connections and never says a word, the worst kind
/// of down. Its pool timeouts are far longer than any handler's bound, so only the
/// handler's own bound can answer in time. Call it inside the test's Tokio runtime: the
/// listener (holding every socket open) runs on a task of that runtime.
pub async fn silent_pool() -> PgPool {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding a free port");
    let port = listener.local_addr().expect("local addr").port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    let limits = DbLimits {
        acquire_timeout: Duration::from_secs(30),
        statement_timeout: Duration::from_secs(30),
        max_connections: 1,
    };
    let url = Secret::new(format!("postgres://postgres@127.0.0.1:{port}/encache"));
    lazy_pool(&url, limits).expect("a lazy pool")
}

/// An HTTP handler's response as (status code, JSON body); every encache HTTP response,
/// error or not, has a JSON text body, so anything else fails the test.
#[track_caller]
pub fn status_and_json(resp: &ApiGatewayV2httpResponse) -> (i64, Value) {
    let body = match &resp.body {
        Some(Body::Text(t)) => serde_json::from_str(t).expect("JSON body"),
        other => panic!("expected a text body, got {other:?}"),
    };
    (resp.status_code, body)
}

/// Asserts a response is the one `StandardError` shape: HTTP status `want`, the same
/// `status` and `code` in the body, and a message a person can read.
#[track_caller]
pub fn assert_standard_error(status: i64, body: &Value, want: i64, code: &str) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["status"], want, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

/// Inserts the `users` row post-confirmation would provision for the Cognito `sub`
/// (email `<sub>@example.com`), so a test can own data without running the trigger.
pub async fn insert_user(pool: &PgPool, sub: &str) -> Uuid {
    sqlx::query_scalar("INSERT INTO users (cognito_sub, email) VALUES ($1, $2) RETURNING id")
        .bind(sub)
        .bind(format!("{sub}@example.com"))
        .fetch_one(pool)
        .await
        .expect("inserting a users row")
}

/// A new, empty bucket in the AWS emulator (`AWS_ENDPOINT_URL`), named `<prefix>-<random>`,
/// and the S3 client the functions would build.
pub async fn fresh_bucket(prefix: &str) -> (aws_sdk_s3::Client, String) {
    let s3 = encache_shared::aws::s3_client(&encache_shared::aws::sdk_config().await);
    let bucket = format!("{prefix}-{}", &Uuid::new_v4().simple().to_string()[..16]);
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("creating a test bucket in the emulator (is AWS_ENDPOINT_URL set?)");
    (s3, bucket)
}
