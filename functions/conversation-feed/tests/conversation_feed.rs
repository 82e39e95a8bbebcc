//! The conversation feed through its real handler, against the real PostgreSQL, with
//! requests made from the sample HTTP API events in `events/`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use encache_conversation_feed::conversations::{MAX_TITLE_CHARS, list_conversations};
use encache_conversation_feed::messages::{MAX_MESSAGE_CHARS, PREVIEW_CHARS, list_messages};
use encache_conversation_feed::{Deps, Settings, handle};
use encache_shared::config::Secret;
use encache_shared::pagination::{CursorScope, CursorSigner, Keyset};
use encache_testkit::{
    HttpEvent, TestDb, assert_standard_error, insert_user, lambda_event, refused_pool,
    status_and_json,
};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

const ALICE: &str = "sub-alice";
const BOB: &str = "sub-bob";

const LIST: &str = "conversation-feed-list.json";
const CREATE: &str = "conversation-feed-create.json";
const MESSAGES: &str = "conversation-feed-messages.json";
const POST: &str = "conversation-feed-post-message.json";

fn signer() -> CursorSigner {
    CursorSigner::new(&Secret::new("conversation-feed-test-key-0123456789".into())).unwrap()
}

fn deps(pool: PgPool) -> Deps {
    Deps {
        db: pool.into(),
        cursors: signer().into(),
        settings: Settings {
            db_timeout: Duration::from_secs(2),
        },
    }
}

fn conversations(sub: &str, query: &[(&str, &str)]) -> ApiGatewayV2httpRequest {
    HttpEvent::sample(LIST).caller(sub).query(query).build()
}

fn create(sub: &str, body: Value) -> ApiGatewayV2httpRequest {
    HttpEvent::sample(CREATE)
        .caller(sub)
        .query(&[])
        .body(&body)
        .build()
}

fn messages(sub: &str, id: &str, query: &[(&str, &str)]) -> ApiGatewayV2httpRequest {
    HttpEvent::sample(MESSAGES)
        .caller(sub)
        .query(query)
        .id(id)
        .build()
}

fn post(sub: &str, id: &str, body: Value) -> ApiGatewayV2httpRequest {
    HttpEvent::sample(POST)
        .caller(sub)
        .query(&[])
        .id(id)
        .body(&body)
        .build()
}

async fn call(deps: &Deps, req: ApiGatewayV2httpRequest) -> (i64, Value) {
    status_and_json(&handle(deps, lambda_event(req)).await.unwrap())
}

/// `n` conversations, activity one second apart from `seconds_ago`, three per timestamp.
async fn seed_conversations(pool: &PgPool, owner: Uuid, n: i64, seconds_ago: f64) -> Vec<Uuid> {
    sqlx::query_scalar(
        "INSERT INTO conversations (user_id, title, last_activity_at)
         SELECT $1, 'chat ' || g, date_trunc('second', now()) - make_interval(secs => $3 + g / 3)
         FROM generate_series(1, $2) AS g
         RETURNING id",
    )
    .bind(owner)
    .bind(n)
    .bind(seconds_ago)
    .fetch_all(pool)
    .await
    .unwrap()
}

/// `n` messages in a conversation, one millisecond apart, three per timestamp.
async fn seed_messages(pool: &PgPool, conversation: Uuid, n: i64) -> Vec<Uuid> {
    sqlx::query_scalar(
        "INSERT INTO messages (conversation_id, role, body, created_at)
         SELECT $1, CASE WHEN g % 2 = 0 THEN 'user' ELSE 'assistant' END, 'message ' || g,
                date_trunc('second', now()) - interval '1 hour' - make_interval(secs => (g / 3) / 1000.0)
         FROM generate_series(1, $2) AS g
         RETURNING id",
    )
    .bind(conversation)
    .bind(n)
    .fetch_all(pool)
    .await
    .unwrap()
}

