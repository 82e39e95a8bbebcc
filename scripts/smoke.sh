#!/usr/bin/env bash
# Smoke test of a deployed API: health answers 200, and an authenticated route answers
# 401 without a token (the JWT authorizer is in front of it).
#   scripts/smoke.sh https://abc123.execute-api.us-east-1.amazonaws.com
set -euo pipefail
url="${1:?usage: scripts/smoke.sh API_URL}"
url="${url%/}"

# expect_status WHAT WANT URL
expect_status() {
  local what="$1" want="$2" target="$3" got
  got="$(curl -sS -o /dev/null -w '%{http_code}' --max-time 15 "$target")" || got="no answer"
  if [ "$got" = "$want" ]; then
    printf 'ok    %s: %s -> %s\n' "$what" "$target" "$got"
  else
    printf 'FAIL  %s: %s -> %s (expected %s)\n' "$what" "$target" "$got" "$want" >&2
    return 1
  fi
}

# A cold start in the VPC can take a few seconds: retry health briefly.
for attempt in 1 2 3 4 5; do
  if expect_status "health" 200 "$url/v1/health"; then break; fi
  [ "$attempt" -lt 5 ] || exit 1
  sleep 3
done
expect_status "authenticated route without a token" 401 "$url/v1/me"
expect_status "memory feed without a token" 401 "$url/v1/memories"
echo "smoke test passed"
