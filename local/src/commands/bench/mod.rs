//! `encache-local bench`: cold init and first invocation of every function's binary next
//! to a hello-world `lambda_runtime` binary, warm latency (p50/p99) and peak RSS over warm
//! invocations, and the gateway's added latency and throughput. Each function gets its
//! sample event from `events/`, matched to its triggers in the template (`samples`):
//! real handler work against the local database and emulator. Numbers for
//! docs/benchmarks.md; not a test.

mod measure;
mod samples;

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use axum::body::Bytes;
use clap::Args;
use serde_json::json;

use crate::stack::Stack;
use crate::template::{EventKind, FunctionDef, LOCAL_ACCOUNT_ID};
use measure::{Cold, Warm, cold, gateway_latency, ms, warm};
use samples::{Choice, Samples};

/// The hello-world `lambda_runtime` binary built in this workspace (this crate's fixture).
pub const HELLO: &str = "encache-local-fixture-fn";

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[arg(long, default_value_t = 5)]
    pub cold_runs: usize,
    #[arg(long, default_value_t = 1000)]
    pub warm: usize,
    #[arg(long, default_value_t = 2000)]
    pub requests: usize,
    /// Also measure this URL serving the hello-world function (e.g. `cargo lambda
    /// watch`'s `http://127.0.0.1:9000/lambda-url/encache-local-fixture-fn/hello`).
    #[arg(long)]
    pub compare_url: Option<String>,
    /// `sam build`'s output (arm64 bootstraps) for the zip column; `scripts/build.sh`
    /// writes it. Without it the column says so.
    #[arg(long, default_value = ".aws-sam/build")]
    pub sam_build_dir: std::path::PathBuf,
}

pub async fn run(stack: &Stack, options: &BenchArgs) -> anyhow::Result<ExitCode> {
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
    let samples = Samples::load(
        &stack
            .config
            .template
            .parent()
            .unwrap_or(Path::new("."))
            .join("events"),
    )?;
    let root = stack.config.template.parent().unwrap_or(Path::new("."));
    let zips = zip_sizes(root, &options.sam_build_dir);
    println!(
        "| function | binary | event | arm64 zip (budget) | cold init (spawn → first next) | × hello | first invocation | × hello | warm p50 | warm p99 | errors / {n} warm | peak RSS after {n} warm |",
        n = options.warm
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    row("hello world", HELLO, "echo", "—", &base, &base, &base_warm);
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
        let (event, payload) = match samples.choose(&stack.template, f) {
            Choice::Sample { name, payload } => (name, payload),
            Choice::Skip { name, reason } => {
                eprintln!("skipping {id}: its sample is {name}, but {reason}");
                continue;
            }
            Choice::None => {
                eprintln!("{id}: no sample in events/ matches its triggers; a minimal payload");
                ("minimal".to_owned(), minimal_payload(f))
            }
        };
        let c = cold(&spec, &payload, options.cold_runs).await?;
        let w = warm(&spec, &payload, options.warm).await?;
        let zip = zips
            .get(id.as_str())
            .map_or("not built (scripts/build.sh)", String::as_str);
        row(id, &f.binary, &event, zip, &c, &base, &w);
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

/// Each function's deployment zip, measured by the same script `scripts/build.sh` checks
/// budgets with (`scripts/zip_sizes.py --tsv`): "2.41 MiB (3 MiB)".
fn zip_sizes(root: &Path, build_dir: &Path) -> std::collections::HashMap<String, String> {
    let dir = root.join(build_dir);
    let out = std::process::Command::new("python3")
        .arg(root.join("scripts/zip_sizes.py"))
        .arg("--tsv")
        .arg(&dir)
        .output();
    let text = match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        Ok(o) => {
            eprintln!("zip sizes: {}", String::from_utf8_lossy(&o.stderr).trim());
            return Default::default();
        }
        Err(e) => {
            eprintln!("zip sizes: python3: {e}");
            return Default::default();
        }
    };
    let mib = |b: &str| b.parse::<f64>().unwrap_or(0.0) / 1_048_576.0;
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() == 4).then(|| {
                (
                    f[0].to_owned(),
                    format!("{:.2} MiB ({:.0} MiB)", mib(f[2]), mib(f[3])),
                )
            })
        })
        .collect()
}

fn row(name: &str, binary: &str, event: &str, zip: &str, c: &Cold, base: &Cold, w: &Warm) {
    println!(
        "| {name} | {binary} | {event} | {zip} | {:.1} ms | {:.2} | {:.1} ms | {:.2} | {:.2} ms | {:.2} ms | {} | {} |",
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

/// A minimal payload 2.0 GET for HTTP functions, `{}` for the rest: the runtime's cost
/// only, so an answer of 4xx or a function error still counts.
fn minimal_payload(f: &FunctionDef) -> Bytes {
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
                "timeEpoch": 0, "accountId": LOCAL_ACCOUNT_ID, "apiId": "local"}
        }),
        None => json!({}),
    };
    Bytes::from(value.to_string())
}
