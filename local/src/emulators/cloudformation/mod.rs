//! CloudFormation, as far as a local deploy needs it: the template's custom resources run
//! against their functions ([`custom_resources`]) and the stack itself, a stand-in carrying
//! the template's outputs ([`stand_in`]).

pub mod custom_resources;
pub mod stand_in;

pub use stand_in::{LocalOutputs, local_outputs};
