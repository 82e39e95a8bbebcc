#!/usr/bin/env python3
"""The stack's alarms and dashboard, derived from template.yaml itself.

Every function, dead-letter queue and the HTTP API gets its alarms; the dashboard shows
them all. The block between the markers in template.yaml (and the matching one in
contracts/ownership.yaml) is written by this script: edit the rules here, not the block.

  scripts/operations.py          rewrite the blocks
  scripts/operations.py --check  fail when a block is stale, i.e. a function, queue or
                                 timeout changed without its alarms (scripts/test.sh)

The thresholds, periods and missing-data treatment of each kind of alarm, and why, are
the RULES below; docs/operations.md is the on-call page for each.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
OWNERSHIP = ROOT / "contracts" / "ownership.yaml"
BEGIN = "  # >>> operations: written by scripts/operations.py (edit the script, not this block)"
END = "  # <<< operations"
OWN_BEGIN = "  # >>> operations: written by scripts/operations.py"
OWN_END = "  # <<< operations"

# Event sources Lambda invokes asynchronously (retries, then a DLQ or on-failure
# destination); HTTP API and Cognito invoke synchronously.
ASYNC_SOURCES = {"S3", "SNS", "EventBridgeRule", "Schedule", "ScheduleV2", "CloudWatchEvent"}


class CfnLoader(yaml.SafeLoader):
    pass


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        return {suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {suffix: loader.construct_sequence(node, deep=True)}
    return {suffix: loader.construct_mapping(node, deep=True)}


CfnLoader.add_multi_constructor("!", _tag)


def kebab(logical_id: str) -> str:
    name = re.sub(r"(Function|DeadLetterQueue)$", lambda m: "" if m.group(1) == "Function" else "-dlq", logical_id)
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", name).lower()


def alarm(logical_id, name, description, plan, namespace, metric, dimensions, stat, comparison,
          threshold, period, evaluation, datapoints, missing, *, metrics=None):
    """One AWS::CloudWatch::Alarm as YAML lines (CloudFormation short-form tags)."""
    out = [
        f"  {logical_id}:",
        "    Type: AWS::CloudWatch::Alarm",
        "    Properties:",
        f"      AlarmName: !Sub encache-${{Env}}-{name}",
        f"      AlarmDescription: {yaml_str(description)}",
        "      AlarmActions: [!Ref AlarmTopic]",
        "      OKActions: [!Ref AlarmTopic]",
    ]
    if metrics:
        out.append("      Metrics:")
        out.extend(metrics)
    else:
        out += [f"      Namespace: {namespace}", f"      MetricName: {yaml_str(metric)}", "      Dimensions:"]
        for dim_name, dim_value in dimensions:
            out += [f"        - Name: {dim_name}", f"          Value: {dim_value}"]
        if stat.startswith("p"):
            out.append(f"      ExtendedStatistic: {stat}")
        else:
            out.append(f"      Statistic: {stat}")
        out.append(f"      Period: {period}")
    out += [
        f"      EvaluationPeriods: {evaluation}",
        f"      DatapointsToAlarm: {datapoints}",
        f"      ComparisonOperator: {comparison}",
        f"      Threshold: {threshold}",
        f"      TreatMissingData: {missing}",
        "      Tags:",
        "        - Key: encache:plan",
        f"          Value: {plan}",
    ]
    return out


def yaml_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def generate(template: dict, ownership: dict) -> tuple[list[str], list[str], list[str]]:
    resources = template["Resources"]
    timeout_default = template.get("Globals", {}).get("Function", {}).get("Timeout", 3)
    owner = ownership.get("template", {}) or {}
    lines: list[str] = []
    owned: list[str] = []
    widgets: list[dict] = []

    def add(logical_id, plan, block):
        lines.extend(block)
        lines.append("")
        owned.append(f"  {logical_id}: {plan}")

    functions = [(k, v) for k, v in resources.items() if v.get("Type") == "AWS::Serverless::Function"]
    queues = [(k, v) for k, v in resources.items() if v.get("Type") == "AWS::SQS::Queue"]
    apis = [(k, v) for k, v in resources.items() if v.get("Type") == "AWS::Serverless::HttpApi"]

    for fid, f in functions:
        props = f.get("Properties", {})
        plan = owner.get(fid, "infra-and-deployment")
        timeout = int(props.get("Timeout", timeout_default))
        short = kebab(fid)
        dim = [("FunctionName", f"!Ref {fid}")]
        # Errors: an unhandled failure, a timeout or a crash. The handlers answer every
        # expected failure themselves (a 4xx/503 StandardError, a retryable error for an
        # event), so one is worth a look. Missing data = no invocations = fine.
        events = props.get("Events", {}) or {}
        is_async = any(e.get("Type") in ASYNC_SOURCES for e in events.values())
        # An async function's retryable failure (the database was out of reach) is an
        # error too, and Lambda retries it: errors in two consecutive periods page, one
        # blip does not. A synchronous caller sees every error, so one pages.
        periods = 2 if is_async else 1
        add(f"{fid}ErrorsAlarm", plan, alarm(
            f"{fid}ErrorsAlarm", f"{short}-errors",
            f"{fid} failed (an error, a timeout or a crash) in {periods} consecutive 5-minute period(s). Runbook: docs/operations.md#function-errors",
            plan, "AWS/Lambda", "Errors", dim, "Sum", "GreaterThanOrEqualToThreshold", 1, 300, periods, periods, "notBreaching"))
        # Throttles: reserved concurrency or the account limit refused an invocation.
        add(f"{fid}ThrottlesAlarm", plan, alarm(
            f"{fid}ThrottlesAlarm", f"{short}-throttles",
            f"{fid} was throttled (reserved concurrency or the account's limit). Runbook: docs/operations.md#throttles",
            plan, "AWS/Lambda", "Throttles", dim, "Sum", "GreaterThanOrEqualToThreshold", 1, 300, 1, 1, "notBreaching"))
        # Duration: p99 over 80 % of the timeout for two of three 5-minute periods, i.e.
        # close to timing out for a sustained stretch (one slow cold start does not page).
        limit_ms = int(timeout * 1000 * 0.8)
        add(f"{fid}DurationAlarm", plan, alarm(
            f"{fid}DurationAlarm", f"{short}-duration",
            f"{fid} p99 duration is over 80 % of its {timeout} s timeout ({limit_ms} ms). Runbook: docs/operations.md#slow-functions",
            plan, "AWS/Lambda", "Duration", dim, "p99", "GreaterThanThreshold", limit_ms, 300, 3, 2, "notBreaching"))
        if is_async:
            on_failure = ((props.get("EventInvokeConfig") or {}).get("DestinationConfig") or {}).get("OnFailure")
            if not (on_failure or props.get("DeadLetterQueue")):
                # No DLQ: an event dropped (too old or out of retries) is lost. (With one,
                # AsyncEventsDropped counts what went to the DLQ too: its alarm covers it.)
                add(f"{fid}AsyncDroppedAlarm", plan, alarm(
                    f"{fid}AsyncDroppedAlarm", f"{short}-async-dropped",
                    f"{fid} dropped asynchronous events (expired or out of retries; it has no dead-letter queue). Runbook: docs/operations.md#lost-events",
                    plan, "AWS/Lambda", "AsyncEventsDropped", dim, "Sum", "GreaterThanOrEqualToThreshold", 1, 300, 1, 1, "notBreaching"))
            else:
                metric = "DestinationDeliveryFailures" if on_failure else "DeadLetterErrors"
                add(f"{fid}FailureDeliveryAlarm", plan, alarm(
                    f"{fid}FailureDeliveryAlarm", f"{short}-failure-delivery",
                    f"{fid} could not put a failed event in its dead-letter queue ({metric}): the event is lost. Runbook: docs/operations.md#lost-events",
                    plan, "AWS/Lambda", metric, dim, "Sum", "GreaterThanOrEqualToThreshold", 1, 300, 1, 1, "notBreaching"))
        widgets.append(function_widget(fid, timeout))

    for qid, _q in queues:
        plan = owner.get(qid, "infra-and-deployment")
        # A dead-letter queue holds only what failed every retry: any message is a page.
        add(f"{qid}MessagesAlarm", plan, alarm(
            f"{qid}MessagesAlarm", f"{kebab(qid)}-messages",
            f"{qid} holds failed events (every retry failed). Read them, fix the cause, replay. Runbook: docs/operations.md#dead-letter-queues",
            plan, "AWS/SQS", "ApproximateNumberOfMessagesVisible", [("QueueName", f"!GetAtt {qid}.QueueName")],
            "Maximum", "GreaterThanOrEqualToThreshold", 1, 300, 1, 1, "notBreaching"))

    for aid, _a in apis:
        plan = owner.get(aid, "infra-and-deployment")
        dims = [("ApiId", f"!Ref {aid}"), ("Stage", "$default")]
        # 5xx rate: over 1 % of at least 20 requests in two consecutive 5-minute periods
        # (a single 503 at night is not a page; a broken deploy is).
        metrics = [
            "        - Id: errors",
            "          ReturnData: false",
            "          MetricStat:",
            "            Metric:",
            "              Namespace: AWS/ApiGateway",
            "              MetricName: 5xx",
            "              Dimensions:",
            f"                - Name: ApiId",
            f"                  Value: !Ref {aid}",
            "                - Name: Stage",
            "                  Value: $default",
            "            Period: 300",
            "            Stat: Sum",
            "        - Id: requests",
            "          ReturnData: false",
            "          MetricStat:",
            "            Metric:",
            "              Namespace: AWS/ApiGateway",
            "              MetricName: Count",
            "              Dimensions:",
            f"                - Name: ApiId",
            f"                  Value: !Ref {aid}",
            "                - Name: Stage",
            "                  Value: $default",
            "            Period: 300",
            "            Stat: Sum",
            "        - Id: rate",
            "          Label: 5xx % of requests (at least 20)",
            "          Expression: IF(requests >= 20, 100 * errors / requests, 0)",
            "          ReturnData: true",
        ]
        add(f"{aid}5xxRateAlarm", plan, alarm(
            f"{aid}5xxRateAlarm", "api-5xx-rate",
            "Over 1 % of API requests answered 5xx for 10 minutes. Runbook: docs/operations.md#api-5xx",
            plan, None, None, None, None, "GreaterThanThreshold", 1, None, 2, 2, "notBreaching", metrics=metrics))
        # Latency: p99 over 1.5 s for three consecutive 5-minute periods (cold starts and
        # the database included; the handlers answer in milliseconds when warm).
        add(f"{aid}LatencyAlarm", plan, alarm(
            f"{aid}LatencyAlarm", "api-p99-latency",
            "API p99 latency over 1500 ms for 15 minutes. Runbook: docs/operations.md#api-latency",
            plan, "AWS/ApiGateway", "Latency", dims, "p99", "GreaterThanThreshold", 1500, 300, 3, 3, "notBreaching"))
    return lines, owned, widgets


def function_widget(fid: str, timeout: int) -> dict:
    return {"fid": fid, "timeout": timeout}


def dashboard(widgets: list[dict], queues: list[str], apis: list[str]) -> list[str]:
    """The dashboard as a Fn::Sub'd JSON body (one line per widget for readable diffs)."""
    import json

    body_widgets = []
    y = 0

    def widget(title, metrics, x, y, w=8, h=6, stat="Sum", extra=None):
        props = {"title": title, "region": "${AWS::Region}", "stat": stat, "period": 300,
                 "view": "timeSeries", "metrics": metrics}
        if extra:
            props.update(extra)
        return {"type": "metric", "x": x, "y": y, "width": w, "height": h, "properties": props}

    for aid in apis:
        d = ["ApiId", "${%s}" % aid, "Stage", "$default"]
        body_widgets.append(widget("API requests and errors", [["AWS/ApiGateway", "Count", *d], [".", "4xx", *d], [".", "5xx", *d]], 0, y))
        body_widgets.append(widget("API latency p50 / p99 (ms)", [["AWS/ApiGateway", "Latency", *d, {"stat": "p50"}], ["...", {"stat": "p99"}]], 8, y, stat="p99"))
        body_widgets.append(widget("Monthly spend (USD, account)", [["AWS/Billing", "EstimatedCharges", "Currency", "USD", {"region": "us-east-1"}]], 16, y, stat="Maximum", extra={"period": 21600}))
        y += 6
    for i, w in enumerate(widgets):
        fid = w["fid"]
        d = ["FunctionName", "${%s}" % fid]
        x = (i % 3) * 8
        if i and i % 3 == 0:
            y += 6
        body_widgets.append(widget(
            f"{fid}: invocations, errors, throttles, concurrency, p99 ms (timeout {w['timeout']} s)",
            [["AWS/Lambda", "Invocations", *d], [".", "Errors", *d], [".", "Throttles", *d],
             [".", "ConcurrentExecutions", *d, {"stat": "Maximum"}],
             [".", "Duration", *d, {"stat": "p99", "yAxis": "right"}]], x, y))
    y += 6
    body_widgets.append(widget("Dead-letter queues: messages waiting",
                               [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "${%s.QueueName}" % q] for q in queues],
                               0, y, w=12, stat="Maximum"))
    body_widgets.append(widget("Database (RDS)",
                               [["AWS/RDS", "CPUUtilization", "DBInstanceIdentifier", "${DbInstanceId}"],
                                [".", "DatabaseConnections", ".", "."],
                                [".", "FreeStorageSpace", ".", ".", {"yAxis": "right"}]],
                               12, y, w=12, stat="Average"))
    lines = [
        "  OperationsDashboard:",
        "    Type: AWS::CloudWatch::Dashboard",
        "    Properties:",
        "      DashboardName: !Sub encache-${Env}",
        "      DashboardBody: !Sub",
        "        - |",
        "          {\"widgets\": [",
    ]
    for i, wdg in enumerate(body_widgets):
        comma = "," if i < len(body_widgets) - 1 else ""
        lines.append("            " + json.dumps(wdg, separators=(",", ":")) + comma)
    lines += [
        "          ]}",
        "        - DbInstanceId: !Select [0, !Split ['.', !Ref DbHost]]",
        "",
    ]
    return lines


