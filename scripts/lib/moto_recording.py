"""The moto emulator's recording: what makes the local AWS state survive a restart.

    moto_recording.py compact FILE            rewrite FILE keeping only requests that change
                                              state; prints `KEPT READ`
    moto_recording.py replay PORT FILE        replay FILE into the moto on 127.0.0.1:PORT;
                                              prints the seconds it took
    moto_recording.py self-check              the compaction rules against known requests

scripts/dev-services.sh starts moto with its recorder on (MOTO_ENABLE_RECORDING): every
request it serves is appended to FILE as one JSON line (method, url, headers, body). On the
next fresh start the file is compacted, then replayed by moto itself
(POST /moto-api/recorder/replay-recording, which does not record the replay), so pools,
users and their passwords, buckets and objects, queues and parameters are back.

Compaction drops what a replay must not or need not repeat:
  - reads: GET/HEAD, and actions named Get*/Describe*/List*/Head* (query `Action=` or
    JSON `X-Amz-Target`);
  - KMS altogether: the emulator gives a replayed CreateKey a new random id, so a replayed
    CreateAlias would name a key that no longer exists and every restart would leave an
    orphan key; `encache-local provision` (every start) creates the local data key and its
    alias again when they are missing;
  - transient traffic: SQS messages (send, receive, delete, visibility; a restart must not
    redeliver old messages), Cognito sign-ins, token refreshes and sign-outs, STS sessions;
  - moto's own API (/moto-api/...), and everything before a recorded /moto-api/reset,
    which erased the emulator's state;
  - the Host header, so a replay reaches the new server whatever port the old one had.
Everything else is kept in order, byte for byte.
"""

import json
import os
import re
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

READ_PREFIXES = ("Get", "Describe", "List", "Head")
TRANSIENT_ACTIONS = {
    # SQS: messages live and die between restarts; a replayed SendMessage would redeliver.
    "SendMessage", "SendMessageBatch", "ReceiveMessage", "DeleteMessage", "DeleteMessageBatch",
    "ChangeMessageVisibility", "ChangeMessageVisibilityBatch", "PurgeQueue",
    # Cognito: sign-ins, challenges, tokens and sessions (new ones are made after a restart).
    "InitiateAuth", "AdminInitiateAuth", "RespondToAuthChallenge", "AdminRespondToAuthChallenge",
    "GlobalSignOut", "AdminUserGlobalSignOut", "RevokeToken",
    # STS: temporary credentials.
    "AssumeRole", "AssumeRoleWithWebIdentity", "AssumeRoleWithSAML", "GetSessionToken",
    # KMS: cryptographic operations leave the keys as they were.
    "Encrypt", "Decrypt", "ReEncrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
    "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext", "GenerateRandom", "Sign",
    "Verify", "GenerateMac", "VerifyMac",
}


def action_of(entry):
    """The API action a query- or JSON-protocol request names, or None (REST, e.g. S3)."""
    headers = {k.lower(): v for k, v in (entry.get("headers") or {}).items()}
    target = headers.get("x-amz-target")
    if target:
        return target.rsplit(".", 1)[-1]
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(entry.get("url", "")).query)
    if "Action" in query:
        return query["Action"][0]
    if entry.get("body") and not entry.get("body_encoded") and "form-urlencoded" in headers.get("content-type", ""):
        form = urllib.parse.parse_qs(entry["body"])
        if "Action" in form:
            return form["Action"][0]
    return None


def keep(entry):
    """True when replaying `entry` rebuilds state; False for reads and transient traffic."""
    method = (entry.get("method") or "").upper()
    path = urllib.parse.urlsplit(entry.get("url", "")).path
    if path.startswith("/moto-api/") or method in ("GET", "HEAD", "OPTIONS"):
        return False
    headers = {k.lower(): v for k, v in (entry.get("headers") or {}).items()}
    if headers.get("x-amz-target", "").startswith("TrentService."):
        return False
    action = action_of(entry)
    if action is None:
        return True
    return not (action.startswith(READ_PREFIXES) or action in TRANSIENT_ACTIONS)


def is_reset(entry):
    path = urllib.parse.urlsplit(entry.get("url", "")).path
    return (entry.get("method") or "").upper() == "POST" and path.rstrip("/") == "/moto-api/reset"


def compact_lines(lines):
    """(kept entries as JSON lines, how many were read). A line that is not JSON (a write
    cut off when moto was killed) is dropped, and so is anything before a reset."""
    kept, read = [], 0
    for line in lines:
        line = line.strip()
        if not line:
            continue
        read += 1
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if is_reset(entry):
            kept = []
            continue
        if not keep(entry):
            continue
        headers = entry.get("headers") or {}
        entry["headers"] = {k: v for k, v in headers.items() if k.lower() != "host"}
        kept.append(json.dumps(entry))
    return kept, read


