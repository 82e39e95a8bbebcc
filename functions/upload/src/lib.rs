//! Memory uploads, in three functions that share one bucket and one table:
//!
//! - [`api`]: `POST /v1/memories/uploads` validates a declaration, records a pending
//!   memory and returns a presigned PUT (`upload-api`).
//! - [`complete`]: S3 `ObjectCreated:*` events settle each memory as ready or failed
//!   (`upload-complete`).
//! - [`expiry`]: a scheduled sweep expires memories whose upload never came (`upload-expiry`).
//!
//! [`keys`] makes object keys and orders S3 sequencers; [`store`] holds the SQL.

pub mod api;
pub mod complete;
pub mod expiry;
pub mod keys;
pub mod settings;
pub mod store;

pub use settings::{ApiSettings, CompleteSettings, ExpirySettings};
