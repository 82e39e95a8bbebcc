//! encache's local runtime: the stack of `template.yaml` on one machine.

pub mod bench;
pub mod cli;
pub mod custom_resources;
pub mod deployed;
pub mod env;
pub mod events;
pub mod gateway;
pub mod invoke;
pub mod jwt;
pub mod provision;
pub mod runtime;
pub mod serve;
pub mod setup;
pub mod stack;
pub mod template;
pub mod users;