def compact(path):
    with open(path, encoding="utf-8") as f:
        kept, read = compact_lines(f)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".recording.")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.writelines(line + "\n" for line in kept)
    os.replace(tmp, path)
    print(f"{len(kept)} {read}")


def replay(port, path):
    started = time.monotonic()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/moto-api/recorder/replay-recording", data=b"", method="POST"
    )
    try:
        urllib.request.urlopen(request, timeout=float(os.environ.get("REPLAY_TIMEOUT_SECONDS", "600"))).read()
    except (urllib.error.URLError, OSError) as e:
        sys.exit(f"replaying {path} failed: {e}")
    print(f"{time.monotonic() - started:.1f}")


def self_check():
    def entry(method, url, target=None, body="", content_type=None):
        headers = {"Host": "127.0.0.1:5000"}
        if target:
            headers["X-Amz-Target"] = target
        if content_type:
            headers["Content-Type"] = content_type
        return {"method": method, "url": url, "headers": headers, "body": body, "body_encoded": False}

    base = "http://127.0.0.1:5000"
    form = "application/x-www-form-urlencoded; charset=utf-8"
    cases = [
        (entry("POST", base + "/", "AWSCognitoIdentityProviderService.CreateUserPool"), True),
        (entry("POST", base + "/", "AWSCognitoIdentityProviderService.AdminCreateUser"), True),
        (entry("POST", base + "/", "AWSCognitoIdentityProviderService.AdminSetUserPassword"), True),
        (entry("POST", base + "/", "AWSCognitoIdentityProviderService.DescribeUserPool"), False),
        (entry("POST", base + "/", "AWSCognitoIdentityProviderService.ListUsers"), False),
        (entry("POST", base + "/", "AWSCognitoIdentityProviderService.InitiateAuth"), False),
        (entry("POST", base + "/", "AWSCognitoIdentityProviderService.AdminInitiateAuth"), False),
        (entry("POST", base + "/", "AmazonSQS.CreateQueue"), True),
        (entry("POST", base + "/", "AmazonSQS.SendMessage"), False),
        (entry("POST", base + "/", "AmazonSQS.ReceiveMessage"), False),
        (entry("POST", base + "/", "AmazonSQS.DeleteMessageBatch"), False),
        (entry("POST", base + "/", body="Action=SendMessage&QueueUrl=x", content_type=form), False),
        (entry("POST", base + "/", body="Action=CreateQueue&QueueName=x", content_type=form), True),
        (entry("POST", base + "/?Action=GetCallerIdentity&Version=2011-06-15"), False),
        (entry("POST", base + "/", "AmazonSSM.PutParameter"), True),
        (entry("POST", base + "/", "AmazonSSM.GetParameter"), False),
        (entry("POST", base + "/", "TrentService.CreateKey"), False),
        (entry("POST", base + "/", "TrentService.CreateAlias"), False),
        (entry("POST", base + "/", "TrentService.Decrypt"), False),
        (entry("PUT", base + "/bucket"), True),
        (entry("PUT", base + "/bucket/users/a/b.jpg"), True),
        (entry("DELETE", base + "/bucket/users/a/b.jpg"), True),
        (entry("POST", base + "/bucket?delete"), True),
        (entry("GET", base + "/bucket/users/a/b.jpg"), False),
        (entry("HEAD", base + "/bucket/users/a/b.jpg"), False),
        (entry("GET", base + "/moto-api/"), False),
        (entry("POST", base + "/moto-api/seed?a=42"), False),
    ]
    failures = [(e["method"], e["url"], e["headers"].get("X-Amz-Target"), e["body"], want)
                for e, want in cases if keep(e) != want]
    lines = [json.dumps(entry("PUT", base + "/old")), "{cut off",
             json.dumps(entry("POST", base + "/moto-api/reset")),
             json.dumps(entry("PUT", base + "/new")), json.dumps(entry("GET", base + "/new"))]
    kept, read = compact_lines(lines)
    if read != 5 or [json.loads(k)["url"] for k in kept] != [base + "/new"] or "Host" in kept[0]:
        failures.append(("compact_lines", kept, read))
    if failures:
        for f in failures:
            print(f"wrong: {f}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {len(cases)} requests classified, reset and cut-off lines handled")


def main(argv):
    if argv[:1] == ["compact"] and len(argv) == 2:
        compact(argv[1])
    elif argv[:1] == ["replay"] and len(argv) == 3:
        replay(argv[1], argv[2])
    elif argv == ["self-check"]:
        self_check()
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
