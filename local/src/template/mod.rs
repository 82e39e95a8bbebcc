//! The SAM template as the local runtime needs it: parameters, conditions, globals, every
//! `AWS::Serverless::Function` with its events, the HTTP API, the outputs.
//!
//! This module is the model; `parse` reads the YAML into it, `resolve` gives values
//! their local meaning (parameters, pseudo parameters, resource names, conditions) and
//! `intrinsics` recognises and evaluates `!Ref`, `!Sub`, `!GetAtt`, `Fn::*`.
//!
//! Values stay raw YAML until they are needed, so an unresolvable value (an SSM-typed
//! parameter with no local value) only fails where something actually uses it.

mod intrinsics;
mod parse;
mod resolve;

use std::collections::BTreeMap;

use anyhow::Context;
use serde_yaml::{Mapping, Value};

pub use intrinsics::{ref_target, referenced_ids};
pub use resolve::{Resolver, Unresolved};

/// Account id and names the emulator and the functions see locally (moto's default account).
pub const LOCAL_ACCOUNT_ID: &str = "123456789012";

#[derive(Debug, Clone)]
pub struct Template {
    pub parameters: BTreeMap<String, ParameterDef>,
    pub conditions: BTreeMap<String, Value>,
    pub resources: BTreeMap<String, Resource>,
    pub functions: BTreeMap<String, FunctionDef>,
    pub http_apis: BTreeMap<String, HttpApiDef>,
    /// The stack's `Outputs`, raw (what `sam deploy` would publish).
    pub outputs: BTreeMap<String, OutputDef>,
}

#[derive(Debug, Clone)]
pub struct OutputDef {
    pub value: Value,
    pub description: Option<String>,
    /// The output's `Condition`, if any: a false one means the stack has no such output.
    pub condition: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ParameterDef {
    pub kind: String,
    pub default: Option<Value>,
}

impl ParameterDef {
    /// `AWS::SSM::Parameter::Value<...>`: the default is a parameter *name*, not a value.
    pub fn is_ssm(&self) -> bool {
        self.kind.starts_with("AWS::SSM::Parameter::Value<")
    }

    fn is_list(&self) -> bool {
        self.kind == "CommaDelimitedList" || self.kind.contains("List<")
    }
}

#[derive(Debug, Clone)]
pub struct Resource {
    pub kind: String,
    pub properties: Mapping,
    pub condition: Option<String>,
}

#[derive(Debug, Clone)]
pub struct FunctionDef {
    pub logical_id: String,
    pub binary: String,
    pub timeout_secs: u64,
    pub memory_mb: u32,
    /// `ReservedConcurrentExecutions`, when the template gives a number.
    pub reserved_concurrency: Option<u64>,
    /// Globals' variables merged with the function's, raw.
    pub environment: BTreeMap<String, Value>,
    pub log_format: Option<Value>,
    pub log_level: Option<Value>,
    pub events: Vec<EventDef>,
    /// `AutoPublishAlias` (the function's or Globals'): what `!Ref <id>.Alias` names.
    pub alias: Option<String>,
    /// `DeploymentPreference.Hooks.PreTraffic`, raw (`!Ref` of the hook function).
    pub pre_traffic_hook: Option<Value>,
    /// The resource's `Condition`, if any: a false one means the function does not exist.
    pub condition: Option<String>,
}

#[derive(Debug, Clone)]
pub struct EventDef {
    pub name: String,
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Authorizer {
    /// The API's `DefaultAuthorizer` (if it has one).
    Default,
    /// `Auth: {Authorizer: NONE}`.
    None,
    Named(String),
}

#[derive(Debug, Clone)]
pub enum EventKind {
    HttpApi {
        api: Option<String>,
        method: String,
        path: String,
        authorizer: Authorizer,
    },
    S3 {
        /// Logical id of the bucket resource (`Bucket: !Ref X`).
        bucket: String,
        events: Vec<String>,
        prefix: Option<String>,
        suffix: Option<String>,
    },
    Schedule {
        schedule: Value,
        /// A fixed event instead of the scheduled-event shape.
        input: Option<Value>,
        /// `Enabled` (SAM's boolean) and `State` (`ENABLED` / `DISABLED`), raw.
        enabled: Option<Value>,
        state: Option<Value>,
    },
    Sns {
        topic: Value,
        /// The subscription's `FilterPolicy` (raw) and `FilterPolicyScope`.
        filter_policy: Option<Value>,
        filter_policy_scope: Option<Value>,
    },
    EventBridgeRule {
        pattern: Value,
    },
    Sqs {
        queue: Value,
    },
    Other(String),
}

#[derive(Debug, Clone)]
pub struct HttpApiDef {
    pub logical_id: String,
    pub cors: Option<Value>,
    pub default_authorizer: Option<String>,
    pub authorizers: BTreeMap<String, JwtAuthorizerDef>,
}

#[derive(Debug, Clone)]
pub struct JwtAuthorizerDef {
    pub issuer: Value,
    pub audience: Value,
}

impl Template {
    /// What the template asks of Lambda that the local runtime does not do, one line
    /// each, so nothing is ignored silently (`encache-local start` prints them).
    pub fn not_emulated(&self) -> Vec<String> {
        let mut out = Vec::new();
        let undelivered: Vec<String> = self
            .functions
            .values()
            .flat_map(|f| {
                f.events.iter().filter_map(move |e| match &e.kind {
                    EventKind::Sqs { .. } => Some(format!("{}.{} (SQS)", f.logical_id, e.name)),
                    EventKind::Other(kind) => Some(format!("{}.{} ({kind})", f.logical_id, e.name)),
                    _ => None,
                })
            })
            .collect();
        let once: Vec<String> = self
            .functions
            .values()
            .filter(|f| {
                f.events.iter().any(|e| {
                    matches!(
                        e.kind,
                        EventKind::Sns { .. }
                            | EventKind::EventBridgeRule { .. }
                            | EventKind::Schedule { .. }
                    )
                })
            })
            .map(|f| f.logical_id.clone())
            .collect();
        if !once.is_empty() {
            out.push(format!(
                "asynchronous retries ({}): an SNS, EventBridge or scheduled delivery is tried once and a failure logged; Lambda retries twice, then the EventInvokeConfig OnFailure destination / DeadLetterQueue",
                once.join(", ")
            ));
        }
        if !undelivered.is_empty() {
            out.push(format!(
                "event sources {}: nothing delivers them locally (`encache-local invoke` the function with a sample)",
                undelivered.join(", ")
            ));
        }
        let reserved: Vec<String> = self
            .functions
            .values()
            .filter_map(|f| {
                f.reserved_concurrency
                    .map(|n| format!("{} {n}", f.logical_id))
            })
            .collect();
        if !reserved.is_empty() {
            out.push(format!(
                "ReservedConcurrentExecutions ({}): here a function runs up to --max-instances processes and further requests wait; Lambda throttles them (a 500 from an HTTP API, a retry for an asynchronous event)",
                reserved.join(", ")
            ));
        }
        out
    }

    pub fn function(&self, logical_id: &str) -> anyhow::Result<&FunctionDef> {
        self.functions.get(logical_id).with_context(|| {
            format!(
                "the template has no function {logical_id} (it has: {})",
                self.functions
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
    }

    /// Every distinct binary the template's functions run, sorted.
    pub fn binaries(&self) -> Vec<String> {
        let mut bins: Vec<String> = self.functions.values().map(|f| f.binary.clone()).collect();
        bins.sort();
        bins.dedup();
        bins
    }
}
