//! One `users` row per email (migrations/20261201000001_unique_user_email.sql): a new
//! Cognito identity of a known address is relinked to the row when its email is verified,
//! refused (409 `email_in_use`) when not, and the migration merges rows that already
//! share an email. Against the dev PostgreSQL (`eval "$(scripts/dev-services.sh env)"`).

use encache_shared::ApiError;
use encache_shared::http::Caller;
use encache_shared::users::{self, Email, EmailInUse};
use encache_testkit::{TestDb, repo_root};
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

fn email(raw: &str) -> Email {
    Email::parse(raw).expect("a valid address")
}

fn caller(sub: &str, address: &str, verified: bool) -> Caller {
    Caller {
        sub: sub.into(),
        email: Some(address.into()),
        email_verified: verified,
        username: None,
        groups: vec![],
    }
}

async fn rows(pool: &PgPool) -> Vec<(Uuid, String, String)> {
    sqlx::query_as("SELECT id, cognito_sub, email FROM users ORDER BY email, cognito_sub")
        .fetch_all(pool)
        .await
        .expect("reading users")
}

#[tokio::test]
async fn a_new_verified_identity_of_a_known_email_takes_over_its_row_and_repeats_change_nothing() {
    let db = TestDb::new().await;
    // given a user whose row came from post-confirmation
    let first = users::upsert(&db.pool, "sub-old", &email("ada@example.com"), true)
        .await
        .unwrap()
        .unwrap();
    assert!(first.created && !first.relinked);

    // when Cognito makes the user again (new sub) and they call the API with a verified email
    let user = users::for_caller(&db.pool, &caller("sub-new", "ada@example.com", true))
        .await
        .unwrap()
        .unwrap()
        .expect("a row for the caller");
    // then it is the same row, now keyed by the new sub
    assert_eq!(user.id, first.user.id);
    assert_eq!(user.cognito_sub, "sub-new");
    assert_eq!(user.created_at, first.user.created_at);
    assert_eq!(
        rows(&db.pool).await,
        vec![(first.user.id, "sub-new".into(), "ada@example.com".into())]
    );

    // and post-confirmation's retry of the same event, and a repeat, change nothing
    for _ in 0..2 {
        let again = users::upsert(&db.pool, "sub-new", &email("ada@example.com"), true)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again.user, user);
        assert!(!again.created && !again.relinked);
    }
}

#[tokio::test]
async fn an_unverified_identity_cannot_take_another_accounts_email() {
    let db = TestDb::new().await;
    let owner = users::upsert(&db.pool, "sub-owner", &email("kim@example.com"), true)
        .await
        .unwrap()
        .unwrap();

    // when another sub claims the address without a verified email (API and trigger)
    let api = users::for_caller(&db.pool, &caller("sub-other", "kim@example.com", false))
        .await
        .unwrap();
    let trigger = users::upsert(&db.pool, "sub-other", &email("kim@example.com"), false)
        .await
        .unwrap();
    // then both are refused, and the owner's row is as it was
    assert_eq!(api, Err(EmailInUse));
    assert_eq!(trigger, Err(EmailInUse));
    assert_eq!(
        rows(&db.pool).await,
        vec![(owner.user.id, "sub-owner".into(), "kim@example.com".into())]
    );
    // and the API answers a clear 409
    let err = ApiError::from(EmailInUse);
    let body = err.body();
    assert_eq!(body.status, Some(409));
    assert_eq!(body.code.as_deref(), Some("email_in_use"));
    assert!(
        body.message.contains("verify your email"),
        "{}",
        body.message
    );

    // and an existing user cannot change their email to it, verified or not
    users::upsert(&db.pool, "sub-third", &email("lee@example.com"), true)
        .await
        .unwrap()
        .unwrap();
    let moved = users::upsert(&db.pool, "sub-third", &email("kim@example.com"), true)
        .await
        .unwrap();
    assert_eq!(moved, Err(EmailInUse));
}

#[tokio::test]
async fn concurrent_first_requests_of_new_identities_end_with_one_row_per_email() {
    let db = TestDb::new().await;
    let known = users::upsert(&db.pool, "sub-0", &email("max@example.com"), true)
        .await
        .unwrap()
        .unwrap();
    // when a new identity's first requests arrive at once (relink), and so do a brand-new
    // user's (insert)
    let mut tasks = Vec::new();
    for i in 0..16 {
        let pool = db.pool.clone();
        tasks.push(tokio::spawn(async move {
            let (sub, address) = if i % 2 == 0 {
                ("sub-1", "max@example.com")
            } else {
                ("sub-2", "new@example.com")
            };
            users::upsert(&pool, sub, &email(address), true).await
        }));
    }
    let mut ids = std::collections::HashMap::new();
    for task in tasks {
        let p = task
            .await
            .unwrap()
            .expect("no database error")
            .expect("no conflict");
        ids.entry(p.user.email.clone())
            .or_insert_with(Vec::new)
            .push(p.user.id);
    }
    // then every request got the one row of its email, the known one kept its id
    assert!(ids["max@example.com"].iter().all(|id| *id == known.user.id));
    let new_id = ids["new@example.com"][0];
    assert!(ids["new@example.com"].iter().all(|id| *id == new_id));
    assert_eq!(
        rows(&db.pool).await,
        vec![
            (known.user.id, "sub-1".into(), "max@example.com".into()),
            (new_id, "sub-2".into(), "new@example.com".into()),
        ]
    );
}

