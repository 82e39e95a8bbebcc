//! The scheduled rotation of the functions' database password, on SSM, in the four steps
//! of a Secrets Manager rotation, without downtime and without the master password:
//!
//! 1. **create**: a new password is stored as the pending SecureString
//!    (`DB_PASSWORD_PENDING_PARAMETER`); one already there (an interrupted run's) is reused.
//! 2. **set**: logged in as the login role itself (with the current password, or with the
//!    pending one when an interrupted run already set it), `ALTER ROLE CURRENT_USER` gives
//!    the role the pending password, as a SCRAM verifier.
//! 3. **test**: a fresh verified-TLS connection with the pending password reads a table the
//!    functions' grants cover.
//! 4. **finish**: the current SecureString (`DB_PASSWORD_PARAMETER`) takes the pending
//!    value, then the pending one is deleted.
//!
//! At every moment the database accepts the current or the pending password, and a
//! function refused one reads both again and tries the other (`encache_shared::db`), so
//! no request fails. Every step is idempotent: a run interrupted anywhere is finished by
//! the next. The whole run holds the login role's advisory lock, which the migration
//! function takes before it sets the password on a deploy: two rotations, or a rotation
//! and a deploy, take turns (and ReservedConcurrentExecutions 1 runs one at a time anyway).
//!
//! [`settings`] reads the environment; [`parameters`] the two SecureStrings; [`store`]
//! the SQL; [`password`] makes new passwords; [`error`] says how a run fails.

pub mod error;
pub mod parameters;
pub mod password;
pub mod settings;
pub mod store;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use encache_shared::aws::Lazy;
use encache_shared::config::{Env, ProcessEnv, Secret};
use encache_shared::db::is_auth_failure;
use encache_shared::error::diagnostic;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Serialize;
use sqlx::{Connection, PgConnection};

pub use crate::error::RotationError;
use crate::parameters::Parameters;
use crate::settings::RotationSettings;

/// What a run needs, built once per container.
pub struct Deps {
    pub settings: RotationSettings,
    pub parameters: Parameters,
}

impl Deps {
    pub fn new(settings: RotationSettings, ssm: impl Into<Lazy<aws_sdk_ssm::Client>>) -> Self {
        Self {
            parameters: Parameters::new(ssm.into(), &settings),
            settings,
        }
    }

    pub async fn from_env() -> anyhow::Result<Self> {
        let env = Env::new(&ProcessEnv);
        let settings = RotationSettings::from_env(&env)?;
        Ok(Self::new(settings, Lazy::new(aws_sdk_ssm::Client::new)))
    }
}

/// The steps, in order; a run may stop after any of them ([`rotate_through`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    Create,
    Set,
    Test,
    Finish,
}

/// What a run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The last step done.
    pub step: Step,
    /// An interrupted run's pending password was found and carried on with.
    pub resumed: bool,
}

/// The Lambda entry point (the schedule's event, or `{}` by hand).
pub async fn handle(
    deps: &Deps,
    event: LambdaEvent<EventBridgeEvent>,
) -> Result<Report, Diagnostic> {
    tracing::info!(rule = ?event.payload.resources, "rotation started");
    rotate(deps).await.map_err(|e| {
        tracing::error!(error = %e, "rotation failed; the next run carries on from here");
        diagnostic(&e)
    })
}

/// A whole rotation.
pub async fn rotate(deps: &Deps) -> Result<Report, RotationError> {
    rotate_through(deps, Step::Finish).await
}

/// A rotation up to and including `last` (tests stop it there, as an interruption would).
pub async fn rotate_through(deps: &Deps, last: Step) -> Result<Report, RotationError> {
    let s = &deps.settings;
    let mut conn = log_in(deps).await?;
    store::lock(&mut conn).await?;
    let result = steps(deps, &mut conn, last).await;
    // Closing the session releases the lock too; unlocking first says so at once.
    if store::unlock(&mut conn).await.is_ok() {
        conn.close().await.ok();
    }
    if let Ok(report) = &result {
        tracing::info!(role = %s.user, step = ?report.step, resumed = report.resumed, "rotation done");
    }
    result
}

