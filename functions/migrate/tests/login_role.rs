//! The functions' login role, end to end against the dev PostgreSQL (TLS on, SCRAM
//! passwords for every role but the superuser, as on RDS): the migration function creates
//! it with the password from SSM; a function logs in as it over verified TLS and can do
//! only what the grants say; a rotated password is read again once; and the RDS CAs a
//! deployed function trusts refuse a server they did not sign.

mod support;

use std::collections::HashMap;

use encache_migrate::{handle, login};
use encache_shared::aws::SecretCache;
use encache_shared::config::{Env, Secret};
use encache_shared::db::{self, Database};
use encache_testkit::{TestDb, lambda_event};
use sqlx::{Connection, PgPool};
use support::{Receiver, create_event, deps_for, request, update_event};

/// A role and an SSM parameter of this test's own.
struct Login {
    user: String,
    parameter: String,
}

impl Login {
    fn new() -> Self {
        let id = &uuid::Uuid::new_v4().simple().to_string()[..12];
        Self {
            user: format!("encache_fn_{id}"),
            parameter: format!("/encache/test/{id}/db/app-password"),
        }
    }

    /// Writes `password` to SSM, then runs the migration function's Create (or an Update
    /// of a new deploy) with it.
    async fn deploy(&self, db: &TestDb, password: &str, deploy: u32) {
        self.store(password).await;
        let mut deps = deps_for(&db.url);
        deps.login = Some(Ok(login::Login {
            user: self.user.clone(),
            password: Secret::new(password.to_owned()).into(),
        }));
        let receiver = Receiver::start().await;
        let event = if deploy == 1 {
            create_event(&receiver)
        } else {
            update_event(&receiver, &deploy.to_string(), &(deploy - 1).to_string())
        };
        handle(&deps, lambda_event(request(event))).await.unwrap();
        let sent = receiver.only_response();
        assert_eq!(sent.body["Status"], "SUCCESS", "{}", sent.body);
    }

    async fn store(&self, password: &str) {
        aws_sdk_ssm::Client::new(&encache_shared::aws::sdk_config().await)
            .put_parameter()
            .name(&self.parameter)
            .value(password)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .overwrite(true)
            .send()
            .await
            .expect("writing the password to the emulator's SSM");
    }

    /// A function's database as the template configures it: host, port, name, user and
    /// the password's parameter; `PGSSLROOTCERT` as the local runtime hands it (or not).
    fn function_database(&self, db: &TestDb, root_cert: Option<String>) -> Database {
        let admin: sqlx::postgres::PgConnectOptions = db.url.parse().unwrap();
        let vars = HashMap::from([
            ("DB_HOST", "127.0.0.1".to_string()),
            ("DB_PORT", admin.get_port().to_string()),
            ("DB_NAME", db.name.clone()),
            ("DB_USER", self.user.clone()),
            ("DB_PASSWORD_PARAMETER", self.parameter.clone()),
        ]);
        let source = move |k: &str| match k {
            "PGSSLROOTCERT" => root_cert.clone(),
            _ => vars.get(k).cloned(),
        };
        Database::from_env(&Env::new(&source), None).unwrap()
    }
}

fn local_ca() -> Option<String> {
    Some(std::env::var("PGSSLROOTCERT").expect(
        "PGSSLROOTCERT is not set: start the dev services with `eval \"$(scripts/dev-services.sh up)\"`",
    ))
}

