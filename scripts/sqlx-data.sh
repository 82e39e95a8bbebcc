#!/usr/bin/env bash
# sqlx's offline query data (.sqlx/) lets the workspace build with SQLX_OFFLINE=true and
# no database. This script regenerates it or checks that it is current, the way
# `cargo sqlx prepare` does, without needing sqlx-cli: it compiles the crates that use
# query macros against a freshly migrated database with SQLX_OFFLINE_DIR set, which
# makes the macros write their data there.
#
#   scripts/sqlx-data.sh update   rewrite .sqlx/ from the current queries and schema
#   scripts/sqlx-data.sh check    fail if .sqlx/ differs from what the queries produce
#
# Needs the dev services (DATABASE_URL pointing at their cluster).
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
cd "$ENCACHE_ROOT"
use_shared_target_dir

mode="${1:-}"
[[ "$mode" == update || "$mode" == check ]] || { echo "usage: $0 update|check" >&2; exit 2; }
: "${DATABASE_URL:?DATABASE_URL is not set: eval \"\$(scripts/dev-services.sh up)\" first}"

db="sqlx_data_$$"
base="${DATABASE_URL%/*}"
psql "$base/postgres" -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
trap 'psql "$base/postgres" -qc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true; rm -rf "${out:-}"' EXIT
for f in migrations/*.sql; do
  psql "$base/$db" -q -v ON_ERROR_STOP=1 -f "$f" >/dev/null || die "migration $f failed"
done

out="$(mktemp -d)"
# Touch the files with query macros so cargo re-expands them (env changes alone don't).
mapfile -t files < <(grep -rlE 'sqlx::query(_as|_scalar)?!' --include='*.rs' shared functions tests local 2>/dev/null || true)
[ "${#files[@]}" -gt 0 ] && touch "${files[@]}"
DATABASE_URL="$base/$db" SQLX_OFFLINE=false SQLX_OFFLINE_DIR="$out" \
  cargo check --workspace --all-targets --quiet

if [ "$mode" = update ]; then
  rm -rf .sqlx && mkdir -p .sqlx && cp "$out"/query-*.json .sqlx/ 2>/dev/null || true
  log "wrote $(find .sqlx -name 'query-*.json' | wc -l) query files to .sqlx/"
else
  if ! diff -r .sqlx "$out" >/dev/null 2>&1; then
    diff -r .sqlx "$out" | head -20 >&2 || true
    die ".sqlx/ is out of date: run scripts/sqlx-data.sh update and commit .sqlx/"
  fi
  log ".sqlx/ is current ($(find .sqlx -name 'query-*.json' | wc -l) queries)"
fi