fn ids(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

fn id_set(ids: &[Uuid]) -> HashSet<String> {
    ids.iter().map(Uuid::to_string).collect()
}

#[tokio::test]
async fn posting_a_message_moves_its_conversation_to_the_top_with_a_preview() {
    let db = TestDb::new().await;
    insert_user(&db.pool, ALICE).await;
    let deps = deps(db.pool.clone());
    let (status, first) = call(&deps, create(ALICE, json!({"title": "  Lisbon  "}))).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["title"], "Lisbon");
    assert_eq!(first["message_count"], 0);
    let (_, second) = call(&deps, create(ALICE, json!({}))).await;
    let first_id = first["id"].as_str().unwrap();

    let long = "x".repeat(PREVIEW_CHARS + 50);
    let (status, message) = call(
        &deps,
        post(ALICE, first_id, json!({"role": "user", "text": long})),
    )
    .await;
    assert_eq!(status, 201, "{message}");
    assert_eq!(message["role"], "user");
    assert_eq!(message["text"], long);

    let (status, feed) = call(&deps, conversations(ALICE, &[])).await;
    assert_eq!(status, 200, "{feed}");
    assert_eq!(ids(&feed), vec![first_id, second["id"].as_str().unwrap()]);
    let top = &feed["items"][0];
    assert_eq!(top["message_count"], 1);
    assert_eq!(top["last_activity_at"], message["created_at"]);
    let preview = top["last_message_preview"].as_str().unwrap();
    assert_eq!(preview.chars().count(), PREVIEW_CHARS + 1);
    assert!(preview.ends_with('…'));
}

