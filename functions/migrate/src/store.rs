//! The schema step, this capability's storage: refuse a database the code does not know,
//! else run the migrations every binary embeds (`encache_shared::db::MIGRATOR`) and say
//! which ones this run applied.

use std::collections::BTreeMap;

use encache_shared::db::MIGRATOR;
use sqlx::migrate::Migrate;
use sqlx::{Connection, PgConnection, PgPool};

use crate::error::SchemaError;

/// What a successful run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// Versions this run applied, oldest first (empty when the schema was current).
    pub applied: Vec<i64>,
    /// The newest applied version afterwards (`None` only with no migrations at all).
    pub schema_version: Option<i64>,
}

/// Checks the database against the code, then migrates it, on one connection of its own.
///
/// The connection is detached from the pool: if the caller's deadline drops this future
/// mid-migration, the socket closes, PostgreSQL rolls back the migration in progress
/// and releases the lock, and no half-used connection goes back to the pool.
pub async fn migrate(pool: &PgPool) -> Result<Migrated, SchemaError> {
    let mut conn = pool.acquire().await?.detach();
    // sqlx's migration lock is a session advisory lock, so re-entrant: holding it across
    // the check and the run makes both one critical section (a racing deploy waits), and
    // "applied by this run" exact.
    conn.lock().await?;
    let before = applied(&mut conn).await?;
    check_known(&before)?;
    MIGRATOR.run(&mut conn).await?;
    let after = applied(&mut conn).await?;
    conn.unlock().await?;
    conn.close().await.ok();
    Ok(Migrated {
        applied: after
            .keys()
            .filter(|v| !before.contains_key(v))
            .copied()
            .collect(),
        schema_version: after.keys().next_back().copied(),
    })
}

/// The versions recorded in `_sqlx_migrations` with their checksums (none without the table).
async fn applied(conn: &mut PgConnection) -> Result<BTreeMap<i64, Applied>, sqlx::Error> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await?;
    if !exists {
        return Ok(BTreeMap::new());
    }
    let rows: Vec<(i64, Vec<u8>, bool)> =
        sqlx::query_as("SELECT version, checksum, success FROM _sqlx_migrations")
            .fetch_all(&mut *conn)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(version, checksum, success)| (version, Applied { checksum, success }))
        .collect())
}

#[derive(Debug)]
struct Applied {
    checksum: Vec<u8>,
    success: bool,
}

/// Every applied version must be one of the code's, unchanged and complete.
fn check_known(applied: &BTreeMap<i64, Applied>) -> Result<(), SchemaError> {
    let known: BTreeMap<i64, &[u8]> = MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| (m.version, m.checksum.as_ref()))
        .collect();
    let unknown: Vec<i64> = applied
        .keys()
        .filter(|v| !known.contains_key(v))
        .copied()
        .collect();
    if !unknown.is_empty() {
        return Err(SchemaError::DatabaseNewer(unknown));
    }
    for (version, row) in applied {
        if !row.success {
            return Err(SchemaError::PartiallyApplied(*version));
        }
        if known.get(version).is_some_and(|c| *c != row.checksum) {
            return Err(SchemaError::Edited(*version));
        }
    }
    Ok(())
}
