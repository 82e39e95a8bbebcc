//! The AWS services a local run stands in for, each as its own emulator: the Lambda
//! Runtime API ([`runtime`]), the HTTP API with its JWT authorizer ([`gateway`]), the
//! event sources ([`event_sources`]), the Cognito sign-up and sign-in flow ([`cognito`])
//! CloudFormation's custom resources and stack ([`cloudformation`]), CodeDeploy's
//! PreTraffic hooks ([`codedeploy`]) and the template's DynamoDB tables ([`dynamodb`]).
//!
//! [`start`] runs the runtime, the gateway and the event sources of a stack together:
//! what `encache-local start` runs until a signal and what tests start in-process.

pub mod cloudformation;
pub mod codedeploy;
pub mod cognito;
pub mod dynamodb;
pub mod event_sources;
pub mod gateway;
pub mod kms;
pub mod runtime;

use std::sync::Arc;

use anyhow::Context;

use crate::stack::Stack;
use gateway::{Gateway, GatewaySettings, GatewaySlot};
use runtime::Runtime;

pub struct StartOptions {
    pub addr: String,
    pub gateway: GatewaySettings,
    /// Poll the emulator's queues for bucket notifications (needs AWS_ENDPOINT_URL).
    pub event_sources: bool,
}

/// A running stack: what tests start in-process and `start` runs until a signal.
pub struct Running {
    pub runtime: Arc<Runtime>,
    /// The gateway the HTTP API serves (`start --watch` replaces it when the template
    /// changes).
    pub gateway: Arc<GatewaySlot>,
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
    let gateway = GatewaySlot::new(Arc::new(Gateway::from_stack(
        stack,
        &options.gateway,
        runtime.clone(),
    )?));
    let listener = tokio::net::TcpListener::bind(&options.addr)
        .await
        .with_context(|| format!("listening on {}", options.addr))?;
    let url = format!("http://{}", listener.local_addr()?);
    let mut tasks = Vec::new();
    let gw = gateway.clone();
    tasks.push(tokio::spawn(async move {
        if let Err(e) = gateway::serve_slot(listener, gw).await {
            eprintln!("error: {e:#}");
        }
    }));
    if options.event_sources {
        tasks.extend(event_sources::start(stack, runtime.clone()).await?);
    }
    Ok(Running {
        runtime,
        gateway,
        url,
        tasks,
    })
}