#[tokio::test]
async fn messages_come_newest_first_and_page_back_in_time() {
    let db = TestDb::new().await;
    insert_user(&db.pool, ALICE).await;
    let deps = deps(db.pool.clone());
    let (_, conv) = call(&deps, create(ALICE, json!({"title": "t"}))).await;
    let id = conv["id"].as_str().unwrap();
    let mut posted = Vec::new();
    for (i, role) in ["user", "assistant", "system", "user", "assistant"]
        .iter()
        .enumerate()
    {
        let (status, m) = call(
            &deps,
            post(ALICE, id, json!({"role": role, "text": format!("m{i}")})),
        )
        .await;
        assert_eq!(status, 201, "{m}");
        posted.push(m["id"].as_str().unwrap().to_owned());
    }
    posted.reverse();

    let (_, page1) = call(&deps, messages(ALICE, id, &[("limit", "3")])).await;
    let cursor = page1["next_cursor"].as_str().unwrap();
    let (_, page2) = call(
        &deps,
        messages(ALICE, id, &[("limit", "3"), ("cursor", cursor)]),
    )
    .await;

    assert_eq!([ids(&page1), ids(&page2)].concat(), posted);
    assert_eq!(page1["items"][0]["text"], "m4");
    assert_eq!(page2["next_cursor"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walking_ten_thousand_messages_during_inserts_sees_each_exactly_once() {
    let db = TestDb::new().await;
    let alice = insert_user(&db.pool, ALICE).await;
    let conversation = seed_conversations(&db.pool, alice, 1, 0.0).await[0];
    let originals = id_set(&seed_messages(&db.pool, conversation, 10_000).await);
    let deps = Arc::new(deps(db.pool.clone()));
    let cid = conversation.to_string();

    // A writer posting to the same conversation through the handler while others read.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (deps, stop, cid) = (deps.clone(), stop.clone(), cid.clone());
        tokio::spawn(async move {
            let mut written = HashSet::new();
            while !stop.load(Ordering::Relaxed) {
                let (status, m) = call(
                    &deps,
                    post(ALICE, &cid, json!({"role": "user", "text": "hi"})),
                )
                .await;
                assert_eq!(status, 201, "{m}");
                written.insert(m["id"].as_str().unwrap().to_owned());
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            written
        })
    };

    let mut walks = tokio::task::JoinSet::new();
    for size in [2usize, 7, 20, 99, 100] {
        let (deps, cid) = (deps.clone(), cid.clone());
        walks.spawn(async move {
            let base = messages(ALICE, &cid, &[]);
            let mut seen = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let mut query = HashMap::from([("limit".to_owned(), size.to_string())]);
                if let Some(c) = &cursor {
                    query.insert("cursor".to_owned(), c.clone());
                }
                let mut req = base.clone();
                req.query_string_parameters = query.into();
                let page = list_messages(&req, &deps).await.unwrap();
                assert!(page.items.len() <= size);
                seen.extend(page.items.into_iter().map(|m| (m.created_at, m.id)));
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            (size, seen)
        });
    }
    let mut results = Vec::new();
    while let Some(done) = walks.join_next().await {
        results.push(done.unwrap());
    }
    stop.store(true, Ordering::Relaxed);
    let written = writer.await.unwrap();
    assert!(!written.is_empty());

    for (size, seen) in results {
        assert!(
            seen.windows(2).all(|w| w[0] > w[1]),
            "size {size}: order or duplicate"
        );
        let seen: HashSet<String> = seen.iter().map(|(_, id)| id.to_string()).collect();
        assert!(originals.is_subset(&seen), "size {size}: skipped messages");
        assert!(
            seen.difference(&originals).all(|id| written.contains(id)),
            "size {size}: foreign messages"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walking_ten_thousand_conversations_during_inserts_sees_each_exactly_once() {
    let db = TestDb::new().await;
    let alice = insert_user(&db.pool, ALICE).await;
    let bob = insert_user(&db.pool, BOB).await;
    let originals = id_set(&seed_conversations(&db.pool, alice, 10_000, 60.0).await);
    let deps = Arc::new(deps(db.pool.clone()));

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (deps, stop, pool) = (deps.clone(), stop.clone(), db.pool.clone());
        tokio::spawn(async move {
            let mut written = HashSet::new();
            while !stop.load(Ordering::Relaxed) {
                let (status, c) = call(&deps, create(ALICE, json!({"title": "new"}))).await;
                assert_eq!(status, 201, "{c}");
                written.insert(c["id"].as_str().unwrap().to_owned());
                seed_conversations(&pool, bob, 3, 30.0).await;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            written
        })
    };

    let mut walks = tokio::task::JoinSet::new();
    for size in [2usize, 7, 20, 99, 100] {
        let deps = deps.clone();
        walks.spawn(async move {
            let base = conversations(ALICE, &[]);
            let mut seen = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let mut query = HashMap::from([("limit".to_owned(), size.to_string())]);
                if let Some(c) = &cursor {
                    query.insert("cursor".to_owned(), c.clone());
                }
                let mut req = base.clone();
                req.query_string_parameters = query.into();
                let page = list_conversations(&req, &deps).await.unwrap();
                seen.extend(page.items.into_iter().map(|c| (c.last_activity_at, c.id)));
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            (size, seen)
        });
    }
    let mut results = Vec::new();
    while let Some(done) = walks.join_next().await {
        results.push(done.unwrap());
    }
    stop.store(true, Ordering::Relaxed);
    let written = writer.await.unwrap();

    for (size, seen) in results {
        assert!(
            seen.windows(2).all(|w| w[0] > w[1]),
            "size {size}: order or duplicate"
        );
        let seen: HashSet<String> = seen.iter().map(|(_, id)| id.to_string()).collect();
        assert!(
            originals.is_subset(&seen),
            "size {size}: skipped conversations"
        );
        assert!(
            seen.difference(&originals).all(|id| written.contains(id)),
            "size {size}: foreign conversations"
        );
    }
}

#[tokio::test]
async fn two_users_never_see_each_others_conversations_or_messages_through_any_route() {
    let db = TestDb::new().await;
    insert_user(&db.pool, ALICE).await;
    insert_user(&db.pool, BOB).await;
    let deps = deps(db.pool.clone());
    let (_, alices) = call(&deps, create(ALICE, json!({"title": "alice's"}))).await;
    let alices = alices["id"].as_str().unwrap().to_owned();
    for i in 0..3 {
        call(
            &deps,
            post(
                ALICE,
                &alices,
                json!({"role": "user", "text": format!("a{i}")}),
            ),
        )
        .await;
    }
    let (_, bobs) = call(&deps, create(BOB, json!({"title": "bob's"}))).await;
    let bobs = bobs["id"].as_str().unwrap().to_owned();

    // The feed.
    let (_, feed) = call(&deps, conversations(BOB, &[])).await;
    assert_eq!(ids(&feed), vec![bobs.clone()]);
    // Reading and writing Alice's conversation: 404, exactly like a missing one.
    let missing = Uuid::new_v4().to_string();
    let (s1, read_foreign) = call(&deps, messages(BOB, &alices, &[])).await;
    let (s2, read_missing) = call(&deps, messages(BOB, &missing, &[])).await;
    assert_standard_error(s1, &read_foreign, 404, "not_found");
    assert_eq!((s1, &read_foreign), (s2, &read_missing));
    let hi = json!({"role": "user", "text": "hi"});
    let (s1, write_foreign) = call(&deps, post(BOB, &alices, hi.clone())).await;
    let (s2, write_missing) = call(&deps, post(BOB, &missing, hi)).await;
    assert_standard_error(s1, &write_foreign, 404, "not_found");
    assert_eq!((s1, &write_foreign), (s2, &write_missing));
    let count: i32 =
        sqlx::query_scalar("SELECT message_count FROM conversations WHERE id = $1::uuid")
            .bind(&alices)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(count, 3, "Bob's write must not touch Alice's conversation");
    // Alice's cursors, replayed by Bob, on both feeds.
    let (_, page) = call(&deps, messages(ALICE, &alices, &[("limit", "1")])).await;
    let cursor = page["next_cursor"].as_str().unwrap();
    let (status, body) = call(&deps, messages(BOB, &bobs, &[("cursor", cursor)])).await;
    assert_standard_error(status, &body, 400, "invalid_cursor");
    call(&deps, create(ALICE, json!({}))).await;
    let (_, page) = call(&deps, conversations(ALICE, &[("limit", "1")])).await;
    let cursor = page["next_cursor"].as_str().unwrap();
    let (status, body) = call(&deps, conversations(BOB, &[("cursor", cursor)])).await;
    assert_standard_error(status, &body, 400, "invalid_cursor");
}

#[tokio::test]
async fn a_cursor_for_another_route_or_conversation_or_tampered_is_a_400_invalid_cursor() {
    let db = TestDb::new().await;
    let alice = insert_user(&db.pool, ALICE).await;
    let convs = seed_conversations(&db.pool, alice, 3, 0.0).await;
    seed_messages(&db.pool, convs[0], 5).await;
    let deps = deps(db.pool.clone());
    let first = convs[0].to_string();
    let (_, page) = call(&deps, messages(ALICE, &first, &[("limit", "1")])).await;
    let message_cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, page) = call(&deps, conversations(ALICE, &[("limit", "1")])).await;
    let feed_cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let memory_cursor = signer().encode(&CursorScope::new("GET /v1/memories", ALICE), Keyset::TOP);
    let mut tampered = feed_cursor.clone().into_bytes();
    tampered[10] = if tampered[10] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();

    let cases = vec![
        conversations(ALICE, &[("cursor", &message_cursor)]),
        conversations(ALICE, &[("cursor", &memory_cursor)]),
        conversations(ALICE, &[("cursor", &tampered)]),
        conversations(ALICE, &[("cursor", "garbage")]),
        messages(ALICE, &first, &[("cursor", &feed_cursor)]),
        messages(ALICE, &convs[1].to_string(), &[("cursor", &message_cursor)]),
        messages(ALICE, &first, &[("cursor", "!!!")]),
    ];
    for req in cases {
        let (status, body) = call(&deps, req).await;
        assert_standard_error(status, &body, 400, "invalid_cursor");
    }
}

#[tokio::test]
async fn every_bad_parameter_or_body_is_a_400_standard_error() {
    let db = TestDb::new().await;
    insert_user(&db.pool, ALICE).await;
    let deps = deps(db.pool.clone());
    let (_, conv) = call(&deps, create(ALICE, json!({}))).await;
    let id = conv["id"].as_str().unwrap().to_owned();

    for limit in ["0", "101", "-1", "abc", "2.5"] {
        let (s, b) = call(&deps, conversations(ALICE, &[("limit", limit)])).await;
        assert_standard_error(s, &b, 400, "invalid_request");
        let (s, b) = call(&deps, messages(ALICE, &id, &[("limit", limit)])).await;
        assert_standard_error(s, &b, 400, "invalid_request");
    }
    for bad_id in ["nope", "1234", "00000000-0000-0000-0000-00000000000g"] {
        let (s, b) = call(&deps, messages(ALICE, bad_id, &[])).await;
        assert_standard_error(s, &b, 400, "invalid_request");
        let (s, b) = call(
            &deps,
            post(ALICE, bad_id, json!({"role": "user", "text": "x"})),
        )
        .await;
        assert_standard_error(s, &b, 400, "invalid_request");
    }
    let bad_messages = [
        json!({"role": "user", "text": ""}),
        json!({"role": "user", "text": "   "}),
        json!({"role": "user", "text": "x".repeat(MAX_MESSAGE_CHARS + 1)}),
        json!({"role": "robot", "text": "x"}),
        json!({"text": "x"}),
        json!({"role": "user"}),
        json!({"role": "user", "text": 5}),
        json!({"role": "user", "text": "x", "extra": true}),
        // PostgreSQL's text refuses NUL: a 400 here, never a 500 from the INSERT.
        json!({"role": "user", "text": "a\u{0}b"}),
        json!({"role": "user", "text": "bell\u{7}"}),
    ];
    for body in bad_messages {
        let (s, b) = call(&deps, post(ALICE, &id, body.clone())).await;
        assert_standard_error(s, &b, 400, "invalid_request");
    }
    let mut not_json = post(ALICE, &id, json!({}));
    not_json.body = Some("{role: user".into());
    let (s, b) = call(&deps, not_json).await;
    assert_standard_error(s, &b, 400, "invalid_json");
    for body in [
        json!({"title": "t".repeat(MAX_TITLE_CHARS + 1)}),
        json!({"title": 7}),
        json!({"title": "a\u{0}b"}),
        json!({"title": "line\nbreak"}),
    ] {
        let (s, b) = call(&deps, create(ALICE, body)).await;
        assert_standard_error(s, &b, 400, "invalid_request");
    }
    // A message at the limit is accepted.
    let (s, _) = call(
        &deps,
        post(
            ALICE,
            &id,
            json!({"role": "user", "text": "é".repeat(MAX_MESSAGE_CHARS)}),
        ),
    )
    .await;
    assert_eq!(s, 201);
    // Line breaks and tabs are text.
    let (s, b) = call(
        &deps,
        post(
            ALICE,
            &id,
            json!({"role": "user", "text": "line one\r\nline two\tend"}),
        ),
    )
    .await;
    assert_eq!(s, 201, "{b}");
}

#[tokio::test]
async fn a_body_that_is_not_exactly_one_json_object_of_its_shape_is_a_400_and_writes_nothing() {
    // given a conversation of Alice's
    let db = TestDb::new().await;
    insert_user(&db.pool, ALICE).await;
    let deps = deps(db.pool.clone());
    let (_, conv) = call(&deps, create(ALICE, json!({}))).await;
    let id = conv["id"].as_str().unwrap().to_owned();
    let one = r#"{"role": "user", "text": "hi"}"#;

    let cases = [
        (
            format!("{one} trailing"),
            "invalid_json",
            "nothing after it",
        ),
        (format!("{one}{one}"), "invalid_json", "nothing after it"),
        // The field values in order, which serde alone reads into the struct.
        (
            r#"["user", "hi"]"#.to_owned(),
            "invalid_request",
            "not an array",
        ),
        // An object where the enum's string goes, which serde alone reads as "user".
        (
            r#"{"role": {"user": null}, "text": "hi"}"#.to_owned(),
            "invalid_request",
            "role:",
        ),
    ];
    for (body, code, words) in &cases {
        // when
        let mut req = post(ALICE, &id, json!({}));
        req.body = Some(body.clone());
        let (status, err) = call(&deps, req).await;

        // then
        assert_standard_error(status, &err, 400, code);
        assert!(
            err["message"].as_str().unwrap().contains(words),
            "{body} -> {err}"
        );
    }
    for body in [r#"{"title": "a"} {"title": "b"}"#, r#"["a"]"#] {
        let mut req = create(ALICE, json!({}));
        req.body = Some(body.into());
        let (status, err) = call(&deps, req).await;
        assert_eq!(status, 400, "{body} -> {err}");
    }
    let stored: (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM conversations), (SELECT count(*) FROM messages)",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(stored, (1, 0), "only the first conversation was written");
}

#[tokio::test]
async fn a_repeated_limit_is_a_400_on_both_feeds_as_api_gateway_joins_it() {
    let db = TestDb::new().await;
    insert_user(&db.pool, ALICE).await;
    let deps = deps(db.pool.clone());
    let (_, conv) = call(&deps, create(ALICE, json!({}))).await;
    let id = conv["id"].as_str().unwrap().to_owned();

    // `?limit=5&limit=7` reaches the function as payload 2.0 sends it: "5,7".
    let (s, b) = call(&deps, conversations(ALICE, &[("limit", "5,7")])).await;
    assert_standard_error(s, &b, 400, "invalid_request");
    let (s, b) = call(&deps, messages(ALICE, &id, &[("limit", "5,7")])).await;
    assert_standard_error(s, &b, 400, "invalid_request");
}

#[tokio::test]
async fn rows_with_times_no_response_can_render_never_take_a_feed_down() {
    // given a conversation and messages with ordinary times, and rows written around the
    // API with times beyond either end of what RFC 3339 and the API render
    let db = TestDb::new().await;
    let alice = insert_user(&db.pool, ALICE).await;
    let shown = seed_conversations(&db.pool, alice, 3, 10.0).await;
    let extremes = [
        "infinity",
        "-infinity",
        "20000-01-01T00:00:00Z",
        "0002-12-31 23:00:00+00 BC",
    ];
    for at in extremes {
        // Its sort key out of range: in no page.
        sqlx::query(
            "INSERT INTO conversations (user_id, title, created_at, last_activity_at)
             VALUES ($1, 'odd', now(), $2::timestamptz)",
        )
        .bind(alice)
        .bind(at)
        .execute(&db.pool)
        .await
        .unwrap();
        // Its creation time out of range: left out of its page, the walk goes on.
        sqlx::query(
            "INSERT INTO conversations (user_id, title, created_at, last_activity_at)
             VALUES ($1, 'odd', $2::timestamptz, now() - interval '5 seconds')",
        )
        .bind(alice)
        .bind(at)
        .execute(&db.pool)
        .await
        .unwrap();
    }
    let chat = shown[0];
    let kept = seed_messages(&db.pool, chat, 3).await;
    for at in extremes {
        sqlx::query(
            "INSERT INTO messages (conversation_id, role, body, created_at)
             VALUES ($1, 'user', 'odd', $2::timestamptz)",
        )
        .bind(chat)
        .bind(at)
        .execute(&db.pool)
        .await
        .unwrap();
    }
    let deps = deps(db.pool.clone());

    // when both feeds are walked one item per page, then every call answers and every
    // ordinary row shows exactly once
    for (route, want) in [("conversations", &shown), ("messages", &kept)] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut query = vec![("limit", "1")];
            if let Some(c) = &cursor {
                query.push(("cursor", c));
            }
            let req = match route {
                "conversations" => conversations(ALICE, &query),
                _ => messages(ALICE, &chat.to_string(), &query),
            };
            let (status, page) = call(&deps, req).await;
            assert_eq!(status, 200, "{route}: {page}");
            for item in page["items"].as_array().unwrap() {
                assert!(item["created_at"].is_string(), "{route}: {item}");
            }
            seen.extend(ids(&page));
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        assert_eq!(seen.len(), want.len(), "{route}: {seen:?}");
        assert_eq!(
            seen.into_iter().collect::<HashSet<_>>(),
            id_set(want),
            "{route}"
        );
    }
}

#[tokio::test]
async fn a_caller_without_a_users_row_gets_an_empty_feed_and_cannot_create() {
    let db = TestDb::new().await;
    let deps = deps(db.pool.clone());

    let (status, feed) = call(&deps, conversations("sub-nobody", &[])).await;
    assert_eq!(status, 200);
    assert_eq!(feed, json!({"items": [], "next_cursor": null}));
    let (status, body) = call(&deps, create("sub-nobody", json!({}))).await;
    assert_standard_error(status, &body, 409, "account_not_ready");
}

#[tokio::test]
async fn every_route_is_a_503_within_its_bound_when_the_database_is_down() {
    let deps = deps(refused_pool());
    let id = Uuid::new_v4().to_string();

    for req in [
        conversations(ALICE, &[]),
        create(ALICE, json!({})),
        messages(ALICE, &id, &[]),
        post(ALICE, &id, json!({"role": "user", "text": "x"})),
    ] {
        let started = Instant::now();
        let (status, body) = call(&deps, req).await;
        assert_standard_error(status, &body, 503, "service_unavailable");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "took {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn a_request_without_a_caller_is_a_401_and_an_unknown_route_a_404() {
    let db = TestDb::new().await;
    let deps = deps(db.pool.clone());

    let mut anonymous = conversations(ALICE, &[]);
    anonymous.request_context.authorizer = None;
    let (status, body) = call(&deps, anonymous).await;
    assert_standard_error(status, &body, 401, "unauthorized");

    let mut elsewhere = conversations(ALICE, &[]);
    elsewhere.route_key = Some("DELETE /v1/conversations/{id}".into());
    let (status, body) = call(&deps, elsewhere).await;
    assert_standard_error(status, &body, 404, "not_found");
}

fn keyed(mut req: ApiGatewayV2httpRequest, key: &str) -> ApiGatewayV2httpRequest {
    req.headers
        .insert("idempotency-key", key.parse().expect("a header value"));
    req
}

#[tokio::test]
async fn a_repeated_idempotency_key_creates_one_conversation_and_one_message_even_when_concurrent()
{
    // given a conversation created with a key, whose answer the client lost
    let db = TestDb::new().await;
    insert_user(&db.pool, ALICE).await;
    let deps = deps(db.pool.clone());
    let create_keyed = || keyed(create(ALICE, json!({"title": "Lisbon"})), "conv-1");
    let (status, first) = call(&deps, create_keyed()).await;
    assert_eq!(status, 201, "{first}");
    let (status, again) = call(&deps, create_keyed()).await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(again["id"], first["id"]);
    let id = first["id"].as_str().unwrap().to_owned();

    // when the same message is posted with one key four times at once
    let post_keyed = || {
        keyed(
            post(ALICE, &id, json!({"role": "user", "text": "hello"})),
            "msg-1",
        )
    };
    let (a, b, c, d) = tokio::join!(
        call(&deps, post_keyed()),
        call(&deps, post_keyed()),
        call(&deps, post_keyed()),
        call(&deps, post_keyed())
    );
    let answers = [a, b, c, d];

    // then every answer is the one message, and the conversation moved once
    let ids: HashSet<String> = answers
        .iter()
        .map(|(status, m)| {
            assert_eq!(*status, 201, "{m}");
            m["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1, "{answers:?}");
    let (count, rows): (i32, i64) = sqlx::query_as(
        "SELECT c.message_count, (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id)
           FROM conversations c WHERE c.id = $1::uuid",
    )
    .bind(&id)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!((count, rows), (1, 1));
    let conversations: i64 = sqlx::query_scalar("SELECT count(*) FROM conversations")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(conversations, 1);

    // and a key sent again with another body is a 409; the same key elsewhere is new
    let (status, err) = call(
        &deps,
        keyed(
            post(ALICE, &id, json!({"role": "user", "text": "bye"})),
            "msg-1",
        ),
    )
    .await;
    assert_standard_error(status, &err, 409, "idempotency_key_reused");
    let (status, err) = call(
        &deps,
        keyed(create(ALICE, json!({"title": "Porto"})), "conv-1"),
    )
    .await;
    assert_standard_error(status, &err, 409, "idempotency_key_reused");
    let (_, other) = call(
        &deps,
        keyed(create(ALICE, json!({"title": "Lisbon"})), "conv-2"),
    )
    .await;
    assert_ne!(other["id"], first["id"]);
}
