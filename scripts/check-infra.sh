#!/usr/bin/env bash
# Infrastructure checks (issue 9), one subcommand per scripts/test.sh step:
#   fmt        terraform fmt -check -recursive devops/ (devops/bootstrap included)
#   validate   terraform init from the provider mirror (no network) + validate, of devops/
#              and devops/bootstrap
#   emulator   devops/bootstrap: apply -> scripts/check-bootstrap.py (and its self-test)
#              -> plan (expect no changes), on a moto emulator of its own; then devops/,
#              its state in that emulated state bucket (S3 backend, lock file): apply ->
#              plan (expect no changes) -> existing-database plan -> destroy of the RDS
#              variant against the moto emulator at $AWS_ENDPOINT_URL, in a throwaway copy
#              (the trigger wiring runs for real in the deploy rehearsal); then the
#              bootstrap's destroy
#   checkov    checkov on devops/ (devops/bootstrap included) and template.yaml
#   cfn-lint   cfn-lint template.yaml with the serverless rules
#   sam        sam validate --lint
#   contracts  scripts/check-contracts.py (SSM names, stack outputs, ownership, prod CORS,
#              no secret-bypass variables, TLS-only topics and queues)
#   all        every one of the above
# Skips are written in the checked files with a reason, never here.
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
# shellcheck source=lib/infra.sh
source "$(dirname "$0")/lib/infra.sh"
cd "$ENCACHE_ROOT"

check_fmt() {
  terraform_env
  terraform fmt -check -recursive -diff devops
}

check_validate() {
  terraform_env
  local data dir rc=0
  # devops/ and the account bootstrap (devops/bootstrap), each in a throwaway data dir
  # (the check never touches their .terraform) and without a backend.
  for dir in devops devops/bootstrap; do
    data="$(mktemp -d)"
    echo "$dir:"
    if ! TF_DATA_DIR="$data" terraform -chdir="$dir" init -backend=false -lockfile=readonly >/dev/null \
      || ! TF_DATA_DIR="$data" terraform -chdir="$dir" validate -no-color; then
      rc=1
    fi
    rm -rf "$data"
  done
  return $rc
}

# Writes the emulator provider override and the operator inputs into a copy of devops/.
prepare_emulator_copy() {
  local work="$1"
  emulator_devops_copy "$work"
  # The emulator is shared (tests, encache-local): this run's names must not collide with
  # theirs, so the copy's parameter prefix and resource names carry a run id.
  local run_id="ci$$$RANDOM"
  sed -i "s|\"parameter_prefix\": \"/encache/{env}/\"|\"parameter_prefix\": \"/encache-$run_id/{env}/\"|" \
    "$work/contracts/ssm-parameters.json"
  grep -q "/encache-$run_id/" "$work/contracts/ssm-parameters.json" || die "could not rewrite the parameter prefix"
  printf 'name_prefix = "encache-%s"\necr_repository_name = "encache-base-ml-%s"\n' "$run_id" "$run_id" \
    >"$work/devops/run.auto.tfvars"
  emulator_operator_inputs "$work/devops" "$work/contracts/ssm-parameters.json"
}