/// A database migrated up to, not including, the unique-email migration.
async fn database_before_unique_email(db: &TestDb) -> PgConnection {
    let name = format!("{}_pre", db.name);
    let base = db.url.rsplit_once('/').unwrap().0;
    let mut admin = PgConnection::connect(&format!("{base}/{}", db.name))
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let mut conn = PgConnection::connect(&format!("{base}/{name}"))
        .await
        .unwrap();
    for file in [
        "20261121000001_initial_schema.sql",
        "20261130000001_app_role.sql",
    ] {
        let sql = std::fs::read_to_string(repo_root().join("migrations").join(file)).unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    conn
}

#[tokio::test]
async fn the_migration_merges_rows_sharing_an_email_into_the_newest_and_keeps_their_data() {
    let db = TestDb::new().await;
    let mut conn = database_before_unique_email(&db).await;
    // given three rows of one email (oldest to newest), one of another, and data on the old ones
    let [old, mid, new, other] = [1, 2, 3, 4].map(Uuid::from_u128);
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO users (id, cognito_sub, email, plan, created_at) VALUES
           ('{old}', 's-old', 'ada@example.com', 'pro', '2026-01-01'),
           ('{mid}', 's-mid', 'ada@example.com', 'free', '2026-02-01'),
           ('{new}', 's-new', 'ada@example.com', 'free', '2026-03-01'),
           ('{other}', 's-other', 'bob@example.com', 'free', '2026-01-15');
         INSERT INTO memories (user_id, s3_key, declared_content_type, declared_size_bytes, upload_expires_at)
           VALUES ('{old}', 'users/{old}/memories/a', 'image/jpeg', 1, now()),
                  ('{new}', 'users/{new}/memories/b', 'image/jpeg', 1, now()),
                  ('{other}', 'users/{other}/memories/c', 'image/jpeg', 1, now());
         INSERT INTO conversations (id, user_id) VALUES ('{}', '{mid}');
         INSERT INTO messages (conversation_id, role, body) VALUES ('{}', 'user', 'hello');",
        Uuid::from_u128(10),
        Uuid::from_u128(10),
    )))
    .execute(&mut conn)
    .await
    .unwrap();

    // when the migration runs
    let sql = std::fs::read_to_string(
        repo_root().join("migrations/20261201000001_unique_user_email.sql"),
    )
    .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await
        .expect("the migration merges and adds the constraint");

    // then the newest row is kept with the oldest creation time, and the others are gone
    let users: Vec<(Uuid, String, String, time::OffsetDateTime)> =
        sqlx::query_as("SELECT id, cognito_sub, plan, created_at FROM users ORDER BY email")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(users.len(), 2, "{users:?}");
    assert_eq!(
        (users[0].0, users[0].1.as_str(), users[0].2.as_str()),
        (new, "s-new", "free")
    );
    assert_eq!(users[0].3.date().to_string(), "2026-01-01");
    assert_eq!(users[1].0, other);
    // and every memory, conversation and message is still there, on the kept row
    let memories: Vec<(String, Uuid)> =
        sqlx::query_as("SELECT s3_key, user_id FROM memories ORDER BY s3_key")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(
        memories,
        vec![
            (format!("users/{old}/memories/a"), new),
            (format!("users/{new}/memories/b"), new),
            (format!("users/{other}/memories/c"), other),
        ]
    );
    let (conversation_owner, messages): (Uuid, i64) =
        sqlx::query_as("SELECT c.user_id, (SELECT count(*) FROM messages) FROM conversations c")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!((conversation_owner, messages), (new, 1));
    // and a second row with the email is refused by the constraint
    let dup =
        sqlx::query("INSERT INTO users (cognito_sub, email) VALUES ('s-x', 'ada@example.com')")
            .execute(&mut conn)
            .await
            .expect_err("emails are unique");
    assert_eq!(
        dup.as_database_error().and_then(|e| e.constraint()),
        Some("users_email_key")
    );
    conn.close().await.ok();
}
