"""The functions' `live` aliases: what a deploy records, what a rollback moves back.

    aliases.py record STACK ENV        before `sam deploy`: every function's live version
                                       -> SSM /encache/ENV/deploy/previous-live-versions
    aliases.py rollback STACK ENV [--dry-run] [--function LOGICAL_ID]...
                                       every (or the named) function's live alias back to
                                       the version recorded before the last deploy
    aliases.py publish STACK BIN_DIR [--new-version]
                                       the deploy rehearsal's stand-in for what sam deploy
                                       does in Lambda: one function per template function
                                       (tagged with the stack, as CloudFormation tags it),
                                       a version when its binary changed (or always, with
                                       --new-version), the live alias moved to it

Functions are found by the tags CloudFormation puts on every resource it creates
(aws:cloudformation:stack-name / logical-id), through the Resource Groups Tagging API.
"""

import argparse
import json
import os
import sys

import boto3
from botocore.exceptions import ClientError

ALIAS = "live"


def record_name(env):
    return f"/encache/{env}/deploy/previous-live-versions"


def stack_functions(stack):
    """logical id -> function ARN, for every Lambda function of the stack."""
    tagging = boto3.client("resourcegroupstaggingapi")
    out = {}
    for page in tagging.get_paginator("get_resources").paginate(
        TagFilters=[{"Key": "aws:cloudformation:stack-name", "Values": [stack]}],
        ResourceTypeFilters=["lambda:function"],
    ):
        for r in page["ResourceTagMappingList"]:
            tags = {t["Key"]: t["Value"] for t in r.get("Tags", [])}
            out[tags.get("aws:cloudformation:logical-id", r["ResourceARN"])] = r["ResourceARN"]
    return dict(sorted(out.items()))


def live_version(lam, arn):
    """(version, weighted) of the live alias, or (None, False) when there is none."""
    try:
        alias = lam.get_alias(FunctionName=arn, Name=ALIAS)
    except ClientError as e:
        if e.response["Error"]["Code"] == "ResourceNotFoundException":
            return None, False
        raise
    weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    return alias["FunctionVersion"], bool(weights)


def versions(lam, arn):
    out = []
    for page in lam.get_paginator("list_versions_by_function").paginate(FunctionName=arn):
        out += [int(v["Version"]) for v in page["Versions"] if v["Version"].isdigit()]
    return sorted(out)


def record(stack, env):
    lam = boto3.client("lambda")
    live = {}
    for logical_id, arn in stack_functions(stack).items():
        version, _ = live_version(lam, arn)
        if version:
            live[logical_id] = version
    boto3.client("ssm").put_parameter(
        Name=record_name(env), Type="String", Overwrite=True, Value=json.dumps(live, sort_keys=True),
        Description="Each function's live alias version before the last deploy (scripts/rollback.sh)",
    )
    print(f"recorded {len(live)} live version(s) in {record_name(env)}")


