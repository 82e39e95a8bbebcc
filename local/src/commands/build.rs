//! `encache-local build`: every binary the template names, with cargo.

use anyhow::{Context, bail};

use crate::stack::Stack;

/// Builds every binary the template names (`cargo build --bin a --bin b ...`).
pub fn run(stack: &Stack, release: bool) -> anyhow::Result<()> {
    let binaries = stack.template.binaries();
    let mut cmd = std::process::Command::new(std::env::var("CARGO").unwrap_or("cargo".into()));
    cmd.arg("build");
    if release {
        cmd.arg("--release");
    }
    for bin in &binaries {
        cmd.args(["--bin", bin]);
    }
    if let Some(dir) = stack
        .config
        .template
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        cmd.current_dir(dir);
    }
    eprintln!("==> building {}", binaries.join(", "));
    let status = cmd.status().context("running cargo build")?;
    if !status.success() {
        bail!("cargo build failed ({status})");
    }
    Ok(())
}
