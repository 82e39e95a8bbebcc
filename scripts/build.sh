#!/usr/bin/env bash
# Packages every function: `sam build` with BuildMethod rust-cargolambda (arm64, cross
# compiled with cargo-lambda + zig from PyPI), producing .aws-sam/build/<Fn>/bootstrap.
# Used by scripts/deploy.sh; scripts/test.sh runs it only with ENCACHE_SAM_BUILD=1
# (it compiles the whole workspace in release mode for aarch64). Fails when a function's
# zip is over its budget (scripts/zip-budgets.txt, scripts/zip_sizes.py).
#   scripts/build.sh [extra sam build args...]
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
# shellcheck source=lib/infra.sh
source "$(dirname "$0")/lib/infra.sh"
cd "$ENCACHE_ROOT"

sam_env # sam and cargo-lambda (with zig) first on PATH
command -v cargo >/dev/null || die "cargo is required: install Rust with rustup"
if command -v rustup >/dev/null && ! grep -qx aarch64-unknown-linux-gnu <<<"$(rustup target list --installed)"; then
  log "adding the Rust target aarch64-unknown-linux-gnu"
  rustup target add aarch64-unknown-linux-gnu >/dev/null || die "rustup target add aarch64-unknown-linux-gnu failed"
fi
# sam builds each function in the workspace; one target dir keeps it incremental.
use_shared_target_dir

started=$SECONDS
log "sam build (rust-cargolambda, arm64)"
sam build --template-file template.yaml "$@"
missing=0
for d in .aws-sam/build/*/; do
  [ -f "$d/template.yaml" ] && continue
  [ -x "$d/bootstrap" ] || { warn "no bootstrap in $d"; missing=1; }
done
[ "$missing" -eq 0 ] || die "some functions have no bootstrap"
log "built $(find .aws-sam/build -name bootstrap | wc -l) bootstraps in $((SECONDS - started))s"
# The size budget (scripts/zip-budgets.txt): what Lambda downloads at every cold start.
python3 scripts/zip_sizes.py --check .aws-sam/build || die "a function's zip is over its budget (see above)"
