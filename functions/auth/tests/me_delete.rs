//! `DELETE /v1/me` through its real handler with the sample JWT-authorized request,
//! against the real PostgreSQL and the emulated S3.

mod common;

use std::time::{Duration, Instant};

use aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use aws_sdk_s3::primitives::ByteStream;
use common::me_deps;
use encache_auth::me::{Deps, handle};
use encache_auth::store::{self, Removal};
use encache_shared::http::REQUEST_ID_HEADER;
use encache_testkit::{
    HttpEvent, TestDb, assert_standard_error, insert_user, lambda_event, refused_pool, silent_pool,
    status_and_json,
};
use sqlx::PgPool;
use uuid::Uuid;

const ADA: &str = "6c1f0d2e-8a4b-4f37-9d51-2b7e9c0a4f18";
const GRACE: &str = "0e7b3c55-2f1a-4c9e-b8d4-71a6f0e2c3d9";

// ------------------------------------------------------------------ support

struct World {
    db: TestDb,
    s3: aws_sdk_s3::Client,
    bucket: String,
}

impl World {
    async fn new() -> Self {
        let db = TestDb::new().await;
        let (s3, bucket) = encache_testkit::fresh_bucket("encache-test").await;
        Self { db, s3, bucket }
    }

    async fn deps(&self) -> Deps {
        me_deps(&self.db.pool, &self.bucket, Duration::from_secs(2)).await
    }

    /// `DELETE /v1/me` as the given Cognito user.
    async fn delete_me(&self, sub: &str) -> ApiGatewayV2httpResponse {
        delete_me(sub, &self.deps().await).await
    }

    /// A user with `memories` memories (each with its object in the bucket unless
    /// `objects` is false) and one conversation of two messages.
    async fn user_with_data(&self, sub: &str, memories: usize, objects: bool) -> Owned {
        let pool = &self.db.pool;
        let user_id = insert_user(pool, sub).await;
        let mut keys = Vec::new();
        for _ in 0..memories {
            let memory_id = Uuid::new_v4();
            let key = format!("users/{user_id}/memories/{memory_id}");
            sqlx::query(
                "INSERT INTO memories (id, user_id, s3_key, declared_content_type,
                                       declared_size_bytes, status, upload_expires_at)
                 VALUES ($1, $2, $3, 'text/plain', 5, 'ready', now() + interval '15 minutes')",
            )
            .bind(memory_id)
            .bind(user_id)
            .bind(&key)
            .execute(pool)
            .await
            .expect("inserting a memory");
            if objects {
                self.put(&key).await;
            }
            keys.push(key);
        }
        let conversation_id: Uuid = sqlx::query_scalar(
            "INSERT INTO conversations (user_id, title) VALUES ($1, 'notes') RETURNING id",
        )
        .bind(user_id)
        .fetch_one(pool)
        .await
        .expect("inserting a conversation");
        for role in ["user", "assistant"] {
            sqlx::query("INSERT INTO messages (conversation_id, role, body) VALUES ($1, $2, 'hi')")
                .bind(conversation_id)
                .bind(role)
                .execute(pool)
                .await
                .expect("inserting a message");
        }
        Owned { user_id, keys }
    }

    async fn put(&self, key: &str) {
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("text/plain")
            .body(ByteStream::from_static(b"hello"))
            .send()
            .await
            .expect("putting an object into the emulator");
    }

    async fn exists(&self, key: &str) -> bool {
        self.s3
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .is_ok()
    }

    async fn object_count(&self) -> usize {
        self.s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .send()
            .await
            .expect("listing the test bucket")
            .key_count()
            .unwrap_or_default() as usize
    }
}

/// What one test user owns.
struct Owned {
    user_id: Uuid,
    keys: Vec<String>,
}

async fn delete_me(sub: &str, deps: &Deps) -> ApiGatewayV2httpResponse {
    let req = HttpEvent::sample("me-delete.json").caller(sub).build();
    handle(deps, lambda_event(req)).await.unwrap()
}

