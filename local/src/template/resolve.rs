//! Values with their local meaning: a parameter's local value, the pseudo parameters
//! (`AWS::Region`, `AWS::StackName`, ...), a resource's local name, ARN or queue URL
//! (`!Ref`, `!GetAtt`), conditions, and whole YAML values resolved to JSON.

use std::collections::HashMap;

use serde_json::Value as Json;
use serde_yaml::Value;

use super::intrinsics::{intrinsic, truthy};
use super::{LOCAL_ACCOUNT_ID, Template};

/// The one version a local function has (what `!Ref <Function>.Version` names).
pub const LOCAL_VERSION: &str = "1";

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
            "TableName",
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

    pub(super) fn ref_value(&self, name: &str) -> Result<Json, Unresolved> {
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
        if let Some((id, attr)) = name.split_once('.') {
            return self.function_qualifier(id, attr).map(Json::String);
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

    /// SAM's `!Ref <Function>.Alias` (the `AutoPublishAlias` ARN) and `.Version` (the
    /// version it published). Locally a function has one version, `1`.
    fn function_qualifier(&self, id: &str, attr: &str) -> Result<String, Unresolved> {
        let f = self
            .template
            .functions
            .get(id)
            .ok_or_else(|| Unresolved(format!("!Ref {id}.{attr}: {id} is no function")))?;
        let arn = self.function_arn(id)?;
        match (attr, &f.alias) {
            ("Alias", Some(alias)) => Ok(format!("{arn}:{alias}")),
            ("Version", Some(_)) => Ok(format!("{arn}:{LOCAL_VERSION}")),
            (_, None) => Err(Unresolved(format!(
                "!Ref {id}.{attr}: {id} has no AutoPublishAlias"
            ))),
            _ => Err(Unresolved(format!("!Ref {id}.{attr}: no such attribute"))),
        }
    }

    /// Every name Lambda's Invoke and the trigger configs accept for this function: its
    /// name and ARN, each unqualified or qualified with its alias, the local version or
    /// `$LATEST`.
    pub fn function_names(&self, logical_id: &str) -> Vec<String> {
        let (Ok(arn), Ok(physical)) = (
            self.function_arn(logical_id),
            self.physical_name(logical_id),
        ) else {
            return Vec::new();
        };
        let mut qualifiers = vec!["$LATEST".to_owned(), LOCAL_VERSION.to_owned()];
        qualifiers.extend(
            self.template
                .functions
                .get(logical_id)
                .and_then(|f| f.alias.clone()),
        );
        let mut names = Vec::new();
        for base in [arn, physical] {
            names.extend(qualifiers.iter().map(|q| format!("{base}:{q}")));
            names.push(base);
        }
        names
    }

    /// Does `name` (as [`Self::function_names`] lists them) name this function?
    pub fn names_function(&self, logical_id: &str, name: &str) -> bool {
        self.function_names(logical_id).iter().any(|n| n == name)
    }

    pub(super) fn get_att(&self, id: &str, attr: &str) -> Result<Json, Unresolved> {
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
            ("AWS::DynamoDB::Table", "Arn") => self.arn("dynamodb", &format!("table/{name}")),
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
}

pub(super) fn json_scalar(v: &Json) -> String {
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
