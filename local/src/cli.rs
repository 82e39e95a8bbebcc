//! The command line: parsing and dispatch into the modules that do the work.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::gateway::GatewaySettings;
use crate::serve::StartOptions;
use crate::stack::{Config, Stack};
use crate::users::Pool;
use crate::{bench, env, invoke, serve, setup, users};

#[derive(Debug, Parser)]
#[command(
    name = "encache-local",
    about = "Run encache's template.yaml stack on this machine"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// The SAM template.
    #[arg(
        long,
        global = true,
        default_value = "template.yaml",
        env = "ENCACHE_TEMPLATE"
    )]
    pub template: PathBuf,
    /// SAM `--env-vars` file with the local values.
    #[arg(
        long,
        global = true,
        default_value = "sam-env.local.json",
        env = "ENCACHE_ENV_VARS"
    )]
    pub env_vars: PathBuf,
    /// SAM `--container-env-vars` file, added to every process as is.
    #[arg(
        long,
        global = true,
        default_value = "sam-container-env.local.json",
        env = "ENCACHE_CONTAINER_ENV_VARS"
    )]
    pub container_env_vars: PathBuf,
    /// Folder with the built binaries [default: $CARGO_TARGET_DIR/debug or target/debug].
    #[arg(long, global = true, env = "ENCACHE_BIN_DIR")]
    pub bin_dir: Option<PathBuf>,
    /// Use release binaries (and build them with --release).
    #[arg(long, global = true)]
    pub release: bool,
    /// Most processes one function may run at once.
    #[arg(long, global = true, default_value_t = 4)]
    pub max_instances: usize,
    /// What `AWS::StackName` is locally: names the emulator's stack, buckets and queues.
    /// The samples in events/ name `encache-local`; give two stacks sharing one emulator
    /// different names.
    #[arg(
        long,
        global = true,
        default_value = "encache-local",
        env = "ENCACHE_STACK_NAME"
    )]
    pub stack_name: String,
    /// Configure the stack as a deploy does: these `sam deploy --parameter-overrides`
    /// (`Key=Value ...`), the template's defaults, and every SSM-typed parameter read from
    /// SSM; the local env files are not read (`scripts/deploy.sh rehearsal`).
    #[arg(long, global = true, env = "ENCACHE_PARAMETER_OVERRIDES")]
    pub parameter_overrides: Option<String>,
}

