//! The local stack: the template plus the local env files, turned into runnable functions.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::emulators::runtime::FunctionSpec;
use crate::env::{self, EnvFile, UnsetVariable};
use crate::template::{Resolver, Template};

/// Where things are and how to run them; built from the command line.
#[derive(Debug, Clone)]
pub struct Config {
    pub template: PathBuf,
    pub env_vars: PathBuf,
    pub container_env_vars: PathBuf,
    /// Folder holding the built binaries (`<target>/debug` or `<target>/release`).
    pub bin_dir: PathBuf,
    pub max_instances: usize,
    pub region: String,
    /// The emulator endpoint injected into every function as `AWS_ENDPOINT_URL`.
    pub endpoint: Option<String>,
    /// What `AWS::StackName` is locally; prefixes generated names (buckets, queues).
    pub stack_name: String,
    /// Deploy-time parameters (`sam deploy --parameter-overrides` form): when set, the
    /// template's parameters come from these, their defaults and SSM, as in a real
    /// deploy, and the local env files are not read.
    pub parameter_overrides: Option<String>,
}

impl Config {
    /// Defaults for a project folder: `template.yaml`, `sam-env.local.json`, ... in `root`.
    pub fn for_root(root: &Path, bin_dir: PathBuf) -> Self {
        Self {
            template: root.join("template.yaml"),
            env_vars: root.join("sam-env.local.json"),
            container_env_vars: root.join("sam-container-env.local.json"),
            bin_dir,
            max_instances: 4,
            region: std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into()),
            endpoint: encache_shared::aws::endpoint_override(),
            stack_name: "encache-local".into(),
            parameter_overrides: None,
        }
    }

    /// `sam-env.local.json` and `sam-container-env.local.json` in `dir` (a scratch folder).
    pub fn env_files_in(mut self, dir: &Path) -> Self {
        self.env_vars = dir.join("sam-env.local.json");
        self.container_env_vars = dir.join("sam-container-env.local.json");
        self
    }

    /// `<CARGO_TARGET_DIR or ./target>/<debug|release>`.
    pub fn default_bin_dir(release: bool) -> PathBuf {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("target"));
        target.join(if release { "release" } else { "debug" })
    }
}

pub struct Stack {
    pub config: Config,
    pub template: Template,
    pub env: EnvFile,
    pub container: EnvFile,
    /// The template parameters' values (from the env file, or from the deploy).
    pub parameters: HashMap<String, String>,
}

impl Stack {
    /// The stack with the local env files' values (the local stack, tests).
    pub fn load(config: Config) -> anyhow::Result<Self> {
        let template = Template::load(&config.template)?;
        let env = EnvFile::load_optional(&config.env_vars)?;
        let container = EnvFile::load_optional(&config.container_env_vars)?;
        let parameters = env.parameter_values(&template);
        Ok(Self {
            config,
            template,
            env,
            container,
            parameters,
        })
    }

    /// [`Stack::load`], or, with `parameter_overrides`, the stack as a deploy configures
    /// it: parameters from the overrides, defaults and SSM, no local env files.
    pub async fn open(config: Config) -> anyhow::Result<Self> {
        let Some(overrides) = config.parameter_overrides.clone() else {
            return Self::load(config);
        };
        let template = Template::load(&config.template)?;
        let sdk = encache_shared::aws::sdk_config().await;
        let parameters = crate::deployed::parameter_values(
            &template,
            &crate::deployed::parse_overrides(&overrides)?,
            &aws_sdk_ssm::Client::new(&sdk),
        )
        .await?;
        Ok(Self {
            config,
            template,
            env: EnvFile::default(),
            container: EnvFile::default(),
            parameters,
        })
    }

    /// True when the parameters come from a deploy (SSM), not the local env files.
    pub fn is_deployed(&self) -> bool {
        self.config.parameter_overrides.is_some()
    }

