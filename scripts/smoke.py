"""The deploy's smoke test (scripts/smoke.sh says what it checks and how to run it)."""

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request

import boto3

ENV, API = sys.argv[1], sys.argv[2].rstrip("/")
PREFIX = json.load(open(os.path.join(os.path.dirname(__file__), "..", "contracts", "ssm-parameters.json")))[
    "parameter_prefix"
].replace("{env}", ENV)


class CheckFailed(Exception):
    pass


def call(method, path, token=None, body=None, expect=None, what=None, raw=None, headers=None, url=None):
    """One HTTP call; returns (status, parsed JSON or None). `expect` fails the check otherwise."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url or API + path, data=data, method=method)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            status, text = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as e:
        status, text = "no answer", str(e)
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = None
    if expect is not None and status != expect:
        raise CheckFailed(f"{what or method + ' ' + path}: {method} {path} -> {status} (expected {expect}): {text[:500]}")
    return status, parsed


def ok(what):
    print(f"ok    {what}", flush=True)


class CognitoIdentity:
    """A real user pool: Cognito itself runs the wired triggers."""

    def __init__(self):
        ssm = boto3.client("ssm")
        get = lambda k: ssm.get_parameter(Name=PREFIX + k)["Parameter"]["Value"]
        self.pool, self.client = get("auth/user-pool-id"), get("auth/app-client-id")
        self.idp = boto3.client("cognito-idp")

    def sign_up(self, email, password):
        self.idp.sign_up(ClientId=self.client, Username=email, Password=password,
                         UserAttributes=[{"Name": "email", "Value": email}])
        status = self.idp.admin_get_user(UserPoolId=self.pool, Username=email)["UserStatus"]
        if status != "CONFIRMED":  # pre-sign-up may auto-confirm
            self.idp.admin_confirm_sign_up(UserPoolId=self.pool, Username=email)

    def token(self, email, password):
        r = self.idp.admin_initiate_auth(UserPoolId=self.pool, ClientId=self.client,
                                         AuthFlow="ADMIN_USER_PASSWORD_AUTH",
                                         AuthParameters={"USERNAME": email, "PASSWORD": password})
        return r["AuthenticationResult"]["IdToken"]

    def delete(self, email):
        try:
            self.idp.admin_delete_user(UserPoolId=self.pool, Username=email)
        except self.idp.exceptions.UserNotFoundException:
            pass  # sign-up never created it


class LocalIdentity:
    """The emulator's pool: encache-local runs the triggers the pool's LambdaConfig names."""

    def __init__(self):
        bin_dir = os.environ.get("ENCACHE_BIN_DIR", "")
        self.cli = os.path.join(bin_dir, "encache-local") if bin_dir else "encache-local"

    def run(self, *args):
        p = subprocess.run([self.cli, "user", *args], capture_output=True, text=True)
        if p.returncode != 0:
            raise CheckFailed(p.stderr.strip() or f"encache-local user {args[0]} failed")
        return p.stdout.strip()

    def sign_up(self, email, password):
        self.run("create", email, "--password", password, "--require-wired-triggers")

    def token(self, email, password):
        return self.run("token", email, "--password", password)

    def delete(self, email):
        try:
            self.run("delete", email)
        except CheckFailed as e:
            if "UserNotFound" not in str(e) and "does not exist" not in str(e):
                raise


def main():
    for attempt in range(5):  # a cold start in the VPC can take a few seconds
        status, body = call("GET", "/v1/health")
        if status == 200:
            break
        if attempt == 4:
            raise CheckFailed(f"health: GET /v1/health -> {status}: {body}")
        time.sleep(3)
    ok("health: GET /v1/health -> 200")
    call("GET", "/v1/me", expect=401, what="authorizer")
    call("GET", "/v1/memories", expect=401, what="authorizer")
    ok("authorizer: /v1/me and /v1/memories -> 401 without a token")

    identity = LocalIdentity() if os.environ.get("SMOKE_IDENTITY") == "encache-local" else CognitoIdentity()
    email = f"smoke+{ENV}-{secrets.token_hex(6)}@{os.environ.get('SMOKE_EMAIL_DOMAIN', 'example.com')}"
    password = "Sm0ke-" + secrets.token_urlsafe(18) + "aA1"
    token = None
    try:
        try:
            identity.sign_up(email, password)
        except Exception as e:  # noqa: BLE001 - any failure here is the check's
            raise CheckFailed(f"sign-up through the wired triggers: {e}") from e
        ok(f"sign-up: {email} (pre-sign-up and post-confirmation ran)")
        try:
            token = identity.token(email, password)
        except Exception as e:  # noqa: BLE001
            raise CheckFailed(f"sign-in (pre-token-generation): {e}") from e
        ok("sign-in: ID token issued")

        _, me = call("GET", "/v1/me", token, expect=200, what="profile")
        if not me or me.get("email", "").lower() != email.lower() or not me.get("id"):
            raise CheckFailed(f"profile: GET /v1/me is not the smoke user's own profile: {me}")
        ok(f"profile: GET /v1/me -> 200, user {me['id']}")

        content = b"encache smoke test\n"
        _, ticket = call("POST", "/v1/memories/uploads", token, expect=201, what="upload",
                         body={"content_type": "text/plain", "size_bytes": len(content), "title": "smoke"})
        call("PUT", "", raw=content, headers={"Content-Type": "text/plain"}, url=ticket["upload_url"],
             expect=200, what="upload: PUT to the presigned URL")
        memory = ticket["memory_id"]
        deadline = time.time() + 60
        while True:
            _, m = call("GET", f"/v1/memories/{memory}", token, expect=200, what="upload")
            if m and m.get("status") == "ready":
                break
            if time.time() > deadline:
                raise CheckFailed(f"upload: memory {memory} is not ready after 60 s (S3 event -> upload-complete): {m}")
            time.sleep(1)
        ok(f"upload: memory {memory} reached ready")

        _, conv = call("POST", "/v1/conversations", token, body={"title": "smoke"}, expect=201, what="conversation")
        _, listed = call("GET", "/v1/conversations", token, expect=200, what="conversation")
        if conv["id"] not in [c.get("id") for c in (listed or {}).get("items", [])]:
            raise CheckFailed(f"conversation: {conv['id']} is not in GET /v1/conversations: {listed}")
        ok(f"conversation: {conv['id']} created and listed")
    finally:
        # The smoke user leaves nothing behind, even after a failed check: its data goes
        # with DELETE /v1/me (which needs its token), then the Cognito user, whatever
        # step the sign-up reached.
        cleanup_errors = []
        if token:
            status, body = call("DELETE", "/v1/me", token)
            if status != 204:
                cleanup_errors.append(f"DELETE /v1/me -> {status}: {body}")
        else:
            print(f"note  cleanup: no token for {email}, so a users row post-confirmation "
                  "may have written stays (it holds no other data)", file=sys.stderr)
        try:
            identity.delete(email)
        except Exception as e:  # noqa: BLE001
            cleanup_errors.append(f"deleting the Cognito user {email}: {e}")
        if cleanup_errors:
            print("FAIL  cleanup: " + "; ".join(cleanup_errors), file=sys.stderr)
            if sys.exc_info()[0] is None:
                raise CheckFailed("cleanup: " + "; ".join(cleanup_errors))
        elif token:
            ok("cleanup: the smoke user and its data are deleted")
    print("smoke test passed")


if __name__ == "__main__":
    try:
        main()
    except CheckFailed as e:
        print(f"FAIL  {e}", file=sys.stderr)
        sys.exit(1)
