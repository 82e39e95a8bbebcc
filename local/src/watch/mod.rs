//! `start --watch`: a saved change reaches the running stack without a restart.
//!
//! The folders of every workspace package the template's binaries are built from
//! (`functions/*`, `shared/`, ...; see [`workspace`]), the template and the local env
//! files are polled for changes (size and modification time; an editor's burst of writes
//! is one change once the files are quiet for a moment). A change to a package rebuilds,
//! with one `cargo build --bin ...` (the `build` command's), only the binaries built from
//! it; when the build succeeds, only the functions running those binaries get new
//! processes: in-flight invocations finish on the old process, new ones go to the new
//! code, and the HTTP API, the emulator and every other function's processes stay as
//! they are. A failed build prints the compiler's errors and the old code keeps serving.
//!
//! A change to the template or the env files re-reads them: routes (added, removed,
//! moved), function settings and variables take effect, new functions start (their
//! binaries built first). What needs `encache-local provision` and a restart: new
//! buckets, queues, tables, parameters, and new or changed event sources (S3, SQS, SNS,
//! EventBridge, schedules), which are subscribed once at start.

pub mod workspace;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use tokio::sync::mpsc::UnboundedSender;

use crate::commands::build::{cargo_build, workspace_dir};
use crate::emulators::gateway::{Gateway, GatewaySettings, GatewaySlot};
use crate::emulators::runtime::Runtime;
use crate::stack::{Config, Stack};
pub use workspace::Workspace;

/// Builds binaries; `Err` carries what to show (the compiler's error summary).
pub type Builder = Arc<dyn Fn(&[String]) -> Result<(), String> + Send + Sync>;

/// What one change led to (tests wait for these; `start` prints them).
#[derive(Debug, Clone)]
pub enum WatchEvent {
    /// New code or configuration is serving.
    Reloaded {
        functions: Vec<String>,
        routes_changed: bool,
        /// Save (the newest changed file's modification time) to serving.
        total: Duration,
        build: Duration,
        swap: Duration,
    },
    /// The build failed; the old code keeps serving.
    BuildFailed {
        binaries: Vec<String>,
        summary: String,
    },
    /// The template or env files could not be used; nothing changed.
    Rejected(String),
}

pub struct WatchOptions {
    pub gateway: GatewaySettings,
    pub release: bool,
    /// How often the files are checked.
    pub poll: Duration,
    /// How long the files must stay unchanged before a change is acted on.
    pub quiet: Duration,
    /// The build [default: `cargo build --bin ...` in the template's folder].
    pub builder: Option<Builder>,
    /// The workspace [default: `cargo metadata` in the template's folder].
    pub workspace: Option<Workspace>,
    pub events: Option<UnboundedSender<WatchEvent>>,
}

impl WatchOptions {
    pub fn new(gateway: GatewaySettings, release: bool) -> Self {
        Self {
            gateway,
            release,
            poll: Duration::from_millis(200),
            quiet: Duration::from_millis(150),
            builder: None,
            workspace: None,
            events: None,
        }
    }
}

