//! The SAM template as the local runtime needs it: parameters, conditions, globals, every
//! `AWS::Serverless::Function` with its events, the HTTP API, and the intrinsic functions
//! (`!Ref`, `!Sub`, `!GetAtt`, `Fn::*`) resolved as far as a local run can.
//!
//! Values stay raw YAML until they are needed, so an unresolvable value (an SSM-typed
//! parameter with no local value) only fails where something actually uses it.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::Context;
use serde_json::Value as Json;
use serde_yaml::{Mapping, Value};

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
    /// Globals' variables merged with the function's, raw.
    pub environment: BTreeMap<String, Value>,
    pub log_format: Option<Value>,
    pub log_level: Option<Value>,
    pub events: Vec<EventDef>,
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
    },
    Sns {
        topic: Value,
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
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the template {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("reading the template {}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let root: Value = serde_yaml::from_str(text).context("the template is not valid YAML")?;
        let parameters = mapping(&root, "Parameters")
            .iter()
            .filter_map(|(k, v)| {
                Some((
                    k.as_str()?.to_owned(),
                    ParameterDef {
                        kind: v
                            .get("Type")
                            .and_then(Value::as_str)
                            .unwrap_or("String")
                            .into(),
                        default: v.get("Default").cloned(),
                    },
                ))
            })
            .collect();
        let conditions = mapping(&root, "Conditions")
            .iter()
            .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.clone())))
            .collect();
        let globals = root
            .get("Globals")
            .and_then(|g| g.get("Function"))
            .and_then(Value::as_mapping)
            .cloned()
            .unwrap_or_default();

        let mut resources = BTreeMap::new();
        for (id, body) in mapping(&root, "Resources") {
            let Some(id) = id.as_str() else { continue };
            resources.insert(
                id.to_owned(),
                Resource {
                    kind: body
                        .get("Type")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .into(),
                    properties: body
                        .get("Properties")
                        .and_then(Value::as_mapping)
                        .cloned()
                        .unwrap_or_default(),
                    condition: body
                        .get("Condition")
                        .and_then(Value::as_str)
                        .map(Into::into),
                },
            );
        }

        let mut functions = BTreeMap::new();
        let mut http_apis = BTreeMap::new();
        for (id, body) in mapping(&root, "Resources") {
            let Some(id) = id.as_str() else { continue };
            match body.get("Type").and_then(Value::as_str) {
                Some("AWS::Serverless::Function") => {
                    functions.insert(id.to_owned(), parse_function(id, body, &globals)?);
                }
                Some("AWS::Serverless::HttpApi") => {
                    http_apis.insert(id.to_owned(), parse_http_api(id, body));
                }
                _ => {}
            }
        }
        let outputs = mapping(&root, "Outputs")
            .iter()
            .filter_map(|(k, v)| {
                Some((
                    k.as_str()?.to_owned(),
                    OutputDef {
                        value: v.get("Value")?.clone(),
                        description: v.get("Description").and_then(Value::as_str).map(Into::into),
                        condition: v.get("Condition").and_then(Value::as_str).map(Into::into),
                    },
                ))
            })
            .collect();
        Ok(Self {
            parameters,
            conditions,
            resources,
            functions,
            http_apis,
            outputs,
        })
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

fn mapping<'a>(root: &'a Value, key: &str) -> &'a Mapping {
    static EMPTY: std::sync::OnceLock<Mapping> = std::sync::OnceLock::new();
    root.get(key)
        .and_then(Value::as_mapping)
        .unwrap_or_else(|| EMPTY.get_or_init(Mapping::new))
}

fn prop<'a>(props: &'a Value, globals: &'a Mapping, key: &str) -> Option<&'a Value> {
    props.get(key).or_else(|| globals.get(key))
}

