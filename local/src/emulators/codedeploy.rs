//! CodeDeploy's traffic shift, as far as a deploy's outcome depends on it: every function
//! whose `DeploymentPreference` names a `PreTraffic` hook gets its deployment, and the
//! hook function is invoked as CodeDeploy invokes it (`{"DeploymentId",
//! "LifecycleEventHookExecutionId"}`). The hook answers through the two AWS APIs it
//! calls, served here on loopback: Lambda `Invoke` (of the functions' new versions, run
//! by the local runtime) and CodeDeploy `PutLifecycleEventHookExecutionStatus`. A
//! `Failed` verdict, or none, stops the local deploy as CodeDeploy would stop the shift
//! and CloudFormation roll the stack back. (Alarm-based rollback needs CloudWatch and
//! real traffic: only a real deploy proves it.)

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value as Json, json};

use crate::emulators::runtime::{InvokeError, Runtime};
use crate::stack::Stack;

/// One function deployment with a PreTraffic hook (logical ids).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    pub function: String,
    pub hook: String,
}

/// Every function of the stack with a PreTraffic hook, and the hook's function.
pub fn deployments(stack: &Stack) -> anyhow::Result<Vec<Deployment>> {
    let resolver = stack.resolver();
    let functions = stack.functions()?;
    let mut out = Vec::new();
    for f in &functions {
        let Some(hook) = &f.pre_traffic_hook else {
            continue;
        };
        let name = resolver
            .string(hook)
            .with_context(|| format!("{}: PreTraffic hook has no local value", f.logical_id))?;
        let hook = functions
            .iter()
            .find(|h| resolver.names_function(&h.logical_id, &name))
            .with_context(|| {
                format!(
                    "{}: its PreTraffic hook {name} is no function of this stack",
                    f.logical_id
                )
            })?;
        out.push(Deployment {
            function: f.logical_id.clone(),
            hook: hook.logical_id.clone(),
        });
    }
    Ok(out)
}

/// What the hooks reported: (deployment id, execution id) → status.
type Verdicts = Arc<Mutex<BTreeMap<(String, String), String>>>;

struct Apis {
    runtime: Arc<Runtime>,
    /// Every function of the stack with the names Lambda's Invoke accepts for it.
    names: Vec<(String, Vec<String>)>,
    verdicts: Verdicts,
}