def rollback(stack, env, dry_run, only):
    cfn = boto3.client("cloudformation")
    status = cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
    if status.endswith("_IN_PROGRESS"):
        sys.exit(
            f"stack {stack} is {status}: a deploy (or its rollback) is running. Do not race it: "
            f"`aws cloudformation cancel-update-stack --stack-name {stack}` stops an update and "
            "CloudFormation + CodeDeploy move every alias back; run this again once it settles."
        )
    try:
        recorded = json.loads(
            boto3.client("ssm").get_parameter(Name=record_name(env))["Parameter"]["Value"]
        )
    except ClientError as e:
        if e.response["Error"]["Code"] != "ParameterNotFound":
            raise
        recorded = {}
        print(f"warning: no {record_name(env)} (no deploy recorded one): using each function's "
              "highest version below its live one", file=sys.stderr)
    lam = boto3.client("lambda")
    functions = stack_functions(stack)
    if not functions:
        sys.exit(f"no Lambda function is tagged with stack {stack}: is ENV right?")
    unknown = sorted(set(only) - set(functions))
    if unknown:
        sys.exit(f"not functions of {stack}: {', '.join(unknown)} (it has {', '.join(functions)})")
    plan = []
    for logical_id, arn in functions.items():
        if only and logical_id not in only:
            continue
        current, weighted = live_version(lam, arn)
        if current is None:
            print(f"  {logical_id:32} no live alias: left alone")
            continue
        target = recorded.get(logical_id)
        if target is None:
            earlier = [v for v in versions(lam, arn) if v < int(current)]
            target = str(earlier[-1]) if earlier else None
        if target is None or (target == current and not weighted):
            print(f"  {logical_id:32} live v{current}: no earlier version to go back to")
            continue
        plan.append((logical_id, arn, current, target, weighted))
        shift = " (a traffic shift is in progress: it ends on the old version)" if weighted else ""
        print(f"  {logical_id:32} live v{current} -> v{target}{shift}")
    if dry_run or not plan:
        print(f"{len(plan)} alias(es) would move" if dry_run else "nothing to roll back")
        return 0
    failed = 0
    for logical_id, arn, current, target, _ in plan:
        try:
            lam.update_alias(FunctionName=arn, Name=ALIAS, FunctionVersion=target,
                             RoutingConfig={"AdditionalVersionWeights": {}})
            now, _ = live_version(lam, arn)
            if now != target:
                raise RuntimeError(f"the alias reads v{now} after the update")
        except (ClientError, RuntimeError) as e:
            failed += 1
            print(f"FAILED {logical_id}: {e}", file=sys.stderr)
    print(f"rolled back {len(plan) - failed} of {len(plan)} alias(es) of {stack}")
    return 1 if failed else 0


def publish(stack, bin_dir, new_version):
    """The rehearsal's Lambda: what sam deploy leaves there, minus the code itself."""
    import yaml  # the template's functions and binaries

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    template = yaml.load(open(os.environ.get("ENCACHE_TEMPLATE", "template.yaml")), Loader=Loader)
    iam, lam = boto3.client("iam"), boto3.client("lambda")
    role_name = f"{stack}-functions"
    try:
        role = iam.get_role(RoleName=role_name)["Role"]["Arn"]
    except ClientError:
        role = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                           "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    for logical_id, r in sorted(template["Resources"].items()):
        if r.get("Type") != "AWS::Serverless::Function":
            continue
        binary = os.path.join(bin_dir, r["Metadata"]["BuildProperties"]["Binary"])
        st = os.stat(binary)
        # The code stands for the binary (its size and build time), not the binary itself.
        code = json.dumps({"binary": os.path.basename(binary), "size": st.st_size,
                           "mtime_ns": st.st_mtime_ns}).encode()
        name = f"{stack}-{logical_id}"
        try:
            current = lam.get_function(FunctionName=name)["Configuration"]
            lam.update_function_code(FunctionName=name, ZipFile=code)
        except ClientError as e:
            if e.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            current = None
            lam.create_function(
                FunctionName=name, Runtime="provided.al2023", Role=role, Handler="bootstrap",
                Architectures=["arm64"], Code={"ZipFile": code},
                Tags={"aws:cloudformation:stack-name": stack, "aws:cloudformation:logical-id": logical_id})
        if new_version and current is not None:
            # A new configuration is a new version too (what a redeploy of changed code gives).
            lam.update_function_configuration(FunctionName=name, Description=f"redeploy {os.urandom(4).hex()}")
        version = lam.publish_version(FunctionName=name)["Version"]
        if live_version(lam, name)[0] is None:
            lam.create_alias(FunctionName=name, Name=ALIAS, FunctionVersion=version)
        else:
            lam.update_alias(FunctionName=name, Name=ALIAS, FunctionVersion=version)
        print(f"  {logical_id:32} live v{version}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("record")
    r.add_argument("stack")
    r.add_argument("env")
    b = sub.add_parser("rollback")
    b.add_argument("stack")
    b.add_argument("env")
    b.add_argument("--dry-run", action="store_true")
    b.add_argument("--function", action="append", default=[])
    u = sub.add_parser("publish")
    u.add_argument("stack")
    u.add_argument("bin_dir")
    u.add_argument("--new-version", action="store_true")
    a = p.parse_args()
    if a.command == "record":
        record(a.stack, a.env)
    elif a.command == "rollback":
        sys.exit(rollback(a.stack, a.env, a.dry_run, a.function))
    else:
        publish(a.stack, a.bin_dir, a.new_version)


if __name__ == "__main__":
    main()
