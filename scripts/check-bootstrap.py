#!/usr/bin/env python3
"""Asserts what devops/bootstrap promises, on its applied state (`terraform show -json`):

  * the GitHub roles the deploy workflow relies on exist (encache-github-deploy-dev,
    encache-github-deploy-stage, encache-github-deploy-prod, encache-github-plan-dev),
    each with one trust statement:
    sts:AssumeRoleWithWebIdentity from the GitHub OIDC provider, StringEquals (only) on
    token.actions.githubusercontent.com:aud = sts.amazonaws.com and on :sub pinned to
    repo:OWNER/NAME:environment:ENV (deploy) or repo:OWNER/NAME:pull_request (plan);
    sessions of at most one hour;
  * no Allow statement has a wildcard action (or NotAction/NotResource), and every
    statement on Resource "*" has a sid from STAR_SIDS below, whose reason is why the
    service offers no resource, and only the actions listed for it;
  * each deploy role can do its own environment's deploy (probes of every service
    scripts/deploy.sh ENV touches) and nothing of another environment's: /encache/OTHER/,
    encache-OTHER-*, stack encache-OTHER, state key encache/OTHER/ (conditions ignored,
    except that statements pinned to an Environment tag must pin their own); Cognito, ACM and
    KMS key statements (any key/*) are pinned to their environment's tag; a role with a custom API domain
    policy (var.api_domains) reaches no other environment's domain name;
  * the plan role only reads, except its state's .tflock lock file (and encrypting it
    with the state key);
  * every managed policy fits IAM's 6,144 characters, every trust policy 2,048;
  * the state bucket: versioned, SSE-KMS with the bootstrap's key (rotation on), all
    public access blocked, BucketOwnerEnforced, TLS-only bucket policy, noncurrent
    versions expire.

  scripts/check-bootstrap.py STATE.json [--contract contracts/ssm-parameters.json]
                             [--repository OWNER/NAME]
  scripts/check-bootstrap.py --self-test STATE.json [...]   each rule broken once: must fail

Prints one PASS/FAIL line per check and closes with "N passed, N failed".
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OIDC_HOST = "token.actions.githubusercontent.com"
AUDIENCE = "sts.amazonaws.com"
REQUIRED_ROLES = {
    "encache-github-deploy-dev", "encache-github-deploy-stage", "encache-github-deploy-prod", "encache-github-plan-dev",
}
MAX_SESSION = 3600
MANAGED_POLICY_LIMIT = 6144
TRUST_POLICY_LIMIT = 2048

# Statements on Resource "*": sid -> (why the service has no resource for it, the actions it may hold).
STAR_SIDS: dict[str, tuple[str, set[str]]] = {
    "Ec2DescribeHasNoResourceLevelPermissions": (
        "EC2 Describe* calls are authorized on * only",
        {
            "ec2:DescribeFlowLogs", "ec2:DescribeIamInstanceProfileAssociations", "ec2:DescribeImages",
            "ec2:DescribeInstanceCreditSpecifications", "ec2:DescribeInstanceTypes",
            "ec2:DescribeInstances", "ec2:DescribeNetworkInterfaces", "ec2:DescribePrefixLists",
            "ec2:DescribeRouteTables", "ec2:DescribeSecurityGroupRules", "ec2:DescribeSecurityGroups",
            "ec2:DescribeSubnets", "ec2:DescribeTags", "ec2:DescribeVolumes",
            "ec2:DescribeVpcEndpointServices", "ec2:DescribeVpcEndpoints", "ec2:DescribeVpcs",
        },
    ),
    "SsmDescribeParametersHasNoResourceLevelPermissions": (
        "ssm:DescribeParameters lists parameters account-wide (names and metadata, no values)",
        {"ssm:DescribeParameters"},
    ),
    "GetRandomPasswordHasNoResource": (
        "secretsmanager:GetRandomPassword touches no secret (devops/ ephemeral passwords)",
        {"secretsmanager:GetRandomPassword"},
    ),
    "CognitoCreateUserPoolHasNoResource": (
        "a pool has no ARN before it exists; the statement requires the Environment request tag",
        {"cognito-idp:CreateUserPool"},
    ),
    "TaggingGetResourcesHasNoResourceLevelPermissions": (
        "tag:GetResources searches the account's tags (scripts/lib/aliases.py: the stack's functions)",
        {"tag:GetResources"},
    ),
    "GetCallerIdentityHasNoResource": (
        "sts:GetCallerIdentity has no resource (and needs no permission)",
        {"sts:GetCallerIdentity"},
    ),
    "LogDeliveryAndQueryDefinitionsHaveNoResourceLevelPermissions": (
        "the HTTP API's access-log delivery and Logs Insights query definitions are authorized on * only",
        {
            "logs:CreateLogDelivery", "logs:DeleteLogDelivery", "logs:DescribeResourcePolicies",
            "logs:GetLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy",
            "logs:UpdateLogDelivery", "logs:DeleteQueryDefinition", "logs:DescribeQueryDefinitions",
            "logs:PutQueryDefinition",
        },
    ),
    "CreateEventSourceMappingHasNoResource": (
        "an event source mapping has no ARN before it exists; the statement requires lambda:FunctionArn",
        {"lambda:CreateEventSourceMapping", "lambda:ListEventSourceMappings"},
    ),
    "AcmRequestCertificateHasNoResource": (
        "a certificate has no ARN before it exists; the statement requires the Environment request tag and the environment's domain",
        {"acm:RequestCertificate"},
    ),
    "KmsCreateKeyHasNoResource": (
        "a key has no ARN before it exists; the statement requires the Environment request tag (devops/kms.tf)",
        {"kms:CreateKey"},
    ),
    "KmsListAliasesHasNoResource": (
        "kms:ListAliases lists the account's aliases (names and key ids, no key material)",
        {"kms:ListAliases"},
    ),
    # The state key's policy: in a key policy, "*" is the key itself.
    "KeyPolicyResourceIsThisKeyDelegateToIam": ("a key policy's Resource * means this key", set()),
}
# Read-only actions that do not start with Get/List/Describe/View.
READ_ACTIONS = {"kms:Decrypt", "secretsmanager:GetRandomPassword", "sts:GetCallerIdentity"}


# ---------------------------------------------------------------- IAM evaluation helpers
def as_list(v) -> list:
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def wildcard(pattern: str, value: str, ignore_case: bool = False) -> bool:
    rx = "^" + "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern) + "$"
    return re.match(rx, value, re.I if ignore_case else 0) is not None


def compact_len(doc: dict) -> int:
    return len(json.dumps(doc, separators=(",", ":")))


def pinned_environment(stmt: dict) -> str | None:
    """The Environment tag value a statement's condition pins, if any."""
    for op, kv in (stmt.get("Condition") or {}).items():
        if op != "StringEquals":
            continue
        for key in ("aws:ResourceTag/Environment", "aws:RequestTag/Environment"):
            if key in kv:
                vals = as_list(kv[key])
                return vals[0] if len(vals) == 1 else "<many>"
    return None


