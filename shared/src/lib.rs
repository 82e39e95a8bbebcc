//! What every encache function shares, split by role. Behind cargo features so a function
//! links only what it uses (cost-alerts and stack-sync link no sqlx, health no S3).
//!
//! - [`config`]: typed settings read once at cold start, secrets that never print.
//! - [`error`]: the one `StandardError` body and the mapping from error kind to HTTP status.
//! - `db` (feature `db`): the per-container PostgreSQL pool and the embedded migrations.
//! - [`http`]: API Gateway HTTP API (payload 2.0) requests and responses.
//! - [`idempotency`]: the writing routes' `Idempotency-Key` header, naming the resource.
//! - `pagination` (feature `pagination`): `limit` parsing, signed keyset cursors and the page body of every feed.
//! - [`aws`]: SDK configuration (honours `AWS_ENDPOINT_URL`), cached SSM secrets, and
//!   the S3 client (feature `s3`).
//! - `scram` (feature `scram`): SCRAM-SHA-256 verifiers of the login role's password.
//! - `outbound` (feature `outbound`): what calls out over HTTP share (reqwest).
//! - [`tls`]: one root store per process for the SDK and reqwest (the system bundle, read once).
//! - [`metrics`]: business metrics as CloudWatch Embedded Metric Format lines.
//! - [`telemetry`]: `tracing` set up the way Lambda expects.
//! - [`timestamp`]: every timestamp a client sends, parsed and range-checked in one place,
//!   and stored ones read back without failing (`Stored`).
//! - `users` (feature `db`): the caller → `users` row and the email normalisation, for auth and upload.

pub mod aws;
pub mod config;
#[cfg(feature = "db")]
pub mod db;
pub mod error;
pub mod http;
pub mod idempotency;
pub mod metrics;
#[cfg(feature = "outbound")]
pub mod outbound;
#[cfg(feature = "pagination")]
pub mod pagination;
#[cfg(feature = "scram")]
pub mod scram;
pub mod telemetry;
pub mod timestamp;
pub mod tls;
#[cfg(feature = "db")]
pub mod users;

pub use config::{ConfigError, Secret};
pub use error::{ApiError, StandardError};
