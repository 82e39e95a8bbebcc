#!/usr/bin/env bash
# The deploy rehearsal's link-breaking tests: each case breaks one link of the deploy
# chain in a scratch copy of this checkout and runs `scripts/deploy.sh rehearsal` there;
# the rehearsal must stop at the step that link belongs to, with a message naming the
# cause (and, from step 3 on, a "deploy failed" notification accepted by the fake Discord). Run by scripts/test.sh after the rehearsal itself (it reuses that run's build).
#
#   scripts/rehearsal-breaks.sh [CASE...]   cases: ssm-parameter stack-output migration
#                                           newer-database pre-traffic trigger-wiring smoke
set -uo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
cd "$ENCACHE_ROOT"
use_shared_target_dir
bin_dir="${ENCACHE_BIN_DIR:-$CARGO_TARGET_DIR/debug}"
[ -x "$bin_dir/encache-local" ] || die "no built functions in $bin_dir: run scripts/deploy.sh rehearsal first"

# Each case: a patch to the copy (run in it), the step it must stop at, and the cause.
patch_ssm-parameter() {
  python3 - <<'PY'
t = open("template.yaml").read()
t = t.replace("Parameters:\n", "Parameters:\n  RehearsalUnwritten:\n    Type: AWS::SSM::Parameter::Value<String>\n    Default: /encache/dev/rehearsal/unwritten\n", 1)
open("template.yaml", "w").write(t)
PY
}
expect_ssm-parameter() { echo '1/9 (preflight: tools, credentials, contracts)|rehearsal/unwritten'; }

patch_stack-output() {
  python3 - <<'PY'
t = open("template.yaml").read()
assert "\n  PreSignUpFunctionArn:\n" in t
t = t.replace("\n  PreSignUpFunctionArn:\n", "\n  PreSignUpFunctionArn:\n    Condition: HasBudgetAlertEmail\n", 1)
open("template.yaml", "w").write(t)
PY
}
expect_stack-output() { echo '6/9 (post-deploy sync|stack output PreSignUpFunctionArn'; }

patch_migration() { echo 'CREATE TABLE users (id integer);' >"$copy/seed.sql"; }
seed_migration() { echo "$copy/seed.sql"; }
expect_migration() { echo '5/9 (stack|relation "users" already exists'; }

patch_newer-database() {
  cat >"$copy/seed.sql" <<'SQL'
CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL,
  installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN NOT NULL,
  checksum BYTEA NOT NULL, execution_time BIGINT NOT NULL);
INSERT INTO _sqlx_migrations VALUES (29991231000000, 'from the future', now(), true, '\x00', 0);
SQL
}
seed_newer-database() { echo "$copy/seed.sql"; }
expect_newer-database() { echo '5/9 (stack|29991231000000'; }

# A new version that cannot reach the database: the PreTraffic hook's health check gets
# a 503, reports Failed, and the deploy stops before the alias moves.
patch_pre-traffic() {
  python3 - <<'PY'
t = open("template.yaml").read()
i = t.index("\n  HealthFunction:\n")
j = t.index("DB_PORT: !Ref DbPort", i)
t = t[:j] + 'DB_PORT: "1"' + t[j + len("DB_PORT: !Ref DbPort"):]
open("template.yaml", "w").write(t)
PY
}
expect_pre-traffic() { echo '5/9 (stack|"smoke check FAILED","route":"GET /v1/health"'; }

patch_trigger-wiring() {
  sed -i 's|pre_sign_up       = lambda_config.value\["PreSignUpFunctionArn"\]|pre_sign_up       = lambda_config.value["PostConfirmationFunctionArn"]|' \
    devops/modules/auth/main.tf
  grep -q 'pre_sign_up *= lambda_config.value\["PostConfirmationFunctionArn"\]' devops/modules/auth/main.tf
}
expect_trigger-wiring() { echo '8/9 (smoke|unexpected triggerSource'; }

patch_smoke() {
  python3 - <<'PY'
t = open("template.yaml").read()
i = t.index("        ListConversations:")
j = t.index("Path: /v1/conversations", i)
t = t[:j] + "Path: /v1/conversations-moved" + t[j + len("Path: /v1/conversations"):]
open("template.yaml", "w").write(t)
PY
}
expect_smoke() { echo '8/9 (smoke|conversation'; }

cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(ssm-parameter stack-output migration newer-database pre-traffic trigger-wiring smoke)
failed=0
for c in "${cases[@]}"; do
  declare -F "patch_$c" >/dev/null || die "no such case: $c"
  t0=$SECONDS
  copy="$(mktemp -d "${TMPDIR:-/tmp}/encache-break-$c.XXXXXX")"
  # The checkout as it is (tracked and new files), not what is ignored.
  git ls-files -z -co --exclude-standard | tar -c --null -T - -f - | tar -x -C "$copy"
  (cd "$copy" && "patch_$c") || { warn "$c: the patch did not apply"; failed=$((failed + 1)); continue; }
  seed=""
  if declare -F "seed_$c" >/dev/null; then seed="$("seed_$c")"; fi
  IFS='|' read -r want_step want_cause <<<"$("expect_$c")"
  out="$copy/rehearsal.log"
  rc=0
  (cd "$copy" && ENCACHE_VENV="$ENCACHE_VENV" ENCACHE_INFRA_VENVS="${ENCACHE_INFRA_VENVS:-$ENCACHE_ROOT/.venv-infra}" \
    ENCACHE_DEV_DIR="$ENCACHE_DEV_DIR" ENCACHE_BIN_DIR="$bin_dir" REHEARSAL_DB_SEED="$seed" \
    scripts/deploy.sh rehearsal) >"$out" 2>&1 || rc=$?
  stopped="$(grep -o 'stopped at step .*' "$out" | head -n 1)"
  # From step 3 on the webhook exists (Terraform wrote it): the failure reached Discord.
  notified=true
  if [ "${want_step%%/*}" -ge 3 ] && ! grep -q '\[dev\] deploy failed: rehearsal of dev stopped at step' "$out"; then
    notified=false
  fi
  if [ $rc -ne 0 ] && [[ "$stopped" == *"step $want_step"* ]] && grep -qF -- "$want_cause" "$out" && [ "$notified" = true ]; then
    printf 'PASS  %s: %s, naming "%s" (%ss)\n' "$c" "$stopped" "$want_cause" "$((SECONDS - t0))"
    rm -rf "$copy"
  else
    failed=$((failed + 1))
    tail -n 40 "$out"
    printf 'FAIL  %s: exit %s, %s; wanted step %s naming "%s", failure notified: %s (log: %s)\n' \
      "$c" "$rc" "${stopped:-no stop line}" "$want_step" "$want_cause" "$notified" "$out"
  fi
done
printf '%d passed, %d failed\n' "$(( ${#cases[@]} - failed ))" "$failed"
[ $failed -eq 0 ]
