//! What the schema tests share: a local stand-in for CloudFormation's response URL, the
//! sample Create event re-addressed to it (and turned into an Update or a Delete), and
//! databases in the states a deploy can meet.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::event::cloudformation::CloudFormationCustomResourceRequest;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use encache_migrate::Deps;
use encache_shared::config::Secret;
use encache_shared::db::{DbLimits, MIGRATOR, lazy_pool};
use encache_testkit::{TestDb, sample_event};
use serde_json::{Value, json};
use sqlx::PgPool;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: Method,
    pub content_type: Option<String>,
    pub body: Value,
}

#[derive(Default)]
struct Inner {
    received: Vec<Received>,
}

/// An HTTP server on 127.0.0.1 that records every request, as S3 behind a presigned
/// response URL would, answering `status`.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
}

impl Receiver {
    pub async fn start() -> Self {
        Self::answering(StatusCode::OK).await
    }

    /// S3's answer to an expired or tampered presigned URL.
    pub async fn refusing() -> Self {
        Self::answering(StatusCode::FORBIDDEN).await
    }

    async fn answering(status: StatusCode) -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .fallback(
                move |State(inner): State<Arc<Mutex<Inner>>>,
                      method: Method,
                      headers: HeaderMap,
                      body: Bytes| async move {
                    inner.lock().unwrap().received.push(Received {
                        method,
                        content_type: headers
                            .get("content-type")
                            .map(|v| v.to_str().unwrap().to_owned()),
                        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                    });
                    status
                },
            )
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/cloudformation-response?X-Amz-Signature=test",
            listener.local_addr().unwrap()
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, inner }
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    /// The one response the function sent (fails the test on none or several).
    #[track_caller]
    pub fn only_response(&self) -> Received {
        let received = self.received();
        assert_eq!(received.len(), 1, "{received:?}");
        received.into_iter().next().unwrap()
    }
}

/// `events/cfn-database-schema-create.json`, answering at `receiver`.
pub fn create_event(receiver: &Receiver) -> Value {
    let mut event: Value = sample_event("cfn-database-schema-create.json");
    event["ResponseURL"] = Value::from(receiver.url.as_str());
    event
}

/// The Update of a deploy `new` after deploy `old` (their `DeployId`s).
pub fn update_event(receiver: &Receiver, new: &str, old: &str) -> Value {
    let mut event = create_event(receiver);
    event["RequestType"] = json!("Update");
    event["PhysicalResourceId"] = json!("encache-database-schema");
    event["OldResourceProperties"] = event["ResourceProperties"].clone();
    event["OldResourceProperties"]["DeployId"] = json!(old);
    event["ResourceProperties"]["DeployId"] = json!(new);
    event
}

pub fn delete_event(receiver: &Receiver) -> Value {
    let mut event = create_event(receiver);
    event["RequestType"] = json!("Delete");
    event["PhysicalResourceId"] = json!("encache-database-schema");
    event
}

pub fn request(event: Value) -> CloudFormationCustomResourceRequest {
    serde_json::from_value(event).expect("a custom resource request")
}

/// The function's dependencies against `url`, with short pool timeouts.
pub fn deps_for(url: &str) -> Deps {
    let limits = DbLimits {
        acquire_timeout: Duration::from_secs(2),
        statement_timeout: Duration::from_secs(10),
        max_connections: 2,
    };
    Deps::new(Ok(lazy_pool(&Secret::new(url.to_owned()), limits).unwrap())).unwrap()
}

/// A database of its own with nothing in it: no tables, no `_sqlx_migrations`.
pub async fn empty_database() -> TestDb {
    let db = TestDb::new().await;
    sqlx::raw_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        .execute(&db.pool)
        .await
        .expect("emptying the test database");
    db
}

/// Every version the code knows, oldest first.
pub fn code_versions() -> Vec<i64> {
    MIGRATOR.iter().map(|m| m.version).collect()
}

pub async fn applied_versions(pool: &PgPool) -> Vec<i64> {
    sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
        .fetch_all(pool)
        .await
        .expect("reading _sqlx_migrations")
}

pub async fn table_exists(pool: &PgPool, name: &str) -> bool {
    sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(name)
        .fetch_one(pool)
        .await
        .expect("looking up a table")
}

/// Records `version` as applied, as a newer deploy's code would have.
pub async fn record_unknown_migration(pool: &PgPool, version: i64) {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
             version BIGINT PRIMARY KEY, description TEXT NOT NULL,
             installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN NOT NULL,
             checksum BYTEA NOT NULL, execution_time BIGINT NOT NULL)",
    )
    .execute(pool)
    .await
    .expect("creating _sqlx_migrations");
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES ($1, 'from a newer deploy', true, '\\x00', 1)",
    )
    .bind(version)
    .execute(pool)
    .await
    .expect("recording a migration from the future");
}
