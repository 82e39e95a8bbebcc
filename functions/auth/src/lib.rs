//! Who may sign up, what the database knows about them, and what their tokens say.
//!
//! One module per function, each with its `Deps` (built once per container) and its
//! `handle(&Deps, event)`:
//! - [`pre_sign_up`]: the email-domain policy ([`policy`]), auto-confirm / auto-verify
//!   where configured.
//! - [`post_confirmation`]: provisions the `users` row, keyed by Cognito's `sub`; safe to
//!   deliver any number of times.
//! - [`pre_token_generation`]: adds `encache:user_id` / `encache:plan` to the ID and access
//!   tokens (V2 event), keeps the user's groups, and never fails a sign-in over the database.
//! - [`me`]: `GET /v1/me`, the caller's profile, created from the JWT claims when
//!   post-confirmation never ran; `DELETE /v1/me`, the caller's account data (their
//!   memories' objects, then their row and everything it owns).
//!
//! The rooms they share: [`settings`] (every environment variable), [`store`] (the SQL of
//! account deletion; the `users` row itself is `encache_shared::users`, which upload uses
//! too), [`error`] (how a trigger fails). Every trigger takes the raw event JSON and
//! parses it here, so a malformed or unexpected event becomes a
//! [`TriggerError::InvalidEvent`] that names what is wrong instead of an opaque runtime
//! deserialisation failure.

pub mod error;
mod event;
pub mod me;
pub mod policy;
pub mod post_confirmation;
pub mod pre_sign_up;
pub mod pre_token_generation;
pub mod settings;
pub mod store;

pub use error::TriggerError;

use encache_shared::config::{ConfigError, Env, ProcessEnv};
use settings::TriggerSettings;

/// What a database-backed trigger (post-confirmation, pre-token-generation) needs, built
/// once per container; each trigger's module names its settings.
pub struct TriggerDeps {
    pub db: encache_shared::db::Database,
    pub settings: TriggerSettings,
}

impl TriggerDeps {
    pub async fn with_settings(
        settings: fn(&Env<'_>) -> Result<TriggerSettings, ConfigError>,
    ) -> anyhow::Result<Self> {
        let env = Env::new(&ProcessEnv);
        Ok(Self {
            settings: settings(&env)?,
            db: encache_shared::db::Database::from_env(&env, None)?,
        })
    }
}
