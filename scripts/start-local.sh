#!/usr/bin/env bash
# The README's first command: the whole stack of template.yaml on this machine.
#
#   scripts/start-local.sh --init   first run: create a Cognito pool in the AWS emulator and
#                                   write sam-env.local.json + sam-container-env.local.json
#   scripts/start-local.sh          every later run
#   scripts/start-local.sh --watch  ... and reload on save: a change to a function's crate or
#                                   to shared/ rebuilds and replaces only what it affects;
#                                   a template.yaml change re-reads routes and variables
#
# Order (the seed plan's contract): the local env files must exist and hold no
# placeholder Cognito ids -> checked before anything is built; then the local database
# and AWS emulator start (scripts/dev-services.sh) and must pass their health checks in
# time; then the build, provisioning (with the migrations), and the API, whose URL is printed.
#
# Settings (environment): ENCACHE_API_ADDR (127.0.0.1:3000), ENCACHE_ENV_VARS,
# ENCACHE_CONTAINER_ENV_VARS, ENCACHE_TEMPLATE, DEV_SERVICES_WAIT_SECONDS (60),
# START_LOCAL_SKIP_BUILD=1 (use binaries already built; with ENCACHE_LOCAL_BIN),
# ENCACHE_LOCAL_DATABASE_URL (a database other than the dev services' default).
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
cd "$ENCACHE_ROOT"

init=0
watch=()
for arg in "$@"; do
  case "$arg" in
    --init) init=1 ;;
    --watch) watch=(--watch) ;;
    -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
    *) die "unknown option $arg (usage: scripts/start-local.sh [--init] [--watch])" ;;
  esac
done

export ENCACHE_ENV_VARS="${ENCACHE_ENV_VARS:-$ENCACHE_ROOT/sam-env.local.json}"
export ENCACHE_CONTAINER_ENV_VARS="${ENCACHE_CONTAINER_ENV_VARS:-$ENCACHE_ROOT/sam-container-env.local.json}"
export ENCACHE_TEMPLATE="${ENCACHE_TEMPLATE:-$ENCACHE_ROOT/template.yaml}"
export ENCACHE_API_ADDR="${ENCACHE_API_ADDR:-127.0.0.1:3000}"

# 1. The local env files: present and filled in, before any build.
check_env_files() {
  local f
  for f in "$ENCACHE_ENV_VARS" "$ENCACHE_CONTAINER_ENV_VARS"; do
    [ -f "$f" ] || die "missing $(basename "$f"): run scripts/start-local.sh --init (it writes it from $(basename "${f%.json}").example.json and the emulator)"
  done
  local key
  for key in COGNITO_USER_POOL_ID:CognitoUserPoolId COGNITO_APP_CLIENT_ID:CognitoAppClientId; do
    if grep -Eq "\"(${key%%:*}|${key##*:})\"[[:space:]]*:[[:space:]]*\"(REPLACE_WITH[^\"]*|)\"" "$ENCACHE_ENV_VARS"; then
      die "${key%%:*} (Parameters.${key##*:}) in $(basename "$ENCACHE_ENV_VARS") is still a placeholder: run scripts/start-local.sh --init, or put your user pool's ids there"
    fi
  done
}
[ "$init" -eq 1 ] || check_env_files

# 2. The local database and the AWS emulator, health-checked.
log "starting the local database and AWS emulator (scripts/dev-services.sh up, waiting up to ${DEV_SERVICES_WAIT_SECONDS:-60}s)"
services_env="$("$ENCACHE_ROOT/scripts/dev-services.sh" up)" \
  || die "the local database / AWS emulator did not pass their health checks in time (DEV_SERVICES_WAIT_SECONDS=${DEV_SERVICES_WAIT_SECONDS:-60}); see the messages above"
eval "$services_env"
# A database of its own (tests, or a second checkout) instead of the services' default.
if [ -n "${ENCACHE_LOCAL_DATABASE_URL:-}" ]; then export DATABASE_URL="$ENCACHE_LOCAL_DATABASE_URL"; fi
"$PG_BIN/pg_isready" -h "$PGHOST" -p "$PGPORT" >/dev/null 2>&1 \
  || die "the local database at $PGHOST:$PGPORT does not answer its health check"

# 3. The runtime itself (everything else needs it).
use_shared_target_dir
LOCAL_BIN="${ENCACHE_LOCAL_BIN:-$CARGO_TARGET_DIR/debug/encache-local}"
if [ "${START_LOCAL_SKIP_BUILD:-0}" != 1 ]; then
  log "building encache-local"
  cargo build --quiet -p encache-local --bin encache-local || die "cargo build -p encache-local failed"
fi
[ -x "$LOCAL_BIN" ] || die "no encache-local binary at $LOCAL_BIN"

if [ "$init" -eq 1 ]; then
  log "first run: provisioning the emulator and writing the local env files"
  "$LOCAL_BIN" init || die "encache-local init failed"
  check_env_files
else
  "$LOCAL_BIN" sync-env || die "the local env files do not match the running services (see above)"
fi

# 4. Functions, emulated resources and the schema (the template's DatabaseSchema custom
# resource runs MigrateFunction, as in a deploy), API.
if [ "${START_LOCAL_SKIP_BUILD:-0}" != 1 ]; then
  log "building every function of $(basename "$ENCACHE_TEMPLATE") (the first build takes several minutes)"
  "$LOCAL_BIN" build || die "building the functions failed"
fi
log "provisioning the template's buckets, notifications, SSM parameters, custom resources (database migrations), PreTraffic hooks and stack outputs"
"$LOCAL_BIN" provision --api-url "http://$ENCACHE_API_ADDR" || die "provisioning the emulator failed"
log "starting the API on http://$ENCACHE_API_ADDR (Ctrl-C stops it)"
exec "$LOCAL_BIN" start --addr "$ENCACHE_API_ADDR" "${watch[@]}"