    pub fn resolver(&self) -> Resolver<'_> {
        let mut r = Resolver::new(&self.template, self.parameters.clone());
        r.region = self.config.region.clone();
        r.endpoint = self.config.endpoint.clone();
        r.stack_name = self.config.stack_name.clone();
        r
    }

    /// The template's functions whose `Condition` (if any) holds locally.
    pub fn functions(&self) -> anyhow::Result<Vec<&crate::template::FunctionDef>> {
        let resolver = self.resolver();
        let mut out = Vec::new();
        for f in self.template.functions.values() {
            let enabled = match &f.condition {
                None => true,
                Some(c) => resolver
                    .condition(c)
                    .with_context(|| format!("{}: condition {c}", f.logical_id))?,
            };
            if enabled {
                out.push(f);
            }
        }
        Ok(out)
    }

    /// One function, ready to run; an error names every variable left without a value.
    pub fn function_spec(&self, logical_id: &str) -> anyhow::Result<FunctionSpec> {
        self.spec(logical_id).map_err(|e| match e {
            SpecError::Unset(unset) => anyhow::anyhow!(unset_message(&unset)),
            SpecError::Other(e) => e,
        })
    }

    /// Every function of the template, ready to run; fails listing all unset variables.
    pub fn function_specs(&self) -> anyhow::Result<Vec<FunctionSpec>> {
        let mut specs = Vec::new();
        let mut unset = Vec::new();
        for f in self.functions()? {
            match self.spec(&f.logical_id) {
                Ok(s) => specs.push(s),
                Err(SpecError::Unset(u)) => unset.extend(u),
                Err(SpecError::Other(e)) => return Err(e),
            }
        }
        if !unset.is_empty() {
            bail!(unset_message(&unset));
        }
        Ok(specs)
    }

    fn spec(&self, logical_id: &str) -> Result<FunctionSpec, SpecError> {
        let f = self
            .template
            .function(logical_id)
            .map_err(SpecError::Other)?;
        let resolver = self.resolver();
        let declared = env::declared_env(f, &resolver, &self.env).map_err(SpecError::Unset)?;
        let optional = |v: &Option<serde_yaml::Value>| -> Option<String> {
            v.as_ref().and_then(|v| resolver.string(v).ok())
        };
        let name = f.logical_id.clone();
        let region = self.config.region.clone();
        let mut process = BTreeMap::new();
        let mut set = |k: &str, v: String| {
            process.insert(k.to_owned(), v);
        };
        set(
            "PATH",
            std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()),
        );
        set("LANG", "C.UTF-8".into());
        set("TZ", ":UTC".into());
        set("AWS_LAMBDA_FUNCTION_NAME", name.clone());
        set("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into());
        set("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", f.memory_mb.to_string());
        set("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"));
        set(
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "local/[$LATEST]encache-local".into(),
        );
        set("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into());
        set("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023".into());
        set("_HANDLER", "bootstrap".into());
        set(
            "LAMBDA_TASK_ROOT",
            self.config.bin_dir.display().to_string(),
        );
        set(
            "LAMBDA_RUNTIME_DIR",
            self.config.bin_dir.display().to_string(),
        );
        set("AWS_REGION", region.clone());
        set("AWS_DEFAULT_REGION", region.clone());
        if let Some(fmt) = optional(&f.log_format) {
            set("AWS_LAMBDA_LOG_FORMAT", fmt);
        }
        if let Some(level) = optional(&f.log_level) {
            set("AWS_LAMBDA_LOG_LEVEL", level);
        }
        // Like SAM, the runtime hands every function credentials; locally they are the
        // emulator's fake ones, and the emulator's endpoint (which no template declares).
        for (k, default) in [
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_SESSION_TOKEN", "test"),
        ] {
            set(k, std::env::var(k).unwrap_or_else(|_| default.into()));
        }
        if let Some(endpoint) = &self.config.endpoint {
            set("AWS_ENDPOINT_URL", endpoint.clone());
        }
        // The local database's CA (scripts/dev-services.sh exports it): a function verifies
        // the server's certificate here as it verifies RDS's in AWS, against this CA in
        // place of the RDS CAs it embeds. No template declares it.
        if let Ok(ca) = std::env::var("PGSSLROOTCERT") {
            set("PGSSLROOTCERT", ca);
        }
        process.extend(declared);
        process.extend(env::container_env(&name, &self.container));
        Ok(FunctionSpec {
            binary_path: self.config.bin_dir.join(&f.binary),
            env: process,
            timeout: Duration::from_secs(f.timeout_secs.max(1)),
            memory_mb: f.memory_mb,
            // What `!GetAtt <id>.Arn` gives the template's outputs and policies, too.
            function_arn: resolver
                .function_arn(&name)
                .map_err(|e| SpecError::Other(e.into()))?,
            max_instances: self.config.max_instances,
            logical_id: name,
        })
    }
}

enum SpecError {
    Unset(Vec<UnsetVariable>),
    Other(anyhow::Error),
}

fn unset_message(unset: &[UnsetVariable]) -> String {
    let lines: Vec<String> = unset.iter().map(|u| format!("  {u}")).collect();
    format!(
        "{} template variable(s) have no local value:\n{}",
        unset.len(),
        lines.join("\n")
    )
}
