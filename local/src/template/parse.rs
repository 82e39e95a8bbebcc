//! The template's YAML → the model: globals merged into each function, every event of a
//! function read into an [`EventKind`], the HTTP API's authorizers and CORS, the outputs.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde_yaml::{Mapping, Value};

use super::{
    Authorizer, EventDef, EventKind, FunctionDef, HttpApiDef, JwtAuthorizerDef, OutputDef,
    ParameterDef, Resource, Template, ref_target,
};

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
        reserved_concurrency: props
            .get("ReservedConcurrentExecutions")
            .and_then(Value::as_u64),
        environment,
        log_format: logging.and_then(|l| l.get("LogFormat")).cloned(),
        log_level: logging.and_then(|l| l.get("ApplicationLogLevel")).cloned(),
        events,
        alias: prop(props, globals, "AutoPublishAlias")
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty())
            .map(Into::into),
        pre_traffic_hook: prop(props, globals, "DeploymentPreference")
            .and_then(|d| d.get("Hooks"))
            .and_then(|h| h.get("PreTraffic"))
            .cloned(),
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
            enabled: p.get("Enabled").cloned(),
            state: p.get("State").cloned(),
        },
        "SNS" => EventKind::Sns {
            topic: p.get("Topic").cloned().unwrap_or(Value::Null),
            filter_policy: p.get("FilterPolicy").cloned(),
            filter_policy_scope: p.get("FilterPolicyScope").cloned(),
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
