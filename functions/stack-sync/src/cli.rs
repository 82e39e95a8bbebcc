//! `stack-sync-cli --stack NAME --env ENV [--dry-run]`: the same sync after `sam deploy`.

use clap::Parser;

use crate::contract::Contract;
use crate::settings::check_env_name;
use crate::store::Clients;
use crate::sync::{Mode, Report, sync_stack};

/// Copy a CloudFormation stack's outputs into SSM under /encache/{env}/stack/.
#[derive(Debug, Clone, Parser, PartialEq, Eq)]
#[command(name = "stack-sync-cli")]
pub struct Args {
    /// The CloudFormation stack whose outputs are copied (e.g. encache-dev).
    #[arg(long)]
    pub stack: String,
    /// The environment: parameters go under /encache/{env}/stack/.
    #[arg(long, value_parser = parse_env)]
    pub env: String,
    /// Print the plan (create / update / delete / unchanged) and write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

fn parse_env(raw: &str) -> Result<String, String> {
    check_env_name(raw).map(|()| raw.to_owned())
}

/// Runs the sync and returns the report (printed by the binary); `Err` when the stack or
/// the parameters could not be read.
pub async fn run(args: &Args, clients: &Clients) -> anyhow::Result<Report> {
    let contract = Contract::load()?;
    let mode = if args.dry_run {
        Mode::DryRun
    } else {
        Mode::Apply
    };
    sync_stack(clients, &contract, &args.stack, &args.env, mode).await
}

/// The process exit code for a report: 0 when everything synced (or would), 1 otherwise.
pub fn exit_code(report: &Report) -> u8 {
    if report.is_clean() { 0 } else { 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flags_parse_and_dry_run_defaults_to_off() {
        let args =
            Args::try_parse_from(["stack-sync-cli", "--stack", "encache-dev", "--env", "dev"])
                .unwrap();
        assert_eq!(
            args,
            Args {
                stack: "encache-dev".into(),
                env: "dev".into(),
                dry_run: false
            }
        );
        let args =
            Args::try_parse_from(["x", "--dry-run", "--env", "prod", "--stack", "s"]).unwrap();
        assert!(args.dry_run);
    }

    #[test]
    fn a_missing_stack_or_an_env_that_cannot_be_a_path_level_is_a_usage_error() {
        assert!(Args::try_parse_from(["x", "--env", "dev"]).is_err());
        assert!(Args::try_parse_from(["x", "--stack", "s", "--env", "de/v"]).is_err());
    }
}
