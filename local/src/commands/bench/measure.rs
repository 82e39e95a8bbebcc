//! The measurements: cold init and first invocation over fresh processes, warm latency
//! and peak RSS of one process, and the gateway's added latency and throughput.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;

use crate::emulators::gateway::{self, Gateway, Route};
use crate::emulators::runtime::{FunctionSpec, Runtime};

/// Spawn → first `next` (init) and that call → its response (first invocation).
pub(super) struct Cold {
    pub(super) init: Duration,
    pub(super) first: Duration,
}

/// The warm invocations of one process: latency percentiles, failures and peak RSS.
pub(super) struct Warm {
    pub(super) p50: Duration,
    pub(super) p99: Duration,
    pub(super) errors: usize,
    pub(super) rss_kib: Option<u64>,
}

pub(super) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Median over `runs` fresh processes.
pub(super) async fn cold(
    spec: &FunctionSpec,
    payload: &Bytes,
    runs: usize,
) -> anyhow::Result<Cold> {
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
pub(super) async fn warm(spec: &FunctionSpec, payload: &Bytes, n: usize) -> anyhow::Result<Warm> {
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

pub(super) async fn gateway_latency(
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
