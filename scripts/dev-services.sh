#!/usr/bin/env bash
# Local services for development and tests: a throwaway PostgreSQL 15 cluster and the
# moto AWS emulator, both on loopback, state under .dev/ (git-ignored).
#
#   scripts/dev-services.sh up [SERVICE]    start both, or only `postgres` / `moto` (reuses
#                                           running ones), print env
#   scripts/dev-services.sh env             print the exports for the running services
#   scripts/dev-services.sh status          say what runs
#   scripts/dev-services.sh down [SERVICE]  stop this checkout's PostgreSQL and moto; their
#                                           state stays for the next `up`
#   scripts/dev-services.sh reset           stop both and forget the emulator's recorded state
#                                           (the database's data stays: drop it with SQL)
#
# Restarts keep state: PostgreSQL's data directory stays, and moto (which keeps everything
# in memory) records every request it serves to $ENCACHE_DEV_DIR/services/moto-recording.jsonl;
# a fresh `up` compacts that file (scripts/lib/moto_recording.py: reads, SQS messages and
# sign-ins dropped) and replays it, so user pools (same ids: moto's HASH id strategies),
# users and passwords, buckets and objects, queues and parameters are back. Users get new
# `sub`s (the API relinks them to their rows by verified email), and queues start empty.
# DEV_SERVICES_RECORD=0 starts moto with neither recording nor replay (scripts/test.sh
# does so for services it starts itself, so CI and a test run leave no state behind).
#
# Use: eval "$(scripts/dev-services.sh up)"
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

STATE="$ENCACHE_DEV_DIR/services"
ENV_FILE="$STATE/env"
WAIT_SECONDS="${DEV_SERVICES_WAIT_SECONDS:-60}"
RECORDING="$STATE/moto-recording.jsonl"
RECORD="${DEV_SERVICES_RECORD:-1}"
# A replay re-sends every kept request (an S3 object's bytes too, base64 in the file): past
# this size `up` says so, since each restart then takes longer and the file only grows.
RECORDING_WARN_MB="${DEV_SERVICES_RECORDING_WARN_MB:-256}"

# PostgreSQL refuses to run as root, and the `postgres` user must be able to reach its
# data directory; when the work tree is not reachable by it (e.g. a private temp dir),
# the cluster lives in a folder of its own under /tmp instead.
pg_dir() {
  if [ -f "$STATE/pg_dir" ]; then cat "$STATE/pg_dir"; return; fi
  local dir="$STATE/pg"
  if [ "$(id -u)" -eq 0 ]; then
    mkdir -p "$dir"
    chown postgres: "$dir" 2>/dev/null || true
    if ! runuser -u postgres -- test -w "$dir" 2>/dev/null; then
      dir="/tmp/encache-pg-$(printf '%s' "$ENCACHE_ROOT" | sha256sum | cut -c1-10)"
      mkdir -p "$dir" && chmod 755 "$dir" && chown postgres: "$dir"
    fi
  fi
  mkdir -p "$dir"
  echo "$dir" >"$STATE/pg_dir"
  echo "$dir"
}

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

ensure_postgres() {
  if [ ! -x "$PG_BIN/initdb" ]; then
    apt_install postgresql-15
  fi
  [ -x "$PG_BIN/initdb" ] || die "PostgreSQL 15 binaries not found under $PG_BIN (set PG_BIN)"
  if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
    die "running as root but there is no 'postgres' user to run the cluster as (install postgresql-15)"
  fi
}

pg_running() {
  local dir; dir="$(pg_dir)"
  [ -f "$dir/data/postmaster.pid" ] && as_pg "$PG_BIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1
}

start_postgres() {
  ensure_postgres
  local dir port; dir="$(pg_dir)"
  if pg_running; then
    port="$(cat "$STATE/pg_port")"
    log "PostgreSQL already running on 127.0.0.1:$port"
    return 0
  fi
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    log "initialising a throwaway PostgreSQL 15 cluster"
    as_pg "$PG_BIN/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 \
      || die "initdb failed: see $dir/initdb.log"
  fi
  mkdir -p "$dir/run"; [ "$(id -u)" -ne 0 ] || chown postgres: "$dir/run"
  ensure_tls "$dir"
  write_pg_hba "$dir/data/pg_hba.conf"
  port="$(free_port)"
  log "starting PostgreSQL on 127.0.0.1:$port (TLS on, certificate for localhost/127.0.0.1)"
  as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t "$WAIT_SECONDS" \
    -o "-p $port -k $dir/run -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c synchronous_commit=off -c max_connections=200 -c ssl=on -c ssl_cert_file=$dir/tls/server.crt -c ssl_key_file=$dir/tls/server.key" \
    start >/dev/null || die "PostgreSQL did not start: see $dir/postgres.log"
  echo "$port" >"$STATE/pg_port"
  wait_until "$WAIT_SECONDS" postgres "$PG_BIN/pg_isready" -h 127.0.0.1 -p "$port" \
    || die "PostgreSQL did not accept connections within ${WAIT_SECONDS}s: see $dir/postgres.log"
  psql -h 127.0.0.1 -p "$port" -U postgres -qtAc "SELECT 1 FROM pg_database WHERE datname='encache'" | grep -q 1 \
    || psql -h 127.0.0.1 -p "$port" -U postgres -qc "CREATE DATABASE encache" >/dev/null
}

