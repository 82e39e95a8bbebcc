# shellcheck shell=bash
# Infrastructure tooling shared by check-infra.sh, build.sh and deploy.sh. Source it
# after lib/common.sh.
#
# aws-sam-cli pins boto3==1.43.x and checkov pins boto3==1.35.x (and moto, in the
# project venv, wants a current boto3), so the infra tools live in two virtualenvs of
# their own under .venv-infra/, installed from requirements/infra/*.txt only when those
# files change.

ENCACHE_INFRA_VENVS="${ENCACHE_INFRA_VENVS:-$ENCACHE_ROOT/.venv-infra}"
DEVOPS_DIR="$ENCACHE_ROOT/devops"

# ensure_infra_venv NAME: .venv-infra/NAME with requirements/infra/NAME.txt installed.
ensure_infra_venv() {
  local name="$1"
  local venv="$ENCACHE_INFRA_VENVS/$name" req="$ENCACHE_ROOT/requirements/infra/$name.txt"
  local stamp="$venv/.requirements.sha256" want
  [ -f "$req" ] || die "missing $req"
  want="$(sha256sum "$req" | cut -d' ' -f1)"
  if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  command -v python3 >/dev/null || die "python3 is required"
  if [ ! -x "$venv/bin/python" ]; then
    log "creating the $name tools virtualenv in ${venv#"$ENCACHE_ROOT"/}"
    python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$venv"; } \
      || die "could not create a virtualenv at $venv"
  fi
  log "installing pinned $name tools (requirements/infra/$name.txt)"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --prefer-binary -r "$req" \
    || die "pip install -r $req failed; see the output above"
  echo "$want" >"$stamp"
}

# Terraform from the local provider mirror only (devops/terraformrc.hcl), never prompting.
terraform_env() {
  command -v terraform >/dev/null || die "terraform >= 1.11 is required (https://developer.hashicorp.com/terraform/install)"
  export TF_CLI_CONFIG_FILE="$DEVOPS_DIR/terraformrc.hcl"
  export TF_IN_AUTOMATION=1 TF_INPUT=0
  unset TF_PLUGIN_CACHE_DIR
}

# sam, cfn-lint and cargo-lambda first on PATH.
sam_env() {
  ensure_infra_venv sam
  export PATH="$ENCACHE_INFRA_VENVS/sam/bin:$PATH"
  export SAM_CLI_TELEMETRY=0
  export AWS_REGION="${AWS_REGION:-us-east-1}"
  export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-$AWS_REGION}"
}
