#!/usr/bin/env bash
# Deploys encache to ENV (dev or prod) in the one order that works, printing each step
# and stopping at the first failure:
#   1. preflight        tools, AWS credentials, contracts
#   2. terraform apply  shared infrastructure + every SSM parameter template.yaml reads
#   3. parameters       every /encache/ENV/... parameter the stack reads exists
#   4. build            scripts/build.sh (sam build, rust-cargolambda, arm64)
#   5. sam deploy       --config-env ENV (samconfig.toml), SSM names pointed at ENV
#   6. sync             scripts/post-deploy-sync.sh: stack outputs -> /encache/ENV/stack/
#   7. terraform apply  -var wire_auth_triggers=true: Cognito triggers wired
#   8. smoke            scripts/smoke.sh API_URL
# Uses the AWS credentials and region of the environment (AWS_PROFILE, AWS_REGION).
#   scripts/deploy.sh dev
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
# shellcheck source=lib/infra.sh
source "$(dirname "$0")/lib/infra.sh"
cd "$ENCACHE_ROOT"

env_name="${1:-}"
case "$env_name" in
  dev | prod) ;;
  *) die "usage: $0 dev|prod" ;;
esac

total=8
current=0
step_name=""
step() {
  current=$((current + 1))
  step_name="$1"
  printf '\n==> [%d/%d] %s\n' "$current" "$total" "$step_name"
}
on_exit() {
  local rc=$?
  if [ $rc -ne 0 ]; then
    printf '\nerror: deploy to %s stopped at step %d/%d (%s); nothing after it ran.\n' \
      "$env_name" "$current" "$total" "$step_name" >&2
  fi
}
trap on_exit EXIT

sam_env
terraform_env
py="$ENCACHE_INFRA_VENVS/sam/bin/python" # has boto3
export AWS_REGION="${AWS_REGION:-us-east-1}"

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

# ---------------------------------------------------------------- 1. preflight
step "preflight: tools, credentials, contracts"
command -v curl >/dev/null || die "curl is required"
"$py" -c 'import boto3; print("AWS account", boto3.client("sts").get_caller_identity()["Account"])' \
  || die "no usable AWS credentials (set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"
"$py" scripts/check-contracts.py >/dev/null || die "the contracts do not hold: run scripts/check-infra.sh contracts"
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
stack_name="$("$py" -c 'import sys,tomllib; print(tomllib.load(open("samconfig.toml","rb"))[sys.argv[1]]["deploy"]["parameters"]["stack_name"])' "$env_name")" \
  || die "samconfig.toml has no [$env_name.deploy.parameters] stack_name"
echo "stack $stack_name, region $AWS_REGION"

# Once the stack exists its trigger ARNs are in SSM: keep the triggers wired in the
# first apply too, so a redeploy never leaves sign-ups without them.
wire_now="$("$py" - "$env_name" <<'PY'
import json, sys, boto3
c = json.load(open("contracts/ssm-parameters.json"))
prefix = c["parameter_prefix"].replace("{env}", sys.argv[1])
names = [prefix + k for k in c["read_from_stack"]]
found = boto3.client("ssm").get_parameters(Names=names)["Parameters"]
print("true" if len(found) == len(names) else "false")
PY
)"

# ---------------------------------------------------------------- 2. terraform apply
step "terraform apply (shared infrastructure, wire_auth_triggers=$wire_now)"
if [ -f devops/backend.s3.hcl ]; then
  printf '# Written by scripts/deploy.sh because devops/backend.s3.hcl exists.\nterraform {\n  backend "s3" {}\n}\n' \
    >devops/backend_override.tf
  terraform -chdir=devops init -input=false -backend-config=backend.s3.hcl
else
  terraform -chdir=devops init -input=false
fi
# One state per environment: dev and prod must never plan against each other's resources.
terraform -chdir=devops workspace select -or-create "$env_name"
terraform -chdir=devops apply -input=false -auto-approve -var "env=$env_name" -var "aws_region=$AWS_REGION" \
  -var "wire_auth_triggers=$wire_now"

# ---------------------------------------------------------------- 3. parameters exist
step "preflight: every SSM parameter the stack reads exists"
mapfile -t overrides < <(ssm_overrides)
"$py" - "${overrides[@]}" <<'PY'
import sys, boto3
names = [kv.split("=", 1)[1] for kv in sys.argv[1:]]
ssm = boto3.client("ssm")
found = set()
for i in range(0, len(names), 10):
    found |= {p["Name"] for p in ssm.get_parameters(Names=names[i:i + 10])["Parameters"]}
missing = [n for n in names if n not in found]
for n in names:
    print(("ok      " if n in found else "MISSING ") + n)
sys.exit(f"{len(missing)} parameter(s) missing: is contracts/ssm-parameters.json complete?" if missing else 0)
PY

# ---------------------------------------------------------------- 4. build
step "build (scripts/build.sh)"
scripts/build.sh

# ---------------------------------------------------------------- 5. sam deploy
step "sam deploy --config-env $env_name"
# --parameter-overrides replaces samconfig's list, so merge: samconfig's values first,
# then every SSM parameter name for this env.
base="$("$py" -c 'import sys,tomllib; print(tomllib.load(open("samconfig.toml","rb"))[sys.argv[1]]["deploy"]["parameters"].get("parameter_overrides",""))' "$env_name")"
merged="$("$py" - "$base" "${overrides[@]}" <<'PY'
import shlex, sys
pairs = dict(kv.split("=", 1) for kv in shlex.split(sys.argv[1]) if "=" in kv)
pairs.update(kv.split("=", 1) for kv in sys.argv[2:])
# sam reads Key=Value, with double quotes around a value that has spaces.
quote = lambda v: v if v and not any(c in v for c in " \t'\"") else '"' + v.replace('"', '\\"') + '"'
print(" ".join(f"{k}={quote(v)}" for k, v in pairs.items()))
PY
)"
# The region Terraform and the SSM checks used, not only samconfig.toml's.
sam deploy --config-env "$env_name" --region "$AWS_REGION" --parameter-overrides "$merged"

# ---------------------------------------------------------------- 6. post-deploy sync
step "post-deploy sync (stack outputs -> /encache/$env_name/stack/)"
scripts/post-deploy-sync.sh "$env_name" "$stack_name"

# ---------------------------------------------------------------- 7. terraform apply again
step "terraform apply -var wire_auth_triggers=true (Cognito triggers)"
terraform -chdir=devops apply -input=false -auto-approve -var "env=$env_name" -var "aws_region=$AWS_REGION" \
  -var wire_auth_triggers=true

# ---------------------------------------------------------------- 8. smoke
step "smoke test"
api_url="$("$py" - "$stack_name" <<'PY'
import sys, boto3
stack = boto3.client("cloudformation").describe_stacks(StackName=sys.argv[1])["Stacks"][0]
print(next(o["OutputValue"] for o in stack.get("Outputs", []) if o["OutputKey"] == "ApiUrl"))
PY
)" || die "the stack has no ApiUrl output"
scripts/smoke.sh "$api_url"

printf '\ndeployed %s: %s\n' "$env_name" "$api_url"