check_emulator() {
  terraform_env
  [ -n "${AWS_ENDPOINT_URL:-}" ] || die "AWS_ENDPOINT_URL is not set: eval \"\$(scripts/dev-services.sh env)\" first"
  export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
  export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  local work
  work="$(mktemp -d)"
  prepare_emulator_copy "$work"
  local tf=(terraform -chdir="$work/devops")
  local vars=(-var-file="$ENCACHE_ROOT/devops/emulator.tfvars")
  local rc=0

  # The account bootstrap on an emulator of its own: what it creates is account-wide (the
  # one GitHub OIDC provider, the encache-github-* roles) and would collide with anyone
  # else's run on the shared emulator. Its state bucket then holds devops/'s state.
  local boot="$work/devops/bootstrap" boot_port boot_pid boot_url
  local boot_tf=(terraform -chdir="$boot") boot_vars=(-var-file="$ENCACHE_ROOT/devops/bootstrap/emulator.tfvars")
  boot_port="$(free_port)"
  boot_url="http://127.0.0.1:$boot_port"
  setsid "$ENCACHE_VENV/bin/python" -m moto.server -H 127.0.0.1 -p "$boot_port" >"$work/moto-bootstrap.log" 2>&1 </dev/null &
  boot_pid=$!
  # shellcheck disable=SC2064 # the pid is fixed now
  trap "kill $boot_pid 2>/dev/null || true" EXIT
  AWS_ENDPOINT_URL="$boot_url" emulator_provider_override "$boot"
  wait_until 30 "the bootstrap's emulator" curl -sf "$boot_url/moto-api/" || rc=1
  if [ $rc -eq 0 ]; then
    log "devops/bootstrap: terraform apply (its own emulator, local state in $boot)"
    emulator_bootstrap "$boot" "$work/bootstrap-apply.log" || { cat "$work/bootstrap-apply.log"; rc=1; }
    tail -n 1 "$work/bootstrap-apply.log"
  fi
  if [ $rc -eq 0 ]; then
    log "devops/bootstrap: scripts/check-bootstrap.py on the applied state (then its self-test)"
    "${boot_tf[@]}" show -json >"$work/bootstrap-state.json" \
      && "$ENCACHE_VENV/bin/python" scripts/check-bootstrap.py "$work/bootstrap-state.json" \
        --contract "$work/contracts/ssm-parameters.json" \
      && "$ENCACHE_VENV/bin/python" scripts/check-bootstrap.py --self-test "$work/bootstrap-state.json" \
        --contract "$work/contracts/ssm-parameters.json" || rc=1
  fi
  if [ $rc -eq 0 ]; then
    log "devops/bootstrap: terraform plan -detailed-exitcode (expect no changes)"
    local brc=0
    "${boot_tf[@]}" plan -detailed-exitcode -no-color "${boot_vars[@]}" >"$work/bootstrap-plan.log" 2>&1 || brc=$?
    case $brc in
      0) echo "no changes after apply" ;;
      *) cat "$work/bootstrap-plan.log"; warn "the bootstrap's plan after apply is not empty or failed"; rc=1 ;;
    esac
  fi
  if [ $rc -eq 0 ]; then
    emulator_state_backend "$boot" "$boot_url" "$work/backend.s3.hcl" || rc=1
  fi

  local inited=false
  if [ $rc -eq 0 ]; then
    log "terraform init (provider mirror, S3 backend: the bootstrap's state bucket, key encache/dev/terraform.tfstate)"
    if "${tf[@]}" init -lockfile=readonly -backend-config="$work/backend.s3.hcl" \
      -backend-config=key=encache/dev/terraform.tfstate >/dev/null; then
      inited=true
    else
      rc=1
    fi
  fi
  if [ $rc -eq 0 ]; then
    log "terraform apply (emulator)"
    "${tf[@]}" apply -auto-approve -no-color "${vars[@]}" >"$work/apply.log" 2>&1 || {
      cat "$work/apply.log"; rc=1; }
    tail -n 3 "$work/apply.log"
  fi
  if [ $rc -eq 0 ]; then
    log "terraform plan -detailed-exitcode (expect no changes)"
    local prc=0
    "${tf[@]}" plan -detailed-exitcode -no-color -out="$work/after.tfplan" "${vars[@]}" >"$work/plan.log" 2>&1 || prc=$?
    # moto stores no parameter-group settings, so the one devops/ always sets
    # (rds.force_ssl) reads back as missing: that, and only that, is the emulator's gap.
    if [ $prc -eq 2 ] && "${tf[@]}" show -json "$work/after.tfplan" 2>/dev/null | "$ENCACHE_VENV/bin/python" -c '
import json, sys
changes = [c for c in json.load(sys.stdin).get("resource_changes", []) if c["change"]["actions"] != ["no-op"]]
def only_params(c):
    b, a = c["change"]["before"] or {}, c["change"]["after"] or {}
    return c["type"] == "aws_db_parameter_group" and c["change"]["actions"] == ["update"] and \
        not b.get("parameter") and {k: v for k, v in b.items() if k != "parameter"} == {k: v for k, v in a.items() if k != "parameter" and k in b}
