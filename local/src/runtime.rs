//! The Lambda Runtime API, emulated: every function runs as its real binary (what SAM
//! packages as `bootstrap`), each process polling its own Runtime API endpoint.
//!
//! One instance serves one invocation at a time, as a Lambda sandbox does; a second
//! instance starts when all are busy, up to a limit. An invocation that exceeds the
//! template's `Timeout` fails and its process is killed and replaced; a process that
//! crashes fails its invocation at once (no hang) and is replaced on the next call.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{Mutex, Semaphore, mpsc, oneshot, watch};

/// How long a fresh process may take to reach its first `next` (Lambda's init limit).
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything needed to run one function locally.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    pub logical_id: String,
    pub binary_path: PathBuf,
    /// The process environment, complete (the runtime adds only `AWS_LAMBDA_RUNTIME_API`).
    pub env: BTreeMap<String, String>,
    pub timeout: Duration,
    pub function_arn: String,
    pub max_instances: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("the template has no function {0}")]
    UnknownFunction(String),
    #[error("{function}: could not start {path}: {reason}")]
    Spawn {
        function: String,
        path: String,
        reason: String,
    },
    #[error("{function}: initialisation failed: {reason}")]
    Init { function: String, reason: String },
    #[error("{function}: Task timed out after {secs:.2} seconds")]
    Timeout { function: String, secs: f64 },
    #[error("{function}: the process exited during the invocation ({reason})")]
    Crashed { function: String, reason: String },
    #[error("{function}: {error_type}: {message}")]
    Function {
        function: String,
        error_type: String,
        message: String,
    },
}

impl InvokeError {
    /// The payload Lambda returns to a synchronous caller for a failed invocation.
    pub fn payload(&self) -> serde_json::Value {
        let (kind, message) = match self {
            Self::Function {
                error_type,
                message,
                ..
            } => (error_type.clone(), message.clone()),
            Self::Timeout { .. } => ("Sandbox.Timedout".into(), self.to_string()),
            Self::Crashed { .. } => ("Runtime.ExitError".into(), self.to_string()),
            Self::Init { .. } => ("Runtime.InitError".into(), self.to_string()),
            _ => ("Runtime.Unavailable".into(), self.to_string()),
        };
        serde_json::json!({"errorType": kind, "errorMessage": message})
    }
}

/// All functions of a local stack.
pub struct Runtime {
    pools: HashMap<String, Arc<FunctionPool>>,
}

impl Runtime {
    pub fn new(specs: Vec<FunctionSpec>) -> Self {
        let pools = specs
            .into_iter()
            .map(|s| (s.logical_id.clone(), Arc::new(FunctionPool::new(s))))
            .collect();
        Self { pools }
    }

    /// Invokes a function synchronously (`RequestResponse`) and returns its response payload.
    pub async fn invoke(&self, function: &str, payload: Bytes) -> Result<Bytes, InvokeError> {
        let pool = self
            .pools
            .get(function)
            .ok_or_else(|| InvokeError::UnknownFunction(function.to_owned()))?;
        pool.invoke(payload).await
    }

    /// How many invocations reached the function (tests use it to prove one did not).
    pub fn invocation_count(&self, function: &str) -> u64 {
        self.pools
            .get(function)
            .map_or(0, |p| p.invocations.load(Ordering::SeqCst))
    }

    /// How many processes the function has started so far.
    pub fn started_instances(&self, function: &str) -> usize {
        self.pools
            .get(function)
            .map_or(0, |p| p.next_instance.load(Ordering::SeqCst))
    }

    /// Spawn → first `next` of every process started so far (cold init).
    pub fn init_durations(&self, function: &str) -> Vec<Duration> {
        self.pools
            .get(function)
            .map(|p| p.inits.lock().expect("not poisoned").clone())
            .unwrap_or_default()
    }

    /// Process ids of the function's idle instances.
    pub async fn pids(&self, function: &str) -> Vec<u32> {
        match self.pools.get(function) {
            Some(p) => p.idle.lock().await.iter().filter_map(|i| i.pid).collect(),
            None => vec![],
        }
    }

    /// Stops every process.
    pub async fn shutdown(&self) {
        for pool in self.pools.values() {
            for inst in pool.idle.lock().await.drain(..) {
                inst.kill();
            }
        }
    }
}

struct FunctionPool {
    spec: FunctionSpec,
    idle: Mutex<Vec<Arc<Instance>>>,
    permits: Semaphore,
    next_instance: AtomicUsize,
    invocations: AtomicU64,
    inits: Arc<std::sync::Mutex<Vec<Duration>>>,
}

