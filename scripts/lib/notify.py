"""Posts one deploy notification to the environment's Discord channel.

    notify.py ENV STATUS TITLE [DETAIL]     STATUS: started | succeeded | failed | rolled-back

The webhook is the SecureString the cost alerts use (/encache/ENV/cost-alerts/discord-webhook,
or DEPLOY_NOTIFY_WEBHOOK_PARAMETER): one channel for alarms, budgets and deploys. Read
with decryption at the moment of sending, never printed. A notification never fails a
deploy: any problem is one warning line and exit 0.
"""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import boto3

COLORS = {"started": 0x3498DB, "succeeded": 0x2ECC71, "failed": 0xE74C3C, "rolled-back": 0xE67E22}
# Discord's embed limits (../shared/CONTRACTS.md): title 256, description 4096, field
# name 256 / value 1024, 25 fields, 6000 characters in all.
TITLE, DESCRIPTION, FIELD_VALUE = 256, 4096, 1024


def cut(text, limit):
    return text if len(text) <= limit else text[: limit - 1] + "…"


def origin():
    """Who and what: the CI run, or the workstation, and the commit."""
    if os.environ.get("GITHUB_RUN_ID"):
        run = f'{os.environ.get("GITHUB_SERVER_URL", "https://github.com")}/{os.environ.get("GITHUB_REPOSITORY", "")}/actions/runs/{os.environ["GITHUB_RUN_ID"]}'
        who = f'{os.environ.get("GITHUB_ACTOR", "?")} via GitHub Actions ({run})'
    else:
        who = f'{os.environ.get("USER", "?")} on {os.uname().nodename}'
    commit = os.environ.get("GITHUB_SHA") or subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip() or "?"
    return who, commit[:12]


def message(env, status, title, detail):
    who, commit = origin()
    embed = {
        "title": cut(f"[{env}] deploy {status}: {title}", TITLE),
        "color": COLORS.get(status, 0x95A5A6),
        "fields": [
            {"name": "by", "value": cut(who, FIELD_VALUE), "inline": False},
            {"name": "commit", "value": commit, "inline": True},
        ],
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if detail:
        embed["description"] = cut("```\n" + cut(detail, DESCRIPTION - 8) + "\n```", DESCRIPTION)
    return {"username": "encache deploys", "embeds": [embed], "allowed_mentions": {"parse": []}}


def webhook(env):
    name = os.environ.get("DEPLOY_NOTIFY_WEBHOOK_PARAMETER") or f"/encache/{env}/cost-alerts/discord-webhook"
    url = boto3.client("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    parts = urllib.parse.urlsplit(url)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise ValueError(f"{name} does not hold an https URL")
    return url


def send(url, body):
    for attempt in range(2):
        req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"content-type": "application/json", "user-agent": "encache-deploy"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status
        except urllib.error.HTTPError as e:
            if e.code == 429 and attempt == 0:
                retry = json.loads(e.read() or b"{}").get("retry_after", 1)
                time.sleep(min(float(retry), 5))
                continue
            raise
    return None


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    env, status, title = sys.argv[1:4]
    detail = sys.argv[4] if len(sys.argv) > 4 else ""
    try:
        send(webhook(env), message(env, status, title, detail))
        print(f"notified Discord: deploy {status}", file=sys.stderr)
    except Exception as e:  # never fail the deploy over a notification
        # The error names no URL: urllib's messages carry the reason, not the request.
        print(f"warning: the Discord notification ({status}) was not sent: {type(e).__name__}: {e}", file=sys.stderr)


if __name__ == "__main__":
    main()
