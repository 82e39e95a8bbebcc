//! `encache-local start`: every function, the HTTP API and the event sources, until Ctrl-C
//! or SIGTERM; with `--watch`, a saved change is rebuilt and served without a restart
//! ([`crate::watch`]).

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::emulators::gateway::GatewaySettings;
use crate::emulators::{self, StartOptions};
use crate::stack::Stack;

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Address of the HTTP API.
    #[arg(long, default_value = "127.0.0.1:3000", env = "ENCACHE_API_ADDR")]
    pub addr: String,
    /// JWKS of the authorizer [default: the emulator's for a Cognito issuer].
    #[arg(long, env = "ENCACHE_JWKS_URL")]
    pub jwks_url: Option<String>,
    /// Issuer tokens must carry [default: the template's, resolved locally].
    #[arg(long, env = "ENCACHE_JWT_ISSUER")]
    pub issuer: Option<String>,
    /// Do not provision or poll event sources in the emulator.
    #[arg(long)]
    pub no_events: bool,
    /// Reload on save: a change to a function's crate or to a crate it uses rebuilds
    /// only the binaries it affects and replaces only their processes; a change to the
    /// template or the env files re-reads routes, functions and variables.
    #[arg(long)]
    pub watch: bool,
}

pub async fn run(stack: &Stack, args: StartArgs, release: bool) -> anyhow::Result<ExitCode> {
    let options = StartOptions {
        addr: args.addr,
        gateway: GatewaySettings {
            jwks_url: args.jwks_url,
            issuer: args.issuer,
        },
        event_sources: !args.no_events,
    };
    let running = emulators::start(stack, &options).await?;
    for r in &running.gateway.current().routes {
        let auth = if r.authorizer.is_some() {
            "JWT"
        } else {
            "open"
        };
        eprintln!("  {:<40} -> {} ({auth})", r.route_key(), r.function);
    }
    for gap in stack.template.not_emulated() {
        eprintln!("==> not emulated: {gap}");
    }
    let watch = if args.watch {
        Some(
            crate::watch::spawn(
                stack.config.clone(),
                crate::watch::WatchOptions::new(options.gateway.clone(), release),
                running.runtime.clone(),
                running.gateway.clone(),
            )
            .await?,
        )
    } else {
        None
    };
    println!("encache API listening on {}", running.url);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    eprintln!("==> stopping");
    if let Some(w) = watch {
        w.abort();
    }
    running.stop().await;
    Ok(ExitCode::SUCCESS)
}