def allows(statements: list[dict], action: str, resource: str, env: str | None = None) -> list[str]:
    """Sids of Allow statements granting ACTION on RESOURCE (conditions ignored, except a
    statement pinned to another Environment tag than ENV)."""
    hits = []
    for s in statements:
        if s.get("Effect") != "Allow":
            continue
        if not any(wildcard(a, action, ignore_case=True) for a in as_list(s.get("Action"))):
            continue
        if not any(wildcard(r, resource) for r in as_list(s.get("Resource"))):
            continue
        pin = pinned_environment(s)
        if env is not None and pin is not None and pin != env:
            continue
        hits.append(s.get("Sid", "<no sid>"))
    return hits


# ---------------------------------------------------------------- reading the state
class Bootstrap:
    def __init__(self, state: dict, contract: dict):
        self.resources = []
        self._walk(state.get("values", {}).get("root_module", {}))
        self.prefix_template = contract["parameter_prefix"]
        self.roles = {r["values"]["name"]: r["values"] for r in self.of("aws_iam_role")}
        policies = {r["values"]["arn"]: r["values"] for r in self.of("aws_iam_policy")}
        self.attached: dict[str, list[dict]] = {name: [] for name in self.roles}
        for a in self.of("aws_iam_role_policy_attachment"):
            v = a["values"]
            if v["policy_arn"] in policies:
                self.attached.setdefault(v["role"], []).append(policies[v["policy_arn"]])
        for p in self.of("aws_iam_role_policy"):
            v = p["values"]
            self.attached.setdefault(v["role"], []).append({"name": v["name"], "policy": v["policy"], "inline": True})
        buckets = self.of("aws_s3_bucket")
        self.bucket = buckets[0]["values"] if buckets else {}
        keys = self.of("aws_kms_key")
        self.key = keys[0]["values"] if keys else {}
        providers = self.of("aws_iam_openid_connect_provider")
        self.oidc_arn = providers[0]["values"]["arn"] if providers else None

    def _walk(self, module: dict) -> None:
        self.resources += [r for r in module.get("resources", []) if r.get("mode") == "managed"]
        for child in module.get("child_modules", []):
            self._walk(child)

    def of(self, rtype: str) -> list[dict]:
        return [r for r in self.resources if r["type"] == rtype]

    def one(self, rtype: str) -> dict | None:
        found = self.of(rtype)
        return found[0]["values"] if found else None

    def statements(self, role: str) -> list[tuple[str, dict, dict]]:
        """(policy name, policy document, statement) of every policy attached to ROLE."""
        out = []
        for p in self.attached.get(role, []):
            doc = json.loads(p["policy"])
            for s in as_list(doc.get("Statement")):
                out.append((p["name"], doc, s))
        return out


