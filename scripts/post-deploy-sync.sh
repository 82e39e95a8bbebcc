#!/usr/bin/env bash
# Copies a deployed stack's CloudFormation outputs into SSM under /encache/ENV/stack/,
# where Terraform reads them. Run by the deploy script right after `sam deploy`; the
# StackSyncFunction does the same on every stack status change, and both are idempotent.
#
# Usage: scripts/post-deploy-sync.sh ENV STACK [--dry-run]
#   e.g. scripts/post-deploy-sync.sh dev encache-dev
#        scripts/post-deploy-sync.sh prod encache-prod --dry-run   # print the plan only
#
# Uses the AWS credentials and region of the environment (AWS_PROFILE, AWS_REGION, ...);
# AWS_ENDPOINT_URL points it at the local emulator. Exit status: 0 synced, 1 some
# outputs invalid or not written (listed in the plan), 2 the stack could not be read.
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

[ $# -ge 2 ] || die "usage: $0 ENV STACK [--dry-run]"
env_name="$1" stack="$2"
shift 2

# A prebuilt CLI (STACK_SYNC_CLI or on PATH) skips the build, e.g. in a deploy pipeline.
cli="${STACK_SYNC_CLI:-$(command -v stack-sync-cli || true)}"
if [ -z "$cli" ]; then
  cd "$ENCACHE_ROOT"
  use_shared_target_dir
  log "building stack-sync-cli"
  # The dev profile: a dozen API calls do not need the release profile's LTO build time.
  cargo build --quiet --locked -p encache-stack-sync --bin stack-sync-cli
  cli="$CARGO_TARGET_DIR/debug/stack-sync-cli"
fi

log "syncing the outputs of stack $stack into /encache/$env_name/stack/"
exec "$cli" --stack "$stack" --env "$env_name" "$@"
