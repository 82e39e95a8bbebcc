# Shared helpers for encache's scripts. Source it; it defines functions and never exits
# on its own.

ENCACHE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ENCACHE_DEV_DIR="${ENCACHE_DEV_DIR:-$ENCACHE_ROOT/.dev}"
ENCACHE_VENV="${ENCACHE_VENV:-$ENCACHE_ROOT/.venv}"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"

log() { printf '==> %s\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    die "need root to run: $* (install it yourself or run as root)"
  fi
}

# apt-get install, once, with a clear failure.
apt_install() {
  log "installing Debian packages: $*"
  if [ ! -f "$ENCACHE_DEV_DIR/.apt-updated" ]; then
    as_root apt-get update -qq >/dev/null || die "apt-get update failed (no access to Debian's package registry?)"
    mkdir -p "$ENCACHE_DEV_DIR" && touch "$ENCACHE_DEV_DIR/.apt-updated"
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null \
    || die "apt-get install $* failed"
}

# The project virtualenv, with the pinned requirements installed (only when they change).
ensure_venv() {
  local stamp="$ENCACHE_VENV/.requirements.sha256" want
  want="$(cat "$ENCACHE_ROOT"/requirements/*.txt | sha256sum | cut -d' ' -f1)"
  if [ -x "$ENCACHE_VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  command -v python3 >/dev/null || die "python3 is required (apt-get install python3 python3-venv)"
  if [ ! -x "$ENCACHE_VENV/bin/python" ]; then
    log "creating the project virtualenv in ${ENCACHE_VENV#"$ENCACHE_ROOT"/}"
    python3 -m venv "$ENCACHE_VENV" 2>/dev/null || {
      apt_install python3-venv
      python3 -m venv "$ENCACHE_VENV"
    } || die "could not create a virtualenv at $ENCACHE_VENV"
  fi
  log "installing pinned Python tools (requirements/*.txt)"
  local args=()
  for f in "$ENCACHE_ROOT"/requirements/*.txt; do args+=(-r "$f"); done
  "$ENCACHE_VENV/bin/python" -m pip install -q --disable-pip-version-check --prefer-binary "${args[@]}" \
    || die "pip install failed; see the output above"
  echo "$want" >"$stamp"
}

# Rust tools the tests need: rustup components, cargo-nextest, cargo-machete.
ensure_rust_tools() {
  command -v cargo >/dev/null || die "cargo is required: install Rust with rustup (https://rustup.rs)"
  if command -v rustup >/dev/null; then
    for c in rustfmt clippy; do
      rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c" >/dev/null 2>&1 \
        || die "rustup component add $c failed"
    done
  fi
  local tool
  for tool in nextest machete; do
    if ! cargo "$tool" --version >/dev/null 2>&1; then
      log "installing cargo-$tool (one-time, compiles from crates.io)"
      cargo install --locked "cargo-$tool" >/dev/null 2>&1 || die "cargo install cargo-$tool failed"
    fi
  done
}

# One cargo target directory for the workspace. A persistent one outside the clone is
# reused when it exists (CI on a warm machine); otherwise ./target.
use_shared_target_dir() {
  if [ -z "${CARGO_TARGET_DIR:-}" ] && [ -d /var/tmp/encache-target ] && [ -w /var/tmp/encache-target ]; then
    export CARGO_TARGET_DIR=/var/tmp/encache-target
  fi
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ENCACHE_ROOT/target}"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# wait_until SECONDS DESCRIPTION COMMAND...: polls every 0.2 s.
wait_until() {
  local limit="$1" what="$2"; shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}