# Logs Insights queries, saved in the console under encache-{env}/ (docs/operations.md).
# Every function logs JSON with its name and the request id in `span` (shared::telemetry)
# and one `request` line per HTTP request (shared::http::logged).
QUERIES = {
    # Inside a nested span (an S3 or SNS record) `span` is that span: the invocation's
    # function and request id are then the second entry of `spans`.
    "ErrorsByFunctionQuery": ("errors-by-function", [
        "fields @timestamp, coalesce(span.function, spans.1.function) as function, level, message",
        "| filter level = 'ERROR' or level = 'WARN'",
        "| stats count(*) as lines by function, level",
        "| sort lines desc",
    ]),
    "SlowestRequestsQuery": ("slowest-requests", [
        "fields @timestamp, route, status, duration_ms, user_id, span.request_id as request_id",
        "| filter message = 'request'",
        "| sort duration_ms desc",
        "| limit 50",
    ]),
    "UserRequestsQuery": ("a-users-requests", [
        "fields @timestamp, route, status, duration_ms, span.request_id as request_id",
        "| filter message = 'request' and user_id = 'COGNITO-SUB-HERE'",
        "| sort @timestamp desc",
        "| limit 200",
    ]),
}


def saved_queries():
    for logical_id, (name, query) in QUERIES.items():
        yield logical_id, [
            f"  {logical_id}:",
            "    Type: AWS::Logs::QueryDefinition",
            "    Properties:",
            f"      Name: !Sub encache-${{Env}}/{name}",
            "      LogGroupNames: [!Ref FunctionLogGroup]",
            "      QueryString: |",
            *[f"        {line}" for line in query],
            "",
        ]


