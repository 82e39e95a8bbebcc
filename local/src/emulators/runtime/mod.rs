//! The Lambda Runtime API, emulated: every function runs as its real binary (what SAM
//! packages as `bootstrap`), each process polling its own Runtime API endpoint.
//!
//! One instance serves one invocation at a time, as a Lambda sandbox does; a second
//! instance starts when all are busy, up to a limit. An invocation that exceeds the
//! template's `Timeout` fails and its process is killed and replaced, as does one whose
//! resident memory exceeds its `MemorySize` (`Runtime.OutOfMemory`, `/proc/<pid>/status`
//! polled during the invocation); a process that crashes fails its invocation at once (no
//! hang) and is replaced on the next call.
//!
//! This module is the pool of instances per function; `instance` is one process and its
//! invocation phases, `api` the Runtime API endpoints that process calls.

mod api;
mod instance;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use tokio::sync::{Mutex, Semaphore};

use instance::Instance;

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
    /// `MemorySize`: a process whose resident memory exceeds it fails its invocation with
    /// `Runtime.OutOfMemory` and is replaced, as Lambda stops it.
    pub memory_mb: u32,
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
    #[error(
        "{function}: Runtime.OutOfMemory: RequestId: {request_id} Error: Runtime exited with error: signal: killed ({used_mb} MB resident > MemorySize {limit_mb} MB)"
    )]
    OutOfMemory {
        function: String,
        request_id: String,
        used_mb: u64,
        limit_mb: u32,
    },
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
            Self::OutOfMemory { request_id, .. } => (
                "Runtime.OutOfMemory".into(),
                format!("RequestId: {request_id} Error: Runtime exited with error: signal: killed"),
            ),
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
        self.invoke_traced(function, payload, None).await
    }

    /// [`Runtime::invoke`] carrying the caller's X-Ray trace header (an API Gateway
    /// request's `X-Amzn-Trace-Id`) to the function as `Lambda-Runtime-Trace-Id`.
    pub async fn invoke_traced(
        &self,
        function: &str,
        payload: Bytes,
        trace_id: Option<String>,
    ) -> Result<Bytes, InvokeError> {
        let pool = self
            .pools
            .get(function)
            .ok_or_else(|| InvokeError::UnknownFunction(function.to_owned()))?;
        pool.invoke(payload, trace_id).await
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

    async fn invoke(&self, payload: Bytes, trace_id: Option<String>) -> Result<Bytes, InvokeError> {
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
        let result = instance.invoke(&self.spec, payload, trace_id).await;
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
