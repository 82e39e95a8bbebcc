//! `encache-local drift`: the drift between the local example env files, `samconfig.toml`
//! and the template (names the files use that the template lacks, template needs they
//! leave unset).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::env::{EnvFile, declared_env, is_local_secret_override, takes_local_secret_override};
use crate::stack::Config;
use crate::template::{Resolver, Template};

#[derive(Debug, Args)]
pub struct DriftArgs {
    #[arg(long, default_value = "sam-env.local.example.json")]
    pub env_example: PathBuf,
    #[arg(long, default_value = "sam-container-env.local.example.json")]
    pub container_example: PathBuf,
    #[arg(long, default_value = "samconfig.toml")]
    pub samconfig: PathBuf,
}

/// Prints the drift; fails when there is any.
pub fn run(config: &Config, args: &DriftArgs) -> anyhow::Result<ExitCode> {
    let template = Template::load(&config.template)?;
    let sam_env = EnvFile::load(&args.env_example)?;
    let container = EnvFile::load(&args.container_example)?;
    let samconfig = if args.samconfig.exists() {
        Some(std::fs::read_to_string(&args.samconfig).context("reading samconfig.toml")?)
    } else {
        None
    };
    let drift = drift(&template, &sam_env, &container, samconfig.as_deref());
    print!("{drift}");
    Ok(if drift.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
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
        if !template.parameters.contains_key(key)
            && !declared.contains(key.as_str())
            && !is_local_secret_override(key)
        {
            drift.unknown.push(format!(
                "sam-env.local.example.json: Parameters.{key} is neither a template parameter nor a variable any function declares (nor a local-only secret override)"
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
            if !f.environment.contains_key(var) && !takes_local_secret_override(f, var) {
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
