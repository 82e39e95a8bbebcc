//! The upload flow against the real PostgreSQL and the emulated S3: create an upload
//! through the API handler, put bytes into the bucket, feed the completion handler
//! real-shaped S3 events, and sweep expired uploads.

use std::time::{Duration, SystemTime};

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::s3::S3Event;
use aws_sdk_s3::primitives::ByteStream;
use encache_testkit::{
    HttpEvent, TestDb, lambda_event, refused_pool, sample_event, status_and_json,
};
use encache_upload::complete::{self, CompletionReport, Outcome};
use encache_upload::keys::Sequencer;
use encache_upload::store::{self, Verdict};
use encache_upload::{ApiSettings, CompleteSettings, ExpirySettings, api, expiry};
use lambda_runtime::Diagnostic;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

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

    fn api_settings(&self) -> ApiSettings {
        ApiSettings {
            bucket: self.bucket.clone(),
            allowed_content_types: vec!["image/jpeg".into(), "text/plain".into()],
            max_size_bytes: 10_000,
            url_expiry: Duration::from_secs(900),
            db_timeout: Duration::from_secs(3),
        }
    }

    fn complete_settings(&self) -> CompleteSettings {
        CompleteSettings {
            bucket: self.bucket.clone(),
            concurrency: 4,
        }
    }

    /// The API's dependencies, on `pool` with `settings`.
    fn api_deps(&self, pool: &PgPool, settings: ApiSettings) -> api::Deps {
        api::Deps {
            db: pool.clone().into(),
            s3: self.s3.clone().into(),
            settings,
        }
    }

    /// The completion handler's dependencies, on `pool`.
    fn complete_deps(&self, pool: &PgPool) -> complete::Deps {
        complete::Deps {
            db: std::sync::Arc::new(pool.clone().into()),
            s3: self.s3.clone().into(),
            settings: self.complete_settings(),
        }
    }

    /// `POST /v1/memories/uploads` as the given Cognito user.
    async fn create(&self, sub: &str, body: &str) -> (i64, Value) {
        self.create_as(request(sub, body)).await
    }

    /// `POST /v1/memories/uploads` with this request.
    async fn create_as(&self, req: ApiGatewayV2httpRequest) -> (i64, Value) {
        let deps = self.api_deps(&self.db.pool, self.api_settings());
        let resp = api::handle(&deps, lambda_event(req)).await.unwrap();
        (resp.status_code, json_of(&resp))
    }

    /// A pending memory declared as `content_type` / `size`; returns (memory id, key).
    async fn pending(&self, sub: &str, content_type: &str, size: usize) -> (Uuid, String) {
        let (status, body) = self
            .create(
                sub,
                &json!({"content_type": content_type, "size_bytes": size}).to_string(),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let id: Uuid = body["memory_id"].as_str().unwrap().parse().unwrap();
        let key = memory(&self.db.pool, id).await.s3_key;
        (id, key)
    }

    async fn put(&self, key: &str, bytes: &[u8], content_type: &str) {
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(bytes.to_vec()))
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

    /// Runs the completion handler on records for (encoded key, sequencer).
    async fn deliver(&self, records: &[(&str, &str)]) -> CompletionReport {
        complete::handle(
            &self.complete_deps(&self.db.pool),
            lambda_event(s3_event(&self.bucket, records)),
        )
        .await
        .expect("no record should need a retry")
    }
}

fn request(sub: &str, body: &str) -> ApiGatewayV2httpRequest {
    HttpEvent::sample("upload-create.json")
        .caller(sub)
        .claim("email", &format!("{sub}@example.com"))
        .raw_body(body)
        .build()
}

fn json_of(resp: &ApiGatewayV2httpResponse) -> Value {
    status_and_json(resp).1
}

/// The sample S3 event with one record per (encoded key, sequencer).
fn s3_event(bucket: &str, records: &[(&str, &str)]) -> S3Event {
    let mut event: S3Event = sample_event("s3-object-created.json");
    let template = event.records[0].clone();
    event.records = records
        .iter()
        .map(|(key, seq)| {
            let mut r = template.clone();
            r.s3.bucket.name = Some(bucket.to_owned());
            r.s3.bucket.arn = Some(format!("arn:aws:s3:::{bucket}"));
            r.s3.object.key = Some((*key).to_owned());
            r.s3.object.sequencer = Some((*seq).to_owned());
            r
        })
        .collect();
    event
}

