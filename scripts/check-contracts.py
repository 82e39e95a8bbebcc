#!/usr/bin/env python3
"""Contracts between devops/ (Terraform), template.yaml and the plans.

Every check reads the files as they are now, so parameters, outputs and resources that
other work adds to template.yaml are covered without editing this script:

  * every SSM parameter template.yaml reads (a Parameter whose Default is an
    /encache/... name) is in contracts/ssm-parameters.json, which devops/ writes from;
  * devops/ takes every parameter name from that file (no /encache/ literal in *.tf) and
    maps a value to every "terraform"-sourced entry; operator inputs are documented in
    terraform.tfvars.example;
  * every stack output devops/ reads (read_from_stack) is a template.yaml Output and is
    listed in contracts/stack-outputs.json (what the post-deploy sync copies);
  * samconfig.toml's overrides (dev, stage, prod) point each SSM parameter at its own env;
  * contracts/ownership.yaml gives every resource declared in template.yaml and devops/
    an owning plan whose contract page docs/plans/<plan>.md exists; an unowned resource is
    a gap and fails.
  * a parameter a function writes at run time (written_by_stack: the rotation's pending
    password) is not Terraform's, extends a Terraform parameter's name, and only its
    writer may put or delete it;
  * the deployed template is hardened: stage's and prod's CORS origins are https only (no
    localhost), no function declares a variable that would bypass SSM for a secret
    (DATABASE_URL, CURSOR_SIGNING_KEY: local env files only), and every SNS topic and SQS
    queue has a resource policy denying requests without TLS (aws:SecureTransport false).

Prints one PASS/FAIL line per check and closes with "N passed, N failed".
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
PLANS = [
    "infra-and-deployment",
    "auth-system",
    "memory-upload-flow",
    "aws-cost-alerting",
    "memory-feed",
    "conversation-feed",
]
SOURCES = {"terraform", "db-password", "generated", "operator", "operator-secret"}
# Secret values only a local env file may give (encache-local's LOCAL_SECRET_OVERRIDES);
# in AWS the functions read them from SSM by name.
LOCAL_ONLY_VARIABLES = {"DATABASE_URL", "CURSOR_SIGNING_KEY"}


class CfnLoader(yaml.SafeLoader):
    """YAML loader that keeps CloudFormation short-form tags (!Ref, !Sub, ...) as data."""


def _cfn_tag(loader: CfnLoader, suffix: str, node: yaml.Node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {f"!{suffix}": value}


CfnLoader.add_multi_constructor("!", _cfn_tag)


def load_template() -> dict:
    with open(ROOT / "template.yaml", encoding="utf-8") as f:
        return yaml.load(f, Loader=CfnLoader)  # noqa: S506 - SafeLoader subclass


def load_json(rel: str) -> dict:
    with open(ROOT / rel, encoding="utf-8") as f:
        return json.load(f)


def terraform_files() -> list[Path]:
    return sorted(p for p in (ROOT / "devops").rglob("*.tf") if ".terraform" not in p.parts)


def terraform_resources() -> list[str]:
    """Addresses of every `resource` block in devops/ (module resources as module.NAME.x.y;
    those of a root module of its own in a subfolder, such as devops/bootstrap, as
    bootstrap/x.y)."""
    module_names: dict[str, str] = {}
    for tf in (ROOT / "devops").glob("*.tf"):
        for m in re.finditer(r'module\s+"([^"]+)"\s*\{[^}]*?source\s*=\s*"\./modules/([^"]+)"', tf.read_text()):
            module_names[m.group(2)] = m.group(1)
    found = []
    for tf in terraform_files():
        rel = tf.relative_to(ROOT / "devops")
        if tf.name.endswith("_override.tf"):
            continue
        prefix = ""
        if rel.parts[0] == "modules":
            prefix = f"module.{module_names.get(rel.parts[1], rel.parts[1])}."
        elif len(rel.parts) > 1:
            prefix = f"{rel.parts[0]}/"
        for m in re.finditer(r'^resource\s+"([^"]+)"\s+"([^"]+)"', tf.read_text(), re.M):
            found.append(f"{prefix}{m.group(1)}.{m.group(2)}")
    return sorted(found)


class Checks:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def run(self, name: str, fn) -> None:
        problems, notes = [], []
        try:
            fn(problems, notes)
        except Exception as e:  # a broken file is a failed check, not a crash
            problems.append(f"{type(e).__name__}: {e}")
        for n in notes:
            print(f"      note: {n}")
        if problems:
            self.failed += 1
            print(f"FAIL  {name}")
            for p in problems:
                print(f"      - {p}")
        else:
            self.passed += 1
            print(f"PASS  {name}")


def main() -> int:
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    return run_checks()


def run_checks() -> int:
    template = load_template()
    contract = load_json("contracts/ssm-parameters.json")
    stack_outputs = load_json("contracts/stack-outputs.json")
    prefix = contract["parameter_prefix"]
    written = contract["written_by_terraform"]
    read_from_stack = contract["read_from_stack"]
    dev_prefix = prefix.replace("{env}", "dev")

    template_params = template.get("Parameters", {}) or {}
    # Parameter logical id -> contract key, for every Parameter naming an /encache/ SSM parameter.
    ssm_reads: dict[str, str] = {}
    for pid, p in template_params.items():
        default = p.get("Default")
        if isinstance(default, str) and default.startswith("/encache/"):
            ssm_reads[pid] = default
    checks = Checks()

    def contract_is_well_formed(problems, notes):
        for key, p in written.items():
            if p.get("source") not in SOURCES:
                problems.append(f"{key}: source {p.get('source')!r} is not one of {sorted(SOURCES)}")
            if p.get("type") not in {"String", "StringList", "SecureString"}:
                problems.append(f"{key}: type {p.get('type')!r} is not String, StringList or SecureString")
            if p.get("source") in {"db-password", "generated", "operator-secret"} and p.get("type") != "SecureString":
                problems.append(f"{key}: a secret ({p['source']}) must be a SecureString")
            if not p.get("description"):
                problems.append(f"{key}: no description")
        if sum(1 for p in written.values() if p.get("source") == "db-password") > 1:
            problems.append("more than one db-password entry")

    def template_reads_only_parameters_devops_writes(problems, notes):
        for pid, name in sorted(ssm_reads.items()):
            if not name.startswith(dev_prefix):
                problems.append(f"template Parameter {pid}: default {name} is not under {dev_prefix}")
                continue
            key = name[len(dev_prefix):]
            if key not in written:
                problems.append(
                    f"template Parameter {pid} reads {name}, which devops/ does not write: "
                    f"add \"{key}\" to contracts/ssm-parameters.json written_by_terraform")
        for pid, p in template_params.items():
            t = str(p.get("Type", ""))
            if t.startswith("AWS::SSM::Parameter::Value") and pid not in ssm_reads:
                problems.append(f"template Parameter {pid} is an SSM parameter whose default is not an /encache/ name")
        read_keys = {n[len(dev_prefix):] for n in ssm_reads.values()}
        for key in sorted(set(written) - read_keys):
            notes.append(f"devops/ writes {dev_prefix}{key}, which template.yaml does not read")

    def devops_takes_names_from_the_contract(problems, notes):
        for tf in terraform_files():
            text = tf.read_text()
            for i, line in enumerate(text.splitlines(), 1):
                if "/encache/" in line and not line.lstrip().startswith(("#", "//")) and "description" not in line:
                    problems.append(f"{tf.relative_to(ROOT)}:{i}: literal /encache/ name (take it from the contract)")
        params_tf = (ROOT / "devops/parameters.tf").read_text()
        computed = set(re.findall(r'^\s*"([a-z0-9/-]+)"\s*=', params_tf, re.M))
        for key, p in written.items():
            if p["source"] == "terraform" and key not in computed:
                problems.append(f"{key} (source terraform) has no value in devops/parameters.tf computed_values")
        for key in sorted(computed - set(written)):
            problems.append(f"devops/parameters.tf maps {key}, which the contract does not list")
        example = (ROOT / "devops/terraform.tfvars.example").read_text()
        for key, p in written.items():
            if p["source"] in {"operator", "operator-secret"} and f'"{key}"' not in example:
                problems.append(f"{key} ({p['source']}) is not documented in devops/terraform.tfvars.example")

    def stack_outputs_devops_reads_exist(problems, notes):
        outputs = template.get("Outputs", {}) or {}
        synced = stack_outputs.get("outputs", [])
        synced_names = {o if isinstance(o, str) else o.get("OutputKey") or o.get("name") for o in synced}
        sync_prefix = stack_outputs.get("parameter_prefix", "")
        for key, p in read_from_stack.items():
            out = p["output"]
            if prefix + key != sync_prefix + out:
                problems.append(f"{key}: devops reads {prefix + key} but the sync writes {sync_prefix + out}")
            if out not in outputs:
                problems.append(f"devops/ reads stack output {out}, which template.yaml does not declare")
            if out not in synced_names:
                problems.append(f"devops/ reads stack output {out}, which contracts/stack-outputs.json does not sync")
        for out in sorted(n for n in synced_names if n and n not in outputs):
            problems.append(f"contracts/stack-outputs.json syncs {out}, which template.yaml does not declare")

    def samconfig_points_each_env_at_its_own_parameters(problems, notes):
        cfg = tomllib.loads((ROOT / "samconfig.toml").read_text())
        for env in ("dev", "stage", "prod"):
            deploy = cfg.get(env, {}).get("deploy", {}).get("parameters", {})
            if not deploy:
                problems.append(f"samconfig.toml has no [{env}.deploy.parameters]")
                continue
            overrides = dict(kv.split("=", 1) for kv in str(deploy.get("parameter_overrides", "")).split() if "=" in kv)
            env_prefix = prefix.replace("{env}", env)
            for pid, name in ssm_reads.items():
                want = env_prefix + name[len(dev_prefix):]
                got = overrides.get(pid, name)
                if pid in overrides and got != want:
                    problems.append(f"samconfig [{env}] {pid}={got}, expected {want}")
                elif pid not in overrides and want != name:
                    notes.append(f"samconfig [{env}] has no {pid} override; scripts/deploy.sh passes {want}")

    ownership = yaml.safe_load((ROOT / "contracts/ownership.yaml").read_text())

    def ownership_plans_have_contract_pages(problems, notes):
        plans = ownership.get("plans", {})
        for plan in PLANS:
            if plan not in plans:
                problems.append(f"plan {plan} is missing from contracts/ownership.yaml plans")
        for plan, page in plans.items():
            if plan not in PLANS:
                problems.append(f"unknown plan {plan}")
            if not (ROOT / page).is_file():
                problems.append(f"plan {plan}: contract page {page} does not exist")

    def every_resource_has_an_owner(problems, notes):
        owned_t = ownership.get("template", {}) or {}
        owned_d = ownership.get("terraform", {}) or {}
        declared_t = sorted((template.get("Resources") or {}).keys())
        declared_d = terraform_resources()
        for what, declared, owned in (("template.yaml", declared_t, owned_t), ("devops/", declared_d, owned_d)):
            for r in declared:
                if r not in owned:
                    problems.append(f"gap: {what} resource {r} has no owning plan in contracts/ownership.yaml")
                elif owned[r] not in PLANS:
                    problems.append(f"{what} resource {r}: owner {owned[r]!r} is not a plan")
            for r in sorted(set(owned) - set(declared)):
                notes.append(f"contracts/ownership.yaml owns {r}, which {what} does not declare (yet)")

    resources = template.get("Resources") or {}

    def stage_and_prod_cors_origins_are_https_only(problems, notes):
        import shlex

        cfg = tomllib.loads((ROOT / "samconfig.toml").read_text())
        # stage mirrors prod: https origins only.
        for env in ("stage", "prod"):
            text = str(cfg.get(env, {}).get("deploy", {}).get("parameters", {}).get("parameter_overrides", ""))
            overrides = dict(kv.split("=", 1) for kv in shlex.split(text) if "=" in kv)
            default = (template_params.get("CorsAllowedOrigins") or {}).get("Default", "")
            origins = [o.strip() for o in str(overrides.get("CorsAllowedOrigins", default)).split(",")]
            for o in origins:
                host = o.removeprefix("https://").split(":")[0].split("/")[0].lower()
                if not o.startswith("https://") or host in ("", "*", "localhost", "127.0.0.1", "[::1]") or host.endswith(".localhost"):
                    problems.append(f"{env} CorsAllowedOrigins has {o!r}: {env} allows https origins only, never localhost")
                elif host.endswith(".invalid"):
                    notes.append(f"{env} CorsAllowedOrigins is the placeholder {o}: set the app's origin in samconfig.toml before the first {env} deploy")

    def no_secret_bypass_variables(problems, notes):
        glob = ((template.get("Globals") or {}).get("Function") or {}).get("Environment") or {}
        scopes = [("Globals", glob)] + [
            (rid, (r.get("Properties") or {}).get("Environment") or {})
            for rid, r in resources.items()
            if r.get("Type") in ("AWS::Serverless::Function", "AWS::Lambda::Function")
        ]
        for rid, env in scopes:
            for var in sorted(set((env.get("Variables") or {})) & LOCAL_ONLY_VARIABLES):
                problems.append(f"{rid} declares {var}: a local-only secret override (sam-env.local.json), never in the deployed template")

    def every_topic_and_queue_denies_non_tls(problems, notes):
        policy_of = {"AWS::SNS::Topic": ("AWS::SNS::TopicPolicy", "Topics"), "AWS::SQS::Queue": ("AWS::SQS::QueuePolicy", "Queues")}
        for rid, r in sorted(resources.items()):
            if r.get("Type") not in policy_of:
                continue
            ptype, key = policy_of[r["Type"]]
            denied = False
            for p in resources.values():
                props = p.get("Properties") or {}
                if p.get("Type") != ptype or {"!Ref": rid} not in (props.get(key) or []):
                    continue
                for st in (props.get("PolicyDocument") or {}).get("Statement") or []:
                    cond = (st.get("Condition") or {}).get("Bool") or {}
                    if st.get("Effect") == "Deny" and st.get("Principal") == "*" and str(cond.get("aws:SecureTransport")).lower() == "false":
                        denied = True
            if not denied:
                problems.append(f"{rid} ({r['Type']}) has no {ptype} denying aws:SecureTransport false")

    written_by_stack = contract.get("written_by_stack", {}) or {}

    def parameters_the_stack_writes_are_its_own(problems, notes):
        """A parameter a function writes at run time (written_by_stack) is not Terraform's,
        extends the name of one Terraform writes (the template names it ${Param}SUFFIX),
        and only its writer may put or delete it."""
        param_of = {name[len(dev_prefix):]: pid for pid, name in ssm_reads.items()}
        for pid, p in template_params.items():
            d = p.get("Default")
            if isinstance(d, str) and d.startswith(dev_prefix):
                param_of.setdefault(d[len(dev_prefix):], pid)
        text = (ROOT / "template.yaml").read_text()
        for key, p in written_by_stack.items():
            if key in written:
                problems.append(f"{key} is in both written_by_terraform and written_by_stack")
            base = p.get("next_to")
            if base not in written or not key.startswith(base):
                problems.append(f"{key}: next_to {base!r} is not a Terraform parameter its name extends")
                continue
            ref = "${" + param_of.get(base, "?") + "}" + key[len(base):]
            if ref not in text:
                notes.append(f"template.yaml never names {key} ({ref})")
            writer = p.get("writer")
            if (resources.get(writer) or {}).get("Type") != "AWS::Serverless::Function":
                problems.append(f"{key}: writer {writer!r} is not a function of template.yaml")
            for rid, r in resources.items():
                if r.get("Type") != "AWS::Serverless::Function":
                    continue
                for pol in (r.get("Properties") or {}).get("Policies") or []:
                    for st in (pol.get("Statement") if isinstance(pol, dict) else None) or []:
                        acts = st.get("Action")
                        acts = acts if isinstance(acts, list) else [acts]
                        res = st.get("Resource")
                        res = res if isinstance(res, list) else [res]
                        names_it = any(isinstance(x, dict) and str(x.get("!Sub", "")).endswith(ref) for x in res)
                        writes = {"ssm:PutParameter", "ssm:DeleteParameter"} & set(acts)
                        if names_it and writes and rid != writer:
                            problems.append(f"{rid} may {sorted(writes)} {key}, which only {writer} writes")

    checks.run("contract_file_is_well_formed", contract_is_well_formed)
    checks.run("template_reads_only_parameters_devops_writes", template_reads_only_parameters_devops_writes)
    checks.run("devops_takes_every_parameter_name_from_the_contract", devops_takes_names_from_the_contract)
    checks.run("every_stack_output_devops_reads_is_declared_and_synced", stack_outputs_devops_reads_exist)
    checks.run("samconfig_points_each_env_at_its_own_parameters", samconfig_points_each_env_at_its_own_parameters)
    checks.run("every_plan_has_a_contract_page", ownership_plans_have_contract_pages)
    checks.run("every_resource_has_an_owning_plan", every_resource_has_an_owner)
    checks.run("stage_and_prod_cors_origins_are_https_only", stage_and_prod_cors_origins_are_https_only)
    checks.run("no_secret_bypass_variables_in_the_template", no_secret_bypass_variables)
    checks.run("every_topic_and_queue_denies_non_tls", every_topic_and_queue_denies_non_tls)
    checks.run("parameters_the_stack_writes_are_its_own", parameters_the_stack_writes_are_its_own)

    print(f"contracts: {checks.passed} passed, {checks.failed} failed")
    return 1 if checks.failed else 0


def self_test() -> int:
    """Proves the checks catch what they promise: each case breaks a copy of the repo's
    contract files in one way and expects run_checks() to fail naming the problem."""
    import contextlib
    import io
    import shutil
    import tempfile

    global ROOT
    real_root = ROOT

    def break_template_param(root: Path) -> None:
        t = root / "template.yaml"
        t.write_text(t.read_text().replace("\nParameters:\n", "\nParameters:\n  Unwritten:\n    Type: AWS::SSM::Parameter::Value<String>\n    Default: /encache/dev/nobody/writes-this\n", 1))

    def add_unowned_resource(root: Path) -> None:
        t = root / "template.yaml"
        t.write_text(t.read_text().replace("\nResources:\n", "\nResources:\n  OrphanQueue:\n    Type: AWS::SQS::Queue\n", 1))

    def add_unowned_terraform_resource(root: Path) -> None:
        (root / "devops/orphan.tf").write_text('resource "aws_sqs_queue" "orphan" {}\n')

    def drop_synced_output(root: Path) -> None:
        f = root / "contracts/stack-outputs.json"
        d = json.loads(f.read_text())
        d["outputs"] = [o for o in d["outputs"] if o != "PreSignUpFunctionArn"]
        f.write_text(json.dumps(d))

    def add_unowned_bootstrap_resource(root: Path) -> None:
        (root / "devops/bootstrap/orphan.tf").write_text('resource "aws_sqs_queue" "orphan" {}\n')

    def literal_name_in_terraform(root: Path) -> None:
        (root / "devops/literal.tf").write_text('locals {\n  x = "/encache/dev/db/host"\n}\n')

    def unmapped_terraform_value(root: Path) -> None:
        f = root / "contracts/ssm-parameters.json"
        d = json.loads(f.read_text())
        d["written_by_terraform"]["misc/unmapped"] = {"type": "String", "source": "terraform", "description": "x"}
        f.write_text(json.dumps(d))

    def localhost_in_prod_cors(root: Path) -> None:
        f = root / "samconfig.toml"
        # No override: prod would get the template's default, the local origin.
        f.write_text(re.sub(r" CorsAllowedOrigins=[^ \"]+", "", f.read_text()))

    def bypass_variable_in_template(root: Path) -> None:
        t = root / "template.yaml"
        t.write_text(t.read_text().replace("          DB_PASSWORD_PARAMETER: ", '          DATABASE_URL: ""\n          DB_PASSWORD_PARAMETER: ', 1))

    def another_writer_of_the_pending_password(root: Path) -> None:
        t = root / "template.yaml"
        t.write_text(t.read_text().replace("              Action: ssm:GetParameters\n", "              Action: [ssm:GetParameters, ssm:PutParameter]\n", 1))

    def queue_without_tls_policy(root: Path) -> None:
        add_unowned_resource(root)

    cases = [
        ("prod falling back to the localhost CORS default", localhost_in_prod_cors, "prod allows https origins only"),
        ("a secret-bypass variable in the template", bypass_variable_in_template, "declares DATABASE_URL"),
        ("a second writer of a parameter the stack writes", another_writer_of_the_pending_password,
         "HealthFunction may ['ssm:PutParameter'] db/app-password-pending"),
        ("a queue without a TLS-only policy", queue_without_tls_policy, "OrphanQueue (AWS::SQS::Queue) has no AWS::SQS::QueuePolicy"),
        ("a template parameter devops/ does not write", break_template_param, "nobody/writes-this"),
        ("an unowned template resource", add_unowned_resource, "gap: template.yaml resource OrphanQueue"),
        ("an unowned devops/ resource", add_unowned_terraform_resource, "gap: devops/ resource aws_sqs_queue.orphan"),
        ("an unowned devops/bootstrap resource", add_unowned_bootstrap_resource,
         "gap: devops/ resource bootstrap/aws_sqs_queue.orphan"),
        ("a stack output the sync does not copy", drop_synced_output, "does not sync"),
        ("a literal parameter name in devops/", literal_name_in_terraform, "literal /encache/ name"),
        ("a terraform-sourced parameter without a value", unmapped_terraform_value, "misc/unmapped"),
    ]
    passed = failed = 0
    for name, breaker, expect in cases:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            for rel in ("template.yaml", "samconfig.toml", "contracts", "devops", "docs/plans"):
                src = real_root / rel
                if src.is_dir():
                    shutil.copytree(src, root / rel, ignore=shutil.ignore_patterns(".terraform"))
                else:
                    shutil.copy(src, root / rel)
            breaker(root)
            ROOT = root
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                rc = run_checks()
            ROOT = real_root
        if rc != 0 and expect in out.getvalue():
            passed += 1
            print(f"PASS  catches {name}")
        else:
            failed += 1
            print(f"FAIL  does not catch {name} (exit {rc}, expected a line with {expect!r})")
    print(f"self-test: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