/// `cargo build [--release] --bin ...` in `dir`, its diagnostics kept short; on failure
/// the error lines.
pub fn cargo_builder(dir: PathBuf, release: bool) -> Builder {
    Arc::new(move |bins: &[String]| {
        let out = cargo_build(&dir, bins, release)
            .args(["--message-format", "short", "--color", "never"])
            .output()
            .map_err(|e| format!("running cargo build: {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("error") || l.contains(": error"))
            .collect();
        let shown = if errors.is_empty() {
            stderr
                .lines()
                .rev()
                .take(20)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect()
        } else {
            errors
        };
        Err(shown.join("\n"))
    })
}

/// Starts watching; the task runs until aborted.
pub async fn spawn(
    config: Config,
    options: WatchOptions,
    runtime: Arc<Runtime>,
    gateway: Arc<GatewaySlot>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let root = canonical(&workspace_dir(&config.template)).context("the template's folder")?;
    let workspace = match options.workspace.clone() {
        Some(w) => w,
        None => {
            let dir = root.clone();
            tokio::task::spawn_blocking(move || Workspace::load(&dir))
                .await
                .context("cargo metadata")??
        }
    };
    let stack = Stack::open(config.clone()).await?;
    let files: Vec<PathBuf> = [
        &config.template,
        &config.env_vars,
        &config.container_env_vars,
    ]
    .into_iter()
    .map(|p| canonical(p))
    .collect::<Result<_, _>>()
    .context("the template's path")?;
    let builder = options
        .builder
        .clone()
        .unwrap_or_else(|| cargo_builder(root.clone(), options.release));
    let mut watcher = Watcher {
        stack,
        workspace,
        files,
        root,
        builder,
        runtime,
        gateway,
        options,
        dirs: Vec::new(),
    };
    watcher.refresh_dirs();
    let shown: Vec<String> = watcher
        .dirs
        .iter()
        .chain(&watcher.files[..1])
        .map(|d| watcher.show(d))
        .collect();
    eprintln!(
        "==> watching {} (a save rebuilds and replaces only what it affects)",
        shown.join(", ")
    );
    let snapshot = watcher.snapshot();
    Ok(tokio::spawn(watcher.run(snapshot)))
}

/// The path without symbolic links where it exists (as cargo metadata names folders).
fn canonical(p: &Path) -> std::io::Result<PathBuf> {
    std::fs::canonicalize(p).or_else(|_| std::path::absolute(p))
}

/// Size and modification time of every watched file.
type Snapshot = BTreeMap<PathBuf, (u64, Option<SystemTime>)>;

struct Watcher {
    stack: Stack,
    workspace: Workspace,
    /// The template, the env file, the container env file.
    files: Vec<PathBuf>,
    root: PathBuf,
    builder: Builder,
    runtime: Arc<Runtime>,
    gateway: Arc<GatewaySlot>,
    options: WatchOptions,
    dirs: Vec<PathBuf>,
}

impl Watcher {
    fn refresh_dirs(&mut self) {
        self.dirs = self.workspace.watched_dirs(&self.stack.template.binaries());
    }

    fn show(&self, p: &Path) -> String {
        match p.strip_prefix(&self.root) {
            Ok(rel) if !rel.as_os_str().is_empty() => rel.display().to_string(),
            _ => p.display().to_string(),
        }
    }

    fn snapshot(&self) -> Snapshot {
        let mut out = Snapshot::new();
        for f in &self.files {
            if let Ok(m) = std::fs::metadata(f) {
                out.insert(f.clone(), (m.len(), m.modified().ok()));
            }
        }
        for d in &self.dirs {
            walk(d, &mut out);
        }
        out
    }

    fn emit(&self, event: WatchEvent) {
        if let Some(tx) = &self.options.events {
            let _ = tx.send(event);
        }
    }

    async fn run(mut self, mut last: Snapshot) {
        loop {
            tokio::time::sleep(self.options.poll).await;
            let mut now = self.snapshot();
            if now == last {
                continue;
            }
            // An editor writes in bursts (temp file, rename, fsync): wait for quiet.
            loop {
                tokio::time::sleep(self.options.quiet).await;
                let again = self.snapshot();
                if again == now {
                    break;
                }
                now = again;
            }
            let changed = diff(&last, &now);
            let saved_at = changed
                .iter()
                .filter_map(|p| now.get(p).and_then(|(_, m)| *m))
                .max();
            last = now;
            self.change(&changed, saved_at).await;
            // A template change may have changed what is watched: files of new folders
            // are the baseline, while a save made during the build still shows next time.
            last = self
                .snapshot()
                .into_iter()
                .map(|(p, v)| {
                    let v = last.get(&p).copied().unwrap_or(v);
                    (p, v)
                })
                .collect();
        }
    }

    /// Acts on one settled change.
    async fn change(&mut self, changed: &[PathBuf], saved_at: Option<SystemTime>) {
        let detected = Instant::now();
        let since_save = saved_at
            .and_then(|s| SystemTime::now().duration_since(s).ok())
            .unwrap_or_default();
        let config_changed = changed.iter().any(|p| self.files.contains(p));
        let relevant: Vec<String> = changed
            .iter()
            .filter(|p| self.files.contains(p) || self.workspace.package_of(p).is_some())
            .map(|p| self.show(p))
            .collect();
        if relevant.is_empty() {
            // Tests, benches, examples: nothing a function runs.
            return;
        }
        eprintln!(
            "==> changed: {}{}",
            relevant[..relevant.len().min(3)].join(", "),
            match relevant.len() {
                n if n > 3 => format!(" (+{})", n - 3),
                _ => String::new(),
            }
        );

        // The stack the change leads to (the template re-read when it changed).
        let next = if config_changed {
            match Stack::open(self.stack.config.clone()).await {
                Ok(s) => Some(s),
                Err(e) => return self.reject(format!("{e:#}")),
            }
        } else {
            None
        };
        let target = next.as_ref().unwrap_or(&self.stack);
        let bins = target.template.binaries();
        let mut rebuild = self.workspace.affected(changed, &bins);
        // Binaries of functions the template did not run before.
        if next.is_some() {
            let before = self.stack.template.binaries();
            rebuild.extend(bins.iter().filter(|b| !before.contains(b)).cloned());
        }
        let specs = match target.function_specs() {
            Ok(s) => s,
            Err(e) => return self.reject(format!("{e:#}")),
        };
        let new_gateway = if next.is_some() {
            match Gateway::from_stack(target, &self.options.gateway, self.runtime.clone()) {
                Ok(g) => Some(g),
                Err(e) => return self.reject(format!("the HTTP API: {e:#}")),
            }
        } else {
            None
        };
        if rebuild.is_empty() && next.is_none() {
            eprintln!("==> no function of the template is built from it; nothing to do");
            return;
        }

        let mut build = Duration::ZERO;
        if !rebuild.is_empty() {
            let list: Vec<String> = rebuild.iter().cloned().collect();
            eprintln!("==> building {}", list.join(", "));
            let started = Instant::now();
            let builder = self.builder.clone();
            let bins_arg = list.clone();
            let result = tokio::task::spawn_blocking(move || builder(&bins_arg))
                .await
                .unwrap_or_else(|e| Err(format!("the build task failed: {e}")));
            build = started.elapsed();
            if let Err(summary) = result {
                eprintln!(
                    "==> build failed after {:.1} s; still serving the previous code of {}:\n{summary}",
                    build.as_secs_f64(),
                    list.join(", ")
                );
                return self.emit(WatchEvent::BuildFailed {
                    binaries: list,
                    summary,
                });
            }
        }

        let swap_started = Instant::now();
        let rebuilt: BTreeSet<String> = target
            .functions()
            .unwrap_or_default()
            .into_iter()
            .filter(|f| rebuild.contains(&f.binary))
            .map(|f| f.logical_id.clone())
            .collect();
        let applied = self.runtime.apply(specs, &rebuilt).await;
        let mut routes_changed = false;
        if let Some(gw) = new_gateway {
            routes_changed = print_route_changes(&self.gateway.current(), &gw);
            self.gateway.replace(Arc::new(gw));
        }
        let swap = swap_started.elapsed();
        if let Some(s) = next {
            self.stack = s;
            self.refresh_dirs();
            eprintln!(
                "==> template re-read: routes, functions and variables apply now; new buckets, queues, tables, parameters or event sources need `encache-local provision` and a restart"
            );
        }
        for id in &applied.added {
            eprintln!("  + function {id}");
        }
        for id in &applied.removed {
            eprintln!("  - function {id}");
        }
        let total = since_save + detected.elapsed();
        let functions: Vec<String> = applied
            .replaced
            .iter()
            .chain(&applied.added)
            .cloned()
            .collect();
        eprintln!(
            "==> reloaded {} in {:.1} s (build {:.1} s, swap {:.1} s)",
            if functions.is_empty() {
                "the template (no function changed)".to_owned()
            } else {
                functions.join(", ")
            },
            total.as_secs_f64(),
            build.as_secs_f64(),
            swap.as_secs_f64()
        );
        self.emit(WatchEvent::Reloaded {
            functions,
            routes_changed,
            total,
            build,
            swap,
        });
    }

    fn reject(&self, why: String) {
        eprintln!("==> not reloaded, the previous stack keeps serving: {why}");
        self.emit(WatchEvent::Rejected(why));
    }
}

/// Prints the routes `new` adds and removes compared with `old`; true when any.
fn print_route_changes(old: &Gateway, new: &Gateway) -> bool {
    let keys = |g: &Gateway| -> BTreeSet<String> {
        g.routes
            .iter()
            .map(|r| format!("{:<40} -> {}", r.route_key(), r.function))
            .collect()
    };
    let (before, after) = (keys(old), keys(new));
    for r in after.difference(&before) {
        eprintln!("  + {r}");
    }
    for r in before.difference(&after) {
        eprintln!("  - {r}");
    }
    before != after
}

/// Paths added, removed or modified between two snapshots.
fn diff(old: &Snapshot, new: &Snapshot) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = new
        .iter()
        .filter(|(p, v)| old.get(*p) != Some(*v))
        .map(|(p, _)| p.clone())
        .collect();
    out.extend(old.keys().filter(|p| !new.contains_key(*p)).cloned());
    out
}

/// Every file under `dir`, skipping build output, hidden files and editor droppings.
fn walk(dir: &Path, out: &mut Snapshot) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name.ends_with('~') || name == "target" || name == "4913" {
            continue;
        }
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => walk(&path, out),
            Ok(t) if t.is_file() => {
                if let Ok(m) = entry.metadata() {
                    out.insert(path, (m.len(), m.modified().ok()));
                }
            }
            _ => {}
        }
    }
}
