//! `start --watch`: a saved change rebuilds and replaces only the functions built from it,
//! while the API keeps answering; a failed build keeps the old code; a template change
//! re-reads routes and variables. The "build" is a stand-in (no cargo build): it marks the
//! fixture binary's `<path>.code` file, which a new process reports as the code it runs.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use encache_local::emulators::gateway::GatewaySettings;
use encache_local::emulators::{self, Running, StartOptions};
use encache_local::stack::{Config, Stack};
use encache_local::watch::{self, WatchEvent, WatchOptions};
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;

const TEMPLATE: &str = r#"
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: provided.al2023
    Handler: bootstrap
    Timeout: 5
Resources:
  FaFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: rust-cargolambda
      BuildProperties:
        Binary: fa
    Properties:
      CodeUri: fa
      Events:
        A:
          Type: HttpApi
          Properties:
            Method: GET
            Path: /a
  FbFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: rust-cargolambda
      BuildProperties:
        Binary: fb
    Properties:
      CodeUri: fb
      Environment:
        Variables:
          FIXTURE_TAG: one
      Events:
        B:
          Type: HttpApi
          Properties:
            Method: GET
            Path: /b
"#;

/// A cargo workspace (fa uses lib; fb does not), the template, and the two "built"
/// binaries (copies of the fixture) at code v1.
fn project() -> PathBuf {
    let dir = scratch();
    let write = |rel: &str, text: &str| {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("dir");
        std::fs::write(p, text).expect("write");
    };
    write(
        "Cargo.toml",
        "[workspace]\nmembers = [\"fa\", \"fb\", \"lib\"]\nresolver = \"2\"\n",
    );
    let package = |name: &str, deps: &str| {
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n{deps}"
        )
    };
    write(
        "fa/Cargo.toml",
        &package("fa", "lib = { path = \"../lib\" }\n"),
    );
    write("fa/src/main.rs", "fn main() {}\n");
    write("fb/Cargo.toml", &package("fb", ""));
    write("fb/src/main.rs", "fn main() {}\n");
    write("lib/Cargo.toml", &package("lib", ""));
    write("lib/src/lib.rs", "pub fn answer() -> u32 { 41 }\n");
    write("template.yaml", TEMPLATE);
    write("sam-env.local.json", &json!({"Parameters": {}}).to_string());
    let fixture = PathBuf::from(env!("CARGO_BIN_EXE_encache-local-fixture-fn"));
    for bin in ["fa", "fb"] {
        write(&format!("bin/{bin}.code"), "v1");
        std::fs::copy(&fixture, dir.join("bin").join(bin)).expect("copy the fixture");
    }
    dir
}

struct Watched {
    dir: PathBuf,
    running: Running,
    events: UnboundedReceiver<WatchEvent>,
    builds: Arc<Mutex<Vec<Vec<String>>>>,
    watch: tokio::task::JoinHandle<()>,
}

/// The project's stack started in-process and watched, with a stand-in build: it fails
/// while `<dir>/broken` exists, else marks each binary's code as v2.
async fn start_watched(dir: &Path) -> Watched {
    let mut config = Config::for_root(dir, dir.join("bin"));
    config.stack_name = unique("watch");
    config.endpoint = None;
    let stack = Stack::load(config.clone()).expect("the project's stack loads");
    let running = emulators::start(
        &stack,
        &StartOptions {
            addr: "127.0.0.1:0".into(),
            gateway: GatewaySettings::default(),
            event_sources: false,
        },
    )
    .await
    .expect("the stack starts");
    let builds = Arc::new(Mutex::new(Vec::new()));
    let (tx, events) = tokio::sync::mpsc::unbounded_channel();
    let mut options = WatchOptions::new(GatewaySettings::default(), false);
    options.poll = Duration::from_millis(50);
    options.quiet = Duration::from_millis(100);
    options.events = Some(tx);
    let (recorded, root) = (builds.clone(), dir.to_path_buf());
    options.builder = Some(Arc::new(move |bins: &[String]| {
        recorded.lock().expect("lock").push(bins.to_vec());
        if root.join("broken").exists() {
            return Err("fa/src/main.rs:1:1: error: expected item, found `}`".into());
        }
        for bin in bins {
            std::fs::write(root.join("bin").join(format!("{bin}.code")), "v2").expect("code");
        }
        Ok(())
    }));
    let watch = watch::spawn(
        config,
        options,
        running.runtime.clone(),
        running.gateway.clone(),
    )
    .await
    .expect("the watch starts");
    Watched {
        dir: dir.to_path_buf(),
        running,
        events,
        builds,
        watch,
    }
}

impl Watched {
    async fn get(&self, path: &str) -> Value {
        let resp = client()
            .get(format!("{}{path}", self.running.url))
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 200, "GET {path}");
        let body: Value = resp.json().await.expect("json");
        serde_json::from_str(body.as_str().unwrap_or_default()).unwrap_or(body)
    }

    async fn next_event(&mut self) -> WatchEvent {
        tokio::time::timeout(Duration::from_secs(10), self.events.recv())
            .await
            .expect("the watch reacts within 10 s")
            .expect("the watch is running")
    }

    async fn stop(self) {
        self.watch.abort();
        self.running.stop().await;
    }
}

/// Saves a file of the project (a new modification time and a new size).
fn save(dir: &Path, rel: &str, text: &str) {
    std::fs::write(dir.join(rel), text).expect("save");
}

