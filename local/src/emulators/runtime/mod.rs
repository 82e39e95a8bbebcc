//! The Lambda Runtime API, emulated: every function runs as its real binary (what SAM
//! packages as `bootstrap`), each process polling its own Runtime API endpoint.
//!
//! One instance serves one invocation at a time, as a Lambda sandbox does; a second
//! instance starts when all are busy, up to a limit. An invocation that exceeds the
//! template's `Timeout` fails and its process is killed and replaced, as does one whose
//! resident memory exceeds its `MemorySize` (`Runtime.OutOfMemory`, `/proc/<pid>/status`
//! polled during the invocation); a process that crashes fails its invocation at once (no
//! hang) and is replaced on the next call. A warm process that exits before it takes an
//! invocation does not fail it: the invocation goes to a fresh process.
//!
//! [`Runtime::apply`] updates functions in place, as a Lambda update does (new code or
//! configuration for some, functions added or removed): in-flight invocations finish on
//! their old process, new ones start on the new code; the others are untouched.
//!
//! This module is the pool of instances per function; `instance` is one process and its
//! invocation phases, `api` the Runtime API endpoints that process calls.

mod api;
mod instance;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use tokio::sync::{Mutex, Semaphore};

use instance::Instance;

/// How long a fresh process may take to reach its first `next` (Lambda's init limit).
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything needed to run one function locally.
#[derive(Debug, Clone, PartialEq)]
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
    pools: std::sync::RwLock<HashMap<String, Arc<FunctionPool>>>,
}

/// What [`Runtime::apply`] changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Applied {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Functions whose processes were replaced (new code or new configuration).
    pub replaced: Vec<String>,
}

impl Runtime {
    pub fn new(specs: Vec<FunctionSpec>) -> Self {
        let pools = specs
            .into_iter()
            .map(|s| (s.logical_id.clone(), Arc::new(FunctionPool::new(s))))
            .collect();
        Self {
            pools: std::sync::RwLock::new(pools),
        }
    }

    fn pool(&self, function: &str) -> Option<Arc<FunctionPool>> {
        self.pools
            .read()
            .expect("not poisoned")
            .get(function)
            .cloned()
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
            .pool(function)
            .ok_or_else(|| InvokeError::UnknownFunction(function.to_owned()))?;
        pool.invoke(payload, trace_id).await
    }

    /// The function's current spec (what new processes start with).
    pub fn spec(&self, function: &str) -> Option<Arc<FunctionSpec>> {
        self.pool(function).map(|p| p.current().1)
    }

    /// Replaces what the runtime runs with `specs`, the way an update reaches a Lambda
    /// function: functions not in `specs` go away, new ones are added, and a function
    /// whose spec changed or that is named in `rebuilt` (its binary was rebuilt) gets new
    /// processes. Invocations in flight finish on their old process, which then exits;
    /// the next invocation starts on the new code. A function that had a warm process
    /// gets a new one, started and initialised, before this returns (an init failure is
    /// printed and its next invocation tries again).
    pub async fn apply(&self, specs: Vec<FunctionSpec>, rebuilt: &BTreeSet<String>) -> Applied {
        let mut applied = Applied::default();
        let mut replaced = Vec::new();
        let mut retired = Vec::new();
        {
            let mut pools = self.pools.write().expect("not poisoned");
            let wanted: BTreeSet<String> = specs.iter().map(|s| s.logical_id.clone()).collect();
            let gone: Vec<String> = pools
                .keys()
                .filter(|k| !wanted.contains(*k))
                .cloned()
                .collect();
            for id in gone {
                if let Some(p) = pools.remove(&id) {
                    retired.push(p);
                }
                applied.removed.push(id);
            }
            for spec in specs {
                let id = spec.logical_id.clone();
                match pools.get(&id) {
                    None => {
                        pools.insert(id.clone(), Arc::new(FunctionPool::new(spec)));
                        applied.added.push(id);
                    }
                    Some(pool) => {
                        if *pool.current().1 != spec || rebuilt.contains(&id) {
                            replaced.push(pool.clone());
                            pool.set_spec(spec);
                            applied.replaced.push(id);
                        }
                    }
                }
            }
        }
        for pool in retired {
            pool.retired.store(true, Ordering::SeqCst);
            pool.drain_idle().await;
        }
        let mut warmups = tokio::task::JoinSet::new();
        for pool in replaced {
            warmups.spawn(async move {
                if pool.drain_idle().await > 0
                    && let Err(e) = pool.prewarm().await
                {
                    eprintln!("==> {e}");
                }
            });
        }
        warmups.join_all().await;
        applied.added.sort();
        applied.removed.sort();
        applied.replaced.sort();
        applied
    }

    /// How many invocations reached the function (tests use it to prove one did not).
    pub fn invocation_count(&self, function: &str) -> u64 {
        self.pool(function)
            .map_or(0, |p| p.invocations.load(Ordering::SeqCst))
    }

    /// How many processes the function has started so far.
    pub fn started_instances(&self, function: &str) -> usize {
        self.pool(function)
            .map_or(0, |p| p.next_instance.load(Ordering::SeqCst))
    }