impl FunctionPool {
    fn new(spec: FunctionSpec) -> Self {
        Self {
            permits: Semaphore::new(spec.max_instances.max(1)),
            spec,
            idle: Mutex::new(Vec::new()),
            next_instance: AtomicUsize::new(0),
            invocations: AtomicU64::new(0),
            inits: Arc::default(),
        }
    }

    async fn invoke(&self, payload: Bytes) -> Result<Bytes, InvokeError> {
        // At the limit, callers queue here until an instance is free.
        let _permit = self.permits.acquire().await.expect("never closed");
        let instance = loop {
            match self.idle.lock().await.pop() {
                Some(i) if i.alive() => break i,
                // Its process is gone; its Runtime API server must go too.
                Some(dead) => dead.kill(),
                None => break self.spawn().await?,
            }
        };
        self.invocations.fetch_add(1, Ordering::SeqCst);
        let result = instance.invoke(&self.spec, payload).await;
        match &result {
            Ok(_) | Err(InvokeError::Function { .. }) if instance.alive() => {
                self.idle.lock().await.push(instance);
            }
            _ => instance.kill(),
        }
        result
    }

    async fn spawn(&self) -> Result<Arc<Instance>, InvokeError> {
        let n = self.next_instance.fetch_add(1, Ordering::SeqCst) + 1;
        Instance::start(&self.spec, n, self.inits.clone()).await
    }
}

struct Invocation {
    request_id: String,
    payload: Bytes,
    started: oneshot::Sender<()>,
    done: oneshot::Sender<Outcome>,
}

enum Outcome {
    Response(Bytes),
    Error { error_type: String, message: String },
}

struct ApiState {
    function_arn: String,
    timeout: Duration,
    queue: Mutex<mpsc::Receiver<Invocation>>,
    pending: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    /// Set once the process is unusable: init error, exit, or kill.
    failed: watch::Sender<Option<String>>,
}

struct Instance {
    tx: mpsc::Sender<Invocation>,
    failed: watch::Receiver<Option<String>>,
    kill: std::sync::Mutex<Option<oneshot::Sender<()>>>,
    server: tokio::task::JoinHandle<()>,
    logical_id: String,
    pid: Option<u32>,
    spawned_at: Instant,
    /// Where the first invocation records this process's init time.
    inits: std::sync::Mutex<Option<Arc<std::sync::Mutex<Vec<Duration>>>>>,
}

impl Instance {
    async fn start(
        spec: &FunctionSpec,
        n: usize,
        inits: Arc<std::sync::Mutex<Vec<Duration>>>,
    ) -> Result<Arc<Self>, InvokeError> {
        let spawn_err = |reason: String| InvokeError::Spawn {
            function: spec.logical_id.clone(),
            path: spec.binary_path.display().to_string(),
            reason,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| spawn_err(format!("no port for its Runtime API: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| spawn_err(e.to_string()))?;
        let (tx, rx) = mpsc::channel(1);
        let (failed_tx, failed_rx) = watch::channel(None);
        let state = Arc::new(ApiState {
            function_arn: spec.function_arn.clone(),
            timeout: spec.timeout,
            queue: Mutex::new(rx),
            pending: Mutex::new(HashMap::new()),
            failed: failed_tx,
        });
        let router = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(state.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });

        let spawned_at = Instant::now();
        let mut cmd = tokio::process::Command::new(&spec.binary_path);
        cmd.env_clear()
            .envs(&spec.env)
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                server.abort();
                return Err(spawn_err(format!(
                    "{e} (build it with `encache-local build` or `cargo build --bin <Binary>`)"
                )));
            }
        };
        let prefix = if n == 1 {
            format!("[{}]", spec.logical_id)
        } else {
            format!("[{}#{n}]", spec.logical_id)
        };
        if let Some(out) = child.stdout.take() {
            tokio::spawn(forward_lines(out, prefix.clone()));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(forward_lines(err, prefix.clone()));
        }
        let pid = child.id();
        let (kill_tx, kill_rx) = oneshot::channel::<()>();
        let watcher_state = state.clone();
        tokio::spawn(async move {
            let reason = tokio::select! {
                status = child.wait() => match status {
                    Ok(s) => format!("process exited: {s}"),
                    Err(e) => format!("process lost: {e}"),
                },
                _ = kill_rx => {
                    let _ = child.kill().await;
                    "process killed".to_owned()
                }
            };
            watcher_state.failed.send_if_modified(|f| {
                if f.is_none() {
                    *f = Some(reason);
                    true
                } else {
                    false
                }
            });
            // Fail whatever was in flight right away instead of letting callers wait.
            watcher_state.pending.lock().await.clear();
        });
        Ok(Arc::new(Self {
            tx,
            failed: failed_rx,
            kill: std::sync::Mutex::new(Some(kill_tx)),
            server,
            logical_id: spec.logical_id.clone(),
            pid,
            spawned_at,
            inits: std::sync::Mutex::new(Some(inits)),
        }))
    }