#[track_caller]
fn assert_no_content(resp: &ApiGatewayV2httpResponse) {
    assert_eq!(resp.status_code, 204, "{:?}", resp.body);
    assert!(resp.body.is_none(), "a 204 has no body: {:?}", resp.body);
}

/// Rows of `table` that belong to `user_id` (messages through their conversation).
async fn owned_rows(pool: &PgPool, table: &str, user_id: Uuid) -> i64 {
    let sql = match table {
        "users" => "SELECT count(*) FROM users WHERE id = $1",
        "memories" => "SELECT count(*) FROM memories WHERE user_id = $1",
        "conversations" => "SELECT count(*) FROM conversations WHERE user_id = $1",
        "messages" => {
            "SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id
              WHERE c.user_id = $1"
        }
        other => panic!("no such table {other}"),
    };
    sqlx::query_scalar(sql)
        .bind(user_id)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn everything_owned(pool: &PgPool, user_id: Uuid) -> [i64; 4] {
    [
        owned_rows(pool, "users", user_id).await,
        owned_rows(pool, "memories", user_id).await,
        owned_rows(pool, "conversations", user_id).await,
        owned_rows(pool, "messages", user_id).await,
    ]
}

// ------------------------------------------------------------------ tests

#[tokio::test]
async fn deleting_removes_the_users_objects_memories_conversations_and_messages_and_keeps_another_users()
 {
    let w = World::new().await;
    let ada = w.user_with_data(ADA, 3, true).await;
    let grace = w.user_with_data(GRACE, 2, true).await;

    let resp = w.delete_me(ADA).await;

    assert_no_content(&resp);
    assert_eq!(resp.headers[REQUEST_ID_HEADER], "LV8dQjK3oAMEPxw=");
    assert_eq!(
        everything_owned(&w.db.pool, ada.user_id).await,
        [0, 0, 0, 0]
    );
    for key in &ada.keys {
        assert!(!w.exists(key).await, "{key} should be gone");
    }
    assert_eq!(
        everything_owned(&w.db.pool, grace.user_id).await,
        [1, 2, 1, 2]
    );
    for key in &grace.keys {
        assert!(w.exists(key).await, "{key} belongs to someone else");
    }
}

#[tokio::test]
async fn deleting_twice_answers_204_both_times() {
    let w = World::new().await;
    let ada = w.user_with_data(ADA, 1, true).await;

    let first = w.delete_me(ADA).await;
    let second = w.delete_me(ADA).await;

    assert_no_content(&first);
    assert_no_content(&second);
    assert_eq!(
        everything_owned(&w.db.pool, ada.user_id).await,
        [0, 0, 0, 0]
    );
}

#[tokio::test]
async fn a_caller_without_a_row_gets_204_and_nothing_else_changes() {
    let w = World::new().await;
    let grace = w.user_with_data(GRACE, 1, true).await;

    let resp = w.delete_me(ADA).await;

    assert_no_content(&resp);
    assert_eq!(
        everything_owned(&w.db.pool, grace.user_id).await,
        [1, 1, 1, 2]
    );
    assert_eq!(w.object_count().await, 1);
}

#[tokio::test]
async fn more_than_a_thousand_memories_go_in_batches_and_objects_already_gone_are_fine() {
    let w = World::new().await;
    // Only some objects exist: pending uploads that never arrived, or deleted earlier.
    let ada = w.user_with_data(ADA, 1005, false).await;
    for key in ada.keys.iter().step_by(200) {
        w.put(key).await;
    }
    assert_eq!(w.object_count().await, 6);

    let resp = w.delete_me(ADA).await;

    assert_no_content(&resp);
    assert_eq!(w.object_count().await, 0);
    assert_eq!(
        everything_owned(&w.db.pool, ada.user_id).await,
        [0, 0, 0, 0]
    );
}

#[tokio::test]
async fn an_s3_failure_leaves_the_row_in_place_and_a_retry_finishes() {
    let w = World::new().await;
    let ada = w.user_with_data(ADA, 2, true).await;
    let missing_bucket = me_deps(
        &w.db.pool,
        "encache-test-no-such-bucket",
        Duration::from_secs(2),
    )
    .await;

    let resp = delete_me(ADA, &missing_bucket).await;

    let (status, body) = status_and_json(&resp);
    assert_standard_error(status, &body, 500, "internal_error");
    assert_eq!(
        everything_owned(&w.db.pool, ada.user_id).await,
        [1, 2, 1, 2]
    );
    for key in &ada.keys {
        assert!(w.exists(key).await, "{key} was not deleted");
    }

    let retry = w.delete_me(ADA).await;

    assert_no_content(&retry);
    assert_eq!(
        everything_owned(&w.db.pool, ada.user_id).await,
        [0, 0, 0, 0]
    );
    assert_eq!(w.object_count().await, 0);
}

#[tokio::test]
async fn a_silent_database_gives_a_503_standard_error_within_the_bound() {
    let w = World::new().await;
    let pool = silent_pool().await;
    let deps = me_deps(&pool, &w.bucket, Duration::from_millis(300)).await;

    let started = Instant::now();
    let resp = delete_me(ADA, &deps).await;

    let (status, body) = status_and_json(&resp);
    assert_standard_error(status, &body, 503, "service_unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_refused_database_gives_a_503_standard_error() {
    let w = World::new().await;
    let pool = refused_pool();
    let deps = me_deps(&pool, &w.bucket, Duration::from_secs(2)).await;

    let resp = delete_me(ADA, &deps).await;

    let (status, body) = status_and_json(&resp);
    assert_standard_error(status, &body, 503, "service_unavailable");
}

#[tokio::test]
async fn deleting_without_a_sub_claim_is_unauthorized_and_deletes_nothing() {
    let w = World::new().await;
    let ada = w.user_with_data(ADA, 1, true).await;
    let mut req = HttpEvent::sample("me-delete.json").build();
    req.request_context
        .authorizer
        .as_mut()
        .and_then(|a| a.jwt.as_mut())
        .unwrap()
        .claims
        .remove("sub");

    let resp = handle(&w.deps().await, lambda_event(req)).await.unwrap();

    let (status, body) = status_and_json(&resp);
    assert_standard_error(status, &body, 401, "unauthorized");
    assert_eq!(
        everything_owned(&w.db.pool, ada.user_id).await,
        [1, 1, 1, 2]
    );
}

#[tokio::test]
async fn a_route_the_function_does_not_serve_is_a_404() {
    let w = World::new().await;
    let mut req = HttpEvent::sample("me-delete.json").caller(ADA).build();
    req.route_key = Some("PUT /v1/me".into());

    let resp = handle(&w.deps().await, lambda_event(req)).await.unwrap();

    let (status, body) = status_and_json(&resp);
    assert_standard_error(status, &body, 404, "not_found");
}

#[tokio::test]
async fn the_row_goes_only_once_no_memory_is_left() {
    let w = World::new().await;
    let ada = w.user_with_data(ADA, 1, false).await;
    let pool = &w.db.pool;

    let with_a_memory = store::delete_without_memories(pool, ada.user_id)
        .await
        .unwrap();
    store::forget_memories(pool, ada.user_id, &ada.keys)
        .await
        .unwrap();
    let without = store::delete_without_memories(pool, ada.user_id)
        .await
        .unwrap();
    let again = store::delete_without_memories(pool, ada.user_id)
        .await
        .unwrap();

    assert_eq!(
        (with_a_memory, without, again),
        (
            Removal::MemoriesLeft,
            Removal::Deleted,
            Removal::AlreadyGone
        )
    );
    assert_eq!(everything_owned(pool, ada.user_id).await, [0, 0, 0, 0]);
}
