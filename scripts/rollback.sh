#!/usr/bin/env bash
# Rolls ENV back by hand: every function's `live` alias (what the API, the S3/SNS/schedule
# events and the Cognito triggers invoke) goes back to the version it pointed at before
# the last deploy (scripts/deploy.sh records them in SSM /encache/ENV/deploy/), in seconds,
# without a build or a CloudFormation update. Then it notifies Discord.
#
#   scripts/rollback.sh dev|stage|prod [--dry-run] [--function LOGICAL_ID]...
#
# What it does not do (docs/operations.md, "Rolling back"):
#   - a deploy still running: cancel it (`aws cloudformation cancel-update-stack`); the
#     script refuses to race it.
#   - the database: migrations are expand-only, so the older code runs on the newer
#     schema; nothing is migrated down.
#   - CloudFormation still names the newer versions: the next deploy of a fixed commit
#     moves the aliases forward again (to stay back, revert on main and let the pipeline
#     deploy, or promote the previous release tag).
# The deploy rehearsal runs it against its emulator after every rehearsed deploy.
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
# shellcheck source=lib/infra.sh
source "$(dirname "$0")/lib/infra.sh"
cd "$ENCACHE_ROOT"

env_name="${1:-}"
case "$env_name" in dev | stage | prod) shift ;; *) die "usage: $0 dev|stage|prod [--dry-run] [--function LOGICAL_ID]..." ;; esac
sam_env
py="$ENCACHE_INFRA_VENVS/sam/bin/python" # has boto3
export AWS_REGION="${AWS_REGION:-us-east-1}"
stack_name="$("$py" -c 'import sys,tomllib; print(tomllib.load(open("samconfig.toml","rb"))[sys.argv[1]]["deploy"]["parameters"]["stack_name"])' "$env_name")" \
  || die "samconfig.toml has no [$env_name.deploy.parameters] stack_name"
dry_run=false
for a in "$@"; do [ "$a" = --dry-run ] && dry_run=true; done

log "rollback of $stack_name ($AWS_REGION): live aliases back to the versions recorded before the last deploy"
rc=0
out="$("$py" scripts/lib/aliases.py rollback "$stack_name" "$env_name" "$@" 2>&1)" || rc=$?
printf '%s\n' "$out"
if [ "$dry_run" = false ]; then
  summary="$(printf '%s\n' "$out" | grep -E -- '-> v|FAILED|rolled back|nothing to roll back|error' | head -n 30)"
  "$py" scripts/lib/notify.py "$env_name" "$([ $rc -eq 0 ] && echo rolled-back || echo failed)" \
    "rollback by hand ($(id -un 2>/dev/null || echo unknown)@$(hostname -s 2>/dev/null || echo host))" "$summary" || true
fi
exit $rc