/// GETs `path` until stopped; counts answers that were not 200.
fn hammer(url: String) -> (Arc<AtomicBool>, tokio::task::JoinHandle<(usize, usize)>) {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let task = tokio::spawn(async move {
        let (ok, failed) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let client = client();
        while !flag.load(Ordering::SeqCst) {
            match client.get(&url).send().await {
                Ok(r) if r.status() == 200 => ok.fetch_add(1, Ordering::SeqCst),
                _ => failed.fetch_add(1, Ordering::SeqCst),
            };
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (ok.into_inner(), failed.into_inner())
    });
    (stop, task)
}

#[tokio::test]
async fn a_saved_change_replaces_only_the_functions_built_from_it_and_a_failed_build_keeps_the_old_code()
 {
    // given the stack serving fa and fb at code v1
    let dir = project();
    let mut w = start_watched(&dir).await;
    let a = w.get("/a").await;
    let b = w.get("/b").await;
    assert_eq!(
        (a["code"].as_str(), b["code"].as_str()),
        (Some("v1"), Some("v1"))
    );
    let (a_pid, b_pid) = (a["pid"].as_u64(), b["pid"].as_u64());
    let (stop, hammering) = hammer(format!("{}/b", w.running.url));

    // when lib, which only fa is built from, is saved
    save(&dir, "lib/src/lib.rs", "pub fn answer() -> u32 { 42 }\n");

    // then only fa is rebuilt and replaced
    match w.next_event().await {
        WatchEvent::Reloaded {
            functions, total, ..
        } => {
            assert_eq!(functions, vec!["FaFunction".to_owned()]);
            assert!(total < Duration::from_secs(5), "save to serving {total:?}");
        }
        other => panic!("expected a reload, got {other:?}"),
    }
    assert_eq!(*w.builds.lock().expect("lock"), vec![vec!["fa".to_owned()]]);
    // and the API answered every request meanwhile
    stop.store(true, Ordering::SeqCst);
    let (ok, failed) = hammering.await.expect("hammer");
    assert_eq!(
        failed, 0,
        "{failed} requests to fb failed during the reload"
    );
    assert!(ok > 0);
    // and the next request to fa runs the new code in a new process
    let a2 = w.get("/a").await;
    assert_eq!(a2["code"], "v2");
    assert_ne!(a2["pid"].as_u64(), a_pid, "fa got a new process");
    // while fb's first process is still there, on its old code
    let fb_pids = w.running.runtime.pids("FbFunction").await;
    assert!(
        fb_pids.iter().any(|p| Some(u64::from(*p)) == b_pid),
        "fb's process {b_pid:?} is still warm: {fb_pids:?}"
    );
    assert_eq!(w.get("/b").await["code"], "v1");

    // when fa's own code is saved with an error
    save(&dir, "broken", "");
    save(&dir, "fa/src/main.rs", "fn main() {}\n}\n");

    // then the build fails, saying why, and fa's v2 process keeps serving
    match w.next_event().await {
        WatchEvent::BuildFailed { binaries, summary } => {
            assert_eq!(binaries, vec!["fa".to_owned()]);
            assert!(summary.contains("error: expected item"), "{summary}");
        }
        other => panic!("expected a failed build, got {other:?}"),
    }
    let a3 = w.get("/a").await;
    assert_eq!(
        (a3["pid"].as_u64(), a3["code"].as_str()),
        (a2["pid"].as_u64(), Some("v2"))
    );
    w.stop().await;
}

#[tokio::test]
async fn a_template_change_adds_routes_and_variables_without_a_rebuild() {
    // given the stack, fa warm
    let dir = project();
    let mut w = start_watched(&dir).await;
    let a_pid = w.get("/a").await["pid"].as_u64();
    assert_eq!(w.get("/b").await["tag"], "one");

    // when the template gives fb a new route and a new variable value
    let changed = TEMPLATE.replace("FIXTURE_TAG: one", "FIXTURE_TAG: two").replace(
        "            Path: /b\n",
        "            Path: /b\n        C:\n          Type: HttpApi\n          Properties:\n            Method: GET\n            Path: /c\n",
    );
    save(&w.dir, "template.yaml", &changed);

    // then fb serves the new route with the new value, nothing was built, fa untouched
    match w.next_event().await {
        WatchEvent::Reloaded {
            functions,
            routes_changed,
            ..
        } => {
            assert_eq!(functions, vec!["FbFunction".to_owned()]);
            assert!(routes_changed);
        }
        other => panic!("expected a reload, got {other:?}"),
    }
    assert_eq!(w.get("/c").await["tag"], "two");
    assert_eq!(w.get("/b").await["tag"], "two");
    assert_eq!(w.get("/a").await["pid"].as_u64(), a_pid);
    assert!(w.builds.lock().expect("lock").is_empty());

    // when the template is saved broken, the previous one keeps serving
    save(&w.dir, "template.yaml", "Resources: [");
    assert!(matches!(w.next_event().await, WatchEvent::Rejected(_)));
    assert_eq!(w.get("/c").await["tag"], "two");
    w.stop().await;
}

/// (The runtime also retries once on a fresh process when a warm one dies between being
/// picked and taking the invocation; that window is too narrow to hit from here.)
#[tokio::test]
async fn a_killed_warm_process_is_replaced_and_the_next_request_succeeds() {
    // given fb warm
    let dir = project();
    let w = start_watched(&dir).await;
    let pid = w.get("/b").await["pid"].as_u64().expect("pid");

    // when its process is killed and a request follows at once
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill");
    let next = w.get("/b").await;

    // then a new process answers it
    assert_ne!(next["pid"].as_u64(), Some(pid));
    w.stop().await;
}
