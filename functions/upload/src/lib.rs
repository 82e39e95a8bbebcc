//! Memory uploads, in three functions that share one bucket and one table. One module
//! per function, each with its `Deps` (built once per container) and its
//! `handle(&Deps, event)`:
//!
//! - [`api`]: `POST /v1/memories/uploads` validates a declaration, records a pending
//!   memory and returns a presigned PUT (`upload-api`).
//! - [`complete`]: S3 `ObjectCreated:*` events settle each memory as ready or failed
//!   (`upload-complete`).
//! - [`expiry`]: a scheduled sweep expires memories whose upload never came (`upload-expiry`).
//!
//! The rooms they share: [`settings`] (every environment variable), [`store`] (the SQL;
//! the caller's `users` row is `encache_shared::users`, as in auth), [`error`] (how the
//! event functions fail), and [`keys`] (object keys, S3 sequencers).

pub mod api;
pub mod complete;
pub mod error;
pub mod expiry;
pub mod keys;
pub mod settings;
pub mod store;

pub use settings::{ApiSettings, CompleteSettings, ExpirySettings};