fn parse_function(id: &str, body: &Value, globals: &Mapping) -> anyhow::Result<FunctionDef> {
    let empty = Value::Mapping(Mapping::new());
    let props = body.get("Properties").unwrap_or(&empty);
    let binary = body
        .get("Metadata")
        .and_then(|m| m.get("BuildProperties"))
        .and_then(|b| b.get("Binary"))
        .and_then(Value::as_str)
        .with_context(|| format!("{id} has no Metadata.BuildProperties.Binary"))?
        .to_owned();
    let number = |key: &str, default: u64| -> anyhow::Result<u64> {
        match prop(props, globals, key) {
            None => Ok(default),
            Some(v) => v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .with_context(|| format!("{id}: {key} must be a number locally")),
        }
    };
    let mut environment = BTreeMap::new();
    for source in [globals.get("Environment"), props.get("Environment")]
        .into_iter()
        .flatten()
    {
        if let Some(vars) = source.get("Variables").and_then(Value::as_mapping) {
            for (k, v) in vars {
                if let Some(k) = k.as_str() {
                    environment.insert(k.to_owned(), v.clone());
                }
            }
        }
    }
    let logging = prop(props, globals, "LoggingConfig");
    let mut events = Vec::new();
    if let Some(evs) = props.get("Events").and_then(Value::as_mapping) {
        for (name, ev) in evs {
            let name = name.as_str().unwrap_or_default().to_owned();
            events.push(EventDef {
                kind: parse_event(id, &name, ev)?,
                name,
            });
        }
    }
    Ok(FunctionDef {
        logical_id: id.to_owned(),
        binary,
        timeout_secs: number("Timeout", 3)?,
        memory_mb: number("MemorySize", 128)? as u32,
        environment,
        log_format: logging.and_then(|l| l.get("LogFormat")).cloned(),
        log_level: logging.and_then(|l| l.get("ApplicationLogLevel")).cloned(),
        events,
        condition: body
            .get("Condition")
            .and_then(Value::as_str)
            .map(Into::into),
    })
}

fn parse_event(fid: &str, name: &str, ev: &Value) -> anyhow::Result<EventKind> {
    let kind = ev.get("Type").and_then(Value::as_str).unwrap_or("");
    let empty = Value::Mapping(Mapping::new());
    let p = ev.get("Properties").unwrap_or(&empty);
    let s = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_owned);
    Ok(match kind {
        "HttpApi" => {
            let authorizer = match p
                .get("Auth")
                .and_then(|a| a.get("Authorizer"))
                .and_then(Value::as_str)
            {
                None => Authorizer::Default,
                Some("NONE") => Authorizer::None,
                Some(other) => Authorizer::Named(other.to_owned()),
            };
            EventKind::HttpApi {
                api: p.get("ApiId").and_then(ref_target),
                method: s("Method").unwrap_or_else(|| "ANY".into()).to_uppercase(),
                path: s("Path").unwrap_or_else(|| "/{proxy+}".into()),
                authorizer,
            }
        }
        "S3" => {
            let bucket = p.get("Bucket").and_then(ref_target).with_context(|| {
                format!("{fid}.{name}: an S3 event's Bucket must be !Ref of a bucket")
            })?;
            let events = match p.get("Events") {
                Some(Value::String(e)) => vec![e.clone()],
                Some(Value::Sequence(es)) => es
                    .iter()
                    .filter_map(|e| e.as_str().map(Into::into))
                    .collect(),
                _ => vec!["s3:ObjectCreated:*".into()],
            };
            let mut prefix = None;
            let mut suffix = None;
            if let Some(rules) = p
                .get("Filter")
                .and_then(|f| f.get("S3Key"))
                .and_then(|k| k.get("Rules"))
                .and_then(Value::as_sequence)
            {
                for r in rules {
                    let value = r.get("Value").and_then(Value::as_str).map(str::to_owned);
                    match r.get("Name").and_then(Value::as_str) {
                        Some(n) if n.eq_ignore_ascii_case("prefix") => prefix = value,
                        Some(n) if n.eq_ignore_ascii_case("suffix") => suffix = value,
                        _ => {}
                    }
                }
            }
            EventKind::S3 {
                bucket,
                events,
                prefix,
                suffix,
            }
        }
        "Schedule" | "ScheduleV2" => EventKind::Schedule {
            schedule: p
                .get("Schedule")
                .or_else(|| p.get("ScheduleExpression"))
                .cloned()
                .unwrap_or(Value::Null),
            input: p.get("Input").cloned(),
        },
        "SNS" => EventKind::Sns {
            topic: p.get("Topic").cloned().unwrap_or(Value::Null),
        },
        "EventBridgeRule" | "CloudWatchEvent" => EventKind::EventBridgeRule {
            pattern: p.get("Pattern").cloned().unwrap_or(Value::Null),
        },
        "SQS" => EventKind::Sqs {
            queue: p.get("Queue").cloned().unwrap_or(Value::Null),
        },
        other => EventKind::Other(other.to_owned()),
    })
}

