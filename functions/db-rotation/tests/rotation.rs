//! The rotation end to end against the dev PostgreSQL (TLS on, SCRAM passwords, as on
//! RDS) and the emulator's SSM: a login role and two parameters of each test's own. A
//! full run changes the password and the functions connect with the new one; a run cut
//! off after any step is finished by the next; functions opening connections all along
//! never fail; the rotation runs as the login role, which can change nothing but its own
//! password.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use encache_db_rotation::settings::RotationSettings;
use encache_db_rotation::{Deps, Report, RotationError, Step, rotate, rotate_through};
use encache_shared::aws::{SecretCache, sdk_config};
use encache_shared::config::{Env, Secret};
use encache_shared::db::Database;
use encache_shared::scram;
use encache_testkit::TestDb;
use sqlx::{Connection, PgConnection};

/// A login role (a member of encache_app, as the migration function makes it) and its
/// two SSM parameters.
struct World {
    db: TestDb,
    user: String,
    current: String,
    pending: String,
    ssm: aws_sdk_ssm::Client,
}

impl World {
    async fn new() -> Self {
        let db = TestDb::new().await;
        let id = &uuid::Uuid::new_v4().simple().to_string()[..12];
        let world = Self {
            user: format!("encache_fn_{id}"),
            current: format!("/encache/test/{id}/db/app-password"),
            pending: format!("/encache/test/{id}/db/app-password-pending"),
            ssm: aws_sdk_ssm::Client::new(&sdk_config().await),
            db,
        };
        let first = "first-password-0123456789";
        let create = format!(
            "CREATE ROLE {} LOGIN PASSWORD '{}'; GRANT encache_app TO {0}",
            world.user,
            scram::salted_verifier(first)
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(create))
            .execute(&world.db.pool)
            .await
            .unwrap();
        world.put(&world.current, first).await;
        world
    }

    fn vars(&self) -> HashMap<&'static str, String> {
        let admin: sqlx::postgres::PgConnectOptions = self.db.url.parse().unwrap();
        HashMap::from([
            ("DB_HOST", "127.0.0.1".to_string()),
            ("DB_PORT", admin.get_port().to_string()),
            ("DB_NAME", self.db.name.clone()),
            ("DB_USER", self.user.clone()),
            ("DB_PASSWORD_PARAMETER", self.current.clone()),
            ("DB_PASSWORD_PENDING_PARAMETER", self.pending.clone()),
            ("DB_ACQUIRE_TIMEOUT_MS", "5000".to_string()),
            (
                "PGSSLROOTCERT",
                std::env::var("PGSSLROOTCERT").expect(
                    "PGSSLROOTCERT is not set: start the dev services with `eval \"$(scripts/dev-services.sh up)\"`",
                ),
            ),
        ])
    }

    /// The rotation function as the template configures it.
    fn deps(&self) -> Deps {
        let vars = self.vars();
        let source = move |k: &str| vars.get(k).cloned();
        let settings = RotationSettings::from_env(&Env::new(&source)).unwrap();
        Deps::new(settings, self.ssm.clone())
    }

    /// A database function as the template configures it; `secrets` is its container's
    /// cache (a warm container keeps the password it read).
    fn function(&self, secrets: &SecretCache) -> Database {
        let vars = self.vars();
        let source = move |k: &str| vars.get(k).cloned();
        Database::from_env(&Env::new(&source), Some(secrets)).unwrap()
    }

    async fn put(&self, name: &str, value: &str) {
        self.ssm
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .overwrite(true)
            .send()
            .await
            .unwrap();
    }

    async fn get(&self, name: &str) -> Option<String> {
        match self
            .ssm
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
        {
            Ok(out) => out.parameter.and_then(|p| p.value),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_parameter_not_found()) =>
            {
                None
            }
            Err(e) => panic!("{e:?}"),
        }
    }

    /// Whether a fresh TLS connection as the login role with `password` gets in.
    async fn accepts(&self, password: &str) -> bool {
        let settings = self.deps().settings;
        match PgConnection::connect_with(&settings.options(password)).await {
            Ok(conn) => {
                conn.close().await.ok();
                true
            }
            Err(e) if encache_shared::db::is_auth_failure(&e) => false,
            Err(e) => panic!("{e}"),
        }
    }

    /// The rotation finished: SSM's current password is the database's, no pending one.
    async fn assert_settled(&self, not: &str) {
        let current = self.get(&self.current).await.expect("a current password");
        assert_ne!(current, not, "the password did not change");
        assert_eq!(current.len(), 64);
        assert!(
            self.accepts(&current).await,
            "the database refuses SSM's current password"
        );
        assert!(!self.accepts(not).await, "the old password still works");
        assert_eq!(
            self.get(&self.pending).await,
            None,
            "the pending password was left"
        );
    }

    async fn drop(self) {
        let stmt = format!("DROP OWNED BY {0}; DROP ROLE {0}", self.user);
        // The test database goes first: the role owns nothing elsewhere.
        sqlx::raw_sql(sqlx::AssertSqlSafe(stmt))
            .execute(&self.db.pool)
            .await
            .ok();
    }
}

