//! Who may sign up, what the database knows about them, and what their tokens say.
//!
//! Three Cognito user-pool triggers and one HTTP resource:
//! - [`pre_sign_up`]: the email-domain policy, auto-confirm / auto-verify where configured.
//! - [`post_confirmation`]: provisions the `users` row, keyed by Cognito's `sub`; safe to
//!   deliver any number of times.
//! - [`pre_token_generation`]: adds `encache:user_id` / `encache:plan` to the ID and access
//!   tokens (V2 event), keeps the user's groups, and never fails a sign-in over the database.
//! - [`me`]: `GET /v1/me`, the caller's profile, created from the JWT claims when
//!   post-confirmation never ran; `DELETE /v1/me`, the caller's account data (their
//!   memories' objects, then their row and everything it owns).
//!
//! Every trigger takes the raw event JSON and parses it here, so a malformed or
//! unexpected event becomes a [`TriggerError::InvalidEvent`] that names what is wrong
//! instead of an opaque runtime deserialisation failure.

pub mod email;
pub mod error;
mod event;
pub mod me;
pub mod policy;
pub mod post_confirmation;
pub mod pre_sign_up;
pub mod pre_token_generation;
pub mod users;

pub use error::TriggerError;
