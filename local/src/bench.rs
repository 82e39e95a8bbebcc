//! `encache-local bench`: cold init and first invocation of every function's binary next
//! to a hello-world `lambda_runtime` binary, warm latency (p50/p99) and peak RSS over warm
//! invocations, and the gateway's added latency and throughput. Each function gets its
//! sample event from `events/` (real handler work against the local database and
//! emulator). Numbers for docs/benchmarks.md; not a test.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Bytes;
use serde_json::json;

use crate::gateway::{self, Gateway, Route};
use crate::runtime::{FunctionSpec, Runtime};
use crate::stack::Stack;
use crate::template::EventKind;

/// The hello-world `lambda_runtime` binary built in this workspace (this crate's fixture).
pub const HELLO: &str = "encache-local-fixture-fn";

/// Each function's sample event in `events/` (next to the template). A function not
/// listed, or whose file is missing, gets the minimal payload of [`minimal_payload`].
const SAMPLE_EVENTS: &[(&str, &str)] = &[
    ("HealthFunction", "health-get.json"),
    ("StackSyncFunction", "stack-status-change.json"),
    ("PreSignUpFunction", "cognito-pre-sign-up.json"),
    ("PostConfirmationFunction", "cognito-post-confirmation.json"),
    (
        "PreTokenGenerationFunction",
        "cognito-pre-token-generation-v2.json",
    ),
    ("MeFunction", "me-get.json"),
    ("MemoryFeedFunction", "memory-feed-list.json"),
    ("ConversationFeedFunction", "conversation-feed-list.json"),
    ("UploadApiFunction", "upload-create.json"),
    ("UploadCompleteFunction", "s3-object-created.json"),
    ("UploadExpiryFunction", "upload-expiry-schedule.json"),
    ("CostAlertFunction", "cost-alert-budget-sns.json"),
];

pub struct BenchOptions {
    pub cold_runs: usize,
    pub warm: usize,
    pub requests: usize,
    /// Another server answering the same hello-world function over HTTP (e.g.
    /// `cargo lambda watch`'s function URL), measured alongside the gateway.
    pub compare_url: Option<String>,
}

struct Cold {
    init: Duration,
    first: Duration,
}

/// The warm invocations of one process: latency percentiles, failures and peak RSS.
struct Warm {
    p50: Duration,
    p99: Duration,
    errors: usize,
    rss_kib: Option<u64>,
}

