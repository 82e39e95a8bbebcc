//! The rotation's SQL, all of it as the login role itself (never the master user): the
//! lock every change of its password takes, the change, and the test of the new one.

use encache_shared::config::Secret;
use encache_shared::scram;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

/// The key `functions/migrate`'s `login::ensure` locks too (a transaction's lock there):
/// a deploy never sets the login role's password in the middle of a rotation.
const LOCK_KEY: &str = "encache login role";

/// Opens one connection within `limit`.
pub async fn connect(
    options: &PgConnectOptions,
    limit: std::time::Duration,
) -> Result<PgConnection, sqlx::Error> {
    match tokio::time::timeout(limit, PgConnection::connect_with(options)).await {
        Ok(result) => result,
        Err(_) => Err(sqlx::Error::PoolTimedOut),
    }
}

/// Takes the login role's lock for this session (waits for a deploy's migration or
/// another rotation to finish; bounded by the statement timeout). Ending the session
/// releases it, whatever happened.
pub async fn lock(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_lock(hashtext($1))")
        .bind(LOCK_KEY)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn unlock(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_unlock(hashtext($1))")
        .bind(LOCK_KEY)
        .execute(conn)
        .await?;
    Ok(())
}

/// Changes the password of the role this connection is logged in as: PostgreSQL lets a
/// role change its own password without any privilege. The statement carries a SCRAM
/// verifier, never the password. Connections already open stay open.
pub async fn set_own_password(
    conn: &mut PgConnection,
    password: &Secret<String>,
) -> Result<(), sqlx::Error> {
    let verifier = scram::salted_verifier(password.expose());
    // format(): %L quotes the verifier server-side (ALTER ROLE takes no bind parameters).
    let statement: String =
        sqlx::query_scalar("SELECT format('ALTER ROLE CURRENT_USER PASSWORD %L', $1::text)")
            .bind(verifier)
            .fetch_one(&mut *conn)
            .await?;
    sqlx::query(sqlx::AssertSqlSafe(statement))
        .execute(conn)
        .await?;
    Ok(())
}

/// What a function does with its connection: who it is, and a read of a table the
/// functions' grants cover.
pub async fn check(conn: &mut PgConnection) -> Result<String, sqlx::Error> {
    let user: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&mut *conn)
        .await?;
    sqlx::query("SELECT 1 FROM users LIMIT 1")
        .fetch_optional(conn)
        .await?;
    Ok(user)
}
