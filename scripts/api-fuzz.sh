#!/usr/bin/env bash
# The API against its description: schemathesis runs docs/openapi.yaml against the local
# stack (every check, every phase it has: examples, coverage, fuzzing and the stateful
# links), with a bounded number of examples and a fixed seed, as a signed-in user.
#
#   scripts/api-fuzz.sh
#
# What it does: the dev services (scripts/dev-services.sh up), a database of its own,
# the local env files written by `encache-local init` into a work folder (a user pool of
# its own, a unique Env and stack name so nothing of another local stack sharing the
# emulator is touched), then scripts/start-local.sh on a free loopback port with that
# database and those files; a user and its ID token (`encache-local user ...`, as the
# README shows); then schemathesis. Afterwards it stops what it started, and only that:
# the API, its database, and the dev services if they were not running before.
#
# A failure fails the script unless the allow-list in scripts/lib/api_fuzz_hooks.py
# names it (API Gateway's own, documented behaviour). Prints one summary line.
#
# Settings (environment): API_FUZZ_MAX_EXAMPLES (per operation and phase, 100),
# API_FUZZ_SEED (20261130), API_FUZZ_KEEP=1 (keep the work folder with the report),
# START_LOCAL_SKIP_BUILD=1 (use binaries already built).
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
cd "$ENCACHE_ROOT"
use_shared_target_dir
# Builds never need a database: the query data in .sqlx/ is enough.
export SQLX_OFFLINE="${SQLX_OFFLINE:-true}"

MAX_EXAMPLES="${API_FUZZ_MAX_EXAMPLES:-100}"
SEED="${API_FUZZ_SEED:-20261130}"

# The allow-list (failures that are API Gateway's own documented behaviour, each with
# the AWS page that documents it) is ALLOWED in scripts/lib/api_fuzz_hooks.py:
# schemathesis drops exactly those failures there and logs each one; any other failure
# fails this script.

ensure_venv
[ -x "$ENCACHE_VENV/bin/schemathesis" ] || die "no schemathesis in $ENCACHE_VENV (requirements/tools.txt)"

work="$(mktemp -d "${TMPDIR:-/tmp}/encache-api-fuzz.XXXXXX")"
started_services=0
api_pid=""
db_name=""
run_id="$(date +%s)$$"