# ---------------------------------------------------------------- the checks
class Checks:
    def __init__(self, quiet: bool = False) -> None:
        self.passed = self.failed = 0
        self.quiet = quiet
        self.lines: list[str] = []

    def run(self, name: str, problems: list[str]) -> None:
        if problems:
            self.failed += 1
            self.lines.append(f"FAIL  {name}")
            self.lines += [f"      - {p}" for p in problems]
        else:
            self.passed += 1
            self.lines.append(f"PASS  {name}")


def run_checks(state: dict, contract: dict, repository: str | None) -> Checks:
    b = Bootstrap(state, contract)
    checks = Checks()

    deploy_envs = sorted(m.group(1) for n in b.roles if (m := re.fullmatch(r"encache-github-deploy-([a-z0-9]+)", n)))
    plan_envs = sorted(m.group(1) for n in b.roles if (m := re.fullmatch(r"encache-github-plan-([a-z0-9]+)", n)))

    # -- the roles of the contract exist
    missing = sorted(REQUIRED_ROLES - set(b.roles))
    checks.run("the_workflow_roles_exist", [f"no role {r}" for r in missing])

    # -- one repository everywhere
    problems = []
    subs = {}
    for name, role in b.roles.items():
        try:
            trust = json.loads(role["assume_role_policy"])
            sub = trust["Statement"][0]["Condition"]["StringEquals"][f"{OIDC_HOST}:sub"]
            subs[name] = sub if isinstance(sub, str) else as_list(sub)[0]
        except (KeyError, IndexError, TypeError, ValueError):
            pass
    if repository is None:
        seen = {m.group(1) for s in subs.values() if (m := re.match(r"^repo:([^:]+):", s))}
        repository = seen.pop() if len(seen) == 1 else None
        if repository is None:
            problems.append(f"the roles do not trust one repository: {sorted(seen) or 'none'}")
    if repository is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+", repository):
        problems.append(f"repository {repository!r} is not a plain owner/name")
    checks.run("the_roles_trust_one_plain_repository", problems)

    # -- trust policies
    problems = []
    for name, role in sorted(b.roles.items()):
        if name in [f"encache-github-deploy-{e}" for e in deploy_envs]:
            want_sub = f"repo:{repository or '<unknown>'}:environment:{name.rsplit('-', 1)[1]}"
        elif name in [f"encache-github-plan-{e}" for e in plan_envs]:
            want_sub = f"repo:{repository or '<unknown>'}:pull_request"
        else:
            problems.append(f"{name}: not a role this module should create")
            continue
        trust = json.loads(role["assume_role_policy"])
        stmts = as_list(trust.get("Statement"))
        if compact_len(trust) > TRUST_POLICY_LIMIT:
            problems.append(f"{name}: trust policy is {compact_len(trust)} characters (IAM allows {TRUST_POLICY_LIMIT})")
        if role.get("max_session_duration") != MAX_SESSION:
            problems.append(f"{name}: max_session_duration {role.get('max_session_duration')} (want {MAX_SESSION})")
        if len(stmts) != 1:
            problems.append(f"{name}: {len(stmts)} trust statements (want exactly one)")
            continue
        s = stmts[0]
        for bad in ("NotAction", "NotPrincipal", "NotResource"):
            if bad in s:
                problems.append(f"{name}: trust statement has {bad}")
        if s.get("Effect") != "Allow" or as_list(s.get("Action")) != ["sts:AssumeRoleWithWebIdentity"]:
            problems.append(f"{name}: trust must Allow sts:AssumeRoleWithWebIdentity only, has {s.get('Effect')} {s.get('Action')}")
        fed = as_list((s.get("Principal") or {}).get("Federated"))
        if set((s.get("Principal") or {}).keys()) != {"Federated"} or len(fed) != 1 or not re.fullmatch(
            rf"arn:aws[a-z-]*:iam::\d{{12}}:oidc-provider/{re.escape(OIDC_HOST)}", fed[0]
        ) or (b.oidc_arn and fed[0] != b.oidc_arn):
            problems.append(f"{name}: principal must be the GitHub OIDC provider only, is {s.get('Principal')}")
        cond = s.get("Condition") or {}
        if set(cond) != {"StringEquals"}:
            problems.append(f"{name}: trust conditions must be StringEquals only, are {sorted(cond)}")
        eq = cond.get("StringEquals") or {}
        if set(eq) != {f"{OIDC_HOST}:aud", f"{OIDC_HOST}:sub"}:
            problems.append(f"{name}: StringEquals must pin exactly :aud and :sub, pins {sorted(eq)}")
        if as_list(eq.get(f"{OIDC_HOST}:aud")) != [AUDIENCE]:
            problems.append(f"{name}: aud must be {AUDIENCE}, is {eq.get(f'{OIDC_HOST}:aud')}")
        if as_list(eq.get(f"{OIDC_HOST}:sub")) != [want_sub]:
            problems.append(f"{name}: sub must be exactly {want_sub}, is {eq.get(f'{OIDC_HOST}:sub')}")
    checks.run("trust_pins_aud_and_sub_with_StringEquals", problems)

    # -- statements: no wildcard action, Resource "*" only with an allow-listed sid
    problems = []
    for name in sorted(b.roles):
        for pname, _doc, s in b.statements(name):
            where = f"{name} / {pname} / {s.get('Sid', '<no sid>')}"
            for bad in ("NotAction", "NotResource", "NotPrincipal"):
                if bad in s:
                    problems.append(f"{where}: uses {bad}")
            if s.get("Effect") != "Allow":
                continue
            for a in as_list(s.get("Action")):
                if "*" in a or "?" in a or not re.fullmatch(r"[a-z0-9-]+:[A-Za-z0-9]+", a):
                    problems.append(f"{where}: wildcard or malformed action {a!r}")
            if "*" in as_list(s.get("Resource")):
                sid = s.get("Sid")
                if sid not in STAR_SIDS or not STAR_SIDS[sid][1]:
                    problems.append(f"{where}: Resource \"*\" without an allow-listed sid (scripts/check-bootstrap.py STAR_SIDS)")
                else:
                    extra = sorted(set(as_list(s.get("Action"))) - STAR_SIDS[sid][1])
                    if extra:
                        problems.append(f"{where}: Resource \"*\" statement holds actions its sid does not allow: {extra}")
    checks.run("no_wildcard_action_and_every_star_resource_has_a_listed_sid", problems)

    # -- sizes
    problems = []
    for name in sorted(b.roles):
        for p in b.attached.get(name, []):
            n = compact_len(json.loads(p["policy"]))
            if not p.get("inline") and n > MANAGED_POLICY_LIMIT:
                problems.append(f"{p['name']}: {n} characters (IAM allows {MANAGED_POLICY_LIMIT} per managed policy)")
        if len(b.attached.get(name, [])) > 10:
            problems.append(f"{name}: {len(b.attached[name])} policies attached (IAM allows 10 by default)")
    checks.run("policies_fit_iam_size_limits", problems)

    # -- environment isolation (probes)
    arn = next(iter(b.roles.values()), {}).get("arn", "arn:aws:iam::000000000000:role/x")
    partition, account = arn.split(":")[1], arn.split(":")[4]
    region = b.bucket.get("region") or "us-east-1"
    bucket = b.bucket.get("bucket", "")

    def probes(env: str) -> list[tuple[str, str]]:
        p, a, r = partition, account, region
        param = "arn:{}:ssm:{}:{}:parameter{}db/host".format(p, r, a, b.prefix_template.replace("{env}", env))
        state = f"arn:{p}:s3:::{bucket}/encache/{env}/terraform.tfstate"
        role = f"arn:{p}:iam::{a}:role/encache-{env}-HealthFunctionRole-AbC123"
        return [
            ("s3:GetObject", state), ("s3:PutObject", state), ("s3:PutObject", state + ".tflock"),
            ("s3:DeleteObject", state + ".tflock"),
            ("ssm:GetParameter", param), ("ssm:PutParameter", param),
            ("cloudformation:ExecuteChangeSet", f"arn:{p}:cloudformation:{r}:{a}:stack/encache-{env}/0a1b2c3d"),
            ("lambda:UpdateFunctionCode", f"arn:{p}:lambda:{r}:{a}:function:encache-{env}-HealthFunction-AbC123"),
            ("lambda:InvokeFunction", f"arn:{p}:lambda:{r}:{a}:function:encache-{env}-MigrateFunction-AbC123"),
            # the PreTraffic hook (CodeDeployHook_<stack>-pre-traffic) and a live alias
            ("lambda:UpdateFunctionCode", f"arn:{p}:lambda:{r}:{a}:function:CodeDeployHook_encache-{env}-pre-traffic"),
            ("lambda:UpdateAlias", f"arn:{p}:lambda:{r}:{a}:function:encache-{env}-HealthFunction-AbC123:live"),
            ("ssm:PutParameter", "arn:{}:ssm:{}:{}:parameter{}deploy/previous-live-versions".format(p, r, a, b.prefix_template.replace("{env}", env))),
            ("iam:PassRole", role), ("iam:PutRolePolicy", role), ("iam:CreateRole", role),
            ("iam:CreateInstanceProfile", f"arn:{p}:iam::{a}:instance-profile/encache-{env}-bastion"),
            ("s3:PutBucketPolicy", f"arn:{p}:s3:::encache-{env}-uploads-{a}-{r}"),
            ("sns:Subscribe", f"arn:{p}:sns:{r}:{a}:encache-{env}-alarms"),
            ("sqs:CreateQueue", f"arn:{p}:sqs:{r}:{a}:encache-{env}-StackSyncDeadLetterQueue-AbC123"),
            ("events:PutRule", f"arn:{p}:events:{r}:{a}:rule/encache-{env}-StackSyncFunctionStackStatus-AbC123"),
            ("logs:CreateLogGroup", f"arn:{p}:logs:{r}:{a}:log-group:/aws/lambda/encache-{env}-functions"),
            ("logs:CreateLogGroup", f"arn:{p}:logs:{r}:{a}:log-group:/aws/vpc/encache-{env}-flow-logs"),
            ("iam:CreateRole", f"arn:{p}:iam::{a}:role/encache-{env}-vpc-flow-logs"),
            ("cloudwatch:PutMetricAlarm", f"arn:{p}:cloudwatch:{r}:{a}:alarm:encache-{env}-health-errors"),
            ("cloudwatch:PutDashboard", f"arn:{p}:cloudwatch::{a}:dashboard/encache-{env}"),
            ("budgets:ModifyBudget", f"arn:{p}:budgets::{a}:budget/encache-{env}-monthly"),
            ("codedeploy:CreateDeployment",
             f"arn:{p}:codedeploy:{r}:{a}:deploymentgroup:encache-{env}-ServerlessDeploymentApplication-AbC/encache-{env}-HealthFunctionDeploymentGroup-AbC"),
            ("rds:DeleteDBInstance", f"arn:{p}:rds:{r}:{a}:db:encache-{env}"),
            # devops/kms.tf: the data key's alias (the key itself is scoped by its Environment tag)
            ("kms:CreateAlias", f"arn:{p}:kms:{r}:{a}:alias/encache-{env}-data"),
        ]

    all_envs = sorted(set(deploy_envs) | set(plan_envs))
    # Each environment's custom API domain, read from its own domain policy.
    api_domains: dict[str, str] = {}
    for env in deploy_envs:
        for _n, _d, s in b.statements(f"encache-github-deploy-{env}"):
            for r in as_list(s.get("Resource")):
                m = re.fullmatch(r"arn:[a-z-]+:apigateway:[a-z0-9-]+::/domainnames/([a-z0-9.-]+)", r)
                if m:
                    api_domains[env] = m.group(1)
    problems = []
    for env in deploy_envs:
        role = f"encache-github-deploy-{env}"
        stmts = [s for _n, _d, s in b.statements(role)]
        for action, res in probes(env):
            if not allows(stmts, action, res, env):
                problems.append(f"{role} cannot {action} {res} (its own environment's deploy needs it)")
        for other in all_envs:
            if other == env:
                continue
            for action, res in probes(other):
                hit = allows(stmts, action, res, env)
                if hit:
                    problems.append(f"{role} can {action} {res} of {other} (statement {', '.join(hit)})")
        # Resources without the environment in their ARN are scoped by its tag.
        for s in stmts:
            for service, label in (("cognito-idp:", "Cognito"), ("acm:", "ACM"), ("kms:", "KMS")):
                if service == "kms:" and not any(r.endswith(":key/*") for r in as_list(s.get("Resource"))):
                    continue  # a named key (the state key) or an alias ARN with the environment in it
                if service == "kms:" and s.get("Sid") == "AwsManagedKeysThroughTheirService":
                    continue  # AWS-managed keys carry no tags; used through their service only
                if any(a.lower().startswith(service) for a in as_list(s.get("Action"))) and pinned_environment(s) != env:
                    problems.append(f"{role} / {s.get('Sid')}: {label} statement not pinned to Environment={env}")
        # A custom API domain (devops/bootstrap/api_domain.tf): only its own domain name.
        for other, domain in sorted(api_domains.items()):
            if other == env:
                continue
            for action in ("apigateway:POST", "apigateway:PATCH", "apigateway:DELETE"):
                res = f"arn:{partition}:apigateway:{region}::/domainnames/{domain}"
                for r in (res, res + "/apimappings/abc123"):
                    hit = allows(stmts, action, r, env)
                    if hit:
                        problems.append(f"{role} can {action} {r}, the API domain of {other} (statement {', '.join(hit)})")
    checks.run("each_deploy_role_deploys_its_own_environment_only", problems)

    # -- the plan role only reads (and writes its lock file)
    problems = []
    for env in plan_envs:
        role = f"encache-github-plan-{env}"
        stmts = [s for _n, _d, s in b.statements(role)]
        for _pname, _doc, s in b.statements(role):
            if s.get("Effect") != "Allow":
                continue
            res = as_list(s.get("Resource"))
            for a in as_list(s.get("Action")):
                verb = a.split(":", 1)[-1]
                if a in READ_ACTIONS or verb.startswith(("Get", "List", "Describe", "View")):
                    continue
                if a in ("s3:PutObject", "s3:DeleteObject") and res and all(
                    r.endswith(f"/encache/{env}/terraform.tfstate.tflock") for r in res
                ):
                    continue
                if a == "kms:GenerateDataKey" and res and all(r == b.key.get("arn") for r in res):
                    continue
                problems.append(f"{role} / {s.get('Sid')}: write action {a} on {res}")
        state = f"arn:{partition}:s3:::{bucket}/encache/{env}/terraform.tfstate"
        for action, res in (("s3:GetObject", state), ("s3:PutObject", state + ".tflock"), ("s3:DeleteObject", state + ".tflock")):
            if not allows(stmts, action, res, env):
                problems.append(f"{role} cannot {action} {res} (terraform plan needs it)")
        for other in all_envs:
            if other != env and allows(stmts, "s3:GetObject", f"arn:{partition}:s3:::{bucket}/encache/{other}/terraform.tfstate"):
                problems.append(f"{role} can read the state of {other}")
    if not plan_envs:
        problems.append("no plan role")
    checks.run("the_plan_role_only_reads_and_writes_its_lock_file", problems)

    # -- the state bucket
    problems = []
    versioning = b.one("aws_s3_bucket_versioning")
    if not versioning or versioning["versioning_configuration"][0]["status"] != "Enabled":
        problems.append("state bucket versioning is not Enabled")
    sse = b.one("aws_s3_bucket_server_side_encryption_configuration")
    try:
        default = sse["rule"][0]["apply_server_side_encryption_by_default"][0]
        if default["sse_algorithm"] != "aws:kms" or default["kms_master_key_id"] != b.key.get("arn"):
            problems.append(f"state bucket default encryption is {default}, not aws:kms with the state key")
    except (TypeError, KeyError, IndexError):
        problems.append("state bucket has no default encryption")
    if not b.key.get("enable_key_rotation"):
        problems.append("the state key does not rotate")
    pab = b.one("aws_s3_bucket_public_access_block") or {}
    for flag in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"):
        if pab.get(flag) is not True:
            problems.append(f"state bucket public access block: {flag} is not true")
    own = b.one("aws_s3_bucket_ownership_controls")
    if not own or own["rule"][0]["object_ownership"] != "BucketOwnerEnforced":
        problems.append("state bucket ownership is not BucketOwnerEnforced")
    pol = b.one("aws_s3_bucket_policy")
    denies_http = False
    if pol:
        for s in as_list(json.loads(pol["policy"]).get("Statement")):
            if s.get("Effect") == "Deny" and "s3:*" in as_list(s.get("Action")) and str(
                (s.get("Condition") or {}).get("Bool", {}).get("aws:SecureTransport")
            ).lower() in ("false", "['false']"):
                denies_http = True
    if not denies_http:
        problems.append("state bucket policy does not deny aws:SecureTransport false")
    lc = b.one("aws_s3_bucket_lifecycle_configuration")
    if not lc or not any(r.get("noncurrent_version_expiration") for r in lc.get("rule", [])):
        problems.append("state bucket has no noncurrent-version expiration rule")
    checks.run("the_state_bucket_is_versioned_encrypted_private_and_tls_only", problems)
    return checks