#[derive(Debug)]
struct Row {
    s3_key: String,
    status: String,
    status_reason: Option<String>,
    actual_size_bytes: Option<i64>,
    actual_content_type: Option<String>,
    etag: Option<String>,
    last_sequencer: Option<String>,
    updated_at: time::OffsetDateTime,
}

async fn memory(pool: &PgPool, id: Uuid) -> Row {
    let (s3_key, status, status_reason, actual_size_bytes, actual_content_type, etag, last_sequencer, updated_at) =
        sqlx::query_as::<_, (String, String, Option<String>, Option<i64>, Option<String>, Option<String>, Option<String>, time::OffsetDateTime)>(
            "SELECT s3_key, status, status_reason, actual_size_bytes, actual_content_type, etag, last_sequencer, updated_at
             FROM memories WHERE id = $1",
        )
        .bind(id)
        .fetch_one(pool)
        .await
        .expect("the memory exists");
    Row {
        s3_key,
        status,
        status_reason,
        actual_size_bytes,
        actual_content_type,
        etag,
        last_sequencer,
        updated_at,
    }
}

async fn count(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(pool)
        .await
        .unwrap()
}

fn outcomes(report: &CompletionReport) -> Vec<&Outcome> {
    report.results.iter().map(|r| &r.outcome).collect()
}

// ------------------------------------------------------------------ the API

