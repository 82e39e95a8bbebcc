//! Helpers the auth tests share: raw sample events, row counts and the `/v1/me`
//! handler's dependencies. Pools that cannot answer come from `encache_testkit`
//! (`refused_pool`, `silent_pool`).

#![allow(dead_code)]

use std::time::Duration;

use encache_auth::me::Deps;
use encache_auth::settings::MeSettings;
use encache_testkit::sample_event;
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

pub async fn user_count(pool: &PgPool) -> i64 {
    sqlx::query_scalar::<_, i64>("SELECT count(*) FROM users")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// The `/v1/me` handler's dependencies: `pool`, an S3 client for the emulator
/// (`AWS_ENDPOINT_URL`) and `bucket` as the upload bucket.
pub async fn me_deps(pool: &PgPool, bucket: &str, db_timeout: Duration) -> Deps {
    let sdk = encache_shared::aws::sdk_config().await;
    Deps {
        db: pool.clone().into(),
        s3: encache_shared::aws::s3_client(&sdk).into(),
        settings: MeSettings {
            db_timeout,
            bucket: bucket.to_owned(),
        },
    }
}