/// Closes the pool's connections, as the idle reaper does: the next query opens a new one.
/// (A query's connection goes back to the pool on a spawned task: wait for it first.)
async fn reap(pool: &PgPool) {
    for _ in 0..100 {
        if pool.num_idle() as u32 == pool.size() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    while pool.size() > 0 {
        sqlx::Connection::close(pool.acquire().await.unwrap().detach())
            .await
            .unwrap();
    }
}

async fn sqlstate(pool: &PgPool, sql: &str) -> Option<String> {
    match sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(pool)
        .await
    {
        Ok(_) => None,
        Err(sqlx::Error::Database(e)) => e.code().map(|c| c.into_owned()),
        Err(e) => panic!("{sql}: {e}"),
    }
}

#[tokio::test]
async fn functions_log_in_as_the_login_role_over_verified_tls_with_only_the_grants() {
    // given a deploy that migrated a database and set the login role's password
    let db = TestDb::new().await;
    sqlx::raw_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        .execute(&db.pool)
        .await
        .unwrap();
    let login = Login::new();
    login.deploy(&db, "first-password-0123456789", 1).await;

    // when a function connects as the template configures it
    let database = login.function_database(&db, local_ca());
    let pool = database.pool().await.unwrap();

    // then it is the login role, over TLS
    let (user, ssl): (String, bool) = sqlx::query_as(
        "SELECT current_user::text, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!((user.as_str(), ssl), (login.user.as_str(), true));

    // and it does what the functions do, and nothing else (42501: insufficient privilege)
    let sub = uuid::Uuid::new_v4().to_string();
    let insert =
        format!("INSERT INTO users (cognito_sub, email) VALUES ('{sub}', 'a@example.com')");
    assert_eq!(sqlstate(pool, &insert).await, None);
    assert_eq!(sqlstate(pool, "SELECT count(*) FROM memories").await, None);
    assert_eq!(
        sqlstate(pool, "SELECT count(*) FROM _sqlx_migrations")
            .await
            .as_deref(),
        Some("42501")
    );
    assert_eq!(
        sqlstate(pool, "DELETE FROM messages").await.as_deref(),
        Some("42501")
    );
    assert_eq!(
        sqlstate(pool, "CREATE TABLE mine (id int)")
            .await
            .as_deref(),
        Some("42501")
    );
    assert_eq!(
        sqlstate(pool, "ALTER TABLE users ADD COLUMN x int")
            .await
            .as_deref(),
        Some("42501")
    );
    assert_eq!(
        sqlstate(pool, "TRUNCATE users").await.as_deref(),
        Some("42501")
    );
    // account deletion cascades as the owner: the role needs no DELETE on the children
    let delete = format!("DELETE FROM users WHERE cognito_sub = '{sub}'");
    assert_eq!(sqlstate(pool, &delete).await, None);

    // and the grants are exactly these
    let grants: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, string_agg(privilege_type, ',' ORDER BY privilege_type)
           FROM information_schema.role_table_grants
          WHERE grantee = $1 GROUP BY table_name ORDER BY table_name",
    )
    .bind(login::GROUP_ROLE)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let grants: Vec<(&str, &str)> = grants
        .iter()
        .map(|(t, p)| (t.as_str(), p.as_str()))
        .collect();
    assert_eq!(
        grants,
        [
            ("conversations", "INSERT,SELECT,UPDATE"),
            ("memories", "DELETE,INSERT,SELECT,UPDATE"),
            ("messages", "INSERT,SELECT"),
            ("users", "DELETE,INSERT,SELECT,UPDATE"),
        ]
    );
    drop_role(&db, &login).await;
}

#[tokio::test]
async fn a_rotated_password_is_read_again_once_and_the_connection_reopened() {
    // given a warm function that read the first password and whose connection was reaped
    let db = TestDb::new().await;
    let login = Login::new();
    login.deploy(&db, "first-password-0123456789", 1).await;
    let database = login.function_database(&db, local_ca());
    reap(database.pool().await.unwrap()).await;

    // when the next deploy rotates it (SSM first, then the database)
    login.deploy(&db, "second-password-0123456789", 2).await;

    // then the function's next request reads it again and gets its connection
    let pool = database.pool().await.unwrap();
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(one, 1);

    // and a password the database refuses even after the re-read is a 503-kind error
    // (the database changed, SSM not yet), never a panic or a 500
    reap(pool).await;
    let mut deps = deps_for(&db.url);
    deps.login = Some(Ok(login::Login {
        user: login.user.clone(),
        password: Secret::new("third-password-0123456789".to_string()).into(),
    }));
    let receiver = Receiver::start().await;
    handle(
        &deps,
        lambda_event(request(update_event(&receiver, "3", "2"))),
    )
    .await
    .unwrap();
    let err = database.pool().await.unwrap_err();
    assert!(db::is_auth_failure(&err), "{err}");
    assert!(db::is_unavailable(&err));
    drop_role(&db, &login).await;
}

#[tokio::test]
async fn the_rds_cas_a_deployed_function_trusts_refuse_a_server_they_did_not_sign() {
    // given the login role, and a function without PGSSLROOTCERT (as in AWS)
    let db = TestDb::new().await;
    let login = Login::new();
    login.deploy(&db, "first-password-0123456789", 1).await;
    let database = login.function_database(&db, None);

    // when it connects to a server whose certificate the local CA signed
    let err = database.pool().await.unwrap_err();

    // then TLS fails (no fallback to an unverified connection) and it is a 503-kind error
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    assert!(db::is_unavailable(&err));
    drop_role(&db, &login).await;
}

#[tokio::test]
async fn a_deploy_during_a_rotation_waits_for_it_and_sets_the_password_it_left() {
    // given the login role, and a warm migration container that read its password before
    let db = TestDb::new().await;
    let login = Login::new();
    login.deploy(&db, "first-password-0123456789", 1).await;
    let secrets = SecretCache::from_sdk(&encache_shared::aws::sdk_config().await);
    secrets.get(&login.parameter).await.unwrap();
    let mut deps = deps_for(&db.url);
    deps.login = Some(Ok(login::Login {
        user: login.user.clone(),
        password: login::Password::Ssm {
            secrets,
            parameter: login.parameter.clone(),
        },
    }));

    // when a rotation (functions/db-rotation) holds the login role's lock as a deploy starts
    let mut rotation = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::query("SELECT pg_advisory_lock(hashtext('encache login role'))")
        .execute(&mut rotation)
        .await
        .unwrap();
    let receiver = Receiver::start().await;
    let event = request(update_event(&receiver, "2", "1"));
    let deployed = std::sync::atomic::AtomicBool::new(false);
    let deploy = async {
        handle(&deps, lambda_event(event)).await.unwrap();
        deployed.store(true, std::sync::atomic::Ordering::SeqCst);
    };
    let rotate = async {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        assert!(
            !deployed.load(std::sync::atomic::Ordering::SeqCst),
            "the deploy did not wait for the rotation"
        );
        // ... which sets the new password, then finishes (SSM's current := the new one)
        let rotated = "rotated-password-0123456789";
        let set = format!(
            "ALTER ROLE {} PASSWORD '{}'",
            login.user,
            encache_shared::scram::salted_verifier(rotated)
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(set))
            .execute(&mut rotation)
            .await
            .unwrap();
        login.store(rotated).await;
        sqlx::query("SELECT pg_advisory_unlock(hashtext('encache login role'))")
            .execute(&mut rotation)
            .await
            .unwrap();
    };
    tokio::join!(deploy, rotate);

    // then the deploy set the password the rotation left (not its container's old copy)
    assert_eq!(receiver.only_response().body["Status"], "SUCCESS");
    let database = login.function_database(&db, local_ca());
    let user: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(database.pool().await.unwrap())
        .await
        .unwrap();
    assert_eq!(user, login.user);
    let pool = database.pool().await.unwrap();
    reap(pool).await;
    // (a fresh container reads the rotated password from SSM: the database takes it)
    let fresh = login.function_database(&db, local_ca());
    assert!(fresh.pool().await.is_ok());
    drop_role(&db, &login).await;
}

async fn drop_role(db: &TestDb, login: &Login) {
    let stmt = format!("DROP OWNED BY {0}; DROP ROLE {0}", login.user);
    sqlx::raw_sql(sqlx::AssertSqlSafe(stmt))
        .execute(&db.pool)
        .await
        .ok();
}
