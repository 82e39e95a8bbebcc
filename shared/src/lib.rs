//! What every encache function shares, split by role.
//!
//! - [`config`]: typed settings read once at cold start, secrets that never print.
//! - [`error`]: the one `StandardError` body and the mapping from error kind to HTTP status.
//! - [`db`]: the per-container PostgreSQL pool and the embedded migrations.
//! - [`http`]: API Gateway HTTP API (payload 2.0) requests and responses.
//! - [`pagination`]: `limit` parsing, signed keyset cursors and the page body of every feed.
//! - [`aws`]: SDK configuration (honours `AWS_ENDPOINT_URL`) and cached SSM secrets.
//! - [`telemetry`]: `tracing` set up the way Lambda expects.

pub mod aws;
pub mod config;
pub mod db;
pub mod error;
pub mod http;
pub mod pagination;
pub mod telemetry;

pub use config::{ConfigError, Secret};
pub use error::{ApiError, StandardError};
