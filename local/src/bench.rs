//! `encache-local bench`: cold init and first invocation of every function's binary next
//! to a hello-world `lambda_runtime` binary, peak RSS over warm invocations, and the
//! gateway's added latency and throughput. Numbers for docs/benchmarks.md; not a test.

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

pub struct BenchOptions {
    pub cold_runs: usize,
    pub warm: usize,
    pub requests: usize,
}

struct Cold {
    init: Duration,
    first: Duration,
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
    let base_rss = warm_rss(&hello, &hello_payload, options.warm).await?;

    println!("binaries: {}", bin_dir.display());
    println!(
        "| function | binary | cold init (spawn → first next) | × hello | first invocation | × hello | peak RSS after {} warm |",
        options.warm
    );
    println!("|---|---|---|---|---|---|---|");
    row("hello world", HELLO, &base, &base, base_rss);
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
        let payload = payload_for(f);
        let c = cold(&spec, &payload, options.cold_runs).await?;
        let rss = warm_rss(&spec, &payload, options.warm).await?;
        row(id, &f.binary, &c, &base, rss);
    }
    gateway_latency(&hello, &hello_payload, options.requests).await?;
    Ok(ExitCode::SUCCESS)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn row(name: &str, binary: &str, c: &Cold, base: &Cold, rss_kib: Option<u64>) {
    println!(
        "| {name} | {binary} | {:.1} ms | {:.2} | {:.1} ms | {:.2} | {} |",
        ms(c.init),
        ms(c.init) / ms(base.init).max(0.001),
        ms(c.first),
        ms(c.first) / ms(base.first).max(0.001),
        rss_kib.map_or("?".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0)),
    );
}

/// A minimal payload 2.0 GET for HTTP functions, `{}` for the rest: the point is the
/// runtime's cost, so an answer of 4xx or a function error still counts.
fn payload_for(f: &crate::template::FunctionDef) -> Bytes {
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

async fn warm_rss(spec: &FunctionSpec, payload: &Bytes, n: usize) -> anyhow::Result<Option<u64>> {
    let runtime = Runtime::new(vec![spec.clone()]);
    for _ in 0..n {
        let _ = runtime.invoke(&spec.logical_id, payload.clone()).await;
    }
    let rss = match runtime.pids(&spec.logical_id).await.first() {
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
    Ok(rss)
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

async fn gateway_latency(hello: &FunctionSpec, payload: &Bytes, n: usize) -> anyhow::Result<()> {
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
    // Warm both paths, then alternate them so drift on a shared machine hits both alike.
    for _ in 0..200 {
        let _ = runtime.invoke(&spec.logical_id, payload.clone()).await;
        client.get(&url).send().await?.bytes().await?;
    }
    let mut direct = Vec::new();
    let mut via = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let _ = runtime.invoke(&spec.logical_id, payload.clone()).await;
        direct.push(t.elapsed());
        let t = Instant::now();
        client.get(&url).send().await?.bytes().await?;
        via.push(t.elapsed());
    }
    let concurrency = 8;
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, url) = (client.clone(), url.clone());
        let per = n / concurrency;
        tasks.push(tokio::spawn(async move {
            for _ in 0..per {
                let _ = client.get(&url).send().await.map(|r| r.bytes());
            }
        }));
    }
    for task in tasks {
        task.await?;
    }
    let rps = (n / concurrency * concurrency) as f64 / t.elapsed().as_secs_f64();
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
    println!();
    println!(
        "gateway throughput: {rps:.0} requests/s ({concurrency} concurrent clients, up to 8 instances)"
    );
    server.abort();
    runtime.shutdown().await;
    Ok(())
}