#[tokio::test]
async fn a_rotation_changes_the_password_and_a_function_connects_with_the_new_one() {
    // given a function that read the first password and whose connection was reaped
    let world = World::new().await;
    let secrets = SecretCache::new(world.ssm.clone());
    let function = world.function(&secrets);
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(function.pool().await.unwrap())
        .await
        .unwrap();
    assert_eq!(one, 1);
    let pool = function.pool().await.unwrap().clone();
    pool.close().await;
    let function = world.function(&secrets); // same container cache, no connection

    // when the rotation runs
    let report = rotate(&world.deps()).await.unwrap();

    // then the password changed everywhere and the function gets in with the new one
    assert_eq!(
        report,
        Report {
            step: Step::Finish,
            resumed: false
        }
    );
    world.assert_settled("first-password-0123456789").await;
    let user: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(function.pool().await.unwrap())
        .await
        .unwrap();
    assert_eq!(user, world.user);
    world.drop().await;
}

#[tokio::test]
async fn a_run_cut_off_after_any_step_is_finished_by_the_next() {
    let world = World::new().await;
    let deps = world.deps();
    let mut old = "first-password-0123456789".to_string();
    for cut in [Step::Create, Step::Set, Step::Test] {
        // given a run that stopped after `cut`
        let stopped = rotate_through(&deps, cut).await.unwrap();
        assert_eq!(stopped.step, cut);
        let pending = world.get(&world.pending).await.expect("a pending password");
        assert_eq!(world.accepts(&pending).await, cut >= Step::Set, "{cut:?}");

        // when the next run comes
        let report = rotate(&deps).await.unwrap();

        // then it finished that rotation, with that password
        assert_eq!(report.step, Step::Finish);
        assert!(report.resumed, "{cut:?}");
        world.assert_settled(&old).await;
        let current = world.get(&world.current).await.unwrap();
        assert_eq!(
            current, pending,
            "{cut:?}: another password than the pending one"
        );
        old = current;
    }

    // and a run cut off inside finish (current written, pending not yet deleted) too
    rotate_through(&deps, Step::Test).await.unwrap();
    let pending = world.get(&world.pending).await.unwrap();
    world.put(&world.current, &pending).await;
    let report = rotate(&deps).await.unwrap();
    assert!(report.resumed);
    world.assert_settled(&old).await;
    assert_eq!(world.get(&world.current).await.unwrap(), pending);
    world.drop().await;
}

#[tokio::test]
async fn functions_opening_connections_never_fail_while_rotations_run() {
    // given warm containers (each keeps the password it read) and cold ones, all opening
    // a new connection for every request
    let world = Arc::new(World::new().await);
    let done = Arc::new(AtomicBool::new(false));
    let mut loops = Vec::new();
    for warm in [true, false] {
        let (world, done) = (world.clone(), done.clone());
        loops.push(tokio::spawn(async move {
            let warm_cache = SecretCache::new(world.ssm.clone());
            let mut requests = 0;
            while !done.load(Ordering::SeqCst) {
                let cache = if warm {
                    warm_cache.clone()
                } else {
                    SecretCache::new(world.ssm.clone())
                };
                let function = world.function(&cache);
                let pool = function
                    .pool()
                    .await
                    .unwrap_or_else(|e| panic!("request {requests} (warm {warm}): {e}"));
                let one: i32 = sqlx::query_scalar("SELECT 1")
                    .fetch_one(pool)
                    .await
                    .unwrap_or_else(|e| panic!("request {requests} (warm {warm}): {e}"));
                assert_eq!(one, 1);
                pool.close().await;
                requests += 1;
            }
            requests
        }));
    }

    // when three rotations run, two of them side by side
    let deps = world.deps();
    rotate(&deps).await.unwrap();
    let other = world.deps();
    let (a, b) = tokio::join!(rotate(&deps), rotate(&other));
    a.unwrap();
    b.unwrap();
    done.store(true, Ordering::SeqCst);

    // then every request got its connection
    for l in loops {
        let requests = l.await.expect("a request failed (above)");
        assert!(requests > 0);
    }
    world.assert_settled("first-password-0123456789").await;
    Arc::into_inner(world).unwrap().drop().await;
}

#[tokio::test]
async fn the_rotation_runs_as_the_login_role_which_can_do_no_ddl_and_no_other_roles_password() {
    // given the login role, logged in as the rotation logs in
    let world = World::new().await;
    let settings = world.deps().settings;
    let mut conn = PgConnection::connect_with(&settings.options("first-password-0123456789"))
        .await
        .unwrap();

    // then it changes nothing but its own password (42501: insufficient privilege)
    for sql in [
        "CREATE TABLE mine (id int)",
        "ALTER TABLE users ADD COLUMN x int",
        "DROP TABLE messages",
        "TRUNCATE users",
        "ALTER ROLE postgres PASSWORD 'x'",
        "CREATE ROLE other LOGIN",
        "GRANT encache_app TO postgres",
    ] {
        let err = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut conn)
            .await
            .expect_err(sql);
        let code = err
            .as_database_error()
            .and_then(|e| e.code())
            .map(|c| c.into_owned());
        assert_eq!(code.as_deref(), Some("42501"), "{sql}: {err}");
    }
    conn.close().await.ok();

    // and a password changed behind its back (neither SSM value works) stops the run,
    // not retryable, with nothing written
    world
        .put(&world.current, "someone-elses-password-0123")
        .await;
    world
        .put(&world.pending, "another-password-0123456789")
        .await;
    let err = rotate(&world.deps()).await.unwrap_err();
    assert!(
        matches!(err, RotationError::PasswordsRefused { .. }),
        "{err}"
    );
    assert_eq!(
        world.get(&world.current).await.as_deref(),
        Some("someone-elses-password-0123")
    );
    let _ = Secret::new(()); // (Secret: the values never print)
    world.drop().await;
}