# ---------------------------------------------------------------- self-test
def self_test(state: dict, contract: dict, repository: str | None) -> int:
    """Each case breaks the applied state in one way; run_checks must fail naming it."""

    def roles(st):
        return {r["values"]["name"]: r["values"] for r in Bootstrap(st, contract).of("aws_iam_role")}

    def edit_trust(name, fn):
        def breaker(st):
            role = roles(st)[name]
            doc = json.loads(role["assume_role_policy"])
            fn(doc["Statement"][0])
            role["assume_role_policy"] = json.dumps(doc)
        return breaker

    def edit_policy(policy_name, fn):
        def breaker(st):
            for r in Bootstrap(st, contract).of("aws_iam_policy"):
                if r["values"]["name"] == policy_name:
                    doc = json.loads(r["values"]["policy"])
                    fn(doc["Statement"])
                    r["values"]["policy"] = json.dumps(doc)
                    return
            raise AssertionError(f"no policy {policy_name}")
        return breaker

    def string_like(s):
        eq = s["Condition"].pop("StringEquals")
        s["Condition"]["StringLike"] = eq

    def sub_wildcard(s):
        s["Condition"]["StringEquals"][f"{OIDC_HOST}:sub"] = s["Condition"]["StringEquals"][f"{OIDC_HOST}:sub"].rsplit(":", 1)[0] + ":*"

    def by_sid(sid):
        return lambda stmts: next(s for s in stmts if s.get("Sid") == sid)

    def add(sid, element, value):
        def fn(stmts):
            s = by_sid(sid)(stmts)
            s[element] = as_list(s.get(element)) + [value]
        return fn

    def drop_role(st, name):
        rs = st["values"]["root_module"]["resources"]
        rs[:] = [r for r in rs if not (r["type"] == "aws_iam_role" and r["values"]["name"] == name)]

    def drop(rtype):
        def breaker(st):
            rs = st["values"]["root_module"]["resources"]
            rs[:] = [r for r in rs if r["type"] != rtype]
        return breaker

    cases = [
        ("StringLike on the prod role's trust", edit_trust("encache-github-deploy-prod", string_like), "StringEquals only"),
        ("a wildcard sub claim", edit_trust("encache-github-deploy-dev", sub_wildcard), "sub must be exactly"),
        ("no aud condition", edit_trust("encache-github-plan-dev", lambda s: s["Condition"]["StringEquals"].pop(f"{OIDC_HOST}:aud")), "aud must be"),
        ("a two-hour session", lambda st: roles(st)["encache-github-deploy-prod"].update(max_session_duration=7200), "max_session_duration"),
        ("a wildcard action", edit_policy("encache-github-deploy-dev-stack", lambda ss: ss.append({"Sid": "X", "Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::x"})), "wildcard or malformed action"),
        ("Resource * under an unlisted sid", edit_policy("encache-github-deploy-dev-stack", lambda ss: ss.append({"Sid": "Convenience", "Effect": "Allow", "Action": "sqs:DeleteQueue", "Resource": "*"})), "without an allow-listed sid"),
        ("a write action in an allow-listed * statement", edit_policy("encache-github-deploy-dev-state-network", add("Ec2DescribeHasNoResourceLevelPermissions", "Action", "ec2:TerminateInstances")), "does not allow"),
        ("the prod role on dev's parameters", edit_policy("encache-github-deploy-prod-data-auth", add(
            "SsmParameters", "Resource", "arn:aws:ssm:*:*:parameter" + contract["parameter_prefix"].replace("{env}", "dev") + "*")), "of dev"),
        ("the dev role on stack encache-prod", edit_policy("encache-github-deploy-dev-stack", add(
            "CloudFormationStackAndChangeSets", "Resource", "arn:aws:cloudformation:*:*:stack/encache-*")), "of prod"),
        ("the plan role writing its state", edit_policy("encache-github-plan-dev-read", add("TerraformStateRead", "Action", "s3:PutObject")), "write action s3:PutObject"),
        ("a Cognito statement not pinned to its environment", edit_policy("encache-github-deploy-prod-data-auth", lambda ss: by_sid("CognitoUserPoolOfThisEnvironment")(ss).pop("Condition")), "not pinned"),
        ("no stage deploy role", lambda st: drop_role(st, "encache-github-deploy-stage"), "no role encache-github-deploy-stage"),
        ("a KMS key statement not pinned to its environment", edit_policy("encache-github-deploy-prod-data-auth", lambda ss: by_sid("DataKeyOfThisEnvironment")(ss).pop("Condition")), "KMS statement not pinned"),
        ("an ACM statement not pinned to its environment", edit_policy("encache-github-deploy-stage-api-domain", lambda ss: by_sid("AcmCertificateOfThisEnvironment")(ss).pop("Condition")), "ACM statement not pinned"),
        ("the stage role on prod's API domain", edit_policy("encache-github-deploy-stage-api-domain", add(
            "ApiGatewayDomainNameAndMapping", "Resource", "arn:aws:apigateway:*::/domainnames/*")), "the API domain of prod"),
        ("an oversized policy", edit_policy("encache-github-deploy-dev-functions", lambda ss: by_sid("LambdaFunctions")(ss).__setitem__(
            "Resource", [f"arn:aws:lambda:us-east-1:123456789012:function:encache-dev-f{i:04d}" for i in range(200)])), "IAM allows 6144"),
        ("an unencrypted state bucket", drop("aws_s3_bucket_server_side_encryption_configuration"), "no default encryption"),
        ("a state bucket without its TLS-only policy", drop("aws_s3_bucket_policy"), "does not deny aws:SecureTransport"),
    ]
    passed = failed = 0
    for name, breaker, expect in cases:
        broken = copy.deepcopy(state)
        breaker(broken)
        checks = run_checks(broken, contract, repository)
        out = "\n".join(checks.lines)
        if checks.failed and expect in out:
            passed += 1
            print(f"PASS  catches {name}")
        else:
            failed += 1
            print(f"FAIL  does not catch {name} (expected a line with {expect!r})")
    print(f"check-bootstrap self-test: {passed} passed, {failed} failed")
    return 1 if failed else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("state", help="terraform show -json of devops/bootstrap's applied state")
    ap.add_argument("--contract", default=str(ROOT / "contracts/ssm-parameters.json"))
    ap.add_argument("--repository", help="owner/name every role must trust (default: the one they agree on)")
    ap.add_argument("--self-test", action="store_true", help="break each rule once and expect a failure")
    args = ap.parse_args()
    state = json.loads(Path(args.state).read_text())
    contract = json.loads(Path(args.contract).read_text())
    if not state.get("values"):
        print(f"error: {args.state} has no applied resources (terraform show -json of the applied bootstrap)", file=sys.stderr)
        return 2
    if args.self_test:
        return self_test(state, contract, args.repository)
    checks = run_checks(state, contract, args.repository)
    print("\n".join(checks.lines))
    print(f"bootstrap: {checks.passed} passed, {checks.failed} failed")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