fn parse_http_api(id: &str, body: &Value) -> HttpApiDef {
    let props = body.get("Properties");
    let auth = props.and_then(|p| p.get("Auth"));
    let mut authorizers = BTreeMap::new();
    if let Some(list) = auth
        .and_then(|a| a.get("Authorizers"))
        .and_then(Value::as_mapping)
    {
        for (name, a) in list {
            let (Some(name), Some(jwt)) = (name.as_str(), a.get("JwtConfiguration")) else {
                continue;
            };
            authorizers.insert(
                name.to_owned(),
                JwtAuthorizerDef {
                    issuer: jwt.get("issuer").cloned().unwrap_or(Value::Null),
                    audience: jwt.get("audience").cloned().unwrap_or(Value::Null),
                },
            );
        }
    }
    HttpApiDef {
        logical_id: id.to_owned(),
        cors: props.and_then(|p| p.get("CorsConfiguration")).cloned(),
        default_authorizer: auth
            .and_then(|a| a.get("DefaultAuthorizer"))
            .and_then(Value::as_str)
            .map(Into::into),
        authorizers,
    }
}

/// The logical id named by `!Ref X` / `{Ref: X}`.
pub fn ref_target(v: &Value) -> Option<String> {
    match intrinsic(v) {
        Some(("Ref", arg)) => arg.as_str().map(Into::into),
        _ => None,
    }
}

/// Every logical id (or parameter) a value refers to: `!Ref X`, `!GetAtt X.Attr` and the
/// `${X}` / `${X.Attr}` of `!Sub`, at any depth.
pub fn referenced_ids(v: &Value) -> std::collections::BTreeSet<String> {
    fn walk(v: &Value, out: &mut std::collections::BTreeSet<String>) {
        match intrinsic(v) {
            Some(("Ref", arg)) => {
                if let Some(s) = arg.as_str() {
                    out.insert(s.to_owned());
                }
            }
            Some(("GetAtt", arg)) => match arg {
                Value::String(s) => {
                    out.insert(s.split('.').next().unwrap_or_default().to_owned());
                }
                other => walk(other, out),
            },
            Some(("Sub", arg)) => {
                let (text, vars) = match arg {
                    Value::Sequence(s) => (s.first().and_then(Value::as_str), s.get(1)),
                    other => (other.as_str(), None),
                };
                let mut rest = text.unwrap_or_default();
                while let Some(start) = rest.find("${") {
                    let after = &rest[start + 2..];
                    let Some(end) = after.find('}') else { break };
                    let name = &after[..end];
                    if !name.starts_with('!') {
                        out.insert(name.split('.').next().unwrap_or_default().to_owned());
                    }
                    rest = &after[end + 1..];
                }
                if let Some(vars) = vars {
                    walk(vars, out);
                }
            }
            Some((_, arg)) => walk(arg, out),
            None => match v {
                Value::Sequence(items) => items.iter().for_each(|i| walk(i, out)),
                Value::Mapping(m) => m.values().for_each(|i| walk(i, out)),
                Value::Tagged(t) => walk(&t.value, out),
                _ => {}
            },
        }
    }
    let mut out = std::collections::BTreeSet::new();
    walk(v, &mut out);
    out
}

/// `!Name arg` or `{"Fn::Name": arg}` / `{"Ref": arg}` → ("Name", arg).
fn intrinsic(v: &Value) -> Option<(&str, &Value)> {
    match v {
        Value::Tagged(t) => {
            let tag = t.tag.to_string();
            let name = tag.trim_start_matches('!');
            // Map onto the static names below so the borrow is tied to `v`.
            INTRINSICS
                .iter()
                .find(|n| **n == name)
                .map(|n| (*n, &t.value))
        }
        Value::Mapping(m) if m.len() == 1 => {
            let (k, arg) = m.iter().next()?;
            let k = k.as_str()?;
            let name = k.strip_prefix("Fn::").unwrap_or(k);
            if k != "Ref" && !k.starts_with("Fn::") && k != "Condition" {
                return None;
            }
            INTRINSICS.iter().find(|n| **n == name).map(|n| (*n, arg))
        }
        _ => None,
    }
}

