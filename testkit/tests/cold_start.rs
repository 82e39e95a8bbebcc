//! What a database-backed function does at cold start, against the dev services: nothing
//! that leaves the process. The password comes from an SSM SecureString when there is no
//! `DATABASE_URL`, read on first use through the function's own `SecretCache` when it
//! passes one; an SSM outage then is that request's 503, not a failed init.

use encache_shared::aws::{SecretCache, sdk_config};
use encache_shared::config::Env;
use encache_shared::db::Database;
use encache_testkit::TestDb;

#[tokio::test]
async fn the_pool_reads_its_password_from_ssm_through_the_functions_cache() {
    // given a database and its password in SSM (the dev cluster trusts any password)
    let db = TestDb::new().await;
    let sdk = sdk_config().await;
    let name = format!(
        "/encache/test/{}/db/password",
        uuid::Uuid::new_v4().simple()
    );
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    ssm.put_parameter()
        .name(&name)
        .value("s3cr3t/with:url#chars")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .expect("storing the password (are the dev services up?)");
    let parts: sqlx::postgres::PgConnectOptions = db.url.parse().expect("the test URL");
    let (host, port, user) = (
        parts.get_host().to_owned(),
        parts.get_port().to_string(),
        parts.get_username().to_owned(),
    );
    let source = |k: &str| match k {
        "DB_HOST" => Some(host.clone()),
        "DB_PORT" => Some(port.clone()),
        "DB_NAME" => Some(db.name.clone()),
        "DB_USER" => Some(user.clone()),
        "DB_PASSWORD_PARAMETER" => Some(name.clone()),
        // The dev database's CA, as the local runtime hands it to every function.
        "PGSSLROOTCERT" => std::env::var("PGSSLROOTCERT").ok(),
        _ => None,
    };
    let env = Env::new(&source);

    // when the pool is built with the function's cache, and without one
    let secrets = SecretCache::from_sdk(&sdk);
    let shared = Database::from_env(&env, Some(&secrets)).expect("settings");
    let own = Database::from_env(&env, None).expect("settings");

    // then nothing is read until the first use (cold start does no I/O): the cache is empty
    assert!(secrets.cached(&name).await.is_none(), "read during init");

    // and on first use both connect, and the function's cache now holds the password:
    // deleting the parameter does not matter to it (no second SSM read in this container)
    for database in [&shared, &own] {
        let one: i32 = sqlx::query_scalar("SELECT 1")
            .fetch_one(database.pool().await.expect("the password from SSM"))
            .await
            .expect("the pool connects");
        assert_eq!(one, 1);
    }
    ssm.delete_parameter().name(&name).send().await.unwrap();
    assert_eq!(
        secrets.get(&name).await.expect("cached").expose(),
        "s3cr3t/with:url#chars"
    );
}
