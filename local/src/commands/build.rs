//! `encache-local build`: every binary the template names, with cargo.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::stack::Stack;

/// Builds every binary the template names (`cargo build --bin a --bin b ...`).
pub fn run(stack: &Stack, release: bool) -> anyhow::Result<()> {
    let binaries = stack.template.binaries();
    let mut cmd = cargo_build(&workspace_dir(&stack.config.template), &binaries, release);
    eprintln!("==> building {}", binaries.join(", "));
    let status = cmd.status().context("running cargo build")?;
    if !status.success() {
        bail!("cargo build failed ({status})");
    }
    Ok(())
}

/// The folder cargo runs in: the template's (the workspace root).
pub fn workspace_dir(template: &Path) -> PathBuf {
    template
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// `cargo build [--release] --bin a --bin b ...` in `dir`: the one build command of
/// `build` and `start --watch`.
pub fn cargo_build(dir: &Path, binaries: &[String], release: bool) -> std::process::Command {
    let mut cmd = std::process::Command::new(std::env::var("CARGO").unwrap_or("cargo".into()));
    cmd.arg("build");
    if release {
        cmd.arg("--release");
    }
    for bin in binaries {
        cmd.args(["--bin", bin]);
    }
    cmd.current_dir(dir);
    cmd
}
