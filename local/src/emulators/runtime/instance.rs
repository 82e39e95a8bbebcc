//! One function process: spawned with its environment and its own Runtime API endpoint,
//! its output forwarded with a `[LogicalId]` prefix, watched for exit, and driven through
//! one invocation at a time (init within [`INIT_TIMEOUT`], then the template's timeout).

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{Mutex, mpsc, oneshot, watch};

use super::api::{self, ApiState, Invocation, Outcome};
use super::{FunctionSpec, INIT_TIMEOUT, InvokeError};

pub(super) struct Instance {
    tx: mpsc::Sender<Invocation>,
    failed: watch::Receiver<Option<String>>,
    kill: std::sync::Mutex<Option<oneshot::Sender<()>>>,
    server: tokio::task::JoinHandle<()>,
    logical_id: String,
    pub(super) pid: Option<u32>,
    /// The pool's code/configuration generation this process runs (see `FunctionPool`).
    pub(super) generation: u64,
    /// The spec this process was started with (its timeout and memory limit apply).
    pub(super) spec: Arc<FunctionSpec>,
    ready: watch::Receiver<bool>,
    /// Whether the process took its current invocation (called `next` for it).
    taken: AtomicBool,
    spawned_at: Instant,
    /// Where the first invocation records this process's init time.
    inits: std::sync::Mutex<Option<Arc<std::sync::Mutex<Vec<Duration>>>>>,
}

impl Instance {
    pub(super) async fn start(
        spec: Arc<FunctionSpec>,
        generation: u64,
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
        let (ready_tx, ready_rx) = watch::channel(false);
        let state = Arc::new(ApiState {
            function_arn: spec.function_arn.clone(),
            timeout: spec.timeout,
            queue: Mutex::new(rx),
            pending: Mutex::new(HashMap::new()),
            failed: failed_tx,
            ready: ready_tx,
        });
        let router = api::router(state.clone());
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
            generation,
            ready: ready_rx,
            taken: AtomicBool::new(false),
            spec,
            spawned_at,
            inits: std::sync::Mutex::new(Some(inits)),
        }))
    }

    /// Waits until the process has finished its init and asks for work; an error says
    /// why it will not (it exited, reported an init error, or took longer than
    /// [`INIT_TIMEOUT`]).
    pub(super) async fn ready(&self) -> Result<(), InvokeError> {
        let mut ready = self.ready.clone();
        let mut failed = self.failed.clone();
        tokio::select! {
            r = ready.wait_for(|r| *r) => if r.is_ok() { return Ok(()) },
            _ = wait_failed(self.failed.clone()) => {}
            _ = tokio::time::sleep(INIT_TIMEOUT) => {
                return Err(InvokeError::Init {
                    function: self.logical_id.clone(),
                    reason: format!("no call to /runtime/invocation/next within {}s", INIT_TIMEOUT.as_secs()),
                });
            }
        }
        Err(self.reason_or(&mut failed, &self.logical_id, true).await)
    }

    /// False when the last invocation never reached the process (it was gone before it
    /// asked for it), so handing the invocation to another process cannot run it twice.
    pub(super) fn took_invocation(&self) -> bool {
        self.taken.load(Ordering::SeqCst)
    }

    pub(super) fn alive(&self) -> bool {
        self.failed.borrow().is_none()
    }

    pub(super) fn kill(&self) {
        if let Some(k) = self.kill.lock().expect("not poisoned").take() {
            let _ = k.send(());
        }
        self.server.abort();
    }

    pub(super) async fn invoke(
        &self,
        payload: Bytes,
        trace_id: Option<String>,
    ) -> Result<Bytes, InvokeError> {
        let spec = &*self.spec;
        self.taken.store(false, Ordering::SeqCst);
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
                trace_id,
                started: started_tx,
                done: done_tx,
            })
            .await
            .map_err(|_| failure("the instance is gone".into()))?;

        let mut failed = self.failed.clone();
        let out_of_memory = |used_mb: u64| {
            eprintln!(
                "[{}] RequestId: {request_id} Error: Runtime exited with error: signal: killed Runtime.OutOfMemory ({used_mb} MB > MemorySize {} MB)",
                self.logical_id, spec.memory_mb
            );
            self.kill();
            InvokeError::OutOfMemory {
                function: function.clone(),
                request_id: request_id.clone(),
                used_mb,
                limit_mb: spec.memory_mb,
            }
        };
        // Phase 1: the process asks for the invocation (includes init on a cold start).
        tokio::select! {
            r = started_rx => if r.is_err() {
                return Err(self.reason_or(&mut failed, &function, true).await);
            },
            _ = wait_failed(self.failed.clone()) => {
                return Err(self.reason_or(&mut failed, &function, true).await);
            }
            used = memory_exceeded(self.pid, spec.memory_mb) => return Err(out_of_memory(used)),
            _ = tokio::time::sleep(INIT_TIMEOUT) => {
                return Err(InvokeError::Init {
                    function,
                    reason: format!("no call to /runtime/invocation/next within {}s", INIT_TIMEOUT.as_secs()),
                });
            }
        }
        self.taken.store(true, Ordering::SeqCst);
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
            used = memory_exceeded(self.pid, spec.memory_mb) => return Err(out_of_memory(used)),
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
        let max_used = self
            .pid
            .and_then(|pid| proc_status_kib(pid, "VmHWM:"))
            .map_or_else(|| "?".to_owned(), |kib| (kib / 1024).to_string());
        eprintln!(
            "[{}] REPORT RequestId: {request_id} Duration: {:.2} ms Total: {:.2} ms Memory Size: {} MB Max Memory Used: {max_used} MB",
            self.logical_id,
            started.elapsed().as_secs_f64() * 1000.0,
            begin.elapsed().as_secs_f64() * 1000.0,
            spec.memory_mb
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

/// How often a running invocation's resident memory is read.
const MEMORY_POLL: Duration = Duration::from_millis(20);

/// A `kB` line of `/proc/<pid>/status` (`VmRSS:`, `VmHWM:`), in KiB.
fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// Resolves with the resident MiB once the process exceeds `limit_mb`; never where
/// `/proc` cannot tell (no pid, not Linux).
async fn memory_exceeded(pid: Option<u32>, limit_mb: u32) -> u64 {
    let Some(pid) = pid.filter(|p| proc_status_kib(*p, "VmRSS:").is_some()) else {
        return std::future::pending().await;
    };
    let limit_kib = u64::from(limit_mb) * 1024;
    loop {
        if let Some(kib) = proc_status_kib(pid, "VmRSS:")
            && kib > limit_kib
        {
            return kib / 1024;
        }
        tokio::time::sleep(MEMORY_POLL).await;
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