/// Runs every deployment's PreTraffic hook, one after the other; the first deployment
/// the hook fails (or leaves without a verdict) is an error naming it.
pub async fn run_all(stack: &Stack) -> anyhow::Result<usize> {
    let deployments = deployments(stack)?;
    if deployments.is_empty() {
        return Ok(0);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("listening for the hook's Lambda and CodeDeploy calls")?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    // The hook calls the APIs served here; every other function keeps its own endpoint.
    let hooks: Vec<&str> = deployments.iter().map(|d| d.hook.as_str()).collect();
    let mut specs = stack.function_specs()?;
    for spec in &mut specs {
        if hooks.contains(&spec.logical_id.as_str()) {
            spec.env.insert("AWS_ENDPOINT_URL".into(), endpoint.clone());
        }
    }
    let resolver = stack.resolver();
    let names = specs
        .iter()
        .map(|s| (s.logical_id.clone(), resolver.function_names(&s.logical_id)))
        .collect();
    let runtime = Arc::new(Runtime::new(specs));
    let verdicts: Verdicts = Arc::default();
    let apis = Arc::new(Apis {
        runtime: runtime.clone(),
        names,
        verdicts: verdicts.clone(),
    });
    let app = axum::Router::new()
        .route(
            "/2015-03-31/functions/{name}/invocations",
            axum::routing::post(lambda_invoke),
        )
        .route("/", axum::routing::post(codedeploy))
        .with_state(apis);
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let result = run_each(&runtime, &deployments, &verdicts).await;
    server.abort();
    runtime.shutdown().await;
    result.map(|()| deployments.len())
}

async fn run_each(
    runtime: &Runtime,
    deployments: &[Deployment],
    verdicts: &Verdicts,
) -> anyhow::Result<()> {
    for d in deployments {
        let deployment_id = format!("d-LOCAL{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let execution_id = uuid::Uuid::new_v4().to_string();
        eprintln!(
            "==> deployment {deployment_id} of {} (live alias): PreTraffic hook {}",
            d.function, d.hook
        );
        let event = json!({
            "DeploymentId": deployment_id,
            "LifecycleEventHookExecutionId": execution_id,
        });
        let invoked = runtime
            .invoke(&d.hook, Bytes::from(event.to_string()))
            .await;
        let verdict = verdicts
            .lock()
            .expect("verdicts lock")
            .get(&(deployment_id.clone(), execution_id.clone()))
            .cloned();
        match (verdict.as_deref(), invoked) {
            (Some("Succeeded"), _) => {
                eprintln!(
                    "==> deployment {deployment_id}: PreTraffic Succeeded, traffic shifts to the new version"
                );
            }
            (Some(status), _) => bail!(
                "the PreTraffic hook {} reported {status} for {}'s deployment: CodeDeploy \
                 keeps the live alias on the old version and the stack rolls back (the \
                 hook's log above names the failed checks)",
                d.hook,
                d.function
            ),
            (None, Err(e)) => bail!(
                "the PreTraffic hook {} failed without a verdict for {}'s deployment: {e} \
                 (CodeDeploy fails the deployment after an hour without one)",
                d.hook,
                d.function
            ),
            (None, Ok(_)) => bail!(
                "the PreTraffic hook {} returned without reporting a verdict for {}'s \
                 deployment (PutLifecycleEventHookExecutionStatus)",
                d.hook,
                d.function
            ),
        }
    }
    Ok(())
}

fn aws_error(status: StatusCode, kind: &str, message: String) -> Response {
    (
        status,
        [
            ("x-amzn-errortype", kind.to_owned()),
            ("content-type", "application/json".to_owned()),
        ],
        json!({"__type": kind, "message": message}).to_string(),
    )
        .into_response()
}

/// Lambda `Invoke` (RequestResponse): a function's answer, or its error payload with
/// `X-Amz-Function-Error` as Lambda returns a failed invocation.
async fn lambda_invoke(
    State(apis): State<Arc<Apis>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if headers
        .get("x-amz-invocation-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t != "RequestResponse")
    {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValueException",
            "the local Lambda API runs RequestResponse invocations only".into(),
        );
    }
    let name = percent_encoding::percent_decode_str(&name)
        .decode_utf8_lossy()
        .into_owned();
    let Some((id, _)) = apis.names.iter().find(|(_, names)| names.contains(&name)) else {
        return aws_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            format!("Function not found: {name}"),
        );
    };
    match apis.runtime.invoke(id, body).await {
        Ok(payload) => (StatusCode::OK, [("x-amz-executed-version", "1")], payload).into_response(),
        Err(e @ InvokeError::UnknownFunction(_)) => aws_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            e.to_string(),
        ),
        Err(e) => (
            StatusCode::OK,
            [
                ("x-amz-function-error", "Unhandled"),
                ("x-amz-executed-version", "1"),
            ],
            e.payload().to_string(),
        )
            .into_response(),
    }
}

/// CodeDeploy's JSON 1.1 API: `PutLifecycleEventHookExecutionStatus` only.
async fn codedeploy(State(apis): State<Arc<Apis>>, headers: HeaderMap, body: Bytes) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if target != "CodeDeploy_20141006.PutLifecycleEventHookExecutionStatus" {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            format!("the local CodeDeploy API does not serve {target:?}"),
        );
    }
    let request: Json = serde_json::from_slice(&body).unwrap_or(Json::Null);
    let field = |k: &str| request[k].as_str().map(str::to_owned);
    let (Some(deployment), Some(execution), Some(status)) = (
        field("deploymentId"),
        field("lifecycleEventHookExecutionId"),
        field("status"),
    ) else {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "deploymentId, lifecycleEventHookExecutionId and status are required".into(),
        );
    };
    if !["Succeeded", "Failed"].contains(&status.as_str()) {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "InvalidLifecycleEventHookExecutionStatusException",
            format!("status {status} is not Succeeded or Failed"),
        );
    }
    let mut verdicts = apis.verdicts.lock().expect("verdicts lock");
    let key = (deployment, execution.clone());
    if let Some(earlier) = verdicts.get(&key)
        && *earlier != status
    {
        // CodeDeploy takes the first verdict of an execution.
        return aws_error(
            StatusCode::BAD_REQUEST,
            "LifecycleEventAlreadyCompletedException",
            format!("this hook execution already reported {earlier}"),
        );
    }
    verdicts.insert(key, status);
    (
        StatusCode::OK,
        [("content-type", "application/x-amz-json-1.1")],
        json!({"lifecycleEventHookExecutionId": execution}).to_string(),
    )
        .into_response()
}