#[tokio::test]
async fn creating_an_upload_returns_a_presigned_put_and_records_a_pending_memory() {
    let w = World::new().await;
    let before = SystemTime::now();

    let (status, body) = w
        .create(
            "sub-ada",
            r#"{"content_type":"image/jpeg","size_bytes":2048,"file_name":"beach day.jpg","title":"Beach","captured_at":"2026-11-20T16:42:00Z"}"#,
        )
        .await;

    assert_eq!(status, 201, "{body}");
    assert_eq!(body["method"], "PUT");
    assert_eq!(body["headers"]["content-type"], "image/jpeg");
    assert_eq!(body["headers"]["content-length"], "2048");
    let url = body["upload_url"].as_str().unwrap();
    assert!(url.contains("X-Amz-Expires=900"), "{url}");
    assert!(
        url.contains("X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost"),
        "{url}"
    );
    let expires_at = time::OffsetDateTime::parse(
        body["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let window = expires_at - time::OffsetDateTime::from(before);
    assert!(
        window > time::Duration::seconds(890) && window <= time::Duration::seconds(901),
        "{window}"
    );

    let id: Uuid = body["memory_id"].as_str().unwrap().parse().unwrap();
    let row = memory(&w.db.pool, id).await;
    assert_eq!(row.status, "pending");
    let user_id: Uuid = sqlx::query_scalar(
        "SELECT id FROM users WHERE cognito_sub = 'sub-ada' AND email = 'sub-ada@example.com'",
    )
    .fetch_one(&w.db.pool)
    .await
    .expect("the user row was created from the claims");
    assert_eq!(row.s3_key, format!("users/{user_id}/memories/{id}"));
    assert!(url.contains(&row.s3_key), "{url}");
}

#[tokio::test]
async fn keys_never_contain_client_chosen_path_segments_and_users_are_reused() {
    let w = World::new().await;

    let (_, first) = w
        .create(
            "sub-bo",
            r#"{"content_type":"text/plain","size_bytes":3,"file_name":"../../other/x.txt"}"#,
        )
        .await;
    let (_, second) = w
        .create(
            "sub-bo",
            r#"{"content_type":"text/plain","size_bytes":3,"title":"users/evil"}"#,
        )
        .await;

    assert_eq!(count(&w.db.pool, "users").await, 1);
    for body in [first, second] {
        let id: Uuid = body["memory_id"].as_str().unwrap().parse().unwrap();
        let key = memory(&w.db.pool, id).await.s3_key;
        let parts: Vec<&str> = key.split('/').collect();
        assert_eq!(parts.len(), 4, "{key}");
        assert_eq!(
            (parts[0], parts[2], parts[3]),
            ("users", "memories", id.to_string().as_str())
        );
        assert!(Uuid::parse_str(parts[1]).is_ok(), "{key}");
    }
}

#[tokio::test]
async fn bad_input_is_a_400_naming_the_field_and_writes_nothing() {
    let w = World::new().await;
    let long_name = "n".repeat(256);
    let long_title = "t".repeat(201);
    let cases: Vec<(String, &str)> = vec![
        (r#"{"size_bytes": 5}"#.into(), "content_type"),
        (r#"{"content_type": "image/jpeg"}"#.into(), "size_bytes"),
        (
            r#"{"content_type": 7, "size_bytes": 5}"#.into(),
            "content_type",
        ),
        (
            r#"{"content_type": "image/jpeg", "size_bytes": "5"}"#.into(),
            "size_bytes",
        ),
        (
            r#"{"content_type": "image/jpeg", "size_bytes": 1.5}"#.into(),
            "size_bytes",
        ),
        (
            r#"{"content_type": "image/jpeg", "size_bytes": 0}"#.into(),
            "size_bytes",
        ),
        (
            r#"{"content_type": "image/jpeg", "size_bytes": -5}"#.into(),
            "size_bytes",
        ),
        (
            r#"{"content_type": "image/jpeg", "size_bytes": 10001}"#.into(),
            "size_bytes",
        ),
        (
            r#"{"content_type": "text/html", "size_bytes": 5}"#.into(),
            "content_type",
        ),
        (
            json!({"content_type": "image/jpeg", "size_bytes": 5, "file_name": long_name})
                .to_string(),
            "file_name",
        ),
        (
            json!({"content_type": "image/jpeg", "size_bytes": 5, "title": long_title}).to_string(),
            "title",
        ),
        (
            r#"{"content_type": "image/jpeg", "size_bytes": 5, "title": 3}"#.into(),
            "title",
        ),
        (
            r#"{"content_type": "image/jpeg", "size_bytes": 5, "captured_at": "yesterday"}"#.into(),
            "captured_at",
        ),
        (r#"{"content_type": "image/jpeg", "#.into(), "JSON"),
        ("".into(), "body"),
    ];

    for (body, field) in &cases {
        let (status, err) = w.create("sub-cy", body).await;
        assert_eq!(status, 400, "{body} -> {err}");
        assert_eq!(err["status"], 400);
        let message = err["message"].as_str().unwrap();
        assert!(message.contains(field), "{body} -> {message}");
    }

    assert_eq!(count(&w.db.pool, "memories").await, 0);
    assert_eq!(count(&w.db.pool, "users").await, 0);
}

#[tokio::test]
async fn a_captured_at_postgres_or_rfc3339_cannot_hold_is_a_400_and_nothing_is_stored() {
    // The issue's case: year 0 with an offset is year -1 in UTC, which PostgreSQL stored
    // and no feed could render, so the pending feed was a 500 from then on.
    let w = World::new().await;
    for captured_at in [
        "0000-01-01T00:00:00+01:00",
        "0000-01-01T00:00:00+23:59",
        "9999-12-31T23:59:59-23:59",
        "9999-12-31T23:59:59.9999999Z",
    ] {
        let body =
            json!({"content_type": "image/jpeg", "size_bytes": 5, "captured_at": captured_at});
        let (status, err) = w.create("sub-year0", &body.to_string()).await;
        assert_eq!(status, 400, "{captured_at} -> {err}");
        assert_eq!(
            (err["status"].as_i64(), err["code"].as_str()),
            (Some(400), Some("invalid_request"))
        );
        assert!(
            err["message"]
                .as_str()
                .unwrap()
                .starts_with("captured_at: must be between"),
            "{err}"
        );
    }
    assert_eq!(count(&w.db.pool, "memories").await, 0);

    // The ends of the range are accepted and stored as given.
    for captured_at in ["0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z"] {
        let body =
            json!({"content_type": "image/jpeg", "size_bytes": 5, "captured_at": captured_at});
        let (status, ticket) = w.create("sub-year0", &body.to_string()).await;
        assert_eq!(status, 201, "{captured_at} -> {ticket}");
    }
    assert_eq!(count(&w.db.pool, "memories").await, 2);
}

#[tokio::test]
async fn a_body_that_is_not_exactly_one_json_object_is_a_400_and_writes_nothing() {
    let w = World::new().await;
    let one = r#"{"content_type": "image/jpeg", "size_bytes": 5}"#;
    let cases = [
        (
            format!("{one} trailing"),
            "invalid_json",
            "nothing after it",
        ),
        (format!("{one}{one}"), "invalid_json", "nothing after it"),
        (
            format!("{one}\n{one}\n"),
            "invalid_json",
            "nothing after it",
        ),
        // The field values in order, which serde alone would read into the struct.
        (
            r#"["image/jpeg", 5]"#.to_owned(),
            "invalid_request",
            "not an array",
        ),
        (
            r#""image/jpeg""#.to_owned(),
            "invalid_request",
            "JSON object",
        ),
    ];
    for (body, code, words) in &cases {
        let (status, err) = w.create("sub-shape", body).await;
        assert_eq!(status, 400, "{body} -> {err}");
        assert_eq!(err["code"], *code, "{body} -> {err}");
        assert!(
            err["message"].as_str().unwrap().contains(words),
            "{body} -> {err}"
        );
    }
    assert_eq!(count(&w.db.pool, "memories").await, 0);

    // Unknown fields stay ignored, as the API documents for this body.
    let (status, ticket) = w
        .create(
            "sub-shape",
            r#"{"content_type": "image/jpeg", "size_bytes": 5, "colour": "red"}"#,
        )
        .await;
    assert_eq!(status, 201, "{ticket}");
}

#[tokio::test]
async fn a_caller_with_no_profile_and_no_email_claim_is_refused_and_nothing_is_written() {
    let w = World::new().await;
    let mut req = request(
        "sub-no-email",
        r#"{"content_type":"text/plain","size_bytes":3}"#,
    );
    if let Some(jwt) = req
        .request_context
        .authorizer
        .as_mut()
        .and_then(|a| a.jwt.as_mut())
    {
        jwt.claims.remove("email");
    }

    let (status, body) = w.create_as(req).await;

    assert_eq!(status, 401);
    assert_eq!(body["code"], "unauthorized");
    assert_eq!(count(&w.db.pool, "users").await, 0);
    assert_eq!(count(&w.db.pool, "memories").await, 0);
}

#[tokio::test]
async fn a_database_that_does_not_answer_is_a_503_standard_error_in_bounded_time() {
    let w = World::new().await;
    let silent = encache_testkit::silent_pool().await;
    let settings = ApiSettings {
        db_timeout: Duration::from_millis(300),
        ..w.api_settings()
    };
    let started = std::time::Instant::now();

    let resp = api::handle(
        &w.api_deps(&silent, settings),
        lambda_event(request(
            "sub-silent",
            r#"{"content_type":"text/plain","size_bytes":3}"#,
        )),
    )
    .await
    .unwrap();

    let (status, body) = (resp.status_code, json_of(&resp));
    encache_testkit::assert_standard_error(status, &body, 503, "service_unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

// ------------------------------------------------------------------ completion

#[tokio::test]
async fn a_presigned_put_then_its_s3_event_makes_the_memory_ready() {
    let w = World::new().await;
    let bytes = b"\xff\xd8\xff\xe0 pretend jpeg";
    let (status, ticket) = w
        .create(
            "sub-di",
            &json!({"content_type": "image/jpeg", "size_bytes": bytes.len()}).to_string(),
        )
        .await;
    assert_eq!(status, 201);

    // The client's side: PUT exactly the headers the API returned.
    let mut put = reqwest::Client::new()
        .put(ticket["upload_url"].as_str().unwrap())
        .timeout(Duration::from_secs(10))
        .body(bytes.to_vec());
    for (name, value) in ticket["headers"].as_object().unwrap() {
        put = put.header(name.as_str(), value.as_str().unwrap());
    }
    let resp = put.send().await.expect("PUT to the emulator");
    assert!(resp.status().is_success(), "{}", resp.status());

    let id: Uuid = ticket["memory_id"].as_str().unwrap().parse().unwrap();
    let key = memory(&w.db.pool, id).await.s3_key;
    let report = w.deliver(&[(&key, "0055AED6DCD90281E5")]).await;

    assert_eq!(outcomes(&report), vec![&Outcome::Ready { memory_id: id }]);
    let row = memory(&w.db.pool, id).await;
    assert_eq!(row.status, "ready");
    assert_eq!(row.actual_size_bytes, Some(bytes.len() as i64));
    assert_eq!(row.actual_content_type.as_deref(), Some("image/jpeg"));
    assert!(row.etag.is_some_and(|e| !e.contains('"')));
    assert_eq!(row.last_sequencer.as_deref(), Some("0055AED6DCD90281E5"));
    assert!(w.exists(&key).await);
}

#[tokio::test]
async fn event_keys_with_spaces_plus_signs_and_non_ascii_are_decoded() {
    let w = World::new().await;
    let (id, generated) = w.pending("sub-ed", "text/plain", 5).await;
    // A memory whose key needs every kind of encoding (keys are normally plain uuids).
    let key = format!("{generated}/Beach day+1 café ✓.txt");
    sqlx::query("UPDATE memories SET s3_key = $1 WHERE id = $2")
        .bind(&key)
        .bind(id)
        .execute(&w.db.pool)
        .await
        .unwrap();
    w.put(&key, b"hello", "text/plain").await;
    let stray = "users/stray/memories/a b+c é.txt";
    w.put(stray, b"stray", "text/plain").await;

    let encoded = format!("{generated}/Beach+day%2B1+caf%C3%A9+%E2%9C%93.txt");
    let report = w
        .deliver(&[
            (&encoded, "01"),
            ("users/stray/memories/a+b%2Bc+%C3%A9.txt", "01"),
        ])
        .await;

    assert_eq!(report.results[0].key.as_deref(), Some(key.as_str()));
    assert_eq!(report.results[0].outcome, Outcome::Ready { memory_id: id });
    assert_eq!(memory(&w.db.pool, id).await.status, "ready");
    assert_eq!(report.results[1].key.as_deref(), Some(stray));
    assert!(matches!(
        report.results[1].outcome,
        Outcome::Discarded {
            memory_id: None,
            ..
        }
    ));
    assert!(!w.exists(stray).await, "the unknown object was deleted");
}

#[tokio::test]
async fn an_object_of_another_size_fails_the_memory_and_is_deleted() {
    let w = World::new().await;
    let (id, key) = w.pending("sub-fi", "text/plain", 5).await;
    w.put(&key, b"hello!", "text/plain").await;

    let report = w.deliver(&[(&key, "0A")]).await;

    assert!(
        matches!(&report.results[0].outcome, Outcome::Failed { memory_id, reason }
        if *memory_id == id && reason.contains("size mismatch"))
    );
    let row = memory(&w.db.pool, id).await;
    assert_eq!(row.status, "failed");
    assert_eq!(row.actual_size_bytes, Some(6));
    assert!(
        row.status_reason
            .unwrap()
            .contains("declared 5 bytes, received 6")
    );
    assert!(!w.exists(&key).await);
}

#[tokio::test]
async fn an_object_of_another_type_fails_the_memory_and_is_deleted() {
    let w = World::new().await;
    let (id, key) = w.pending("sub-gu", "image/jpeg", 5).await;
    w.put(&key, b"hello", "text/plain").await;

    let report = w.deliver(&[(&key, "0A")]).await;

    assert!(
        matches!(&report.results[0].outcome, Outcome::Failed { reason, .. }
        if reason.contains("content type mismatch"))
    );
    assert_eq!(memory(&w.db.pool, id).await.status, "failed");
    assert!(!w.exists(&key).await);
}

#[tokio::test]
async fn an_object_that_belongs_to_no_memory_is_deleted() {
    let w = World::new().await;
    let key = format!("users/{}/memories/{}", Uuid::new_v4(), Uuid::new_v4());
    w.put(&key, b"who?", "text/plain").await;

    let report = w.deliver(&[(&key, "0A")]).await;

    assert!(matches!(
        report.results[0].outcome,
        Outcome::Discarded {
            memory_id: None,
            ..
        }
    ));
    assert!(!w.exists(&key).await);
}

#[tokio::test]
async fn the_same_record_delivered_three_times_moves_the_memory_once() {
    let w = World::new().await;
    let (id, key) = w.pending("sub-ha", "text/plain", 5).await;
    w.put(&key, b"hello", "text/plain").await;

    // Three copies in one event race each other; a fourth arrives later on its own.
    let report = w.deliver(&[(&key, "0B"), (&key, "0B"), (&key, "0B")]).await;
    let settled = memory(&w.db.pool, id).await;
    let again = w.deliver(&[(&key, "0B")]).await;

    let ready = outcomes(&report)
        .iter()
        .filter(|o| matches!(o, Outcome::Ready { .. }))
        .count();
    assert_eq!(ready, 1, "{report:?}");
    assert!(
        outcomes(&report)
            .iter()
            .all(|o| matches!(o, Outcome::Ready { .. } | Outcome::AlreadyApplied { .. }))
    );
    assert_eq!(
        outcomes(&again),
        vec![&Outcome::AlreadyApplied { memory_id: id }]
    );
    let row = memory(&w.db.pool, id).await;
    assert_eq!(row.status, "ready");
    assert_eq!(
        row.updated_at, settled.updated_at,
        "the redelivery wrote nothing"
    );
}

#[tokio::test]
async fn an_older_event_arriving_after_a_newer_one_never_moves_the_memory_back() {
    let w = World::new().await;
    let (id, key) = w.pending("sub-io", "text/plain", 5).await;
    w.put(&key, b"hello", "text/plain").await;
    // "100" is later than "FF": sequencers compare as hex numbers.
    w.deliver(&[(&key, "100")]).await;
    // Whatever the bucket holds now, an older event must not re-judge it.
    w.put(&key, b"wrong size", "text/plain").await;

    let report = w.deliver(&[(&key, "FF")]).await;

    assert_eq!(
        outcomes(&report),
        vec![&Outcome::AlreadyApplied { memory_id: id }]
    );
    let row = memory(&w.db.pool, id).await;
    assert_eq!(row.status, "ready");
    assert_eq!(row.last_sequencer.as_deref(), Some("100"));
    assert!(w.exists(&key).await, "an old event deletes nothing");
}

#[tokio::test]
async fn the_conditional_update_itself_refuses_older_or_equal_sequencers() {
    let w = World::new().await;
    let (id, _) = w.pending("sub-ix", "text/plain", 5).await;
    let ready = Verdict {
        status: "ready",
        reason: None,
        actual_content_type: Some("text/plain"),
        actual_size_bytes: Some(5),
        etag: Some("e1"),
    };
    let failed = Verdict {
        status: "failed",
        reason: Some("size mismatch"),
        ..ready.clone()
    };
    let seq = |s: &str| Sequencer::parse(Some(s));

    // Padding with leading zeros: "0100" > "FF", and "00FF" == "FF".
    assert!(
        store::apply_verdict(&w.db.pool, id, seq("0100").as_ref(), &ready)
            .await
            .unwrap()
    );
    assert!(
        !store::apply_verdict(&w.db.pool, id, seq("FF").as_ref(), &failed)
            .await
            .unwrap()
    );
    assert!(
        !store::apply_verdict(&w.db.pool, id, seq("100").as_ref(), &failed)
            .await
            .unwrap()
    );
    assert!(
        !store::apply_verdict(&w.db.pool, id, None, &failed)
            .await
            .unwrap()
    );
    assert_eq!(memory(&w.db.pool, id).await.status, "ready");
    assert!(
        store::apply_verdict(&w.db.pool, id, seq("101").as_ref(), &failed)
            .await
            .unwrap()
    );
    // Failed is final: not even a later event revives it.
    assert!(
        !store::apply_verdict(&w.db.pool, id, seq("FFFF").as_ref(), &ready)
            .await
            .unwrap()
    );
    assert_eq!(memory(&w.db.pool, id).await.status, "failed");
}

#[tokio::test]
async fn another_users_memory_is_never_affected() {
    let w = World::new().await;
    let (victim, victim_key) = w.pending("sub-ju", "text/plain", 5).await;
    let (_, mallory_key) = w.pending("sub-ka", "text/plain", 5).await;
    // An object under the other user's prefix carrying the victim's memory id.
    let mallory_prefix = mallory_key.rsplit_once("/memories/").unwrap().0;
    let forged = format!("{mallory_prefix}/memories/{victim}");
    w.put(&forged, b"hello", "text/plain").await;
    w.put(&mallory_key, b"hello", "text/plain").await;

    let report = w.deliver(&[(&forged, "0A"), (&mallory_key, "0A")]).await;

    assert!(matches!(
        report.results[0].outcome,
        Outcome::Discarded {
            memory_id: None,
            ..
        }
    ));
    assert!(matches!(report.results[1].outcome, Outcome::Ready { .. }));
    let row = memory(&w.db.pool, victim).await;
    assert_eq!((row.status.as_str(), row.last_sequencer), ("pending", None));
    assert_eq!(row.s3_key, victim_key);
    assert!(!w.exists(&forged).await);
}

#[tokio::test]
async fn one_bad_record_fails_the_invocation_without_holding_back_the_others() {
    let w = World::new().await;
    let (id, key) = w.pending("sub-lu", "text/plain", 5).await;
    w.put(&key, b"hello", "text/plain").await;
    let mut event = s3_event(&w.bucket, &[("bad%FF", "01"), (&key, "01"), (&key, "02")]);
    event.records[2].s3.bucket.name = Some("someone-elses-bucket".into());
    let deps = w.complete_deps(&w.db.pool);

    let err = complete::handle(&deps, lambda_event(event.clone()))
        .await
        .expect_err("a record no retry can fix must not be acknowledged");

    let diagnostic = Diagnostic::from(err);
    assert_eq!(diagnostic.error_type, "NotRetryable.RecordFailed");
    assert!(
        diagnostic.error_message.contains("1 of 3 records")
            && diagnostic.error_message.contains("does not decode"),
        "{}",
        diagnostic.error_message
    );
    assert_eq!(memory(&w.db.pool, id).await.status, "ready");
    // Lambda's retry of the whole event re-applies nothing and fails the same way.
    let again = complete::process(&deps, event).await;
    assert!(matches!(
        again.results[0].outcome,
        Outcome::Permanent { .. }
    ));
    assert_eq!(
        again.results[1].outcome,
        Outcome::AlreadyApplied { memory_id: id }
    );
    assert!(matches!(again.results[2].outcome, Outcome::Ignored { .. }));
    assert_eq!(
        again.failure().map(|f| Diagnostic::from(f).error_type),
        Some("NotRetryable.RecordFailed".to_owned())
    );
}

#[tokio::test]
async fn a_record_s3_refuses_fails_the_invocation_for_the_dead_letter_queue() {
    let w = World::new().await;
    // The function's bucket is not there (deleted, or a wrong UPLOAD_BUCKET): S3 answers
    // NoSuchBucket, which no retry fixes.
    let missing = format!("encache-test-missing-{}", Uuid::new_v4().simple());
    let deps = complete::Deps {
        settings: CompleteSettings {
            bucket: missing.clone(),
            concurrency: 4,
        },
        ..w.complete_deps(&w.db.pool)
    };
    let key = format!("users/{}/memories/{}", Uuid::new_v4(), Uuid::new_v4());

    let err = complete::handle(&deps, lambda_event(s3_event(&missing, &[(&key, "01")])))
        .await
        .expect_err("a permanent S3 failure must reach the dead-letter queue");

    let diagnostic = Diagnostic::from(err);
    assert_eq!(diagnostic.error_type, "NotRetryable.RecordFailed");
    assert!(
        diagnostic.error_message.contains("NoSuchBucket"),
        "{}",
        diagnostic.error_message
    );
}

#[tokio::test]
async fn a_database_outage_fails_the_invocation_as_retryable() {
    let w = World::new().await;
    let down = refused_pool();
    let key = format!("users/{}/memories/{}", Uuid::new_v4(), Uuid::new_v4());
    w.put(&key, b"hello", "text/plain").await;

    let err = complete::handle(
        &w.complete_deps(&down),
        lambda_event(s3_event(&w.bucket, &[(&key, "01")])),
    )
    .await
    .unwrap_err();

    let diagnostic = Diagnostic::from(err);
    assert_eq!(diagnostic.error_type, "Retryable.Unavailable");
    assert!(diagnostic.error_message.contains("database unavailable"));
    assert!(
        w.exists(&key).await,
        "nothing is deleted without knowing the memory"
    );
}

// ------------------------------------------------------------------ expiry

#[tokio::test]
async fn the_sweep_expires_overdue_uploads_and_a_late_object_is_then_deleted() {
    let w = World::new().await;
    let (overdue, overdue_key) = w.pending("sub-mo", "text/plain", 5).await;
    let (fresh, _) = w.pending("sub-mo", "text/plain", 5).await;
    let (done, done_key) = w.pending("sub-mo", "text/plain", 5).await;
    w.put(&done_key, b"hello", "text/plain").await;
    w.deliver(&[(&done_key, "01")]).await;
    sqlx::query(
        "UPDATE memories SET upload_expires_at = now() - interval '1 hour' WHERE id = ANY($1)",
    )
    .bind(vec![overdue, done])
    .execute(&w.db.pool)
    .await
    .unwrap();
    let settings = ExpirySettings {
        grace: Duration::from_secs(300),
        batch_size: 1,
    };

    let deps = expiry::Deps {
        db: w.db.pool.clone().into(),
        settings,
    };
    let report = expiry::handle(
        &deps,
        lambda_event(sample_event::<EventBridgeEvent>(
            "upload-expiry-schedule.json",
        )),
    )
    .await
    .unwrap();

    assert_eq!(report.expired, 1);
    assert_eq!(memory(&w.db.pool, overdue).await.status, "expired");
    assert_eq!(memory(&w.db.pool, fresh).await.status, "pending");
    assert_eq!(memory(&w.db.pool, done).await.status, "ready");

    // The object finally arrives: it is deleted and the memory stays expired.
    w.put(&overdue_key, b"hello", "text/plain").await;
    let late = w.deliver(&[(&overdue_key, "01")]).await;
    assert!(
        matches!(&late.results[0].outcome, Outcome::Discarded { memory_id: Some(m), .. } if *m == overdue)
    );
    assert_eq!(memory(&w.db.pool, overdue).await.status, "expired");
    assert!(!w.exists(&overdue_key).await);
}

#[tokio::test]
async fn the_sweep_leaves_uploads_within_their_grace_period() {
    let w = World::new().await;
    let (id, _) = w.pending("sub-nu", "text/plain", 5).await;
    sqlx::query(
        "UPDATE memories SET upload_expires_at = now() - interval '1 minute' WHERE id = $1",
    )
    .bind(id)
    .execute(&w.db.pool)
    .await
    .unwrap();
    let settings = ExpirySettings {
        grace: Duration::from_secs(300),
        batch_size: 10,
    };

    let report = expiry::sweep(&w.db.pool, settings, SystemTime::now())
        .await
        .unwrap();

    assert_eq!(report.expired, 0);
    assert_eq!(memory(&w.db.pool, id).await.status, "pending");
}

fn request_with_key(sub: &str, body: &str, key: &str) -> ApiGatewayV2httpRequest {
    let mut req = request(sub, body);
    req.headers
        .insert("idempotency-key", key.parse().expect("a header value"));
    req
}

#[tokio::test]
async fn a_repeated_idempotency_key_gets_the_same_memory_and_never_a_second_row() {
    // given an upload created with an Idempotency-Key, whose answer the client lost
    let w = World::new().await;
    let body =
        json!({"content_type": "image/jpeg", "size_bytes": 1036, "title": "Beach"}).to_string();
    let (status, first) = w
        .create_as(request_with_key("idem-user", &body, "3f1c9a7e-key"))
        .await;
    assert_eq!(status, 201, "{first}");

    // when the client sends the same request again, twice
    let (again, second) = w
        .create_as(request_with_key("idem-user", &body, "3f1c9a7e-key"))
        .await;
    let (_, third) = w
        .create_as(request_with_key("idem-user", &body, "3f1c9a7e-key"))
        .await;

    // then it is the same memory, with the same expiry, and one row
    assert_eq!(again, 201, "{second}");
    assert_eq!(second["memory_id"], first["memory_id"]);
    assert_eq!(third["memory_id"], first["memory_id"]);
    assert_eq!(second["expires_at"], first["expires_at"]);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM memories")
        .fetch_one(&w.db.pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);

    // and the key used for another upload is a 409, another key or caller a new memory
    let other = json!({"content_type": "image/jpeg", "size_bytes": 2000}).to_string();
    let (status, reused) = w
        .create_as(request_with_key("idem-user", &other, "3f1c9a7e-key"))
        .await;
    encache_testkit::assert_standard_error(status, &reused, 409, "idempotency_key_reused");
    let (_, fresh) = w
        .create_as(request_with_key("idem-user", &body, "another-key"))
        .await;
    assert_ne!(fresh["memory_id"], first["memory_id"]);
    let (_, theirs) = w
        .create_as(request_with_key("idem-other", &body, "3f1c9a7e-key"))
        .await;
    assert_ne!(theirs["memory_id"], first["memory_id"]);

    // and a repeated header (API Gateway joins it with a comma) or a bad key is a 400
    for bad in ["k1,k2", "has space", ""] {
        let (status, err) = w.create_as(request_with_key("idem-user", &body, bad)).await;
        encache_testkit::assert_standard_error(status, &err, 400, "invalid_request");
        assert!(
            err["message"].as_str().unwrap().contains("Idempotency-Key"),
            "{err}"
        );
    }
}
