//! The cargo workspace as `start --watch` needs it: which package a saved file belongs
//! to, and which binaries are built from that package (through their path dependencies).
//! Read once with `cargo metadata --no-deps` (no resolution, no network).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

/// One workspace package: where it is, its binaries, the workspace packages it uses.
#[derive(Debug, Clone)]
pub struct Package {
    pub name: String,
    pub dir: PathBuf,
    pub bins: Vec<String>,
    /// Folders of the path dependencies its code is built with (not dev-dependencies).
    pub path_deps: Vec<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Workspace {
    packages: Vec<Package>,
}

/// Folders of a package whose files never go into its binaries.
const NOT_IN_BINARIES: [&str; 4] = ["tests", "benches", "examples", "target"];

impl Workspace {
    /// `cargo metadata --no-deps` of the workspace in `dir`.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let cargo = std::env::var("CARGO").unwrap_or("cargo".into());
        let out = std::process::Command::new(cargo)
            .args([
                "metadata",
                "--no-deps",
                "--format-version",
                "1",
                "--offline",
            ])
            .current_dir(dir)
            .output()
            .context("running cargo metadata")?;
        if !out.status.success() {
            bail!(
                "cargo metadata in {} failed: {}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Self::from_metadata(&out.stdout)
    }

    /// The packages of `cargo metadata --format-version 1` output.
    pub fn from_metadata(json: &[u8]) -> anyhow::Result<Self> {
        #[derive(Deserialize)]
        struct Metadata {
            packages: Vec<Pkg>,
        }
        #[derive(Deserialize)]
        struct Pkg {
            name: String,
            manifest_path: PathBuf,
            targets: Vec<Target>,
            dependencies: Vec<Dep>,
        }
        #[derive(Deserialize)]
        struct Target {
            name: String,
            kind: Vec<String>,
        }
        #[derive(Deserialize)]
        struct Dep {
            kind: Option<String>,
            path: Option<PathBuf>,
        }
        let meta: Metadata = serde_json::from_slice(json).context("reading cargo metadata")?;
        let packages = meta
            .packages
            .into_iter()
            .map(|p| Package {
                dir: p
                    .manifest_path
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_default(),
                bins: p
                    .targets
                    .iter()
                    .filter(|t| t.kind.iter().any(|k| k == "bin"))
                    .map(|t| t.name.clone())
                    .collect(),
                path_deps: p
                    .dependencies
                    .into_iter()
                    .filter(|d| d.kind.as_deref() != Some("dev"))
                    .filter_map(|d| d.path)
                    .collect(),
                name: p.name,
            })
            .collect();
        Ok(Self { packages })
    }

    fn by_dir(&self, dir: &Path) -> Option<&Package> {
        self.packages.iter().find(|p| p.dir == dir)
    }

    /// The package `path` is part of (the innermost one), when it can end up in a binary
    /// (not its tests, benches or examples).
    pub fn package_of(&self, path: &Path) -> Option<&Package> {
        let pkg = self
            .packages
            .iter()
            .filter(|p| path.starts_with(&p.dir))
            .max_by_key(|p| p.dir.components().count())?;
        let rel = path.strip_prefix(&pkg.dir).ok()?;
        match rel.components().next() {
            Some(c) if NOT_IN_BINARIES.iter().any(|n| c.as_os_str() == *n) => None,
            _ => Some(pkg),
        }
    }

    /// Every package a binary is built from: its own and, transitively, its path
    /// dependencies.
    fn closure(&self, bin: &str) -> BTreeSet<PathBuf> {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<PathBuf> = self
            .packages
            .iter()
            .filter(|p| p.bins.iter().any(|b| b == bin))
            .map(|p| p.dir.clone())
            .collect();
        while let Some(dir) = todo.pop() {
            if !seen.insert(dir.clone()) {
                continue;
            }
            if let Some(p) = self.by_dir(&dir) {
                todo.extend(p.path_deps.iter().cloned());
            }
        }
        seen
    }

    /// For each of `bins`, the package folders it is built from.
    pub fn sources(&self, bins: &[String]) -> BTreeMap<String, BTreeSet<PathBuf>> {
        bins.iter().map(|b| (b.clone(), self.closure(b))).collect()
    }

    /// The folders to watch for `bins`: every package they are built from, outermost only.
    pub fn watched_dirs(&self, bins: &[String]) -> Vec<PathBuf> {
        let all: BTreeSet<PathBuf> = self.sources(bins).into_values().flatten().collect();
        all.iter()
            .filter(|d| !all.iter().any(|o| o != *d && d.starts_with(o)))
            .cloned()
            .collect()
    }

    /// Which of `bins` a change to `paths` rebuilds.
    pub fn affected(&self, paths: &[PathBuf], bins: &[String]) -> BTreeSet<String> {
        let changed: BTreeSet<&Path> = paths
            .iter()
            .filter_map(|p| self.package_of(p))
            .map(|p| p.dir.as_path())
            .collect();
        self.sources(bins)
            .into_iter()
            .filter(|(_, dirs)| dirs.iter().any(|d| changed.contains(d.as_path())))
            .map(|(b, _)| b)
            .collect()
    }
}