impl Global {
    pub fn config(&self) -> Config {
        let bin_dir = self
            .bin_dir
            .clone()
            .unwrap_or_else(|| Config::default_bin_dir(self.release));
        let mut config = Config::for_root(std::path::Path::new("."), bin_dir);
        config.template = self.template.clone();
        config.env_vars = self.env_vars.clone();
        config.container_env_vars = self.container_env_vars.clone();
        config.max_instances = self.max_instances;
        config.stack_name = self.stack_name.clone();
        config.parameter_overrides = self.parameter_overrides.clone();
        config
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Invoke one function with an event file and print its response (like `sam local invoke`).
    Invoke {
        logical_id: String,
        /// Event JSON file ("-" reads stdin); an empty object when absent.
        #[arg(long, short)]
        event: Option<PathBuf>,
    },
    /// Build every binary the template names.
    Build,
    /// Run every function behind the HTTP API, with the event sources, until Ctrl-C.
    Start {
        /// Address of the HTTP API.
        #[arg(long, default_value = "127.0.0.1:3000", env = "ENCACHE_API_ADDR")]
        addr: String,
        /// JWKS of the authorizer [default: the emulator's for a Cognito issuer].
        #[arg(long, env = "ENCACHE_JWKS_URL")]
        jwks_url: Option<String>,
        /// Issuer tokens must carry [default: the template's, resolved locally].
        #[arg(long, env = "ENCACHE_JWT_ISSUER")]
        issuer: Option<String>,
        /// Do not provision or poll event sources in the emulator.
        #[arg(long)]
        no_events: bool,
    },
    /// Apply the database migrations (DATABASE_URL, or the env file's).
    Migrate,
    /// First run: create a Cognito pool + app client in the emulator and write the local
    /// env files from the examples (`provision` creates the rest on every start).
    Init {
        #[arg(long, default_value = "sam-env.local.example.json")]
        env_example: PathBuf,
        #[arg(long, default_value = "sam-container-env.local.example.json")]
        container_example: PathBuf,
    },
    /// Point the local env file at the running services; fail if its user pool is gone.
    SyncEnv,
    /// Provision what the template declares in the emulator (buckets, notifications, SSM)
    /// and the stack itself, carrying the template's outputs.
    Provision {
        /// The API's URL, published as the outputs built from the HTTP API's id (`ApiUrl`).
        #[arg(long, default_value = "http://127.0.0.1:3000", env = "ENCACHE_API_URL")]
        api_url: String,
        /// Do not run the template's custom resources (the database migrations).
        #[arg(long)]
        no_custom_resources: bool,
    },
    /// Measure cold starts, memory and the gateway (numbers for docs/benchmarks.md).
    Bench {
        #[arg(long, default_value_t = 5)]
        cold_runs: usize,
        #[arg(long, default_value_t = 1000)]
        warm: usize,
        #[arg(long, default_value_t = 2000)]
        requests: usize,
        /// Also measure this URL serving the hello-world function (e.g. `cargo lambda
        /// watch`'s `http://127.0.0.1:9000/lambda-url/encache-local-fixture-fn/hello`).
        #[arg(long)]
        compare_url: Option<String>,
    },
    /// Local Cognito users.
    #[command(subcommand)]
    User(UserCommand),
    /// Report drift between the local example files, samconfig.toml and the template.
    Drift {
        #[arg(long, default_value = "sam-env.local.example.json")]
        env_example: PathBuf,
        #[arg(long, default_value = "sam-container-env.local.example.json")]
        container_example: PathBuf,
        #[arg(long, default_value = "samconfig.toml")]
        samconfig: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Sign a user up as Cognito would (pre-sign-up, create + confirm, post-confirmation).
    Create {
        email: String,
        #[arg(long)]
        password: String,
        /// Fail unless every trigger is wired to the pool (a deploy's smoke test).
        #[arg(long)]
        require_wired_triggers: bool,
    },
    /// Delete a user from the pool (its data goes with `DELETE /v1/me`).
    Delete { email: String },
    /// Print an ID token for the user that the local HTTP API accepts.
    Token {
        email: String,
        #[arg(long)]
        password: String,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = cli.global.config();
    match cli.command {
        Command::Invoke { logical_id, event } => {
            let stack = Stack::open(config).await?;
            invoke::run(&stack, &logical_id, event.as_deref()).await
        }
        Command::Start {
            addr,
            jwks_url,
            issuer,
            no_events,
        } => {
            let stack = Stack::open(config).await?;
            let options = StartOptions {
                addr,
                gateway: GatewaySettings { jwks_url, issuer },
                event_sources: !no_events,
            };
            serve::run(&stack, &options).await
        }
        Command::Migrate => {
            setup::migrate(&Stack::open(config).await?).await?;
            eprintln!("==> migrations applied");
            Ok(ExitCode::SUCCESS)
        }
        Command::Init {
            env_example,
            container_example,
        } => {
            let stack = Stack::open(config).await?;
            setup::init(&stack, &env_example, &container_example).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            cold_runs,
            warm,
            requests,
            compare_url,
        } => {
            let stack = Stack::open(config).await?;
            let options = bench::BenchOptions {
                cold_runs,
                warm,
                requests,
                compare_url,
            };
            bench::run(&stack, &options).await
        }
        Command::SyncEnv => {
            setup::sync_env(&Stack::open(config).await?).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Provision {
            api_url,
            no_custom_resources,
        } => {
            let stack = Stack::open(config).await?;
            let sdk = encache_shared::aws::sdk_config().await;
            let subs = crate::provision::s3(&stack, &sdk).await?;
            // A deploy's parameters were written by Terraform; the local ones come from
            // the env file.
            let n = if stack.is_deployed() {
                0
            } else {
                crate::provision::ssm_parameters(&stack, &sdk).await?
            };
            let exists = crate::provision::stack_exists(&stack, &sdk).await?;
            if !no_custom_resources {
                crate::custom_resources::run_all(&stack, exists).await?;
            }
            let outputs = crate::provision::local_outputs(&stack, &api_url)?;
            for (key, why) in &outputs.skipped {
                eprintln!("warning: output {key} is left out of the local stack: {why}");
            }
            let stack_id =
                crate::provision::cloudformation_stack(&stack, &sdk, &outputs, exists).await?;
            eprintln!(
                "==> provisioned {} bucket notification(s), {n} SSM parameter(s), stack {stack_id} \
                 with {} output(s)",
                subs.len(),
                outputs.values.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::User(UserCommand::Create {
            email,
            password,
            require_wired_triggers,
        }) => {
            let stack = Stack::open(config).await?;
            let pool = Pool::from_stack(&stack)?;
            users::create_checked(&stack, &pool, &email, &password, require_wired_triggers).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::User(UserCommand::Token { email, password }) => {
            let stack = Stack::open(config).await?;
            let pool = Pool::from_stack(&stack)?;
            println!(
                "{}",
                users::token_checked(&stack, &pool, &email, &password).await?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::User(UserCommand::Delete { email }) => {
            let stack = Stack::open(config).await?;
            users::delete(&Pool::from_stack(&stack)?, &email).await?;
            eprintln!("==> deleted {email}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Build => {
            Stack::open(config).await?.build(cli.global.release)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Drift {
            env_example,
            container_example,
            samconfig,
        } => {
            let template = crate::template::Template::load(&config.template)?;
            let sam_env = env::EnvFile::load(&env_example)?;
            let container = env::EnvFile::load(&container_example)?;
            let samconfig = if samconfig.exists() {
                Some(std::fs::read_to_string(&samconfig).context("reading samconfig.toml")?)
            } else {
                None
            };
            let drift = env::drift(&template, &sam_env, &container, samconfig.as_deref());
            print!("{drift}");
            Ok(if drift.is_clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
