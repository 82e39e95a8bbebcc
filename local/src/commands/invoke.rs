//! `encache-local invoke`: one synchronous invocation, like `sam local invoke`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use axum::body::Bytes;
use clap::Args;

use crate::emulators::runtime::Runtime;
use crate::stack::Stack;

#[derive(Debug, Args)]
pub struct InvokeArgs {
    pub logical_id: String,
    /// Event JSON file ("-" reads stdin); an empty object when absent.
    #[arg(long, short)]
    pub event: Option<PathBuf>,
}

pub async fn run(stack: &Stack, args: &InvokeArgs) -> anyhow::Result<ExitCode> {
    let logical_id = &args.logical_id;
    let payload = read_event(args.event.as_deref())?;
    let runtime = Runtime::new(vec![stack.function_spec(logical_id)?]);
    let result = runtime.invoke(logical_id, payload).await;
    runtime.shutdown().await;
    match result {
        Ok(body) => {
            println!("{}", String::from_utf8_lossy(&body));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: {e}");
            println!("{}", e.payload());
            Ok(ExitCode::FAILURE)
        }
    }
}

fn read_event(event: Option<&Path>) -> anyhow::Result<Bytes> {
    let text = match event {
        None => "{}".to_owned(),
        Some(p) if p == Path::new("-") => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("reading the event from stdin")?;
            s
        }
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("reading the event {}", p.display()))?,
    };
    serde_json::from_str::<serde_json::Value>(&text).context("the event is not JSON")?;
    Ok(Bytes::from(text))
}