async fn steps(deps: &Deps, conn: &mut PgConnection, last: Step) -> Result<Report, RotationError> {
    let s = &deps.settings;
    // Read again under the lock: a run or a deploy we waited for may have changed them.
    let passwords = deps.parameters.read().await?;
    let current = passwords
        .current
        .ok_or_else(|| RotationError::NoCurrentPassword(s.current_parameter.clone()))?;

    // 1. create
    let resumed = passwords.pending.is_some();
    let pending = match passwords.pending {
        Some(pending) => pending,
        None => create(deps).await?,
    };
    tracing::info!(step = "create", parameter = %s.pending_parameter, reused = resumed, "pending password stored");
    if last == Step::Create {
        return Ok(Report {
            step: Step::Create,
            resumed,
        });
    }

    // 2. set (again, if an interrupted run did: same password, new salt)
    store::set_own_password(conn, &pending).await?;
    tracing::info!(step = "set", role = %s.user, "the login role has the pending password");
    if last == Step::Set {
        return Ok(Report {
            step: Step::Set,
            resumed,
        });
    }

    // 3. test
    test(s, &pending).await?;
    tracing::info!(step = "test", role = %s.user, "a new connection with the pending password works");
    if last == Step::Test {
        return Ok(Report {
            step: Step::Test,
            resumed,
        });
    }

    // 4. finish
    if current != pending {
        deps.parameters.replace_current(&pending).await?;
    }
    deps.parameters.delete_pending().await?;
    tracing::info!(step = "finish", parameter = %s.current_parameter, "the pending password is the current one");
    Ok(Report {
        step: Step::Finish,
        resumed,
    })
}

/// Logs in as the login role: with the current password, else with the pending one (an
/// interrupted run already set it). Neither: the password was changed by someone else.
async fn log_in(deps: &Deps) -> Result<PgConnection, RotationError> {
    let s = &deps.settings;
    let passwords = deps.parameters.read().await?;
    let current = passwords
        .current
        .ok_or_else(|| RotationError::NoCurrentPassword(s.current_parameter.clone()))?;
    let mut refused =
        match store::connect(&s.options(current.expose()), s.limits.acquire_timeout).await {
            Ok(conn) => return Ok(conn),
            Err(e) if is_auth_failure(&e) => e,
            Err(e) => return Err(e.into()),
        };
    if let Some(pending) = passwords.pending.filter(|p| *p != current) {
        match store::connect(&s.options(pending.expose()), s.limits.acquire_timeout).await {
            Ok(conn) => {
                tracing::info!(role = %s.user, "logged in with the pending password: an interrupted run had set it");
                return Ok(conn);
            }
            Err(e) if is_auth_failure(&e) => refused = e,
            Err(e) => return Err(e.into()),
        }
    }
    tracing::error!(role = %s.user, error = %refused, "both passwords refused");
    Err(RotationError::PasswordsRefused {
        user: s.user.clone(),
    })
}

/// Step 1: a new password as the pending one; if another got there first, that one.
async fn create(deps: &Deps) -> Result<Secret<String>, RotationError> {
    let fresh = password::generate()
        .map_err(|e| RotationError::Parameters(format!("no random password: {e}")))?;
    if deps.parameters.create_pending(&fresh).await? {
        return Ok(fresh);
    }
    deps.parameters.read().await?.pending.ok_or_else(|| {
        RotationError::Parameters("the pending password appeared and vanished: run again".into())
    })
}

/// Step 3: a fresh connection with `pending` does what a function does.
async fn test(s: &RotationSettings, pending: &Secret<String>) -> Result<(), RotationError> {
    let fail = |e: sqlx::Error| {
        if is_auth_failure(&e) {
            RotationError::TestFailed(e.to_string())
        } else {
            e.into()
        }
    };
    let mut conn = store::connect(&s.options(pending.expose()), s.limits.acquire_timeout)
        .await
        .map_err(fail)?;
    let user = store::check(&mut conn).await.map_err(fail)?;
    conn.close().await.ok();
    if user != s.user {
        return Err(RotationError::TestFailed(format!(
            "logged in as {user}, not {}",
            s.user
        )));
    }
    Ok(())
}
