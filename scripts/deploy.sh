#!/usr/bin/env bash
# Deploys encache in the one order that works, printing each step with its time and
# stopping at the first failure:
#   1. preflight        tools, the state backend (devops/backend.s3.hcl), AWS
#                       credentials, contracts, operator secrets
#   2. terraform apply  shared infrastructure + every SSM parameter template.yaml reads;
#                       then a plan that must show no changes
#   3. parameters       every /encache/ENV/... parameter the stack reads exists
#   4. build            the functions
#   5. stack            the template with ENV's parameters; its DatabaseSchema custom
#                       resource runs MigrateFunction (the migrations) before the database
#                       functions' new code is deployed
#   6. sync             scripts/post-deploy-sync.sh: stack outputs -> /encache/ENV/stack/
#   7. terraform apply  -var wire_auth_triggers=true: Cognito triggers wired
#   8. smoke            scripts/smoke.sh: a throwaway user signs up through the wired
#                       triggers and uses the API, then is deleted with its data;
#                       (rehearsal) then the database password rotation, invoked as its
#                       schedule would, and a fresh connection after it
#   (rehearsal) 9. rollback drill: scripts/rollback.sh moves every live alias back
# Every deploy posts started / succeeded / failed at step N / rolled back to the
# environment's Discord channel (scripts/lib/notify.py; never fails the deploy), and
# records each function's live version before the stack changes (scripts/rollback.sh).
#
#   scripts/deploy.sh dev|stage|prod      a real deploy (AWS_PROFILE / AWS_REGION)
#       ENCACHE_BUILD_ARTIFACT=x.tar.gz ENCACHE_BUILD_SHA256=hex: step 4 deploys that packed .aws-sam/build (CI's), sha256-checked, instead of building
#   scripts/deploy.sh rehearsal [dev|stage|prod]
#       the same steps, in the same order, on this machine: a moto AWS emulator of its
#       own, a database of its own in the local PostgreSQL (Terraform's existing-database
#       variant), the local runtime (encache-local) in place of Lambda + API Gateway, and
#       samconfig.toml's [ENV] parameters. Everything it made is removed at the end.
#       For tests: REHEARSAL_DB_SEED=file.sql starts from a database in that state;
#       ENCACHE_BIN_DIR=dir uses functions already built there (the build step checks
#       them instead of building).
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
# shellcheck source=lib/infra.sh
source "$(dirname "$0")/lib/infra.sh"
cd "$ENCACHE_ROOT"

target="${1:-}"
case "$target" in
  dev | stage | prod) env_name="$target" ;;
  rehearsal)
    env_name="${2:-dev}"
    case "$env_name" in dev | stage | prod) ;; *) die "usage: $0 rehearsal [dev|stage|prod]" ;; esac
    ;;
  *) die "usage: $0 dev|stage|prod  |  $0 rehearsal [dev|stage|prod]" ;;
esac
what="$([ "$target" = rehearsal ] && echo "rehearsal of $env_name" || echo "deploy to $env_name")"