pub async fn run(stack: &Stack, options: &BenchOptions) -> anyhow::Result<ExitCode> {
    let bin_dir = &stack.config.bin_dir;
    let mut hello = stack
        .template
        .functions
        .keys()
        .next()
        .map(|id| stack.function_spec(id))
        .transpose()?
        .context("the template has no function")?;
    hello.logical_id = "HelloWorld".into();
    hello.binary_path = bin_dir.join(HELLO);
    hello.max_instances = 1;
    anyhow::ensure!(
        hello.binary_path.exists(),
        "{} is not built: cargo build [--release] --bin {HELLO}",
        hello.binary_path.display()
    );
    let hello_payload = Bytes::from_static(br#"{"action":"echo"}"#);
    let base = cold(&hello, &hello_payload, options.cold_runs).await?;
    let base_warm = warm(&hello, &hello_payload, options.warm).await?;

    println!("binaries: {}", bin_dir.display());
    let events_dir = stack
        .config
        .template
        .parent()
        .unwrap_or(Path::new("."))
        .join("events");
    println!(
        "| function | binary | event | cold init (spawn → first next) | × hello | first invocation | × hello | warm p50 | warm p99 | errors / {n} warm | peak RSS after {n} warm |",
        n = options.warm
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    row("hello world", HELLO, "echo", &base, &base, &base_warm);
    for (id, f) in &stack.template.functions {
        let mut spec = match stack.function_spec(id) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("skipping {id}: {e:#}");
                continue;
            }
        };
        if !spec.binary_path.exists() {
            eprintln!("skipping {id}: {} is not built", spec.binary_path.display());
            continue;
        }
        spec.max_instances = 1;
        let (event, payload) = payload_for(id, f, &events_dir)?;
        let c = cold(&spec, &payload, options.cold_runs).await?;
        let w = warm(&spec, &payload, options.warm).await?;
        row(id, &f.binary, &event, &c, &base, &w);
    }
    gateway_latency(
        &hello,
        &hello_payload,
        options.requests,
        options.compare_url.as_deref(),
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn row(name: &str, binary: &str, event: &str, c: &Cold, base: &Cold, w: &Warm) {
    println!(
        "| {name} | {binary} | {event} | {:.1} ms | {:.2} | {:.1} ms | {:.2} | {:.2} ms | {:.2} ms | {} | {} |",
        ms(c.init),
        ms(c.init) / ms(base.init).max(0.001),
        ms(c.first),
        ms(c.first) / ms(base.first).max(0.001),
        ms(w.p50),
        ms(w.p99),
        w.errors,
        w.rss_kib
            .map_or("?".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0)),
    );
}

/// The function's sample event from `events/` when it has one, else a minimal payload;
/// returns the event's name for the table.
fn payload_for(
    id: &str,
    f: &crate::template::FunctionDef,
    events_dir: &Path,
) -> anyhow::Result<(String, Bytes)> {
    let sample = SAMPLE_EVENTS
        .iter()
        .find(|(logical_id, _)| *logical_id == id)
        .map(|(_, file)| events_dir.join(file))
        .filter(|path| path.exists());
    match sample {
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            Ok((name.into_owned(), Bytes::from(text)))
        }
        None => Ok(("minimal".into(), minimal_payload(f))),
    }
}

/// A minimal payload 2.0 GET for HTTP functions, `{}` for the rest: the runtime's cost
/// only, so an answer of 4xx or a function error still counts.
fn minimal_payload(f: &crate::template::FunctionDef) -> Bytes {
    let route = f.events.iter().find_map(|e| match &e.kind {
        EventKind::HttpApi { method, path, .. } => Some((method.clone(), path.clone())),
        _ => None,
    });
    let value = match route {
        Some((method, path)) => json!({
            "version": "2.0", "routeKey": format!("{method} {path}"), "rawPath": path,
            "rawQueryString": "", "headers": {}, "isBase64Encoded": false,
            "requestContext": {"http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1", "userAgent": "bench"}, "requestId": "bench",
                "routeKey": format!("{method} {path}"), "stage": "$default",
                "timeEpoch": 0, "accountId": "123456789012", "apiId": "local"}
        }),
        None => json!({}),
    };
    Bytes::from(value.to_string())
}

/// Median over `runs` fresh processes.
async fn cold(spec: &FunctionSpec, payload: &Bytes, runs: usize) -> anyhow::Result<Cold> {
    let mut inits = Vec::new();
    let mut firsts = Vec::new();
    for _ in 0..runs.max(1) {
        let runtime = Runtime::new(vec![spec.clone()]);
        let t0 = Instant::now();
        let _ = runtime.invoke(&spec.logical_id, payload.clone()).await;
        let total = t0.elapsed();
        let init = runtime
            .init_durations(&spec.logical_id)
            .first()
            .copied()
            .unwrap_or(total);
        inits.push(init);
        firsts.push(total.saturating_sub(init));
        runtime.shutdown().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(Cold {
        init: median(&mut inits),
        first: median(&mut firsts),
    })
}

/// `n` invocations of one warm process (after its cold start, which is not counted).
async fn warm(spec: &FunctionSpec, payload: &Bytes, n: usize) -> anyhow::Result<Warm> {
    let runtime = Runtime::new(vec![spec.clone()]);
    let _ = runtime.invoke(&spec.logical_id, payload.clone()).await;
    let mut took = Vec::with_capacity(n);
    let mut errors = 0;
    for _ in 0..n {
        let t = Instant::now();
        if runtime
            .invoke(&spec.logical_id, payload.clone())
            .await
            .is_err()
        {
            errors += 1;
        }
        took.push(t.elapsed());
    }
    let rss_kib = match runtime.pids(&spec.logical_id).await.first() {
        Some(pid) => std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
            }),
        None => None,
    };
    runtime.shutdown().await;
    Ok(Warm {
        p50: percentile(&mut took, 0.5),
        p99: percentile(&mut took, 0.99),
        errors,
        rss_kib,
    })
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).copied().unwrap_or_default()
}