# ensure_tls DIR: a local CA and a server certificate for localhost and 127.0.0.1, made
# once. The functions verify the server as they verify RDS (sslmode=verify-full): in AWS
# against the RDS CA bundle they embed, here against this CA, which the local runtime
# hands them as PGSSLROOTCERT (libpq's name; the tests and psql read it too).
ensure_tls() {
  local tls="$1/tls"
  [ -f "$tls/server.crt" ] && [ -f "$tls/ca.pem" ] && return 0
  command -v openssl >/dev/null || apt_install openssl
  mkdir -p "$tls"
  log "making the local database's CA and server certificate ($tls)"
  (
    cd "$tls"
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 -keyout ca.key -out ca.pem \
      -subj "/CN=encache local database CA" -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign"
    openssl req -newkey rsa:2048 -nodes -sha256 -keyout server.key -out server.csr -subj "/CN=localhost"
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' >server.ext
    openssl x509 -req -sha256 -days 3650 -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
      -extfile server.ext -out server.crt
    rm -f server.csr server.ext ca.srl ca.key
  ) >"$1/tls.log" 2>&1 || die "could not make the local database's certificates: see $1/tls.log"
  chmod 600 "$tls/server.key"; chmod 644 "$tls/ca.pem" "$tls/server.crt"; chmod 755 "$tls"
  [ "$(id -u)" -ne 0 ] || chown -R postgres: "$tls"
}

# write_pg_hba FILE: the superuser `postgres` (tests, scripts) without a password on
# loopback; every other role (the functions' application role) with its SCRAM password,
# as on RDS, so a wrong or rotated password fails here as it does there.
write_pg_hba() {
  local tmp; tmp="$(mktemp)"
  cat >"$tmp" <<'HBA'
# Written by scripts/dev-services.sh on every start.
local all all                trust
host  all postgres 127.0.0.1/32 trust
host  all all      127.0.0.1/32 scram-sha-256
HBA
  if [ "$(id -u)" -eq 0 ]; then install -o postgres -m 600 "$tmp" "$1"; else install -m 600 "$tmp" "$1"; fi
  rm -f "$tmp"
}

stop_postgres() {
  [ -f "$STATE/pg_dir" ] || return 0
  local dir; dir="$(pg_dir)"
  if pg_running; then
    log "stopping PostgreSQL"
    as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || warn "pg_ctl stop failed"
  fi
}

moto_running() {
  [ -f "$STATE/moto.pid" ] && kill -0 "$(cat "$STATE/moto.pid")" 2>/dev/null
}

moto_answers() {
  "$ENCACHE_VENV/bin/python" - "$1" <<'PY'
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/moto-api/", timeout=1).read()
PY
}