    /// Spawn → first `next` of every process started so far (cold init).
    pub fn init_durations(&self, function: &str) -> Vec<Duration> {
        self.pool(function)
            .map(|p| p.inits.lock().expect("not poisoned").clone())
            .unwrap_or_default()
    }

    /// Process ids of the function's idle instances.
    pub async fn pids(&self, function: &str) -> Vec<u32> {
        match self.pool(function) {
            Some(p) => p.idle.lock().await.iter().filter_map(|i| i.pid).collect(),
            None => vec![],
        }
    }

    /// Stops every process.
    pub async fn shutdown(&self) {
        let pools: Vec<Arc<FunctionPool>> = self
            .pools
            .read()
            .expect("not poisoned")
            .values()
            .cloned()
            .collect();
        for pool in pools {
            pool.retired.store(true, Ordering::SeqCst);
            pool.drain_idle().await;
        }
    }
}

/// The processes of one function. Its spec has a generation: an update (new code or
/// configuration) bumps it, and a process of an older generation is stopped instead of
/// going back to the idle list, so it never takes another invocation.
struct FunctionPool {
    current: std::sync::Mutex<(u64, Arc<FunctionSpec>)>,
    idle: Mutex<Vec<Arc<Instance>>>,
    permits: Semaphore,
    next_instance: AtomicUsize,
    invocations: AtomicU64,
    inits: Arc<std::sync::Mutex<Vec<Duration>>>,
    /// The function left the template: every process stops when its invocation ends.
    retired: AtomicBool,
}

impl FunctionPool {
    fn new(spec: FunctionSpec) -> Self {
        Self {
            permits: Semaphore::new(spec.max_instances.max(1)),
            current: std::sync::Mutex::new((0, Arc::new(spec))),
            idle: Mutex::new(Vec::new()),
            next_instance: AtomicUsize::new(0),
            invocations: AtomicU64::new(0),
            inits: Arc::default(),
            retired: AtomicBool::new(false),
        }
    }

    fn current(&self) -> (u64, Arc<FunctionSpec>) {
        self.current.lock().expect("not poisoned").clone()
    }

    fn set_spec(&self, spec: FunctionSpec) {
        let mut current = self.current.lock().expect("not poisoned");
        *current = (current.0 + 1, Arc::new(spec));
    }

    /// True when `instance` may serve again: alive, current code, function still there.
    fn reusable(&self, instance: &Instance) -> bool {
        instance.alive()
            && instance.generation == self.current().0
            && !self.retired.load(Ordering::SeqCst)
    }

    /// Stops the idle processes of older generations (all of them once retired); returns
    /// how many there were.
    async fn drain_idle(&self) -> usize {
        let mut idle = self.idle.lock().await;
        let before = idle.len();
        idle.retain(|i| {
            let keep = self.reusable(i);
            if !keep {
                i.kill();
            }
            keep
        });
        before - idle.len()
    }

    /// Starts one process of the current generation and parks it idle once initialised.
    async fn prewarm(&self) -> Result<(), InvokeError> {
        let instance = self.spawn().await?;
        if let Err(e) = instance.ready().await {
            instance.kill();
            return Err(e);
        }
        if self.reusable(&instance) {
            self.idle.lock().await.push(instance);
        } else {
            instance.kill();
        }
        Ok(())
    }

    async fn invoke(&self, payload: Bytes, trace_id: Option<String>) -> Result<Bytes, InvokeError> {
        // At the limit, callers queue here until an instance is free.
        let _permit = self.permits.acquire().await.expect("never closed");
        let mut retried = false;
        loop {
            let (instance, warm) = loop {
                let popped = self.idle.lock().await.pop();
                match popped {
                    Some(i) if self.reusable(&i) => break (i, true),
                    // Its process is gone or runs old code; its Runtime API server must go too.
                    Some(stale) => stale.kill(),
                    None => break (self.spawn().await?, false),
                }
            };
            self.invocations.fetch_add(1, Ordering::SeqCst);
            let result = instance.invoke(payload.clone(), trace_id.clone()).await;
            if result.is_err()
                && warm
                && !retried
                && !instance.took_invocation()
                && !instance.alive()
            {
                // A warm process that died before it took the invocation (between being
                // picked and asking for work): the invocation never ran, so it goes to a
                // fresh process instead of failing as an init error.
                instance.kill();
                self.invocations.fetch_sub(1, Ordering::SeqCst);
                retried = true;
                eprintln!(
                    "[{}] its warm process exited before taking the invocation; retrying on a new process",
                    instance.spec.logical_id
                );
                continue;
            }
            match &result {
                Ok(_) | Err(InvokeError::Function { .. }) if self.reusable(&instance) => {
                    self.idle.lock().await.push(instance);
                }
                _ => instance.kill(),
            }
            return result;
        }
    }

    async fn spawn(&self) -> Result<Arc<Instance>, InvokeError> {
        let n = self.next_instance.fetch_add(1, Ordering::SeqCst) + 1;
        let (generation, spec) = self.current();
        Instance::start(spec, generation, n, self.inits.clone()).await
    }
}
