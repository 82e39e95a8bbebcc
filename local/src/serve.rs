//! `encache-local start`: every function, the HTTP API and the event sources, until Ctrl-C.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use crate::gateway::{self, Gateway, GatewaySettings};
use crate::runtime::Runtime;
use crate::stack::Stack;

pub struct StartOptions {
    pub addr: String,
    pub gateway: GatewaySettings,
    /// Poll the emulator's queues for bucket notifications (needs AWS_ENDPOINT_URL).
    pub event_sources: bool,
}

/// A running stack: what tests start in-process and `start` runs until a signal.
pub struct Running {
    pub runtime: Arc<Runtime>,
    pub gateway: Arc<Gateway>,
    pub url: String,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    pub async fn stop(self) {
        for t in &self.tasks {
            t.abort();
        }
        self.runtime.shutdown().await;
    }
}

pub async fn start(stack: &Stack, options: &StartOptions) -> anyhow::Result<Running> {
    let runtime = Arc::new(Runtime::new(stack.function_specs()?));
    let gateway = Arc::new(Gateway::from_stack(
        stack,
        &options.gateway,
        runtime.clone(),
    )?);
    let listener = tokio::net::TcpListener::bind(&options.addr)
        .await
        .with_context(|| format!("listening on {}", options.addr))?;
    let url = format!("http://{}", listener.local_addr()?);
    let mut tasks = Vec::new();
    let gw = gateway.clone();
    tasks.push(tokio::spawn(async move {
        if let Err(e) = gateway::serve(listener, gw).await {
            eprintln!("error: {e:#}");
        }
    }));
    if options.event_sources {
        tasks.extend(crate::events::start(stack, runtime.clone()).await?);
        tasks.extend(crate::events::start_schedules(stack, runtime.clone())?);
    }
    Ok(Running {
        runtime,
        gateway,
        url,
        tasks,
    })
}

pub async fn run(stack: &Stack, options: &StartOptions) -> anyhow::Result<ExitCode> {
    let running = start(stack, options).await?;
    for r in &running.gateway.routes {
        let auth = if r.authorizer.is_some() {
            "JWT"
        } else {
            "open"
        };
        eprintln!("  {:<40} -> {} ({auth})", r.route_key(), r.function);
    }
    println!("encache API listening on {}", running.url);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    eprintln!("==> stopping");
    running.stop().await;
    Ok(ExitCode::SUCCESS)
}