async fn gateway_latency(
    hello: &FunctionSpec,
    payload: &Bytes,
    n: usize,
    compare_url: Option<&str>,
) -> anyhow::Result<()> {
    let mut spec = hello.clone();
    spec.max_instances = 8;
    let runtime = Arc::new(Runtime::new(vec![spec.clone()]));
    let gw = Arc::new(Gateway {
        routes: vec![Route::open("GET", "/hello", &spec.logical_id)],
        cors: None,
        runtime: runtime.clone(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hello", listener.local_addr()?);
    let server = tokio::spawn(gateway::serve(listener, gw));
    let client = reqwest::Client::new();
    // Warm every path, then alternate them so drift on a shared machine hits all alike.
    for _ in 0..200 {
        let _ = runtime.invoke(&spec.logical_id, payload.clone()).await;
        client.get(&url).send().await?.bytes().await?;
        if let Some(other) = compare_url {
            client.get(other).send().await?.bytes().await?;
        }
    }
    let mut direct = Vec::new();
    let mut via = Vec::new();
    let mut others = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let _ = runtime.invoke(&spec.logical_id, payload.clone()).await;
        direct.push(t.elapsed());
        let t = Instant::now();
        client.get(&url).send().await?.bytes().await?;
        via.push(t.elapsed());
        if let Some(other) = compare_url {
            let t = Instant::now();
            client.get(other).send().await?.bytes().await?;
            others.push(t.elapsed());
        }
    }
    let concurrency = 8;
    let rps = throughput(&client, &url, n, concurrency).await?;
    let (d50, d99) = (percentile(&mut direct, 0.5), percentile(&mut direct, 0.99));
    let (g50, g99) = (percentile(&mut via, 0.5), percentile(&mut via, 0.99));
    println!();
    println!("| hello world, {n} sequential requests | p50 | p99 |");
    println!("|---|---|---|");
    println!(
        "| Runtime API only (invoke) | {:.3} ms | {:.3} ms |",
        ms(d50),
        ms(d99)
    );
    println!(
        "| through the gateway (HTTP + payload 2.0) | {:.3} ms | {:.3} ms |",
        ms(g50),
        ms(g99)
    );
    println!(
        "| gateway's added latency | {:.3} ms | {:.3} ms |",
        ms(g50) - ms(d50),
        ms(g99) - ms(d99)
    );
    if let Some(other) = compare_url {
        println!(
            "| {other} | {:.3} ms | {:.3} ms |",
            ms(percentile(&mut others, 0.5)),
            ms(percentile(&mut others, 0.99))
        );
    }
    println!();
    println!(
        "gateway throughput: {rps:.0} requests/s ({concurrency} concurrent clients, up to 8 instances)"
    );
    if let Some(other) = compare_url {
        let rps = throughput(&client, other, n, concurrency).await?;
        println!("{other} throughput: {rps:.0} requests/s ({concurrency} concurrent clients)");
    }
    server.abort();
    runtime.shutdown().await;
    Ok(())
}

/// Requests per second over `n` GETs of `url` from `concurrency` keep-alive clients.
async fn throughput(
    client: &reqwest::Client,
    url: &str,
    n: usize,
    concurrency: usize,
) -> anyhow::Result<f64> {
    let per = n / concurrency;
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, url) = (client.clone(), url.to_owned());
        tasks.push(tokio::spawn(async move {
            for _ in 0..per {
                client.get(&url).send().await?.bytes().await?;
            }
            Ok::<_, reqwest::Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok((per * concurrency) as f64 / t.elapsed().as_secs_f64())
}
