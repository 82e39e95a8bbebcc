//! Helpers the auth tests share: raw sample events, pools that cannot answer, row counts.

#![allow(dead_code)]

use std::time::Duration;

use encache_shared::config::Secret;
use encache_shared::db::{DbLimits, lazy_pool};
use encache_tests::{sample_event, unreachable_database_url};
use serde_json::Value;
use sqlx::PgPool;

pub fn raw(name: &str) -> Value {
    sample_event::<Value>(name)
}

/// The same event with one field replaced, e.g. `with(event, "/triggerSource", json!("X"))`.
pub fn with(mut event: Value, pointer: &str, value: Value) -> Value {
    *event
        .pointer_mut(pointer)
        .unwrap_or_else(|| panic!("{pointer} is not in the event")) = value;
    event
}

pub fn without(mut event: Value, parent: &str, key: &str) -> Value {
    event
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("{parent} is not an object"))
        .remove(key);
    event
}

/// A pool whose database refuses connections.
pub fn refused_pool() -> PgPool {
    let limits = DbLimits {
        acquire_timeout: Duration::from_secs(1),
        statement_timeout: Duration::from_secs(1),
        max_connections: 1,
    };
    lazy_pool(&Secret::new(unreachable_database_url()), limits).unwrap()
}

/// A pool whose "database" accepts TCP connections and never says a word, with pool
/// timeouts far longer than any trigger budget: only the handler's own bound can save it.
pub async fn silent_pool() -> PgPool {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
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
    lazy_pool(&url, limits).unwrap()
}

pub async fn user_count(pool: &PgPool) -> i64 {
    sqlx::query_scalar::<_, i64>("SELECT count(*) FROM users")
        .fetch_one(pool)
        .await
        .unwrap()
}