const INTRINSICS: &[&str] = &[
    "Ref",
    "Sub",
    "GetAtt",
    "Join",
    "Select",
    "Split",
    "If",
    "Equals",
    "Not",
    "And",
    "Or",
    "Condition",
    "FindInMap",
    "ImportValue",
    "Base64",
    "GetAZs",
];

/// Why a value has no local meaning.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct Unresolved(pub String);

/// Resolves intrinsic functions against local parameter values and local resource names.
#[derive(Debug, Clone)]
pub struct Resolver<'t> {
    pub template: &'t Template,
    /// Local values for template parameters (from `sam-env.local.json`'s `Parameters`).
    pub parameter_values: HashMap<String, String>,
    pub region: String,
    pub stack_name: String,
    /// The emulator's endpoint, for queue URLs.
    pub endpoint: Option<String>,
}

impl<'t> Resolver<'t> {
    pub fn new(template: &'t Template, parameter_values: HashMap<String, String>) -> Self {
        Self {
            template,
            parameter_values,
            region: std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into()),
            stack_name: "encache-local".into(),
            endpoint: encache_shared::aws::endpoint_override(),
        }
    }

    /// A template parameter's local value: the local override, else a plain default.
    pub fn parameter(&self, name: &str) -> Result<Json, Unresolved> {
        let def = self
            .template
            .parameters
            .get(name)
            .ok_or_else(|| Unresolved(format!("{name} is not a template parameter")))?;
        let raw = match self.parameter_values.get(name) {
            Some(v) => v.clone(),
            None if def.is_ssm() => {
                return Err(Unresolved(format!(
                    "parameter {name} ({}) has no local value",
                    def.kind
                )));
            }
            None => match &def.default {
                Some(d) => scalar_string(d).ok_or_else(|| {
                    Unresolved(format!("parameter {name} has a non-scalar default"))
                })?,
                None => {
                    return Err(Unresolved(format!(
                        "parameter {name} has no default and no local value"
                    )));
                }
            },
        };
        Ok(if def.is_list() {
            Json::Array(
                raw.split(',')
                    .map(|s| Json::String(s.trim().to_owned()))
                    .collect(),
            )
        } else {
            Json::String(raw)
        })
    }

    /// The local physical name of a resource (what `!Ref` gives for buckets, queues, ...).
    pub fn physical_name(&self, logical_id: &str) -> Result<String, Unresolved> {
        let res = self.template.resources.get(logical_id).ok_or_else(|| {
            Unresolved(format!(
                "{logical_id} is neither a parameter nor a resource"
            ))
        })?;
        let explicit = [
            "BucketName",
            "QueueName",
            "TopicName",
            "FunctionName",
            "Name",
        ]
        .iter()
        .find_map(|k| res.properties.get(*k));
        if let Some(v) = explicit {
            return self.string(v);
        }
        Ok(match res.kind.as_str() {
            "AWS::S3::Bucket" => format!("{}-{}", self.stack_name, logical_id).to_lowercase(),
            _ => logical_id.to_owned(),
        })
    }

    fn ref_value(&self, name: &str) -> Result<Json, Unresolved> {
        let pseudo = match name {
            "AWS::Region" => Some(self.region.clone()),
            "AWS::AccountId" => Some(LOCAL_ACCOUNT_ID.into()),
            "AWS::Partition" => Some("aws".into()),
            "AWS::URLSuffix" => Some("amazonaws.com".into()),
            "AWS::StackName" => Some(self.stack_name.clone()),
            "AWS::StackId" => Some(format!(
                "arn:aws:cloudformation:{}:{LOCAL_ACCOUNT_ID}:stack/{}/local",
                self.region, self.stack_name
            )),
            _ => None,
        };
        if let Some(p) = pseudo {
            return Ok(Json::String(p));
        }
        if self.template.parameters.contains_key(name) {
            return self.parameter(name);
        }
        let res = self
            .template
            .resources
            .get(name)
            .ok_or_else(|| Unresolved(format!("!Ref {name}: no such parameter or resource")))?;
        let physical = self.physical_name(name)?;
        Ok(Json::String(match res.kind.as_str() {
            "AWS::SQS::Queue" => self.queue_url(&physical),
            "AWS::SNS::Topic" => self.arn("sns", &physical),
            "AWS::Serverless::HttpApi" => "local".into(),
            _ => physical,
        }))
    }

    pub fn queue_url(&self, name: &str) -> String {
        let base = self
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://sqs.{}.amazonaws.com", self.region));
        format!("{}/{LOCAL_ACCOUNT_ID}/{name}", base.trim_end_matches('/'))
    }

    /// `arn:aws:<service>:<region>:<local account>:<resource>`.
    pub fn arn(&self, service: &str, resource: &str) -> String {
        format!(
            "arn:aws:{service}:{}:{LOCAL_ACCOUNT_ID}:{resource}",
            self.region
        )
    }

    /// A function's ARN, exactly as `!GetAtt <id>.Arn` resolves locally.
    pub fn function_arn(&self, logical_id: &str) -> Result<String, Unresolved> {
        self.get_att(logical_id, "Arn").map(|v| json_scalar(&v))
    }

    fn get_att(&self, id: &str, attr: &str) -> Result<Json, Unresolved> {
        let res = self
            .template
            .resources
            .get(id)
            .ok_or_else(|| Unresolved(format!("!GetAtt {id}.{attr}: no such resource")))?;
        let name = self.physical_name(id)?;
        let v = match (res.kind.as_str(), attr) {
            ("AWS::S3::Bucket", "Arn") => format!("arn:aws:s3:::{name}"),
            ("AWS::S3::Bucket", "DomainName") => format!("{name}.s3.amazonaws.com"),
            ("AWS::SQS::Queue", "Arn") => self.arn("sqs", &name),
            ("AWS::SQS::Queue", "QueueName") => name,
            ("AWS::SQS::Queue", "QueueUrl") => self.queue_url(&name),
            ("AWS::SNS::Topic", "TopicArn") => self.arn("sns", &name),
            ("AWS::Serverless::Function", "Arn") => self.arn("lambda", &format!("function:{name}")),
            (kind, attr) => {
                return Err(Unresolved(format!(
                    "!GetAtt {id}.{attr} ({kind}) has no local value"
                )));
            }
        };
        Ok(Json::String(v))
    }

    /// Resolves a value to a string (lists are joined with commas, as Lambda env does).
    pub fn string(&self, v: &Value) -> Result<String, Unresolved> {
        match self.resolve(v)? {
            Json::String(s) => Ok(s),
            Json::Array(items) => Ok(items.iter().map(json_scalar).collect::<Vec<_>>().join(",")),
            other => Ok(json_scalar(&other)),
        }
    }

    /// Resolves a value to a list of strings (a single string is a one-item list).
    pub fn list(&self, v: &Value) -> Result<Vec<String>, Unresolved> {
        Ok(match self.resolve(v)? {
            Json::Array(items) => items.iter().map(json_scalar).collect(),
            Json::Null => vec![],
            other => vec![json_scalar(&other)],
        })
    }

    pub fn condition(&self, name: &str) -> Result<bool, Unresolved> {
        let c = self
            .template
            .conditions
            .get(name)
            .ok_or_else(|| Unresolved(format!("no condition {name}")))?;
        truthy(&self.resolve(c)?)
    }

    pub fn resolve(&self, v: &Value) -> Result<Json, Unresolved> {
        if let Some((name, arg)) = intrinsic(v) {
            return self.intrinsic(name, arg);
        }
        Ok(match v {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Number(n) => Json::String(n.to_string()),
            Value::String(s) => Json::String(s.clone()),
            Value::Sequence(items) => Json::Array(
                items
                    .iter()
                    .map(|i| self.resolve(i))
                    .filter(|r| !matches!(r, Ok(Json::Null)))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Mapping(m) => {
                let mut out = serde_json::Map::new();
                for (k, v) in m {
                    let r = self.resolve(v)?;
                    if !r.is_null() {
                        out.insert(k.as_str().unwrap_or_default().to_owned(), r);
                    }
                }
                Json::Object(out)
            }
            Value::Tagged(t) => {
                return Err(Unresolved(format!("unsupported tag {}", t.tag)));
            }
        })
    }

    fn intrinsic(&self, name: &str, arg: &Value) -> Result<Json, Unresolved> {
        let seq = |n: usize| -> Result<&Vec<Value>, Unresolved> {
            arg.as_sequence()
                .filter(|s| s.len() >= n)
                .ok_or_else(|| Unresolved(format!("Fn::{name} needs a list of {n}")))
        };
        match name {
            "Ref" => {
                let target = arg.as_str().unwrap_or_default();
                if target == "AWS::NoValue" {
                    return Ok(Json::Null);
                }
                self.ref_value(target)
            }
            "GetAtt" => {
                let (id, attr) = match arg {
                    Value::String(s) => s
                        .split_once('.')
                        .map(|(a, b)| (a.to_owned(), b.to_owned()))
                        .ok_or_else(|| Unresolved(format!("bad !GetAtt {s}")))?,
                    Value::Sequence(s) if s.len() == 2 => {
                        (self.string(&s[0])?, self.string(&s[1])?)
                    }
                    _ => return Err(Unresolved("bad !GetAtt".into())),
                };
                self.get_att(&id, &attr)
            }
            "Sub" => {
                let (text, vars) = match arg {
                    Value::String(s) => (s.clone(), None),
                    Value::Sequence(s) if !s.is_empty() => (
                        s[0].as_str().unwrap_or_default().to_owned(),
                        s.get(1).and_then(Value::as_mapping),
                    ),
                    _ => return Err(Unresolved("bad !Sub".into())),
                };
                self.sub(&text, vars).map(Json::String)
            }
            "Join" => {
                let s = seq(2)?;
                let sep = self.string(&s[0])?;
                Ok(Json::String(self.list(&s[1])?.join(&sep)))
            }
            "Select" => {
                let s = seq(2)?;
                let i: usize = self
                    .string(&s[0])?
                    .parse()
                    .map_err(|_| Unresolved("bad Fn::Select index".into()))?;
                let items = self.list(&s[1])?;
                items
                    .get(i)
                    .map(|v| Json::String(v.clone()))
                    .ok_or_else(|| Unresolved("Fn::Select index out of range".into()))
            }
            "Split" => {
                let s = seq(2)?;
                let sep = self.string(&s[0])?;
                let text = self.string(&s[1])?;
                Ok(Json::Array(
                    text.split(sep.as_str())
                        .map(|p| Json::String(p.to_owned()))
                        .collect(),
                ))
            }
            "If" => {
                let s = seq(3)?;
                let cond = self.condition(s[0].as_str().unwrap_or_default())?;
                self.resolve(if cond { &s[1] } else { &s[2] })
            }
            "Equals" => {
                let s = seq(2)?;
                Ok(Json::Bool(self.resolve(&s[0])? == self.resolve(&s[1])?))
            }
            "Not" => {
                let s = seq(1)?;
                Ok(Json::Bool(!truthy(&self.resolve(&s[0])?)?))
            }
            "And" | "Or" => {
                let s = seq(1)?;
                let vals = s
                    .iter()
                    .map(|c| self.resolve(c).and_then(|v| truthy(&v)))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Json::Bool(if name == "And" {
                    vals.iter().all(|b| *b)
                } else {
                    vals.iter().any(|b| *b)
                }))
            }
            "Condition" => Ok(Json::Bool(
                self.condition(arg.as_str().unwrap_or_default())?,
            )),
            other => Err(Unresolved(format!("Fn::{other} has no local value"))),
        }
    }

    fn sub(&self, text: &str, vars: Option<&Mapping>) -> Result<String, Unresolved> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| Unresolved(format!("unclosed ${{ in !Sub {text}")))?;
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(v) = vars.and_then(|m| m.get(name)) {
                out.push_str(&self.string(v)?);
            } else if let Some((id, attr)) = name.split_once('.')
                && !name.starts_with("AWS::")
            {
                out.push_str(&json_scalar(&self.get_att(id, attr)?));
            } else {
                let v = self.ref_value(name)?;
                out.push_str(&match v {
                    Json::Array(items) => {
                        items.iter().map(json_scalar).collect::<Vec<_>>().join(",")
                    }
                    other => json_scalar(&other),
                });
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

fn truthy(v: &Json) -> Result<bool, Unresolved> {
    match v {
        Json::Bool(b) => Ok(*b),
        Json::String(s) if s == "true" => Ok(true),
        Json::String(s) if s == "false" => Ok(false),
        other => Err(Unresolved(format!("{other} is not a condition"))),
    }
}

fn json_scalar(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        other => other.to_string(),
    }
}

fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Sequence(items) => Some(
            items
                .iter()
                .filter_map(scalar_string)
                .collect::<Vec<_>>()
                .join(","),
        ),
        _ => None,
    }
}