cleanup() {
  local rc=$?
  if [ -n "$api_pid" ] && kill -0 "$api_pid" 2>/dev/null; then
    kill -TERM "$api_pid" 2>/dev/null || true
    wait "$api_pid" 2>/dev/null || true
  fi
  if [ -n "$db_name" ]; then
    psql -qc "DROP DATABASE IF EXISTS $db_name WITH (FORCE)" >/dev/null 2>&1 || warn "could not drop database $db_name"
  fi
  if [ "$started_services" = 1 ]; then
    scripts/dev-services.sh down >/dev/null 2>&1 || true
  fi
  if [ "${API_FUZZ_KEEP:-0}" = 1 ] || [ "$rc" -ne 0 ]; then
    log "work folder kept: $work"
  else
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 1. The dev services, stopped afterwards only when this script started them. Captured
# first: `status | grep -q` under pipefail can fail on SIGPIPE (see scripts/test.sh).
services_status="$(scripts/dev-services.sh status 2>/dev/null || true)"
if ! grep -q '^postgres: running' <<<"$services_status" || ! grep -q '^moto: running' <<<"$services_status"; then
  started_services=1
fi
services_env="$(scripts/dev-services.sh up)" || die "the dev services did not start"
eval "$services_env"

# 2. A database of its own (as the deploy rehearsal makes one), and the local env files
# in the work folder: a new user pool, the database, a unique Env (it names the upload
# bucket and the /encache/{Env}/ parameters) and stack name.
db_name="encache_fuzz_$run_id"
psql -qc "CREATE DATABASE $db_name" >/dev/null || die "could not create the database $db_name"
db_url="postgres://postgres@$PGHOST:$PGPORT/$db_name"
export ENCACHE_ENV_VARS="$work/sam-env.local.json"
export ENCACHE_CONTAINER_ENV_VARS="$work/sam-container-env.local.json"
export ENCACHE_STACK_NAME="encache-fuzz-$run_id"
LOCAL_BIN="${ENCACHE_LOCAL_BIN:-$CARGO_TARGET_DIR/debug/encache-local}"
if [ "${START_LOCAL_SKIP_BUILD:-0}" != 1 ]; then
  cargo build --quiet -p encache-local --bin encache-local || die "cargo build -p encache-local failed"
fi
DATABASE_URL="$db_url" "$LOCAL_BIN" init >"$work/init.log" 2>&1 \
  || { cat "$work/init.log" >&2; die "encache-local init failed"; }
"$ENCACHE_VENV/bin/python" - "$ENCACHE_ENV_VARS" "fuzz$run_id" <<'PY'
import json, sys
path, env = sys.argv[1], sys.argv[2]
doc = json.load(open(path))
doc["Parameters"]["Env"] = env
json.dump(doc, open(path, "w"), indent=2)
PY

# 3. The stack, on a free loopback port (scripts/start-local.sh: sync, build, provision
# with the migrations, then the API).
addr="127.0.0.1:$(free_port)"
base="http://$addr"
log "starting the local stack on $base (database $db_name, log $work/stack.log)"
ENCACHE_API_ADDR="$addr" ENCACHE_LOCAL_DATABASE_URL="$db_url" ENCACHE_LOCAL_BIN="$LOCAL_BIN" \
  scripts/start-local.sh >"$work/stack.log" 2>&1 &
api_pid=$!
# Up to 10 minutes: without START_LOCAL_SKIP_BUILD a cold target directory builds first.
deadline=$((SECONDS + 600))
until curl -sf --max-time 5 "$base/v1/health" >/dev/null 2>&1; do
  if ! kill -0 "$api_pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
    tail -n 40 "$work/stack.log" >&2
    die "the local API did not answer on $base (log $work/stack.log)"
  fi
  sleep 0.5
done

# 4. A user and its ID token (README, "The local stack").
email="fuzz-$run_id@example.com"
password="Fuzz-$run_id-Passw0rd!"
"$LOCAL_BIN" user create "$email" --password "$password" >"$work/user.log" 2>&1 \
  || { cat "$work/user.log" >&2; die "encache-local user create failed"; }
token="$("$LOCAL_BIN" user token "$email" --password "$password" 2>>"$work/user.log")" \
  || { cat "$work/user.log" >&2; die "encache-local user token failed"; }

# 5. schemathesis: every check, every phase, bounded and reproducible (a fixed seed, no
# example database; Hypothesis keeps its files in the work folder). One worker: with
# several, CPython 3.11's parser trips over Hypothesis' lambda descriptions in threads
# ("AST constructor recursion depth mismatch"). The hooks teach the generator what the
# spec states in words only (signed cursors, `after` < `before`) and hold the allow-list.
log "schemathesis: all checks, phases examples,coverage,fuzzing,stateful, at most $MAX_EXAMPLES examples per operation, seed $SEED"
export SCHEMATHESIS_HOOKS="$ENCACHE_ROOT/scripts/lib/api_fuzz_hooks.py"
export API_FUZZ_ALLOWED_LOG="$work/allowed.log"
export HYPOTHESIS_STORAGE_DIRECTORY="$work/hypothesis"
: >"$API_FUZZ_ALLOWED_LOG"
t0=$SECONDS
st_rc=0
"$ENCACHE_VENV/bin/schemathesis" run docs/openapi.yaml \
  --url "$base" \
  --header "Authorization: Bearer $token" \
  --checks all \
  --phases examples,coverage,fuzzing,stateful \
  --max-examples "$MAX_EXAMPLES" \
  --seed "$SEED" \
  --generation-database none \
  --workers 1 \
  --request-timeout 20 \
  --no-color \
  --report json --report-json-path "$work/report.json" \
  >"$work/schemathesis.log" 2>&1 || st_rc=$?

# 6. The verdict: schemathesis' own (the allow-list's failures were dropped by the hooks),
# and one line that says what ran.
"$ENCACHE_VENV/bin/python" - "$work/report.json" "$API_FUZZ_ALLOWED_LOG" "$((SECONDS - t0))" <<'PY'
import json, sys
report, allowed, elapsed = sys.argv[1], sys.argv[2], sys.argv[3]
try:
    r = json.load(open(report))
except (OSError, ValueError):
    print(f"api-fuzz: no report from schemathesis ({elapsed}s)")
    sys.exit(0)
allowed_n = sum(1 for _ in open(allowed))
print(
    f"api-fuzz: {r['operations']['tested']}/{r['operations']['total']} operations, "
    f"{r['test_cases']['generated']} examples, {r['test_cases']['unique_failures']} failures, "
    f"{len(r['errors'])} errors, {allowed_n} allowed (API Gateway), seed {r['seed']}, {elapsed}s"
)
PY
if [ "$st_rc" -ne 0 ]; then
  # What schemathesis said from its first error or failure on (or all of it, if neither).
  if grep -Eq '^=+ (ERRORS|FAILURES) =+$' "$work/schemathesis.log"; then
    sed -En '/^=+ (ERRORS|FAILURES) =+$/,$p' "$work/schemathesis.log" >&2
  else
    cat "$work/schemathesis.log" >&2
  fi
  die "schemathesis found failures the spec does not allow (exit $st_rc; full log $work/schemathesis.log)"
fi
