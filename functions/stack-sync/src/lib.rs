//! Post-deploy sync: the encache stack's CloudFormation outputs, copied into SSM
//! parameters under `/encache/{env}/stack/`, where Terraform reads them.
//!
//! Two entry points share one core ([`sync::sync_stack`]):
//! - [`handler::handle`]: the Lambda behind the EventBridge rule on
//!   "CloudFormation Stack Status Change" (`CREATE_COMPLETE` / `UPDATE_COMPLETE`);
//! - [`cli`]: `stack-sync-cli --stack NAME --env ENV [--dry-run]` after `sam deploy`.
//!
//! The sync reads the stack's outputs, compares them with the parameters it manages
//! (tagged `encache:managed-by=stack-sync`), and writes only the difference: it creates,
//! updates and deletes its own parameters and never touches one it did not create.

pub mod cli;
pub mod contract;
pub mod event;
pub mod handler;
pub mod plan;
pub mod store;
pub mod sync;

pub use contract::Contract;
pub use handler::{Outcome, Settings, SyncError, handle};
pub use plan::{Action, Change, Plan};
pub use store::Clients;
pub use sync::{Mode, Report, Status, sync_stack};
