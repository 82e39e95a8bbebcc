//! The command line: the global flags, one module per command (its flags and what it
//! does), and the dispatch between them.

pub mod bench;
pub mod build;
pub mod drift;
pub mod events;
pub mod invoke;
pub mod provision;
pub mod setup;
pub mod start;
pub mod user;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::stack::{Config, Stack};

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
    Invoke(invoke::InvokeArgs),
    /// Build every binary the template names.
    Build,
    /// Run every function behind the HTTP API, with the event sources, until Ctrl-C.
    Start(start::StartArgs),
    /// First run: create a Cognito pool + app client in the emulator and write the local
    /// env files from the examples (`provision` creates the rest on every start).
    Init(setup::InitArgs),
    /// Point the local env file at the running services; fail if its user pool is gone.
    SyncEnv,
    /// Provision what the template declares in the emulator (buckets, notifications, SSM),
    /// run its custom resources (the database migrations, through MigrateFunction as in a
    /// deploy) and put the stack itself there, carrying the template's outputs.
    Provision(provision::ProvisionArgs),
    /// Measure cold starts, memory and the gateway (numbers for docs/benchmarks.md).
    Bench(bench::BenchArgs),
    /// Local Cognito users.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Report drift between the local example files, samconfig.toml and the template.
    Drift(drift::DriftArgs),
    /// The local EventBridge bus: put an event for the rules of the running stack.
    #[command(subcommand)]
    Events(events::EventsCommand),
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = cli.global.config();
    match cli.command {
        Command::Invoke(args) => invoke::run(&Stack::open(config).await?, &args).await,
        Command::Build => {
            build::run(&Stack::open(config).await?, cli.global.release)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Start(args) => {
            start::run(&Stack::open(config).await?, args, cli.global.release).await
        }
        Command::Init(args) => {
            let stack = Stack::open(config).await?;
            setup::init(&stack, &args.env_example, &args.container_example).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::SyncEnv => {
            setup::sync_env(&Stack::open(config).await?).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Provision(args) => provision::run(&Stack::open(config).await?, &args).await,
        Command::Bench(args) => bench::run(&Stack::open(config).await?, &args).await,
        Command::User(command) => user::run(&Stack::open(config).await?, command).await,
        Command::Events(command) => events::run(&Stack::open(config).await?, command).await,
        // Drift reads the template and the example files only, not the local stack.
        Command::Drift(args) => drift::run(&config, &args),
    }
}
