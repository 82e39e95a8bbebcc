#!/usr/bin/env bash
# The README's test command: everything encache checks, from a fresh clone.
#
# Installs what it needs (Rust components, cargo-nextest, the project virtualenv),
# starts the dev services (PostgreSQL + the moto AWS emulator), runs formatting, lints,
# the offline-build and .sqlx checks, the workflow lint, the OpenAPI check, every test and
# the infrastructure checks, the deploy rehearsal and its link-breaking tests (plus `sam
# build` with ENCACHE_SAM_BUILD=1), prints a summary
# and stops the services it started, whatever happened (already running ones stay up).
set -uo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
cd "$ENCACHE_ROOT" || exit 1
use_shared_target_dir

started=$SECONDS
results=()
failed=0

# ENCACHE_TEST_STEPS=name,name: only those steps (the names the summary prints), e.g.
# ENCACHE_TEST_STEPS=fmt,clippy scripts/test.sh for a quick rerun of what failed.
only_steps="${ENCACHE_TEST_STEPS:-}"

# step NAME COMMAND...: runs one check, records its outcome and time, never exits.
step() {
  local name="$1"; shift
  if [ -n "$only_steps" ] && [[ ",$only_steps," != *",$name,"* ]]; then
    return 0
  fi
  local t0=$SECONDS
  printf '\n==> [%s] %s\n' "$name" "$*"
  if "$@"; then
    results+=("PASS  $name ($((SECONDS - t0))s)")
  else
    results+=("FAIL  $name ($((SECONDS - t0))s)")
    failed=$((failed + 1))
  fi
}

summary() {
  printf '\n==> summary (%ss in all, target dir %s)\n' "$((SECONDS - started))" "$CARGO_TARGET_DIR"
  [ -n "$only_steps" ] && printf '    only ENCACHE_TEST_STEPS=%s\n' "$only_steps"
  printf '    %s\n' "${results[@]}"
}

# Services that were already running (a local stack uses them) are left running.
started_services=1
# Captured first: `status | grep -q` under pipefail fails when grep's early exit cuts
# status off (SIGPIPE), which made reused services look stopped.
services_status="$(scripts/dev-services.sh status 2>/dev/null || true)"
if grep -q '^postgres: running' <<<"$services_status" &&
  grep -q '^moto: running' <<<"$services_status"; then
  started_services=0
fi
cleanup() {
  if [ "$started_services" = 1 ]; then
    scripts/dev-services.sh down >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

# Setup failures stop the run: nothing after them can mean anything.
ensure_rust_tools || exit 1
ensure_venv || exit 1
# Services it starts itself neither replay nor record moto's state (DEV_SERVICES_RECORD=0):
# a run starts from an empty emulator, leaves the developer's recording as it was, and
# costs CI nothing.
services_env="$(DEV_SERVICES_RECORD=$((1 - started_services)) scripts/dev-services.sh up)" || { echo "error: the dev services did not start" >&2; exit 1; }
eval "$services_env"

step fmt cargo fmt --all -- --check
# SQLX_OFFLINE=true: the lint build also proves the workspace builds with no database.
# Every crate lists only the dependencies it uses (ours: vendor/ holds a patched crates.io
# crate as published); one HTTP/TLS stack, no SSO clients.
step machete cargo machete shared functions testkit local
step deps scripts/check-deps.sh
# Every function, queue and the API has its alarms (scripts/operations.py --check).
step operations "$ENCACHE_VENV/bin/python" scripts/operations.py --check
# What a restart of the dev services replays of moto's recording (scripts/dev-services.sh).
step moto-recording "$ENCACHE_VENV/bin/python" scripts/lib/moto_recording.py self-check
step clippy env SQLX_OFFLINE=true cargo clippy --workspace --all-targets --locked -- -D warnings
step sqlx-data scripts/sqlx-data.sh check
step actionlint "$ENCACHE_VENV/bin/actionlint" -shellcheck "$ENCACHE_VENV/bin/shellcheck" .github/workflows/*.yml
# The workflows' security audit, offline (.github/zizmor.yml lists the justified ignores).
step zizmor "$ENCACHE_VENV/bin/zizmor" --offline --no-progress .github/workflows
step openapi "$ENCACHE_VENV/bin/openapi-spec-validator" docs/openapi.yaml
step tests env SQLX_OFFLINE=true cargo nextest run --workspace --locked --profile ci
# The API against docs/openapi.yaml: schemathesis on the local stack, bounded, fixed seed.
step api-fuzz scripts/api-fuzz.sh
# Infrastructure (scripts/check-infra.sh): Terraform, the contracts, the linters, and an
# apply -> plan -> destroy of devops/ against the running moto emulator, its state in the
# S3 bucket of devops/bootstrap (applied first, its roles asserted by check-bootstrap.py).
for c in tf-fmt:fmt tf-validate:validate contracts:contracts cfn-lint:cfn-lint sam-validate:sam checkov:checkov tf-emulator:emulator; do
  step "${c%%:*}" scripts/check-infra.sh "${c#*:}"
done
# The deploy rehearsal: the real deploy's steps, in order, against an emulator of its own
# and the local runtime (scripts/deploy.sh rehearsal), then the link-breaking tests.
step rehearsal env SQLX_OFFLINE=true scripts/deploy.sh rehearsal
step rehearsal-breaks env SQLX_OFFLINE=true scripts/rehearsal-breaks.sh
# Packaging (sam build, release, arm64) compiles the whole workspace again: opt-in.
if [ "${ENCACHE_SAM_BUILD:-0}" = 1 ]; then
  step sam-build scripts/build.sh
fi

summary
# A name that matched no step is a typo, not a pass.
if [ -n "$only_steps" ]; then
  IFS=, read -ra wanted <<<"$only_steps"
  for w in "${wanted[@]}"; do
    # A here-string, not a pipe: grep -q's early exit would fail the pipe (pipefail).
    if ! grep -Eq "^(PASS|FAIL)  $w \(" <<<"$(printf '%s\n' "${results[@]}")"; then
      echo "error: ENCACHE_TEST_STEPS names $w, which is no step of scripts/test.sh" >&2
      failed=$((failed + 1))
    fi
  done
fi
if [ "$failed" -ne 0 ]; then
  echo "$failed check(s) failed" >&2
  exit 1
fi
echo "all checks passed"
