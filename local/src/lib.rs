//! encache's local runtime: the stack of `template.yaml` on one machine.
//!
//! The rooms: [`template`] (the SAM template: model, parsing, intrinsic resolution), the
//! stack it describes with local values ([`stack`], [`env`](mod@env), [`deployed`]), the AWS
//! services a local run stands in for ([`emulators`]), the command line
//! ([`commands`], one module per command), and reload on save ([`watch`]).

pub mod commands;
pub mod deployed;
pub mod emulators;
pub mod env;
pub mod stack;
pub mod template;
pub mod watch;