total=$([ "$target" = rehearsal ] && echo 9 || echo 8)
current=0
step_name=""
step_started=$SECONDS
started=$SECONDS
step() {
  [ "$current" -eq 0 ] || printf '    (%ss)\n' "$((SECONDS - step_started))"
  current=$((current + 1))
  step_name="$1"
  step_started=$SECONDS
  printf '\n==> [%d/%d] %s\n' "$current" "$total" "$step_name"
}
# discord_summary LOG: what the rehearsal's fake Discord accepted and rejected.
discord_summary() {
  local titles
  sleep 0.5 # it prints what it received every 300 ms
  titles="$(grep -o '"title": "[^"]*"' "$1" | sed 's/"title": //' | paste -sd',' || true)"
  printf 'fake Discord: %s message(s) accepted [%s], %s rejected\n' \
    "$(grep -c '^accepted:' "$1" || true)" "$titles" "$(grep -c '^rejected' "$1" || true)" >&2
}
# Rehearsal only: what it started and made, undone whatever happened.
teardown_steps=()
teardown() {
  local i
  for ((i = ${#teardown_steps[@]} - 1; i >= 0; i--)); do
    eval "${teardown_steps[$i]}" || warn "teardown: '${teardown_steps[$i]}' failed"
  done
}
# notify STATUS TITLE [DETAIL]: the environment's Discord channel (never fails the deploy).
notify() {
  [ -n "${py:-}" ] && [ -n "${notify_ready:-}" ] || return 0
  "$py" scripts/lib/notify.py "$env_name" "$@" || true
}
on_exit() {
  local rc=$?
  if [ $rc -ne 0 ]; then
    printf '\nerror: %s stopped at step %d/%d (%s); nothing after it ran.\n' \
      "$what" "$current" "$total" "$step_name" >&2
    local status=failed
    # A stack update that failed (a hook's Failed, an alarm during the shift, a FAILED
    # migration) ends with CloudFormation rolling back: say so, with the stack's status.
    if [ "$step_name" = "${stack_step:-}" ] && [ "$target" != rehearsal ]; then
      local stack_status
      stack_status="$("$py" -c 'import sys, boto3; print(boto3.client("cloudformation").describe_stacks(StackName=sys.argv[1])["Stacks"][0]["StackStatus"])' "$stack_name" 2>/dev/null || true)"
      case "$stack_status" in *ROLLBACK*) status=rolled-back ;; esac
    fi
    notify "$status" "$what stopped at step $current/$total ($step_name)" "${last_error:-see the deploy log}"
  else
    printf '    (%ss)\n' "$((SECONDS - step_started))"
    notify succeeded "$what in $((SECONDS - started))s" "${success_detail:-}"
  fi
  if [ ${#teardown_steps[@]} -gt 0 ]; then
    log "teardown"
    teardown
  fi
  printf '%s: %s in %ss\n' "$what" "$([ $rc -eq 0 ] && echo passed || echo FAILED)" "$((SECONDS - started))" >&2
}
trap on_exit EXIT
# die, remembering the cause for the failure notification.
die() {
  last_error="$*"
  printf 'error: %s\n' "$*" >&2
  exit 1
}
notify_ready=1

sam_env
terraform_env
py="$ENCACHE_INFRA_VENVS/sam/bin/python" # has boto3
export AWS_REGION="${AWS_REGION:-us-east-1}"
tf_dir="$DEVOPS_DIR"
tf_vars=()
# devops/'s S3 backend: the account's state bucket (devops/bootstrap's backend_config
# output); step 2 adds this environment's key.
backend_config="${ENCACHE_TF_BACKEND_CONFIG:-$DEVOPS_DIR/backend.s3.hcl}"
mkdir -p "$ENCACHE_DEV_DIR"

# ---------------------------------------------------------------- the rehearsal's world
if [ "$target" = rehearsal ]; then
  ensure_venv
  work="$(mktemp -d "${TMPDIR:-/tmp}/encache-rehearsal.XXXXXX")"
  teardown_steps+=("rm -rf '$work'")

  # A moto emulator of its own: nothing shared with tests or a local stack, and
  # stopping it removes whatever a failed run left in it.
  moto_port="$(free_port)"
  setsid "$ENCACHE_VENV/bin/python" -m moto.server -H 127.0.0.1 -p "$moto_port" \
    >"$work/moto.log" 2>&1 </dev/null &
  moto_pid=$!
  teardown_steps+=("kill $moto_pid 2>/dev/null; wait $moto_pid 2>/dev/null || true")
  export AWS_ENDPOINT_URL="http://127.0.0.1:$moto_port"
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  unset AWS_PROFILE AWS_SESSION_TOKEN
  wait_until 30 moto curl -sf "$AWS_ENDPOINT_URL/moto-api/" || die "the rehearsal's AWS emulator did not start: see $work/moto.log"

  # A database of its own in the local PostgreSQL: what Terraform's existing-database
  # variant points the stack at (the emulator cannot run RDS).
  # The dev services stay up if they were already running (tests, a local stack).
  # Captured first: `status | grep -q` under pipefail fails whenever grep's early exit
  # cuts status off (SIGPIPE), and the rehearsal then stopped services it only reused.
  services_status="$(scripts/dev-services.sh status 2>/dev/null || true)"
  if ! grep -q '^postgres: running' <<<"$services_status"; then
    teardown_steps+=("scripts/dev-services.sh down >/dev/null 2>&1")
  fi
  services_env="$(scripts/dev-services.sh up)" || die "the local PostgreSQL did not start (scripts/dev-services.sh up)"
  pg_env="$(printf '%s\n' "$services_env" | grep -E '^export (PGHOST|PGPORT|PGUSER)=')"
  eval "$pg_env"
  db_name="encache_rehearsal_$(date +%s)_$$"
  psql -qc "CREATE DATABASE $db_name" >/dev/null || die "could not create the rehearsal database"
  teardown_steps+=("psql -qc 'DROP DATABASE IF EXISTS $db_name WITH (FORCE)' >/dev/null")
  if [ -n "${REHEARSAL_DB_SEED:-}" ]; then
    psql -q -v ON_ERROR_STOP=1 -d "$db_name" -f "$REHEARSAL_DB_SEED" >/dev/null || die "REHEARSAL_DB_SEED failed"
  fi

  # Terraform runs on a copy of devops/ whose AWS provider points at the emulator.
  emulator_devops_copy "$work/tf"
  tf_dir="$work/tf/devops"
  # The account's one-time bootstrap, as an operator applies it (devops/bootstrap): the
  # state bucket step 2 keeps this environment's state in (S3 backend, lock file) and the
  # GitHub OIDC roles. Its backend_config output is the rehearsal's devops/backend.s3.hcl.
  # (Its lifecycle rule is left out: the AWS provider waits a minute for it to settle;
  # scripts/check-infra.sh emulator applies and checks the whole bootstrap.)
  boot_started=$SECONDS
  emulator_bootstrap "$work/tf/devops/bootstrap" "$work/bootstrap.log" -var enable_state_lifecycle=false \
    || { cat "$work/bootstrap.log" >&2; die "devops/bootstrap did not apply to the rehearsal's emulator"; }
  backend_config="$work/backend.s3.hcl"
  emulator_state_backend "$work/tf/devops/bootstrap" "$AWS_ENDPOINT_URL" "$backend_config" \
    || die "could not write the rehearsal's backend configuration from devops/bootstrap's outputs"
  log "rehearsal: devops/bootstrap applied in $((SECONDS - boot_started))s: state bucket $(terraform -chdir="$work/tf/devops/bootstrap" output -raw state_bucket), GitHub OIDC roles"
  # The operator's inputs as the example gives them, then what the emulator cannot run.
  tf_vars=(-var-file="$DEVOPS_DIR/terraform.tfvars.example" -var-file="$DEVOPS_DIR/emulator.tfvars" -var enable_rds=false
    -var existing_db_host="$PGHOST" -var existing_db_port="$PGPORT"
    -var existing_db_name="$db_name" -var existing_db_username="$PGUSER")
  export TF_VAR_db_password=rehearsal-local-trust
  # The operator's secrets: the contract's examples (nothing real leaves this machine),
  # with the Discord webhook on the tests' fake Discord (it enforces Discord's limits):
  # the deploy notifications and the stack's alerts are checked, not sent anywhere.
  emulator_operator_inputs "$work" contracts/ssm-parameters.json
  fake_discord="${ENCACHE_BIN_DIR:-$CARGO_TARGET_DIR/debug}/fake-discord"
  if [ -z "${ENCACHE_BIN_DIR:-}" ]; then
    (use_shared_target_dir && cargo build --quiet --locked -p encache-testkit --bin fake-discord) \
      || die "could not build the fake Discord (cargo build -p encache-testkit --bin fake-discord)"
  fi
  [ -x "$fake_discord" ] || die "no fake Discord at $fake_discord"
  "$fake_discord" >"$work/discord.log" 2>&1 &
  discord_pid=$!
  teardown_steps+=("kill $discord_pid 2>/dev/null; wait $discord_pid 2>/dev/null || true")
  teardown_steps+=("discord_summary '$work/discord.log'")
  wait_until 20 "the fake Discord" grep -q '^webhook URL: ' "$work/discord.log" || die "the fake Discord did not start: $work/discord.log"
  webhook_url="$(sed -n 's/^webhook URL: //p' "$work/discord.log" | head -n 1)"
  "$py" - "$work/operator.auto.tfvars.json" "$webhook_url" <<'PY'
import json, sys
path, url = sys.argv[1:3]
d = json.load(open(path))
d["operator_secrets"]["cost-alerts/discord-webhook"] = url
json.dump(d, open(path, "w"), indent=2)
PY
  TF_VAR_operator_secrets="$("$py" -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["operator_secrets"]))' "$work/operator.auto.tfvars.json")"
  export TF_VAR_operator_secrets
  tf_vars+=(-var-file="$work/operator.auto.tfvars.json")
  log "rehearsal: AWS emulator $AWS_ENDPOINT_URL, database $db_name on $PGHOST:$PGPORT, work dir $work"
fi

# missing_ssm_parameters NAME...: prints the names SSM does not have (one per line).
missing_ssm_parameters() {
  "$py" - "$@" <<'PY'
import sys, boto3
names = sys.argv[1:]
ssm = boto3.client("ssm")
found = set()
for i in range(0, len(names), 10):
    found |= {p["Name"] for p in ssm.get_parameters(Names=names[i:i + 10])["Parameters"]}
print("\n".join(n for n in names if n not in found))
PY
}

# contract_names read_from_stack|written_by_terraform [--with-output]: the contract's
# parameter names for ENV ("name" or "name<TAB>stack output").
contract_names() {
  "$py" - "$env_name" "$@" <<'PY'
import json, sys
c = json.load(open("contracts/ssm-parameters.json"))
prefix = c["parameter_prefix"].replace("{env}", sys.argv[1])
for k, p in c[sys.argv[2]].items():
    print(prefix + k + (("\t" + p["output"]) if "--with-output" in sys.argv[3:] else ""))
PY
}

# The template's /encache/dev/... SSM parameters, renamed for ENV: "LogicalId=Name" lines.
ssm_overrides() {
  "$py" - "$env_name" <<'PY'
import sys, yaml
env = sys.argv[1]
class L(yaml.SafeLoader):
    pass
L.add_multi_constructor("!", lambda loader, suffix, node: None)
t = yaml.load(open("template.yaml"), Loader=L)
for pid, p in (t.get("Parameters") or {}).items():
    d = p.get("Default")
    if isinstance(d, str) and d.startswith("/encache/dev/"):
        print(f"{pid}=/encache/{env}/" + d[len("/encache/dev/"):])
PY
}

# terraform_apply VARS...: the full output on failure, its summary otherwise.
terraform_apply() {
  local out="$ENCACHE_DEV_DIR/terraform-apply.log"
  if terraform -chdir="$tf_dir" apply -input=false -auto-approve -no-color "${tf_vars[@]}" \
    -var "env=$env_name" -var "aws_region=$AWS_REGION" "$@" >"$out" 2>&1; then
    grep -E '^(Apply complete|No changes)' "$out" || tail -n 3 "$out"
  else
    cat "$out" >&2
    return 1
  fi
}

# ---------------------------------------------------------------- 1. preflight
step "preflight: tools, credentials, contracts"
command -v curl >/dev/null || die "curl is required"
if [ ! -f "$backend_config" ]; then
  [ -z "${ENCACHE_TF_BACKEND_CONFIG:-}" ] || die "ENCACHE_TF_BACKEND_CONFIG=$ENCACHE_TF_BACKEND_CONFIG does not exist"
  die "devops/backend.s3.hcl is missing: apply devops/bootstrap once per account (README, Deploying), then write its backend_config output there"
fi
# A state of the workspace layout would be left behind: step 2 would start an empty one.
if grep -Eq '^[[:space:]]*(key|dynamodb_table)[[:space:]]*=' "$backend_config" \
  || ! grep -Eq '^[[:space:]]*use_lockfile[[:space:]]*=[[:space:]]*true' "$backend_config"; then
  die "${backend_config#"$ENCACHE_ROOT"/} is not devops/bootstrap's backend_config (use_lockfile = true, no key, no dynamodb_table): move the workspace layout's states first (devops/bootstrap/README.md, Moving an existing state)"
fi
old_state="$DEVOPS_DIR/terraform.tfstate.d/$env_name/terraform.tfstate"
if [ "$target" != rehearsal ] && [ -s "$old_state" ]; then
  die "${old_state#"$ENCACHE_ROOT"/} holds $env_name's state from the workspace layout: push it to the S3 backend first (devops/bootstrap/README.md, Moving an existing state)"
fi
if [ "$target" != rehearsal ] && [ -z "${SMOKE_EMAIL_DOMAIN:-}" ]; then
  die "export SMOKE_EMAIL_DOMAIN: a mail domain you own that the pre-sign-up policy allows (Cognito mails the smoke user a code; example.com would bounce)"
fi
"$py" -c 'import boto3; print("AWS account", boto3.client("sts").get_caller_identity()["Account"])' \
  || die "no usable AWS credentials (set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"
"$py" scripts/check-contracts.py >"$ENCACHE_DEV_DIR/contracts.log" 2>&1 \
  || { cat "$ENCACHE_DEV_DIR/contracts.log" >&2; die "the contracts do not hold (above; scripts/check-infra.sh contracts)"; }
# Write-only secrets must be supplied on every apply (they are never read back).
"$py" - <<'PY' || die "export the secrets above before deploying (README, Deploying)"
import json, os, sys
c = json.load(open("contracts/ssm-parameters.json"))["written_by_terraform"]
need = [k for k, p in c.items() if p["source"] == "operator-secret"]
given = json.loads(os.environ.get("TF_VAR_operator_secrets") or "{}")
missing = [k for k in need if not given.get(k)]
if missing:
    sys.exit("TF_VAR_operator_secrets lacks: " + ", ".join(missing))
PY
# An environment older than its data key (devops/kms.tf): the apply that moves its
# SecureStrings onto the key resends every write-only value and generates the generated
# ones again, so it must bump secrets_version, or SSM's master password would no longer
# be the database's (docs/operations.md, "Database encryption key").
"$py" - "/encache/$env_name/db/password" "alias/encache-$env_name-data" <<'PY' \
  || die "this apply moves the SecureStrings onto the data key: bump secrets_version with it (export TF_VAR_secrets_version=N+1; docs/operations.md, Database encryption key)"
import os, sys, boto3
name, alias = sys.argv[1], sys.argv[2]
found = boto3.client("ssm").describe_parameters(
    ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": [name]}])["Parameters"]
if not found or os.environ.get("TF_VAR_secrets_version"):
    sys.exit(0)
key = found[0].get("KeyId", "alias/aws/ssm")
kms = boto3.client("kms")
try:
    data_key = kms.describe_key(KeyId=alias)["KeyMetadata"]
except kms.exceptions.NotFoundException:
    data_key = None
if data_key and key in (alias, data_key["KeyId"], data_key["Arn"]):
    sys.exit(0)
print(f"{name} is under {key}, not {alias}")
sys.exit(1)
PY
stack_name="$("$py" -c 'import sys,tomllib; print(tomllib.load(open("samconfig.toml","rb"))[sys.argv[1]]["deploy"]["parameters"]["stack_name"])' "$env_name")" \
  || die "samconfig.toml has no [$env_name.deploy.parameters] stack_name"
echo "stack $stack_name, region $AWS_REGION"

# Once the stack exists its trigger ARNs are in SSM: keep the triggers wired in the
# first apply too, so a redeploy never leaves sign-ups without them.
mapfile -t stack_parameters < <(contract_names read_from_stack)
[ ${#stack_parameters[@]} -gt 0 ] || die "contracts/ssm-parameters.json lists no read_from_stack parameters"
missing="$(missing_ssm_parameters "${stack_parameters[@]}")"
wire_now="$([ -z "$missing" ] && echo true || echo false)"

# ---------------------------------------------------------------- 2. terraform apply
step "terraform apply (shared infrastructure, wire_auth_triggers=$wire_now), then plan: no changes"
# One state per environment, dev and prod never planning against each other's resources:
# the key encache/ENV/terraform.tfstate in the account's state bucket, locked by the S3
# lock file beside it. No workspaces: TF_WORKSPACE=default overrides whichever one an
# older checkout selected.
state_key="encache/$env_name/terraform.tfstate"
export TF_WORKSPACE=default
terraform -chdir="$tf_dir" init -input=false -reconfigure -backend-config="$backend_config" \
  -backend-config="key=$state_key" >"$ENCACHE_DEV_DIR/terraform-init.log" 2>&1 \
  || { cat "$ENCACHE_DEV_DIR/terraform-init.log" >&2; die "terraform init failed (backend ${backend_config#"$ENCACHE_ROOT"/}, key $state_key)"; }
echo "terraform state: $state_key (S3 backend, lock file $state_key.tflock)"
if [ "$target" = rehearsal ]; then
  teardown_steps+=("terraform -chdir='$tf_dir' destroy -input=false -auto-approve -no-color $(printf "'%s' " "${tf_vars[@]}") -var env=$env_name -var aws_region=$AWS_REGION >'$work/destroy.log' 2>&1 || { cat '$work/destroy.log'; false; }")
fi
terraform_apply -var "wire_auth_triggers=$wire_now"
# Terraform converges: a plan right after the apply has nothing left to do.
plan_rc=0
terraform -chdir="$tf_dir" plan -input=false -detailed-exitcode -no-color "${tf_vars[@]}" \
  -var "env=$env_name" -var "aws_region=$AWS_REGION" -var "wire_auth_triggers=$wire_now" >"$ENCACHE_DEV_DIR/plan.log" 2>&1 || plan_rc=$?
case $plan_rc in
  0) echo "plan after apply: no changes" ;;
  2) cat "$ENCACHE_DEV_DIR/plan.log"; die "the plan after apply is not empty (Terraform does not converge)" ;;
  *) cat "$ENCACHE_DEV_DIR/plan.log"; die "terraform plan failed" ;;
esac

# ---------------------------------------------------------------- 3. parameters exist
step "preflight: every SSM parameter the stack reads exists"
notify started "$what: infrastructure applied, the stack is next"
# (A failing process substitution would go unnoticed: an empty list would point prod at
# the template's /encache/dev/ defaults.)
listed="$(ssm_overrides)" || die "could not read the template's SSM parameters"
mapfile -t overrides <<<"$listed"
[ -n "$listed" ] && [ ${#overrides[@]} -gt 0 ] || die "template.yaml reads no /encache/dev/ SSM parameter: is it the right template?"
missing="$(missing_ssm_parameters "${overrides[@]#*=}")"
for kv in "${overrides[@]}"; do
  if grep -qxF -- "${kv#*=}" <<<"$missing"; then echo "MISSING ${kv#*=}"; else echo "ok      ${kv#*=}"; fi
done
[ -z "$missing" ] || die "$(grep -c . <<<"$missing") parameter(s) missing: $(paste -sd' ' <<<"$missing") (Terraform does not write them: is contracts/ssm-parameters.json complete?)"

# sam deploy's --parameter-overrides replaces samconfig's list, so merge: samconfig's
# values first, then every SSM parameter name for this env, then this deploy's id (a new
# one reruns the DatabaseSchema custom resource, so every deploy checks the schema).
# The DeployId only grows: a smaller one is how MigrateFunction recognises a rollback, so
# a deployer whose clock is behind the last one's still migrates.
deploy_id="$("$py" - "$stack_name" "$(date -u +%Y%m%d%H%M%S)" <<'PY'
import sys, boto3, botocore
now = int(sys.argv[2])
try:
    stack = boto3.client("cloudformation").describe_stacks(StackName=sys.argv[1])["Stacks"][0]
    last = next((int(p["ParameterValue"]) for p in stack.get("Parameters", []) if p["ParameterKey"] == "DeployId"), 0)
except botocore.exceptions.ClientError:
    last = 0  # the first deploy
print(max(now, last + 1))
PY
)" || die "could not read the stack's last DeployId"
base="$("$py" -c 'import sys,tomllib; print(tomllib.load(open("samconfig.toml","rb"))[sys.argv[1]]["deploy"]["parameters"].get("parameter_overrides",""))' "$env_name")"
merged="$("$py" - "$base" "${overrides[@]}" "DeployId=$deploy_id" <<'PY'
import shlex, sys
pairs = dict(kv.split("=", 1) for kv in shlex.split(sys.argv[1]) if "=" in kv)
pairs.update(kv.split("=", 1) for kv in sys.argv[2:])
# sam reads Key=Value, with double quotes around a value that has spaces.
quote = lambda v: v if v and not any(c in v for c in " \t'\"") else '"' + v.replace('"', '\\"') + '"'
print(" ".join(f"{k}={quote(v)}" for k, v in pairs.items()))
PY
)"

# ---------------------------------------------------------------- 4. build
if [ "$target" = rehearsal ]; then
  use_shared_target_dir
  bin_dir="${ENCACHE_BIN_DIR:-$CARGO_TARGET_DIR/debug}"
  local_cli="$bin_dir/encache-local"
  if [ -n "${ENCACHE_BIN_DIR:-}" ]; then
    step "build (prebuilt functions in $bin_dir)"
  else
    step "build (cargo build: encache-local, stack-sync-cli and every function of the template)"
    cargo build --quiet --locked -p encache-local --bin encache-local -p encache-stack-sync --bin stack-sync-cli
    "$local_cli" --bin-dir "$bin_dir" build
  fi
  for b in encache-local stack-sync-cli; do [ -x "$bin_dir/$b" ] || die "no $b in $bin_dir"; done
  export STACK_SYNC_CLI="$bin_dir/stack-sync-cli" ENCACHE_BIN_DIR="$bin_dir"
  # The local runtime runs the stack as this deploy configures it (no local env files).
  export ENCACHE_PARAMETER_OVERRIDES="$merged" ENCACHE_STACK_NAME="$stack_name" ENCACHE_TEMPLATE="$ENCACHE_ROOT/template.yaml"
elif [ -n "${ENCACHE_BUILD_ARTIFACT:-}" ]; then
  # CI's build, deployed as it is (the same bytes to dev, then prod): never rebuilt here.
  step "build (prebuilt artifact sha256:${ENCACHE_BUILD_SHA256:-?})"
  [ -n "${ENCACHE_BUILD_SHA256:-}" ] || die "ENCACHE_BUILD_ARTIFACT needs ENCACHE_BUILD_SHA256 (the digest its build recorded)"
  [ -f "$ENCACHE_BUILD_ARTIFACT" ] || die "ENCACHE_BUILD_ARTIFACT: no file $ENCACHE_BUILD_ARTIFACT"
  artifact_sha256="$(sha256sum "$ENCACHE_BUILD_ARTIFACT" | cut -d' ' -f1)"
  [ "$artifact_sha256" = "${ENCACHE_BUILD_SHA256,,}" ] \
    || die "$ENCACHE_BUILD_ARTIFACT has sha256 $artifact_sha256, expected ENCACHE_BUILD_SHA256=$ENCACHE_BUILD_SHA256"
  rm -rf .aws-sam/build && mkdir -p .aws-sam/build
  # --touch: the pack's mtimes are 1970 (reproducible), which zipfile (zip_sizes.py) refuses.
  tar -xzf "$ENCACHE_BUILD_ARTIFACT" -C .aws-sam/build --no-same-owner --touch || die "could not unpack $ENCACHE_BUILD_ARTIFACT"
  [ -f .aws-sam/build/template.yaml ] || die "$ENCACHE_BUILD_ARTIFACT has no template.yaml: not a packed .aws-sam/build"
  # The size budget, as scripts/build.sh checks it after `sam build`.
  python3 scripts/zip_sizes.py --check .aws-sam/build || die "a function's zip is over its budget (see above)"
else
  step "build (scripts/build.sh: sam build, arm64)"
  scripts/build.sh
fi

# ---------------------------------------------------------------- 5. the stack
# What scripts/rollback.sh goes back to: every function's live version before this deploy.
record_live_versions() {
  "$py" scripts/lib/aliases.py record "$stack_name" "$env_name" || die "could not record the live versions (scripts/lib/aliases.py record)"
}
if [ "$target" = rehearsal ]; then
  stack_step="stack: encache-local, the template with $env_name's parameters (DatabaseSchema migrates first, then the PreTraffic hooks)"
  step "$stack_step"
  record_live_versions
  api_port="$(free_port)"
  # Buckets and notifications, the custom resources (migrations: a FAILED one stops
  # here), the PreTraffic hooks (a Failed verdict stops here), then the stack record with
  # its outputs, then the API takes traffic.
  "$local_cli" provision --api-url "http://127.0.0.1:$api_port"
  # What sam deploy leaves in Lambda: each function, a version, the live alias on it.
  "$py" scripts/lib/aliases.py publish "$stack_name" "$bin_dir" >"$work/publish.log" \
    || { cat "$work/publish.log" >&2; die "could not publish the functions' versions to the emulator's Lambda"; }
  "$local_cli" start --addr "127.0.0.1:$api_port" >"$work/api.log" 2>&1 &
  api_pid=$!
  teardown_steps+=("kill $api_pid 2>/dev/null; wait $api_pid 2>/dev/null || true")
  wait_until 60 "the local API" curl -s -o /dev/null "http://127.0.0.1:$api_port/" \
    || { cat "$work/api.log" >&2; die "the local API did not start"; }
  echo "API on http://127.0.0.1:$api_port (log: $work/api.log)"
else
  stack_step="sam deploy --config-env $env_name (DatabaseSchema migrates, then CodeDeploy shifts each live alias behind the PreTraffic hook)"
  step "$stack_step"
  record_live_versions
  # The region Terraform and the SSM checks used, not only samconfig.toml's.
  # In CI nothing can answer samconfig's prod change-set prompt: the pipeline's approval
  # is the GitHub environment's required reviewers, before this job starts.
  confirm=()
  if [ -n "${CI:-}" ]; then confirm=(--no-confirm-changeset); fi
  sam deploy --config-env "$env_name" --region "$AWS_REGION" --parameter-overrides "$merged" "${confirm[@]}"
fi

# ---------------------------------------------------------------- 6. post-deploy sync
step "post-deploy sync (stack outputs -> /encache/$env_name/stack/)"
scripts/post-deploy-sync.sh "$env_name" "$stack_name"
# Terraform's next pass reads these: a stack output the sync did not write stops here.
missing="$(missing_ssm_parameters "${stack_parameters[@]}")"
if [ -n "$missing" ]; then
  why="$(contract_names read_from_stack --with-output | grep -F -f <(printf '%s\n' "$missing") | sed 's/\t/ (stack output /; s/$/)/' | paste -sd' ')"
  die "the sync did not write what Terraform reads: $why"
fi

# ---------------------------------------------------------------- 7. terraform apply again
step "terraform apply -var wire_auth_triggers=true (Cognito triggers)"
terraform_apply -var wire_auth_triggers=true

# ---------------------------------------------------------------- 8. smoke
step "smoke test (authenticated, through the wired triggers)"
api_url="$("$py" - "$stack_name" <<'PY'
import sys, boto3
stack = boto3.client("cloudformation").describe_stacks(StackName=sys.argv[1])["Stacks"][0]
print(next(o["OutputValue"] for o in stack.get("Outputs", []) if o["OutputKey"] == "ApiUrl"))
PY
)" || die "the stack has no ApiUrl output"
if [ "$target" = rehearsal ]; then
  SMOKE_IDENTITY=encache-local scripts/smoke.sh "$env_name" "$api_url"
  # The scheduled password rotation, as its schedule would run it, while the API is up;
  # then a database function in a new container (a fresh connection with what SSM holds
  # now) and the running API both still answer.
  "$local_cli" invoke DbRotationFunction --event events/db-rotation-schedule.json >"$work/rotation.log" 2>&1 \
    || { cat "$work/rotation.log" >&2; die "the database password rotation failed (DbRotationFunction)"; }
  grep -q '"step":"finish"' "$work/rotation.log" || { cat "$work/rotation.log" >&2; die "the rotation did not finish"; }
  "$local_cli" invoke HealthFunction --event events/health-get.json >"$work/health-after-rotation.log" 2>&1 \
    && grep -q '"statusCode":200' "$work/health-after-rotation.log" \
    || { cat "$work/health-after-rotation.log" >&2; die "a new connection after the rotation failed (HealthFunction)"; }
  curl -sf "$api_url/v1/health" >/dev/null || die "the API's health route failed after the rotation"
  echo "rotation: the login role's password rotated; a new connection and the API still answer"
else
  scripts/smoke.sh "$env_name" "$api_url"
fi

dashboard_url="$("$py" - "$stack_name" <<'PY' || true
import sys, boto3
stack = boto3.client("cloudformation").describe_stacks(StackName=sys.argv[1])["Stacks"][0]
print(next((o["OutputValue"] for o in stack.get("Outputs", []) if o["OutputKey"] == "DashboardUrl"), ""))
PY
)"
success_detail="$(printf 'API       %s\nDashboard %s' "$api_url" "${dashboard_url:-?}")"

# ---------------------------------------------------------------- 9. rollback drill (rehearsal)
if [ "$target" = rehearsal ]; then
  step "rollback drill: a new version of every function, then scripts/rollback.sh $env_name"
  # As a second deploy would: record what is live, publish new versions, move the aliases.
  record_live_versions
  "$py" scripts/lib/aliases.py publish "$stack_name" "$bin_dir" --new-version >"$work/publish.log" \
    || { cat "$work/publish.log" >&2; die "could not publish the drill's versions"; }
  # Then what on-call runs: every alias back to its recorded version (each one checked).
  scripts/rollback.sh "$env_name" || die "scripts/rollback.sh did not move every alias back"
fi

printf '\n%s: %s\n' "$([ "$target" = rehearsal ] && echo "rehearsed $env_name" || echo "deployed $env_name")" "$api_url"
