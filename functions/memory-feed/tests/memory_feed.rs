//! The memory feed through its real handler, against the real PostgreSQL, with requests
//! made from the sample HTTP API events in `events/`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use encache_memory_feed::{Deps, Settings, handle, list};
use encache_shared::aws::{s3_client, sdk_config};
use encache_shared::config::Secret;
use encache_shared::pagination::{CursorScope, CursorSigner, Keyset};
use encache_testkit::{
    HttpEvent, TestDb, assert_standard_error, insert_user, lambda_event, refused_pool, silent_pool,
    status_and_json,
};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

const BUCKET: &str = "encache-test-uploads";
const ALICE: &str = "sub-alice";
const BOB: &str = "sub-bob";

fn signer() -> CursorSigner {
    CursorSigner::new(&Secret::new("memory-feed-test-key-0123456789abcdef".into())).unwrap()
}

async fn deps(pool: PgPool) -> Deps {
    let sdk = sdk_config().await;
    Deps {
        db: pool.into(),
        s3: s3_client(&sdk).into(),
        cursors: signer().into(),
        settings: Settings {
            bucket: BUCKET.into(),
            download_ttl: Duration::from_secs(300),
            db_timeout: Duration::from_secs(2),
        },
    }
}

fn feed(sub: &str, query: &[(&str, &str)]) -> ApiGatewayV2httpRequest {
    HttpEvent::sample("memory-feed-list.json")
        .caller(sub)
        .query(query)
        .build()
}

fn one(sub: &str, id: &str) -> ApiGatewayV2httpRequest {
    HttpEvent::sample("memory-feed-get.json")
        .caller(sub)
        .query(&[])
        .id(id)
        .build()
}

async fn call(deps: &Deps, req: ApiGatewayV2httpRequest) -> (i64, Value) {
    status_and_json(&handle(deps, lambda_event(req)).await.unwrap())
}

/// `n` memories in `status`, newest first one second apart from `seconds_ago`, in groups
/// of three sharing a timestamp (so the id breaks ties). Returns their ids.
async fn memories(pool: &PgPool, owner: Uuid, status: &str, n: i64, seconds_ago: i64) -> Vec<Uuid> {
    sqlx::query_scalar(
        "INSERT INTO memories (user_id, s3_key, title, declared_content_type, declared_size_bytes,
                               status, upload_expires_at, created_at)
         SELECT $1, 'users/' || $1 || '/memories/' || gen_random_uuid(), 'memory ' || g,
                'image/jpeg', 1000 + g, $2, now(),
                date_trunc('second', now()) - make_interval(secs => $4 + g / 3)
         FROM generate_series(1, $3) AS g
         RETURNING id",
    )
    .bind(owner)
    .bind(status)
    .bind(n)
    .bind(seconds_ago as f64)
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

#[tokio::test]
async fn the_feed_lists_ready_memories_newest_first_with_a_cursor_until_the_end() {
    let db = TestDb::new().await;
    let alice = insert_user(&db.pool, ALICE).await;
    memories(&db.pool, alice, "ready", 5, 0).await;
    memories(&db.pool, alice, "pending", 2, 0).await;
    let deps = deps(db.pool.clone()).await;

    let (status, first) = call(&deps, feed(ALICE, &[("limit", "3")])).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(ids(&first).len(), 3);
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let item = &first["items"][0];
    assert_eq!(item["status"], "ready");
    assert_eq!(item["content_type"], "image/jpeg");
    assert!(item["created_at"].as_str().unwrap().contains('T'));

    let (status, second) = call(&deps, feed(ALICE, &[("limit", "3"), ("cursor", &cursor)])).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(ids(&second).len(), 2);
    assert_eq!(second["next_cursor"], Value::Null);
}

