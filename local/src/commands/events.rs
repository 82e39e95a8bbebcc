//! `encache-local events put FILE`: an event on the local stack's default bus, as
//! `aws events put-events` puts one; the running `encache-local start` delivers it to
//! every function whose rule matches. Prints the rules it matches.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::emulators::event_sources::eventbridge;
use crate::stack::Stack;

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Put the event in FILE (JSON: at least `source`, `detail-type`, `detail`; "-" reads
    /// stdin) on the bus; missing `id`, `time`, `account`, `region` are filled in.
    Put(PutArgs),
}

#[derive(Debug, Args)]
pub struct PutArgs {
    pub file: PathBuf,
}

pub async fn run(stack: &Stack, command: EventsCommand) -> anyhow::Result<ExitCode> {
    let EventsCommand::Put(args) = command;
    let text = if args.file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).context("reading stdin")?;
        s
    } else {
        std::fs::read_to_string(&args.file)
            .with_context(|| format!("reading {}", args.file.display()))?
    };
    let event: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not JSON", args.file.display()))?;
    let sdk = encache_shared::aws::sdk_config().await;
    let (event, matched) = eventbridge::put(stack, &sdk, event).await?;
    let id = event["id"].as_str().unwrap_or_default();
    if matched.is_empty() {
        println!("event {id}: matched no rule");
    }
    for rule in &matched {
        println!("event {id}: matched {}", rule.name());
    }
    eprintln!(
        "==> put on the local bus (queue {}): the running `encache-local start` delivers it",
        eventbridge::bus_queue_name(&stack.config.stack_name)
    );
    Ok(ExitCode::SUCCESS)
}
