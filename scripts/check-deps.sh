#!/usr/bin/env bash
# The dependency guard (run by scripts/test.sh): one HTTP/TLS stack and one crypto
# provider across the AWS SDK, reqwest and sqlx, and no SSO clients in a Lambda binary
# (credentials come from the Lambda environment). Fails naming each banned crate and the
# path that pulls it in, so a feature that brings the SDK's legacy stack back shows here.
#   ring                 a second crypto provider next to aws-lc
#   hyper 0.x, h2 0.3, rustls 0.21, hyper-rustls 0.24
#                        the SDK's legacy HTTP stack (its `rustls` feature)
#   aws-sdk-sso, aws-sdk-ssooidc
#                        aws-config's `sso` feature
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
cd "$ENCACHE_ROOT"

banned=(ring hyper@0 h2@0.3 rustls@0.21 hyper-rustls@0.24 aws-sdk-sso aws-sdk-ssooidc)
failed=0
for spec in "${banned[@]}"; do
  # `cargo tree -i` names the crate's dependents; no match means the crate is absent.
  if out="$(cargo tree --locked -e normal --workspace --target all -i "$spec" 2>/dev/null)" && [ -n "$out" ]; then
    printf 'BANNED  %s is linked:\n%s\n' "$spec" "$(head -n 12 <<<"$out")"
    failed=$((failed + 1))
  else
    printf 'ok      no %s\n' "$spec"
  fi
done
[ "$failed" -eq 0 ] || die "$failed banned crate(s) in the dependency tree (see above)"
echo "dependencies: one HTTP/TLS stack (hyper 1, rustls 0.23, aws-lc), no SSO clients"
