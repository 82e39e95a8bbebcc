//! CloudFormation custom resources backed by a function of the stack (the database
//! schema's `DatabaseSchema` → `MigrateFunction`), run as CloudFormation runs them during
//! a deploy: the function gets the real request (`RequestType`, `ResourceProperties`, a
//! `ResponseURL`), and its answer is the JSON it PUTs to that URL, here a listener on
//! loopback. A `FAILED` answer stops the local deploy as it rolls back a real one.

use std::time::Duration;

use anyhow::{Context, bail};
use aws_lambda_events::event::cloudformation::{
    CloudFormationCustomResourceResponse, CloudFormationCustomResourceResponseStatus,
};
use axum::body::Bytes;
use serde_json::{Value as Json, json};
use tokio::sync::mpsc;

use crate::emulators::runtime::Runtime;
use crate::stack::Stack;

/// One custom resource of the template and the function its `ServiceToken` names.
#[derive(Debug, Clone)]
pub struct CustomResource {
    pub logical_id: String,
    pub resource_type: String,
    pub function: String,
    /// `Properties`, resolved, every scalar a string (as CloudFormation sends them).
    pub properties: Json,
}

/// Every custom resource whose condition holds, with its function.
pub fn custom_resources(stack: &Stack) -> anyhow::Result<Vec<CustomResource>> {
    let resolver = stack.resolver();
    let functions = stack.functions()?;
    let mut out = Vec::new();
    for (id, res) in &stack.template.resources {
        if res.kind != "AWS::CloudFormation::CustomResource" && !res.kind.starts_with("Custom::") {
            continue;
        }
        if let Some(c) = &res.condition
            && !resolver.condition(c)?
        {
            continue;
        }
        let mut properties = serde_json::Map::new();
        for (k, v) in &res.properties {
            let Some(k) = k.as_str() else { continue };
            let v = resolver
                .resolve(v)
                .with_context(|| format!("{id}.{k} has no local value"))?;
            properties.insert(k.to_owned(), stringify(v));
        }
        let token = properties
            .get("ServiceToken")
            .and_then(Json::as_str)
            .with_context(|| format!("custom resource {id} has no ServiceToken"))?
            .to_owned();
        let function = functions
            .iter()
            .find(|f| resolver.names_function(&f.logical_id, &token))
            .with_context(|| {
                format!(
                    "custom resource {id}: its ServiceToken {token} is no function of this stack"
                )
            })?
            .logical_id
            .clone();
        out.push(CustomResource {
            logical_id: id.clone(),
            resource_type: res.kind.clone(),
            function,
            properties: Json::Object(properties),
        });
    }
    Ok(out)
}

/// CloudFormation hands custom resources every scalar as a string.
fn stringify(v: Json) -> Json {
    match v {
        Json::Array(items) => Json::Array(items.into_iter().map(stringify).collect()),
        Json::Object(m) => Json::Object(m.into_iter().map(|(k, v)| (k, stringify(v))).collect()),
        Json::String(s) => Json::String(s),
        Json::Null => Json::Null,
        other => Json::String(other.to_string()),
    }
}

/// Runs every custom resource (`Create` for a new stack, else `Update`), one after the
/// other, and returns each one's `Data`. The first `FAILED` answer is an error naming the
/// resource, its function and its `Reason`.
pub async fn run_all(
    stack: &Stack,
    stack_exists: bool,
) -> anyhow::Result<Vec<(String, serde_json::Map<String, Json>)>> {
    let resources = custom_resources(stack)?;
    let mut results = Vec::new();
    for r in resources {
        let data = run_one(stack, &r, stack_exists).await?;
        results.push((r.logical_id.clone(), data));
    }
    Ok(results)
}

async fn run_one(
    stack: &Stack,
    r: &CustomResource,
    update: bool,
) -> anyhow::Result<serde_json::Map<String, Json>> {
    let (tx, mut rx) = mpsc::channel::<Bytes>(1);
    let app = axum::Router::new().fallback(move |body: Bytes| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(body).await;
            ""
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("listening for the custom resource's response")?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let request_id = uuid::Uuid::new_v4().to_string();
    let resolver = stack.resolver();
    let stack_id = resolver.string(&serde_yaml::from_str("{Ref: AWS::StackId}")?)?;
    let mut event = json!({
        "RequestType": if update { "Update" } else { "Create" },
        "ServiceToken": r.properties["ServiceToken"],
        "ResponseURL": format!("http://{addr}/cloudformation-response/{request_id}"),
        "StackId": stack_id,
        "RequestId": request_id,
        "LogicalResourceId": r.logical_id,
        "ResourceType": r.resource_type,
        "ResourceProperties": r.properties,
    });
    if update {
        // The local stack keeps no history: the previous properties are today's.
        event["PhysicalResourceId"] = json!(format!("{}-local", r.logical_id));
        event["OldResourceProperties"] = r.properties.clone();
    }
    eprintln!(
        "==> custom resource {} ({}): {} -> {}",
        r.logical_id, r.resource_type, event["RequestType"], r.function
    );
    let spec = stack.function_spec(&r.function)?;
    let limit = spec.timeout + Duration::from_secs(5);
    let runtime = Runtime::new(vec![spec]);
    let invoked = runtime
        .invoke(&r.function, Bytes::from(event.to_string()))
        .await;
    runtime.shutdown().await;
    // The answer was PUT during the invocation; an invocation that failed may still
    // have answered (CloudFormation only reads the answer).
    let body = tokio::time::timeout(Duration::from_millis(500).min(limit), rx.recv()).await;
    server.abort();
    let body = match (body, invoked) {
        (Ok(Some(body)), _) => body,
        (_, Err(e)) => bail!(
            "custom resource {} ({}) failed without answering CloudFormation: {e} \
             (a real deploy waits up to an hour for the answer)",
            r.logical_id,
            r.function
        ),
        (_, Ok(_)) => bail!(
            "custom resource {} ({}) returned without answering CloudFormation at its ResponseURL",
            r.logical_id,
            r.function
        ),
    };
    let answer: CloudFormationCustomResourceResponse =
        serde_json::from_slice(&body).with_context(|| {
            format!(
                "custom resource {}: the answer is not a CloudFormation response: {}",
                r.logical_id,
                String::from_utf8_lossy(&body)
            )
        })?;
    let data: serde_json::Map<String, Json> = answer
        .data
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    match answer.status {
        CloudFormationCustomResourceResponseStatus::Success => {
            eprintln!(
                "==> custom resource {}: SUCCESS {}",
                r.logical_id,
                Json::Object(data.clone())
            );
            Ok(data)
        }
        _ => bail!(
            "custom resource {} ({}) FAILED: {}",
            r.logical_id,
            r.function,
            answer.reason.unwrap_or_default()
        ),
    }
}
