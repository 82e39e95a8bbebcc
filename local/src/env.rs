//! Function environments the way `sam local --env-vars` builds them.
//!
//! `sam-env.local.json` is a valid SAM env-vars file: `Parameters` applies to every
//! function, `"<LogicalId>": {...}` to one, and only variables the template declares are
//! set. Keys of `Parameters` that name template parameters also give those parameters
//! their local value (SAM ignores them, so the file stays valid for SAM).
//! `sam-container-env.local.json` (SAM's `--container-env-vars`) is added to the process
//! as is, declared or not.
//!
//! One explicit exception, local only: [`LOCAL_SECRET_OVERRIDES`]. The deployed template
//! never declares a variable that would bypass SSM (an empty `DATABASE_URL` there could be
//! set on the console and skip the password parameter), so the secrets' local values
//! (`DATABASE_URL`, `CURSOR_SIGNING_KEY`) are taken from the env file for exactly the
//! functions that declare the SSM name they stand in for, and nowhere else.

use std::collections::{BTreeMap, HashMap};
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

/// Variables only a local env file may set, each for the functions declaring the
/// variable that names its SSM SecureString in AWS: (local value, SSM name variable).
/// Never in `template.yaml`; the functions read the value when set, SSM otherwise.
pub const LOCAL_SECRET_OVERRIDES: &[(&str, &str)] = &[
    ("DATABASE_URL", "DB_PASSWORD_PARAMETER"),
    ("CURSOR_SIGNING_KEY", "CURSOR_KEY_PARAMETER"),
];

/// Whether `name` is one of [`LOCAL_SECRET_OVERRIDES`]' local-only variables.
pub fn is_local_secret_override(name: &str) -> bool {
    LOCAL_SECRET_OVERRIDES.iter().any(|(v, _)| *v == name)
}

/// Whether `function` takes the local-only variable `name` (it declares its SSM name).
pub fn takes_local_secret_override(function: &FunctionDef, name: &str) -> bool {
    LOCAL_SECRET_OVERRIDES
        .iter()
        .any(|(v, ssm_name)| *v == name && function.environment.contains_key(*ssm_name))
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

/// The variables the template declares for `function`, with local values applied, plus
/// the [`LOCAL_SECRET_OVERRIDES`] the env file sets for it.
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
    for (local_only, _) in LOCAL_SECRET_OVERRIDES {
        if !takes_local_secret_override(function, local_only) {
            continue;
        }
        let value = own
            .and_then(|vars| vars.get(*local_only))
            .or_else(|| env.parameters.get(*local_only));
        if let Some(v) = value {
            out.insert((*local_only).to_owned(), v.clone());
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
