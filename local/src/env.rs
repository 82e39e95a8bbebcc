//! Function environments the way `sam local --env-vars` builds them, and the drift check
//! between the local env files, `samconfig.toml` and the template.
//!
//! `sam-env.local.json` is a valid SAM env-vars file: `Parameters` applies to every
//! function, `"<LogicalId>": {...}` to one, and only variables the template declares are
//! set. Keys of `Parameters` that name template parameters also give those parameters
//! their local value (SAM ignores them, so the file stays valid for SAM).
//! `sam-container-env.local.json` (SAM's `--container-env-vars`) is added to the process
//! as is, declared or not.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use anyhow::Context;
use serde_json::Value;

use crate::template::{FunctionDef, Resolver, Template};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnvFile {
    pub parameters: BTreeMap<String, String>,
    pub functions: BTreeMap<String, BTreeMap<String, String>>,
}

impl EnvFile {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("reading {}", path.display()))
    }

    /// The file if it exists, an empty one otherwise.
    pub fn load_optional(path: &Path) -> anyhow::Result<Self> {
        if path.exists() {
            Self::load(path)
        } else {
            Ok(Self::default())
        }
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let root: serde_json::Map<String, Value> =
            serde_json::from_str(text).context("an env-vars file must be a JSON object")?;
        let mut file = Self::default();
        for (key, vars) in root {
            let vars = vars
                .as_object()
                .with_context(|| format!("\"{key}\" must be an object of variables"))?;
            let vars = vars
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) => s.clone(),
                        Value::Null => String::new(),
                        other => other.to_string(),
                    };
                    (k.clone(), v)
                })
                .collect();
            if key == "Parameters" {
                file.parameters = vars;
            } else {
                file.functions.insert(key, vars);
            }
        }
        Ok(file)
    }

    /// Template parameter values this file sets (keys of `Parameters` naming a parameter).
    pub fn parameter_values(&self, template: &Template) -> HashMap<String, String> {
        self.parameters
            .iter()
            .filter(|(k, _)| template.parameters.contains_key(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// A declared variable with no local value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsetVariable {
    pub function: String,
    pub variable: String,
    pub reason: String,
}

impl std::fmt::Display for UnsetVariable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: variable {} resolves to nothing ({}); set it in sam-env.local.json under \"{}\" or \"Parameters\"",
            self.function, self.variable, self.reason, self.function
        )
    }
}

/// The variables the template declares for `function`, with local values applied.
pub fn declared_env(
    function: &FunctionDef,
    resolver: &Resolver<'_>,
    env: &EnvFile,
) -> Result<BTreeMap<String, String>, Vec<UnsetVariable>> {
    let own = env.functions.get(&function.logical_id);
    let mut out = BTreeMap::new();
    let mut unset = Vec::new();
    for (name, raw) in &function.environment {
        let local = own
            .and_then(|vars| vars.get(name))
            .or_else(|| env.parameters.get(name));
        match local {
            Some(v) => {
                out.insert(name.clone(), v.clone());
            }
            None => match resolver.string(raw) {
                Ok(v) => {
                    out.insert(name.clone(), v);
                }
                Err(e) => unset.push(UnsetVariable {
                    function: function.logical_id.clone(),
                    variable: name.clone(),
                    reason: e.0,
                }),
            },
        }
    }
    if unset.is_empty() {
        Ok(out)
    } else {
        Err(unset)
    }
}

/// What `--container-env-vars` adds to one function's process.
pub fn container_env(function: &str, container: &EnvFile) -> BTreeMap<String, String> {
    let mut out = container.parameters.clone();
    if let Some(own) = container.functions.get(function) {
        out.extend(own.clone());
    }
    out
}

/// Names the local files use that the template lacks, and template needs they leave unset.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Drift {
    pub unknown: Vec<String>,
    pub unset: Vec<String>,
}

impl Drift {
    pub fn is_clean(&self) -> bool {
        self.unknown.is_empty() && self.unset.is_empty()
    }
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_clean() {
            return writeln!(f, "no drift: the local files and template.yaml agree");
        }
        for u in &self.unknown {
            writeln!(f, "not in template.yaml: {u}")?;
        }
        for u in &self.unset {
            writeln!(f, "unset locally: {u}")?;
        }
        Ok(())
    }
}

/// Compares the example env files and `samconfig.toml` with the template.
pub fn drift(
    template: &Template,
    sam_env: &EnvFile,
    container_env: &EnvFile,
    samconfig: Option<&str>,
) -> Drift {
    let mut drift = Drift::default();
    let declared: BTreeSet<&str> = template
        .functions
        .values()
        .flat_map(|f| f.environment.keys().map(String::as_str))
        .collect();

    for key in sam_env.parameters.keys() {
        if !template.parameters.contains_key(key) && !declared.contains(key.as_str()) {
            drift.unknown.push(format!(
                "sam-env.local.example.json: Parameters.{key} is neither a template parameter nor a variable any function declares"
            ));
        }
    }
    for (id, vars) in &sam_env.functions {
        let Some(f) = template.functions.get(id) else {
            drift.unknown.push(format!(
                "sam-env.local.example.json: {id} is not a function in the template"
            ));
            continue;
        };
        for var in vars.keys() {
            if !f.environment.contains_key(var) {
                drift.unknown.push(format!(
                    "sam-env.local.example.json: {id}.{var} is not a variable {id} declares"
                ));
            }
        }
    }
    for id in container_env.functions.keys() {
        if !template.functions.contains_key(id) {
            drift.unknown.push(format!(
                "sam-container-env.local.example.json: {id} is not a function in the template"
            ));
        }
    }
    for name in samconfig.map(samconfig_parameter_names).unwrap_or_default() {
        if !template.parameters.contains_key(&name) {
            drift.unknown.push(format!(
                "samconfig.toml: parameter_overrides names {name}, which is not a template parameter"
            ));
        }
    }

    let resolver = Resolver::new(template, sam_env.parameter_values(template));
    for f in template.functions.values() {
        if let Err(unset) = declared_env(f, &resolver, sam_env) {
            drift.unset.extend(unset.iter().map(|u| {
                format!(
                    "{}.{} ({}) has no value in sam-env.local.example.json",
                    u.function, u.variable, u.reason
                )
            }));
        }
    }
    for api in template.http_apis.values() {
        for (name, a) in &api.authorizers {
            for (what, v) in [("issuer", &a.issuer), ("audience", &a.audience)] {
                if let Err(e) = resolver.resolve(v) {
                    drift.unset.push(format!(
                        "{}.{name} {what} ({e}) has no value in sam-env.local.example.json",
                        api.logical_id
                    ));
                }
            }
        }
    }
    drift
}

/// Parameter names in every `parameter_overrides = "A=x B=y"` line of a samconfig.toml.
pub fn samconfig_parameter_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let Some(rest) = line.strip_prefix("parameter_overrides") else {
            continue;
        };
        let value = rest.trim_start().trim_start_matches('=').trim();
        let value = value.trim_matches(|c| c == '"' || c == '\'' || c == '[' || c == ']');
        for pair in value.split_whitespace() {
            if let Some((name, _)) = pair.split_once('=') {
                let name = name.trim_matches(|c| c == '"' || c == '\'' || c == ',');
                if !name.is_empty() {
                    names.push(name.to_owned());
                }
            }
        }
    }
    names.sort();
    names.dedup();
    names
}
