//! The Runtime API endpoints one process calls (`/2018-06-01/runtime/...`): `next` hands
//! it the queued invocation with Lambda's headers, `response` / `error` / `init/error`
//! carry its answers back.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::{Mutex, mpsc, oneshot, watch};

/// One invocation handed to the process at its next `next`.
pub(super) struct Invocation {
    pub(super) request_id: String,
    pub(super) payload: Bytes,
    /// The caller's trace header, if any (else a fresh one).
    pub(super) trace_id: Option<String>,
    pub(super) started: oneshot::Sender<()>,
    pub(super) done: oneshot::Sender<Outcome>,
}

/// What the process answered.
pub(super) enum Outcome {
    Response(Bytes),
    Error { error_type: String, message: String },
}

/// The Runtime API of one process.
pub(super) struct ApiState {
    pub(super) function_arn: String,
    pub(super) timeout: Duration,
    pub(super) queue: Mutex<mpsc::Receiver<Invocation>>,
    pub(super) pending: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    /// Set once the process is unusable: init error, exit, or kill.
    pub(super) failed: watch::Sender<Option<String>>,
    /// Set at the process's first `next`: its init is done and it waits for work.
    pub(super) ready: watch::Sender<bool>,
}

/// The routes of one process's Runtime API.
pub(super) fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(response),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(state)
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
}

fn trace_id() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let a = uuid::Uuid::new_v4().simple().to_string();
    let b = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "Root=1-{secs:08x}-{};Parent={};Sampled=0",
        &a[..24],
        &b[..16]
    )
}

async fn next(State(state): State<Arc<ApiState>>) -> Response {
    state
        .ready
        .send_if_modified(|r| !std::mem::replace(r, true));
    let invocation = {
        let mut queue = state.queue.lock().await;
        queue.recv().await
    };
    let Some(inv) = invocation else {
        // The instance is being stopped. Like Lambda, answer nothing until the process is
        // gone: a reply without a request id makes lambda_runtime panic, and that panic
        // would show in the log as if the function had crashed.
        let _ = state.failed.subscribe().wait_for(Option::is_some).await;
        return (StatusCode::GONE, "instance stopped").into_response();
    };
    let deadline = now_ms() + state.timeout.as_millis();
    state
        .pending
        .lock()
        .await
        .insert(inv.request_id.clone(), inv.done);
    let _ = inv.started.send(());
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    set("lambda-runtime-aws-request-id", inv.request_id);
    set("lambda-runtime-deadline-ms", deadline.to_string());
    set(
        "lambda-runtime-invoked-function-arn",
        state.function_arn.clone(),
    );
    set(
        "lambda-runtime-trace-id",
        inv.trace_id.unwrap_or_else(trace_id),
    );
    set("content-type", "application/json".into());
    (StatusCode::OK, headers, inv.payload).into_response()
}

async fn response(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    match state.pending.lock().await.remove(&id) {
        Some(done) => {
            let _ = done.send(Outcome::Response(body));
            (StatusCode::ACCEPTED, r#"{"status":"OK"}"#).into_response()
        }
        None => unknown_request(&id),
    }
}

async fn error(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (error_type, message) = parse_error(&headers, &body);
    match state.pending.lock().await.remove(&id) {
        Some(done) => {
            let _ = done.send(Outcome::Error {
                error_type,
                message,
            });
            (StatusCode::ACCEPTED, r#"{"status":"OK"}"#).into_response()
        }
        None => unknown_request(&id),
    }
}

async fn init_error(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (error_type, message) = parse_error(&headers, &body);
    state
        .failed
        .send_replace(Some(format!("{error_type}: {message}")));
    (StatusCode::ACCEPTED, r#"{"status":"OK"}"#).into_response()
}

fn unknown_request(id: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(serde_json::json!({
            "errorMessage": format!("unknown or finished request id {id}"),
            "errorType": "InvalidRequestID"
        })),
    )
        .into_response()
}

fn parse_error(headers: &HeaderMap, body: &[u8]) -> (String, String) {
    let parsed: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let error_type = parsed
        .get("errorType")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .or_else(|| {
            headers
                .get("lambda-runtime-function-error-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "Unhandled".into());
    let message = parsed
        .get("errorMessage")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    (error_type, message)
}