sys.exit(0 if changes and all(only_params(c) for c in changes) else 1)
'; then
      echo "no changes after apply (but the parameter group's settings, which moto does not store)"
      prc=0
    fi
    case $prc in
      0) if grep -q 'No changes' "$work/plan.log"; then echo "no changes after apply"; fi ;;
      2) cat "$work/plan.log"; warn "the plan after apply is not empty (drift)"; rc=1 ;;
      *) cat "$work/plan.log"; rc=1 ;;
    esac
  fi
  if [ $rc -eq 0 ]; then
    log "existing-database variant: plan with enable_rds=false and a given password"
    local prc=0
    "${tf[@]}" plan -detailed-exitcode -no-color "${vars[@]}" -var enable_rds=false \
      -var existing_db_host=db.internal.test -var existing_db_name=encache \
      -var existing_db_username=encache -var db_password=emulator-only >"$work/plan3.log" 2>&1 || prc=$?
    if [ $prc -eq 2 ] && grep -q 'aws_db_instance.main\[0\] will be destroyed' "$work/plan3.log"; then
      echo "an existing database replaces RDS without touching the rest"
    else
      cat "$work/plan3.log"; warn "the existing-database plan failed"; rc=1
    fi
  fi
  if $inited; then
    log "terraform destroy (emulator)"
    if ! "${tf[@]}" destroy -auto-approve -no-color "${vars[@]}" >"$work/destroy.log" 2>&1; then
      cat "$work/destroy.log"; rc=1
    else
      tail -n 1 "$work/destroy.log"
    fi
  fi
  if [ -f "$boot/terraform.tfstate" ]; then
    log "devops/bootstrap: terraform destroy (the state bucket with every state version in it)"
    # Emptied first, while still versioned: destroy suspends versioning before it deletes
    # the bucket, and moto 5.2 then fails (500, forever retried) to delete a key whose
    # versions include delete markers, which every released lock file leaves.
    "$ENCACHE_VENV/bin/python" - "$boot_url" "$("${boot_tf[@]}" output -raw state_bucket 2>/dev/null)" <<'PY' || rc=1
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                  aws_access_key_id="test", aws_secret_access_key="test")
for page in s3.get_paginator("list_object_versions").paginate(Bucket=sys.argv[2]):
    objects = [{"Key": v["Key"], "VersionId": v["VersionId"]}
               for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
    if objects:
        s3.delete_objects(Bucket=sys.argv[2], Delete={"Objects": objects, "Quiet": True})
PY
    if ! "${boot_tf[@]}" destroy -auto-approve -no-color "${boot_vars[@]}" >"$work/bootstrap-destroy.log" 2>&1; then
      cat "$work/bootstrap-destroy.log"; rc=1
    else
      tail -n 1 "$work/bootstrap-destroy.log"
    fi
  fi
  kill "$boot_pid" 2>/dev/null || true
  wait "$boot_pid" 2>/dev/null || true
  rm -rf "$work"
  return $rc
}

check_checkov() {
  ensure_infra_venv checkov
  local co="$ENCACHE_INFRA_VENVS/checkov/bin/checkov"
  local common=(--quiet --compact --skip-download)
  log "checkov devops/"
  "$co" -d devops --framework terraform "${common[@]}" || return 1
  log "checkov template.yaml"
  "$co" -f template.yaml --framework cloudformation "${common[@]}"
}

check_cfn_lint() {
  sam_env
  cfn-lint template.yaml -a cfn_lint_serverless.rules
}

check_sam() {
  sam_env
  sam validate --lint --template-file template.yaml
}

check_contracts() {
  sam_env
  local py="$ENCACHE_INFRA_VENVS/sam/bin/python"
  "$py" scripts/check-contracts.py --self-test && "$py" scripts/check-contracts.py
}

main() {
  local what="${1:-all}"
  case "$what" in
    fmt) check_fmt ;;
    validate) check_validate ;;
    emulator) check_emulator ;;
    checkov) check_checkov ;;
    cfn-lint) check_cfn_lint ;;
    sam) check_sam ;;
    contracts) check_contracts ;;
    all)
      local failed=0 c
      for c in fmt validate contracts cfn-lint sam checkov emulator; do
        log "check-infra $c"
        "$0" "$c" || { warn "check-infra $c failed"; failed=$((failed + 1)); }
      done
      [ $failed -eq 0 ] ;;
    *) die "usage: $0 [fmt|validate|emulator|checkov|cfn-lint|sam|contracts|all]" ;;
  esac
}

main "$@"
