//! What every encache function shares, split by role.
//!
//! - [`config`]: typed settings read once at cold start, secrets that never print.
//! - [`error`]: the one `StandardError` body and the mapping from error kind to HTTP status.
//! - [`db`]: the per-container PostgreSQL pool and the embedded migrations.
//! - [`http`]: API Gateway HTTP API (payload 2.0) requests and responses.
//! - [`pagination`]: `limit` parsing, signed keyset cursors and the page body of every feed.
//! - [`aws`]: SDK configuration (honours `AWS_ENDPOINT_URL`) and cached SSM secrets.
//! - `outbound` (feature `outbound`): what calls out over HTTP share (reqwest).
//! - [`telemetry`]: `tracing` set up the way Lambda expects.
//! - [`users`]: the caller → `users` row and the email normalisation, for auth and upload.

pub mod aws;
pub mod config;
pub mod db;
pub mod error;
pub mod http;
#[cfg(feature = "outbound")]
pub mod outbound;
pub mod pagination;
pub mod telemetry;
pub mod users;

pub use config::{ConfigError, Secret};
pub use error::{ApiError, StandardError};
