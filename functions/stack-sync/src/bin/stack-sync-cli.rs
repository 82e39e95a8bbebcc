//! `stack-sync-cli`: the same sync after `sam deploy` (see [`encache_stack_sync::cli`]).

use std::process::ExitCode;

use clap::Parser;
use encache_shared::aws;
use encache_stack_sync::{Clients, cli};

#[tokio::main]
async fn main() -> ExitCode {
    // No log subscriber: stdout carries the plan, and every problem is in it.
    let args = cli::Args::parse();
    let clients = Clients::from_sdk(&aws::sdk_config().await);
    match cli::run(&args, &clients).await {
        Ok(report) => {
            println!("{report}");
            ExitCode::from(cli::exit_code(&report))
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
