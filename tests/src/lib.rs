//! Support for encache's integration tests: each test gets its own fresh database on
//! the dev services' PostgreSQL, and the real sample events from `events/`.
//!
//! Start the services first: `eval "$(scripts/dev-services.sh up)"` (scripts/test.sh
//! does this for you).

use std::path::PathBuf;

use lambda_runtime::{Context, LambdaEvent};
use serde::de::DeserializeOwned;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};

/// The repository root (where `events/` and `migrations/` live).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository root")
        .to_path_buf()
}

/// A sample event from `events/`, parsed into the `aws_lambda_events` type.
pub fn sample_event<T: DeserializeOwned>(name: &str) -> T {
    let path = repo_root().join("events").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
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
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&admin)
            .await
            .expect("connecting to the dev PostgreSQL (is it up?)");
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

/// A URL where no database listens: connecting is refused at once.
pub fn unreachable_database_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a free port");
    let port = listener.local_addr().expect("local addr").port();
    drop(listener);
    format!("postgres://postgres@127.0.0.1:{port}/encache")
}