def replace_block(text: str, begin: str, end: str, body: list[str], where: str) -> str:
    block = "\n".join([begin, *body, end])
    if begin in text:
        start = text.index(begin)
        stop = text.index(end, start) + len(end)
        return text[:start] + block + text[stop:]
    anchor = text.index(where)
    return text[:anchor] + "\n" + block + "\n" + text[anchor:]


def main(argv: list[str]) -> int:
    check = "--check" in argv
    template_text = TEMPLATE.read_text()
    ownership_text = OWNERSHIP.read_text()
    template = yaml.load(template_text, Loader=CfnLoader)  # noqa: S506 - SafeLoader subclass
    ownership = yaml.safe_load(ownership_text)
    lines, owned, widgets = generate(template, ownership)
    resources = template["Resources"]
    queues = [k for k, v in resources.items() if v.get("Type") == "AWS::SQS::Queue"]
    apis = [k for k, v in resources.items() if v.get("Type") == "AWS::Serverless::HttpApi"]
    lines += dashboard(widgets, queues, apis)
    owned.append("  OperationsDashboard: infra-and-deployment")
    for logical_id, block in saved_queries():
        lines += block
        owned.append(f"  {logical_id}: infra-and-deployment")
    while lines and lines[-1] == "":
        lines.pop()
    new_template = replace_block(template_text, BEGIN, END, lines, "\nOutputs:\n")
    new_ownership = replace_block(ownership_text, OWN_BEGIN, OWN_END, owned, "\n# devops/")
    if check:
        stale = [p.name for p, old, new in ((TEMPLATE, template_text, new_template), (OWNERSHIP, ownership_text, new_ownership)) if old != new]
        if stale:
            print(f"stale: {', '.join(stale)} - a function, queue or API changed without its alarms; run scripts/operations.py", file=sys.stderr)
            return 1
        n = sum(1 for line in lines if line.strip() == "Type: AWS::CloudWatch::Alarm")
        print(f"operations: {n} alarms and the dashboard cover {len(widgets)} functions, {len(queues)} queues, {len(apis)} API")
        return 0
    TEMPLATE.write_text(new_template)
    OWNERSHIP.write_text(new_ownership)
    print(f"wrote {len(owned)} resources into template.yaml and contracts/ownership.yaml")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