    fn alive(&self) -> bool {
        self.failed.borrow().is_none()
    }

    fn kill(&self) {
        if let Some(k) = self.kill.lock().expect("not poisoned").take() {
            let _ = k.send(());
        }
        self.server.abort();
    }

    async fn invoke(&self, spec: &FunctionSpec, payload: Bytes) -> Result<Bytes, InvokeError> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let (started_tx, started_rx) = oneshot::channel();
        let (done_tx, done_rx) = oneshot::channel();
        let function = spec.logical_id.clone();
        let begin = Instant::now();
        let failure = |reason: String| InvokeError::Crashed {
            function: function.clone(),
            reason,
        };
        self.tx
            .send(Invocation {
                request_id: request_id.clone(),
                payload,
                started: started_tx,
                done: done_tx,
            })
            .await
            .map_err(|_| failure("the instance is gone".into()))?;

        let mut failed = self.failed.clone();
        // Phase 1: the process asks for the invocation (includes init on a cold start).
        tokio::select! {
            r = started_rx => if r.is_err() {
                return Err(self.reason_or(&mut failed, &function, true).await);
            },
            _ = wait_failed(self.failed.clone()) => {
                return Err(self.reason_or(&mut failed, &function, true).await);
            }
            _ = tokio::time::sleep(INIT_TIMEOUT) => {
                return Err(InvokeError::Init {
                    function,
                    reason: format!("no call to /runtime/invocation/next within {}s", INIT_TIMEOUT.as_secs()),
                });
            }
        }
        let started = Instant::now();
        if let Some(inits) = self.inits.lock().expect("not poisoned").take() {
            inits
                .lock()
                .expect("not poisoned")
                .push(self.spawned_at.elapsed());
        }
        eprintln!("[{}] START RequestId: {request_id}", self.logical_id);
        // Phase 2: the function runs within its timeout.
        let outcome = tokio::select! {
            r = done_rx => match r {
                Ok(o) => o,
                Err(_) => return Err(self.reason_or(&mut failed, &function, false).await),
            },
            _ = tokio::time::sleep(spec.timeout) => {
                eprintln!(
                    "[{}] {request_id} Task timed out after {:.2} seconds",
                    self.logical_id,
                    spec.timeout.as_secs_f64()
                );
                return Err(InvokeError::Timeout {
                    function,
                    secs: spec.timeout.as_secs_f64(),
                });
            }
        };
        eprintln!(
            "[{}] REPORT RequestId: {request_id} Duration: {:.2} ms Total: {:.2} ms",
            self.logical_id,
            started.elapsed().as_secs_f64() * 1000.0,
            begin.elapsed().as_secs_f64() * 1000.0
        );
        match outcome {
            Outcome::Response(body) => Ok(body),
            Outcome::Error {
                error_type,
                message,
            } => Err(InvokeError::Function {
                function,
                error_type,
                message,
            }),
        }
    }

    async fn reason_or(
        &self,
        failed: &mut watch::Receiver<Option<String>>,
        function: &str,
        init: bool,
    ) -> InvokeError {
        // The watcher may need a moment to record why the process went away.
        let _ = tokio::time::timeout(Duration::from_millis(500), wait_failed(failed.clone())).await;
        let reason = failed
            .borrow()
            .clone()
            .unwrap_or_else(|| "process went away".into());
        if init {
            InvokeError::Init {
                function: function.to_owned(),
                reason,
            }
        } else {
            InvokeError::Crashed {
                function: function.to_owned(),
                reason,
            }
        }
    }
}

async fn wait_failed(mut failed: watch::Receiver<Option<String>>) {
    let _ = failed.wait_for(Option::is_some).await.map(|_| ());
}

async fn forward_lines<R: tokio::io::AsyncRead + Unpin>(reader: R, prefix: String) {
    let mut lines = BufReader::new(reader).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        eprintln!("{prefix} {line}");
    }
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
    set("lambda-runtime-trace-id", trace_id());
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
