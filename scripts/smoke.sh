#!/usr/bin/env bash
# Smoke test of a deployed API, run by scripts/deploy.sh as its last step (and by hand):
#   health 200; /v1/me and /v1/memories 401 without a token; then a throwaway smoke user
#   signs up (through the user pool's wired triggers), gets a token, and: GET /v1/me is 200
#   with its own profile, an upload round trip reaches "ready", a conversation is created
#   and listed. The user and its data are removed afterwards (DELETE /v1/me, then the
#   Cognito user), whatever failed. The first failure names its check; exit 1.
#
#   scripts/smoke.sh ENV API_URL
#     e.g. scripts/smoke.sh dev https://abc123.execute-api.us-east-1.amazonaws.com
#
# Uses the environment's AWS credentials: the pool ids from /encache/ENV/auth/*, sign-up
# with the public client, confirmation, ADMIN_USER_PASSWORD_AUTH sign-in and the user's
# deletion with cognito-idp admin calls. SMOKE_IDENTITY=encache-local (the rehearsal)
# signs up through encache-local instead: the emulator never calls triggers; it does.
# SMOKE_EMAIL_DOMAIN: a mail domain you own that the pre-sign-up policy allows (Cognito
# mails the user a code; scripts/deploy.sh requires it for a real deploy; example.com
# by default, for the rehearsal).
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
# shellcheck source=lib/infra.sh
source "$(dirname "$0")/lib/infra.sh"
[ $# -eq 2 ] || die "usage: $0 ENV API_URL"
ensure_infra_venv sam
exec "$ENCACHE_INFRA_VENVS/sam/bin/python" "$ENCACHE_ROOT/scripts/smoke.py" "$@"