start_moto() {
  local port
  if moto_running; then
    port="$(cat "$STATE/moto_port")"
    log "moto already running on 127.0.0.1:$port"
    return 0
  fi
  ensure_venv
  port="$(free_port)"
  local recorder=() replay=0 counts=
  if [ "$RECORD" != 0 ]; then
    # HASH: a pool's and an app client's ids are a hash of their name and settings, so the
    # replayed CreateUserPool gets the id the env files name.
    recorder=(MOTO_ENABLE_RECORDING=true "MOTO_RECORDER_FILEPATH=$RECORDING"
      MOTO_COGNITO_IDP_USER_POOL_ID_STRATEGY=HASH MOTO_COGNITO_IDP_USER_POOL_CLIENT_ID_STRATEGY=HASH)
    # What was sent, as sent: local passwords and parameter values too. Owner-only.
    touch "$RECORDING" && chmod 600 "$RECORDING"
    if [ -s "$RECORDING" ]; then
      counts="$("$ENCACHE_VENV/bin/python" "$ENCACHE_ROOT/scripts/lib/moto_recording.py" compact "$RECORDING")" \
        || die "could not compact $RECORDING (scripts/dev-services.sh reset forgets it)"
      log "moto's recording: kept ${counts% *} of ${counts#* } requests (reads, SQS messages and sign-ins dropped)"
      [ -s "$RECORDING" ] && replay=1
      recording_size_check
    fi
  fi
  local note=" (not recording: DEV_SERVICES_RECORD=0)"
  [ "$RECORD" = 0 ] || note=" (recording to ${RECORDING#"$ENCACHE_ROOT"/})"
  log "starting the moto AWS emulator on 127.0.0.1:$port$note"
  # setsid: the emulator must outlive this script but not be tied to its terminal.
  setsid env ${recorder[@]+"${recorder[@]}"} "$ENCACHE_VENV/bin/python" -m moto.server -H 127.0.0.1 -p "$port" \
    >"$STATE/moto.log" 2>&1 </dev/null &
  echo $! >"$STATE/moto.pid"
  echo "$port" >"$STATE/moto_port"
  wait_until "$WAIT_SECONDS" moto moto_answers "$port" \
    || { stop_moto; die "moto did not answer within ${WAIT_SECONDS}s: see $STATE/moto.log"; }
  if [ "$replay" = 1 ]; then
    local took
    took="$("$ENCACHE_VENV/bin/python" "$ENCACHE_ROOT/scripts/lib/moto_recording.py" replay "$port" "$RECORDING")" \
      || { stop_moto; die "moto could not replay its recording (see $STATE/moto.log); scripts/dev-services.sh reset starts it empty"; }
    log "moto: restored ${counts% *} recorded requests in ${took}s"
  fi
}

recording_size_check() {
  local bytes
  bytes="$(stat -c %s "$RECORDING")"
  if [ "$bytes" -gt $((RECORDING_WARN_MB * 1024 * 1024)) ]; then
    warn "moto's recording is $((bytes / 1024 / 1024)) MiB (over ${RECORDING_WARN_MB} MiB): every restart replays it; scripts/dev-services.sh reset starts the emulator empty"
  fi
}

stop_moto() {
  if moto_running; then
    log "stopping moto"
    local pid; pid="$(cat "$STATE/moto.pid")"
    kill "$pid" 2>/dev/null || true
    # Gone before `up` reads its recording: no request is half-written into a compaction.
    wait_until 10 "moto to stop" moto_stopped "$pid" || warn "moto (pid $pid) is still running"
  fi
  rm -f "$STATE/moto.pid"
}

moto_stopped() { ! kill -0 "$1" 2>/dev/null; }

write_env() {
  local pg moto
  pg="$(cat "$STATE/pg_port")"; moto="$(cat "$STATE/moto_port")"
  cat >"$ENV_FILE" <<ENV
export DATABASE_URL=postgres://postgres@127.0.0.1:$pg/encache
export PGHOST=127.0.0.1 PGPORT=$pg PGUSER=postgres PGSSLROOTCERT=$(pg_dir)/tls/ca.pem
export AWS_ENDPOINT_URL=http://127.0.0.1:$moto
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
ENV
}

print_env() {
  [ -f "$ENV_FILE" ] && pg_running && moto_running || die "dev services are not running: scripts/dev-services.sh up"
  cat "$ENV_FILE"
}

cmd="${1:-}"
service="${2:-all}"
case "$service" in all|postgres|moto) ;; *) echo "usage: $0 up|down [postgres|moto]" >&2; exit 2 ;; esac
case "$cmd" in
  up)
    mkdir -p "$STATE"
    [ "$service" = moto ] || start_postgres
    [ "$service" = postgres ] || start_moto
    if [ -f "$STATE/pg_port" ] && [ -f "$STATE/moto_port" ]; then write_env; cat "$ENV_FILE"; fi
    ;;
  env) print_env ;;
  status)
    if pg_running; then echo "postgres: running on 127.0.0.1:$(cat "$STATE/pg_port")"; else echo "postgres: stopped"; fi
    if moto_running; then echo "moto: running on 127.0.0.1:$(cat "$STATE/moto_port")"; else echo "moto: stopped"; fi
    if [ -s "$RECORDING" ]; then
      echo "moto recording: $(wc -l <"$RECORDING") requests, $(($(stat -c %s "$RECORDING") / 1024)) KiB (replayed by the next fresh up; reset forgets it)"
    fi
    ;;
  down)
    mkdir -p "$STATE"
    [ "$service" = postgres ] || stop_moto
    [ "$service" = moto ] || stop_postgres
    rm -f "$ENV_FILE"
    ;;
  reset)
    mkdir -p "$STATE"
    stop_moto
    stop_postgres
    rm -f "$ENV_FILE" "$RECORDING"
    log "forgot the emulator's recorded state; the next up starts it empty"
    ;;
  *) echo "usage: $0 up [postgres|moto] | env | status | down [postgres|moto] | reset" >&2; exit 2 ;;
esac