#[tokio::test]
async fn next_cursor_is_null_when_the_page_ends_exactly_at_the_last_item() {
    let db = TestDb::new().await;
    let alice = insert_user(&db.pool, ALICE).await;
    memories(&db.pool, alice, "ready", 4, 0).await;
    let deps = deps(db.pool.clone()).await;

    let (_, page) = call(&deps, feed(ALICE, &[("limit", "4")])).await;

    assert_eq!(ids(&page).len(), 4);
    assert_eq!(page["next_cursor"], Value::Null);
}

#[tokio::test]
async fn the_status_filter_and_time_bounds_select_what_they_say() {
    let db = TestDb::new().await;
    let alice = insert_user(&db.pool, ALICE).await;
    let failed = memories(&db.pool, alice, "failed", 2, 0).await;
    memories(&db.pool, alice, "ready", 30, 0).await;
    let deps = deps(db.pool.clone()).await;

    let (_, page) = call(&deps, feed(ALICE, &[("status", "failed")])).await;
    let got: HashSet<String> = ids(&page).into_iter().collect();
    assert_eq!(got, failed.iter().map(Uuid::to_string).collect());

    // Ready memories are 1..=10 s old (three per second); keep those strictly between.
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap();
    let fmt = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let before = fmt(now - time::Duration::seconds(3));
    let after = fmt(now - time::Duration::seconds(7));
    let (status, page) = call(
        &deps,
        feed(
            ALICE,
            &[("before", &before), ("after", &after), ("limit", "100")],
        ),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    for item in page["items"].as_array().unwrap() {
        let at = time::OffsetDateTime::parse(
            item["created_at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        assert!(at < now - time::Duration::seconds(3) && at > now - time::Duration::seconds(7));
    }
    assert!(!ids(&page).is_empty());
}

/// The core promise: 10,000 items walked with every page size from 1 to 100
/// while other rows are written — every item exactly once, in order, none skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walking_ten_thousand_memories_with_every_page_size_during_inserts_sees_each_exactly_once()
{
    let db = TestDb::new().await;
    let alice = insert_user(&db.pool, ALICE).await;
    let bob = insert_user(&db.pool, BOB).await;
    let originals: HashSet<String> = memories(&db.pool, alice, "ready", 10_000, 60)
        .await
        .iter()
        .map(Uuid::to_string)
        .collect();
    let deps = Arc::new(deps(db.pool.clone()).await);

    // Writers: new ready memories for Alice (newer than every original), backdated
    // pending ones for her (another filter), and Bob's (another user).
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (pool, stop) = (db.pool.clone(), stop.clone());
        tokio::spawn(async move {
            let mut written = HashSet::new();
            while !stop.load(Ordering::Relaxed) {
                written.extend(memories(&pool, alice, "ready", 2, -1).await);
                memories(&pool, alice, "pending", 2, 30).await;
                memories(&pool, bob, "ready", 2, 30).await;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            written
        })
    };

    let mut walks = tokio::task::JoinSet::new();
    for size in 1..=100usize {
        let deps = deps.clone();
        walks.spawn(async move {
            let base = feed(ALICE, &[]);
            let mut seen = Vec::new();
            let mut cursor: Option<String> = None;
            let mut pages = 0;
            loop {
                let mut query = HashMap::from([("limit".to_owned(), size.to_string())]);
                if let Some(c) = &cursor {
                    query.insert("cursor".to_owned(), c.clone());
                }
                let mut req = base.clone();
                req.query_string_parameters = query.into();
                let page = list(&req, &deps)
                    .await
                    .unwrap_or_else(|e| panic!("size {size}, page {pages}: {e}"));
                assert!(page.items.len() <= size);
                pages += 1;
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
    let written: HashSet<String> = writer.await.unwrap().iter().map(Uuid::to_string).collect();
    assert!(
        !written.is_empty(),
        "the writer wrote nothing during the walks"
    );

    for (size, seen) in results {
        assert!(
            seen.windows(2).all(|w| w[0] > w[1]),
            "size {size}: not strictly newest first (a duplicate or a reordering)"
        );
        let seen: HashSet<String> = seen.iter().map(|(_, id)| id.to_string()).collect();
        let missing = originals.difference(&seen).count();
        assert_eq!(
            missing, 0,
            "size {size}: {missing} original memories skipped"
        );
        let strangers: Vec<_> = seen
            .difference(&originals)
            .filter(|id| !written.contains(*id))
            .collect();
        assert!(
            strangers.is_empty(),
            "size {size}: foreign items {strangers:?}"
        );
    }
}

#[tokio::test]
async fn the_feed_never_returns_another_users_memories() {
    let db = TestDb::new().await;
    let alice = insert_user(&db.pool, ALICE).await;
    let bob = insert_user(&db.pool, BOB).await;
    let alices: HashSet<String> = memories(&db.pool, alice, "ready", 7, 0)
        .await
        .iter()
        .map(Uuid::to_string)
        .collect();
    let bobs: HashSet<String> = memories(&db.pool, bob, "ready", 5, 0)
        .await
        .iter()
        .map(Uuid::to_string)
        .collect();
    let deps = deps(db.pool.clone()).await;

    for (sub, own) in [(ALICE, &alices), (BOB, &bobs)] {
        let mut seen = HashSet::new();
        let mut cursor = None::<String>;
        loop {
            let mut q = vec![("limit", "2")];
            if let Some(c) = &cursor {
                q.push(("cursor", c));
            }
            let (status, page) = call(&deps, feed(sub, &q)).await;
            assert_eq!(status, 200);
            seen.extend(ids(&page));
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert_eq!(&seen, own, "{sub}");
    }
}

#[tokio::test]
async fn another_users_memory_is_a_404_indistinguishable_from_a_missing_one() {
    let db = TestDb::new().await;
    let alice = insert_user(&db.pool, ALICE).await;
    insert_user(&db.pool, BOB).await;
    let alices = memories(&db.pool, alice, "ready", 1, 0).await[0].to_string();
    let deps = deps(db.pool.clone()).await;

    let (status, foreign) = call(&deps, one(BOB, &alices)).await;
    let (missing_status, missing) = call(&deps, one(BOB, &Uuid::new_v4().to_string())).await;

    assert_standard_error(status, &foreign, 404, "not_found");
    assert_eq!((status, &foreign), (missing_status, &missing));
    let (status, _) = call(&deps, one(ALICE, &alices)).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_cursor_from_another_user_or_filter_or_route_is_a_400_invalid_cursor() {
    let db = TestDb::new().await;
    let alice = insert_user(&db.pool, ALICE).await;
    insert_user(&db.pool, BOB).await;
    memories(&db.pool, alice, "ready", 3, 0).await;
    let deps = deps(db.pool.clone()).await;
    let (_, page) = call(&deps, feed(ALICE, &[("limit", "1")])).await;
    let alices = page["next_cursor"].as_str().unwrap().to_owned();
    let other_route = signer().encode(
        &CursorScope::new("GET /v1/conversations", ALICE),
        Keyset::TOP,
    );

    let cases: Vec<ApiGatewayV2httpRequest> = vec![
        feed(BOB, &[("cursor", &alices)]),
        feed(ALICE, &[("cursor", &alices), ("status", "failed")]),
        feed(
            ALICE,
            &[("cursor", &alices), ("before", "2030-01-01T00:00:00Z")],
        ),
        feed(ALICE, &[("cursor", &other_route)]),
    ];
    for req in cases {
        let (status, body) = call(&deps, req).await;
        assert_standard_error(status, &body, 400, "invalid_cursor");
    }
}

#[tokio::test]
async fn tampered_or_garbage_cursors_are_a_400_invalid_cursor() {
    let db = TestDb::new().await;
    let alice = insert_user(&db.pool, ALICE).await;
    memories(&db.pool, alice, "ready", 3, 0).await;
    let deps = deps(db.pool.clone()).await;
    let (_, page) = call(&deps, feed(ALICE, &[("limit", "1")])).await;
    let good = page["next_cursor"].as_str().unwrap().to_owned();
    let mut tampered = good.clone().into_bytes();
    tampered[5] = if tampered[5] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();

    for cursor in [
        tampered.as_str(),
        "garbage",
        "%%",
        "eyJpZCI6MX0",
        &good[1..],
    ] {
        let (status, body) = call(&deps, feed(ALICE, &[("cursor", cursor)])).await;
        assert_standard_error(status, &body, 400, "invalid_cursor");
    }
}

#[tokio::test]
async fn every_bad_parameter_is_a_400_standard_error() {
    let db = TestDb::new().await;
    insert_user(&db.pool, ALICE).await;
    let deps = deps(db.pool.clone()).await;

    let bad_feeds: [&[(&str, &str)]; 9] = [
        &[("limit", "0")],
        &[("limit", "101")],
        &[("limit", "-5")],
        &[("limit", "ten")],
        &[("status", "deleted")],
        &[("status", "READY")],
        &[("before", "yesterday")],
        &[("after", "2026-13-01T00:00:00Z")],
        &[
            ("after", "2026-01-02T00:00:00Z"),
            ("before", "2026-01-01T00:00:00Z"),
        ],
    ];
    for query in bad_feeds {
        let (status, body) = call(&deps, feed(ALICE, query)).await;
        assert_standard_error(status, &body, 400, "invalid_request");
    }
    for id in ["not-a-uuid", "123", "' OR 1=1 --"] {
        let (status, body) = call(&deps, one(ALICE, id)).await;
        assert_standard_error(status, &body, 400, "invalid_request");
    }
}

#[tokio::test]
async fn timestamps_postgres_or_rfc3339_cannot_hold_are_a_400_naming_the_field() {
    let db = TestDb::new().await;
    insert_user(&db.pool, ALICE).await;
    let deps = deps(db.pool.clone()).await;

    // The local time parses; the instant is in year 10000 or year -1 (UTC).
    for (name, raw) in [
        ("before", "9999-12-31T23:59:59-23:59"),
        ("after", "9999-12-31T23:00:00-01:00"),
        ("after", "0000-01-01T00:00:00+01:00"),
        ("before", "0000-01-01T00:00:00+23:59"),
        ("before", "9999-12-31T23:59:59.9999999Z"),
    ] {
        let (status, body) = call(&deps, feed(ALICE, &[(name, raw)])).await;
        assert_standard_error(status, &body, 400, "invalid_request");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("{name}: must be between")),
            "{raw}: {message}"
        );
    }

    // The ends of the range themselves are fine.
    let (status, body) = call(
        &deps,
        feed(
            ALICE,
            &[
                ("after", "0000-01-01T00:00:00Z"),
                ("before", "9999-12-31T23:59:59.999999Z"),
            ],
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_repeated_limit_is_a_400_as_api_gateway_joins_it_into_one_value() {
    let db = TestDb::new().await;
    insert_user(&db.pool, ALICE).await;
    let deps = deps(db.pool.clone()).await;

    // `?limit=5&limit=7` reaches the function as payload 2.0 sends it: "5,7".
    let (status, body) = call(&deps, feed(ALICE, &[("limit", "5,7")])).await;

    assert_standard_error(status, &body, 400, "invalid_request");
    assert!(
        body["message"].as_str().unwrap().starts_with("limit:"),
        "{body}"
    );
}

/// A memory written around the API (as the upload did before it checked the range, or by
/// hand): `captured_at` (also its `completed_at`) and `created_at` as PostgreSQL reads text.
async fn memory_at(
    pool: &PgPool,
    owner: Uuid,
    status: &str,
    captured_at: Option<&str>,
    created_at: &str,
) -> Uuid {
    sqlx::query_scalar(
        "INSERT INTO memories (user_id, s3_key, declared_content_type, declared_size_bytes,
                               status, upload_expires_at, captured_at, created_at, completed_at)
         VALUES ($1, 'users/' || $1 || '/memories/' || gen_random_uuid(), 'image/jpeg', 5,
                 $2, now(), $3::timestamptz, $4::timestamptz, $3::timestamptz)
         RETURNING id",
    )
    .bind(owner)
    .bind(status)
    .bind(captured_at)
    .bind(created_at)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_stored_captured_at_no_response_can_render_is_null_and_the_pending_feed_stays_up() {
    // given the row the old upload stored for captured_at 0000-01-01T00:00:00+01:00 (year
    // -1 in UTC), and others no RFC 3339 text can show
    let db = TestDb::new().await;
    let alice = insert_user(&db.pool, ALICE).await;
    let mut extreme = HashSet::new();
    for at in [
        // 0000-01-01T00:00:00+01:00 is ISO year -1, 2 BC as PostgreSQL writes it.
        "0002-12-31 23:00:00+00 BC",
        "infinity",
        "-infinity",
        "20000-01-01T00:00:00Z",
        "4713-01-01 BC",
    ] {
        let id = memory_at(&db.pool, alice, "pending", Some(at), "now").await;
        extreme.insert(id.to_string());
    }
    let fine = memory_at(
        &db.pool,
        alice,
        "pending",
        Some("2026-11-20T10:00:00Z"),
        "now",
    )
    .await;
    let deps = deps(db.pool.clone()).await;

    // when the pending feed is read, then every memory shows, the unrenderable times as null
    let (status, page) = call(&deps, feed(ALICE, &[("status", "pending")])).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(ids(&page).len(), 6, "{page}");
    for item in page["items"].as_array().unwrap() {
        if extreme.contains(item["id"].as_str().unwrap()) {
            assert_eq!(item["captured_at"], Value::Null, "{item}");
            assert_eq!(item["completed_at"], Value::Null, "{item}");
        } else {
            assert_eq!(item["captured_at"], "2026-11-20T10:00:00Z", "{item}");
        }
    }

    // and each one's detail answers too
    for id in extreme.iter().cloned().chain([fine.to_string()]) {
        let (status, body) = call(&deps, one(ALICE, &id)).await;
        assert_eq!(status, 200, "{body}");
    }
}

#[tokio::test]
async fn a_row_whose_created_at_cannot_be_rendered_is_in_no_page_and_the_feed_stays_up() {
    // given memories whose sort key was written around the API beyond either end
    let db = TestDb::new().await;
    let alice = insert_user(&db.pool, ALICE).await;
    let mut hidden = Vec::new();
    for at in [
        "infinity",
        "-infinity",
        "20000-01-01T00:00:00Z",
        "0002-12-31 23:00:00+00 BC",
    ] {
        hidden.push(memory_at(&db.pool, alice, "ready", None, at).await);
    }
    let shown = memories(&db.pool, alice, "ready", 3, 0).await;
    let deps = deps(db.pool.clone()).await;

    // when the feed is walked page by page, then it answers with every other memory
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("limit", "1")];
        if let Some(c) = &cursor {
            query.push(("cursor", c));
        }
        let (status, page) = call(&deps, feed(ALICE, &query)).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let want: Vec<String> = shown.iter().map(Uuid::to_string).collect();
    assert_eq!(seen.iter().collect::<HashSet<_>>(), want.iter().collect());

    // and the hidden ones are a 404, like in no page, not a 500
    for id in hidden {
        let (status, body) = call(&deps, one(ALICE, &id.to_string())).await;
        assert_standard_error(status, &body, 404, "not_found");
    }
}

#[tokio::test]
async fn a_caller_without_a_users_row_gets_an_empty_feed_and_404s() {
    let db = TestDb::new().await;
    let alice = insert_user(&db.pool, ALICE).await;
    let alices = memories(&db.pool, alice, "ready", 2, 0).await[0].to_string();
    let deps = deps(db.pool.clone()).await;

    let (status, page) = call(&deps, feed("sub-nobody", &[])).await;
    assert_eq!(status, 200);
    assert_eq!(page, json!({"items": [], "next_cursor": null}));
    let (status, body) = call(&deps, one("sub-nobody", &alices)).await;
    assert_standard_error(status, &body, 404, "not_found");
}

#[tokio::test]
async fn a_ready_memory_comes_with_a_short_lived_presigned_download_url() {
    let db = TestDb::new().await;
    let alice = insert_user(&db.pool, ALICE).await;
    let ready = memories(&db.pool, alice, "ready", 1, 0).await[0];
    let pending = memories(&db.pool, alice, "pending", 1, 0).await[0];
    let key: String = sqlx::query_scalar("SELECT s3_key FROM memories WHERE id = $1")
        .bind(ready)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let deps = deps(db.pool.clone()).await;

    let (status, body) = call(&deps, one(ALICE, &ready.to_string())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], ready.to_string());
    let url = body["download_url"].as_str().expect("a download URL");
    assert!(url.contains(BUCKET) && url.contains(&key), "{url}");
    assert!(
        url.contains("X-Amz-Expires=300") && url.contains("X-Amz-Signature="),
        "{url}"
    );
    assert!(body["download_expires_at"].is_string());

    let (status, body) = call(&deps, one(ALICE, &pending.to_string())).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "pending");
    assert_eq!(body["download_url"], Value::Null);
}

#[tokio::test]
async fn the_feed_is_a_503_within_its_bound_when_the_database_is_down() {
    let deps = deps(refused_pool()).await;

    for req in [feed(ALICE, &[]), one(ALICE, &Uuid::new_v4().to_string())] {
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
async fn the_feed_is_a_503_when_the_database_accepts_but_never_answers() {
    let deps = deps(silent_pool().await).await;

    let started = Instant::now();
    let (status, body) = call(&deps, feed(ALICE, &[])).await;

    assert_standard_error(status, &body, 503, "service_unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_request_without_a_caller_is_a_401_and_an_unknown_route_a_404() {
    let db = TestDb::new().await;
    let deps = deps(db.pool.clone()).await;

    let mut anonymous = feed(ALICE, &[]);
    anonymous.request_context.authorizer = None;
    let (status, body) = call(&deps, anonymous).await;
    assert_standard_error(status, &body, 401, "unauthorized");

    let mut elsewhere = feed(ALICE, &[]);
    elsewhere.route_key = Some("DELETE /v1/memories/{id}".into());
    let (status, body) = call(&deps, elsewhere).await;
    assert_standard_error(status, &body, 404, "not_found");
}

#[tokio::test]
async fn the_download_url_fetches_the_memory_bytes_from_s3() {
    let db = TestDb::new().await;
    let alice = insert_user(&db.pool, ALICE).await;
    let ready = memories(&db.pool, alice, "ready", 1, 0).await[0];
    let key: String = sqlx::query_scalar("SELECT s3_key FROM memories WHERE id = $1")
        .bind(ready)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let mut deps = deps(db.pool.clone()).await;
    deps.settings.bucket = format!("encache-feed-test-{}", Uuid::new_v4().simple());
    deps.s3
        .create_bucket()
        .bucket(&deps.settings.bucket)
        .send()
        .await
        .expect("creating the test bucket in the emulator");
    deps.s3
        .put_object()
        .bucket(&deps.settings.bucket)
        .key(&key)
        .content_type("image/jpeg")
        .body(b"jpeg bytes".to_vec().into())
        .send()
        .await
        .unwrap();

    let (status, body) = call(&deps, one(ALICE, &ready.to_string())).await;
    assert_eq!(status, 200, "{body}");
    let url = body["download_url"].as_str().unwrap();
    let fetched = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();

    assert_eq!(fetched.status(), 200);
    assert_eq!(&fetched.bytes().await.unwrap()[..], b"jpeg bytes");
}
