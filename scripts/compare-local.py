#!/usr/bin/env python3
"""encache-local vs `cargo lambda watch`, serving the same function (HealthFunction,
`GET /v1/health`: its real binary, one `SELECT 1` on the local PostgreSQL per request).

    scripts/compare-local.py overhead [--n 500] [--warmup 100] [--rounds 3]
    scripts/compare-local.py reload [--runs 3] [--warmup-runs 1]

overhead: both servers up at once, idle (`encache-local start`, `cargo lambda watch
--ignore-changes`); after the warm-up, `--rounds` rounds of `--n` sequential requests on one
HTTP/1.1 keep-alive connection per server, the servers alternating each round; prints each
round's median and p99 and the median of the rounds.
reload: one server at a time in its watch mode (`encache-local start --watch`, `cargo lambda
watch`); after `--warmup-runs` unmeasured cycles, `--runs` times: a one-line change to functions/health/src/lib.rs (the body's
"status"), then the time from the save until `GET /v1/health` answers with the new value;
then the file is restored byte for byte and the time until the old value is back is
measured too ("revert"); polls that get no answer within 10 s are counted (a request lost
in a reload). The file is restored on any exit.

Needs what `scripts/start-local.sh` needs first: the dev services' variables
(`eval "$(scripts/dev-services.sh env)"`), the local env files (ENCACHE_ENV_VARS,
ENCACHE_CONTAINER_ENV_VARS) and `encache-local provision`. Not part of scripts/test.sh:
numbers for docs/benchmarks.md ("Local runtime: encache-local vs its peers").
Settings: ENCACHE_LOCAL_BIN, CARGO_LAMBDA (cargo-lambda 1.9.2 of .venv-infra/sam),
COMPARE_ENCACHE_PORT (3417), COMPARE_CARGO_LAMBDA_PORT (9417), COMPARE_LOG_DIR.
"""

import argparse
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "functions/health/src/lib.rs"
ORIGINAL_LINE = '                    status: "ok",\n'
TARGET_DIR = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
ENCACHE_LOCAL = os.environ.get("ENCACHE_LOCAL_BIN", str(TARGET_DIR / "debug/encache-local"))
CARGO_LAMBDA = os.environ.get("CARGO_LAMBDA", str(ROOT / ".venv-infra/sam/bin/cargo-lambda"))
ENCACHE_PORT = int(os.environ.get("COMPARE_ENCACHE_PORT", "3417"))
CARGO_LAMBDA_PORT = int(os.environ.get("COMPARE_CARGO_LAMBDA_PORT", "9417"))
LOG_DIR = Path(os.environ.get("COMPARE_LOG_DIR", os.environ.get("ENCACHE_DEV_DIR", "/tmp")))


def die(msg):
    sys.exit(f"compare-local: {msg}")


def local_database_url():
    """HealthFunction's DATABASE_URL as encache-local gives it (the env file's Parameters)."""
    path = Path(os.environ.get("ENCACHE_ENV_VARS", ROOT / "sam-env.local.json"))
    try:
        env = json.loads(path.read_text())
    except OSError as e:
        die(f"cannot read {path} ({e}): run scripts/start-local.sh --init first")
    over = env.get("HealthFunction", {})
    return over.get("DATABASE_URL") or env.get("Parameters", {}).get("DATABASE_URL") or die(
        f"{path} sets no DATABASE_URL"
    )


class Server:
    """One server process (its own process group, stopped by that group's id)."""

    def __init__(self, name, port, path, argv, env=None):
        self.name, self.port, self.path = name, port, path
        self.log = LOG_DIR / f"compare-{name}.log"
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def get(self, timeout=120.0):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", self.path)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def wait_ready(self, timeout=900.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                die(f"{self.name} exited ({self.proc.returncode}); see {self.log}")
            try:
                status, body = self.get(timeout=60)
                if status == 200:
                    return body
            except OSError:
                pass
            time.sleep(0.2)
        die(f"{self.name} did not answer 200 on {self.path} within {timeout:.0f} s; see {self.log}")

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def encache_local(watch):
    argv = [ENCACHE_LOCAL, "start", "--addr", f"127.0.0.1:{ENCACHE_PORT}"]
    return Server(
        "encache-local" + ("-watch" if watch else ""),
        ENCACHE_PORT,
        "/v1/health",
        argv + (["--watch"] if watch else []),
    )


def cargo_lambda(watch):
    # HealthFunction's variables as the template and the local env file give them.
    env_vars = {
        "DATABASE_URL": local_database_url(),
        "DB_TIMEOUT_MS": "1500",
        "ENCACHE_ENV": "dev",
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_LAMBDA_LOG_LEVEL": "INFO",
    }
    argv = [CARGO_LAMBDA, "lambda", "watch", "-p", "encache-health", "--bin", "health"]
    argv += ["-A", "127.0.0.1", "-P", str(CARGO_LAMBDA_PORT)]
    for k, v in env_vars.items():
        argv += ["--env-var", f"{k}={v}"]
    if not watch:
        argv.append("--ignore-changes")
    return Server(
        "cargo-lambda" + ("-watch" if watch else ""),
        CARGO_LAMBDA_PORT,
        "/lambda-url/health/v1/health",
        argv,
    )


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def sequential(server, n):
    """n GETs on one keep-alive connection; latencies in ms (request sent → body read)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    out = []
    try:
        for _ in range(n):
            t = time.perf_counter_ns()
            conn.request("GET", server.path)
            resp = conn.getresponse()
            resp.read()
            out.append((time.perf_counter_ns() - t) / 1e6)
            if resp.status != 200:
                die(f"{server.name} answered {resp.status}")
            if resp.getheader("connection", "").lower() == "close":
                die(f"{server.name} closed the keep-alive connection")
    finally:
        conn.close()
    return out


def overhead(args):
    servers = [encache_local(False), cargo_lambda(False)]
    try:
        for s in servers:
            s.wait_ready()
        time.sleep(args.settle)  # encache-local's event sources come up after the API
        for s in servers:
            sequential(s, args.warmup)
        print(f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
        rounds = {s.name: [] for s in servers}
        for r in range(args.rounds):
            order = servers if r % 2 == 0 else servers[::-1]
            for s in order:
                lat = sequential(s, args.n)
                rounds[s.name].append((statistics.median(lat), percentile(lat, 99)))
                print(
                    f"round {r + 1} {s.name}: p50 {rounds[s.name][-1][0]:.3f} ms, "
                    f"p99 {rounds[s.name][-1][1]:.3f} ms ({args.n} requests)",
                    flush=True,
                )
        print(f"\n| server, {args.n} sequential requests x {args.rounds} rounds | p50 | p99 |")
        print("|---|---|---|")
        for name, rs in rounds.items():
            p50 = statistics.median(r[0] for r in rs)
            p99 = statistics.median(r[1] for r in rs)
            print(f"| {name} | {p50:.3f} ms | {p99:.3f} ms |")
    finally:
        for s in servers:
            s.stop()


POLL_TIMEOUT = 10.0
unanswered = {}


def status_of(server):
    """The body's "status" of one GET (None on an error or no answer within POLL_TIMEOUT)."""
    try:
        status, body = server.get(timeout=POLL_TIMEOUT)
    except TimeoutError:
        unanswered[server.name] = unanswered.get(server.name, 0) + 1
        return None
    except OSError:
        return None
    if status != 200:
        return None
    try:
        return json.loads(body).get("status")
    except ValueError:
        return None


def wait_for(server, value, since, timeout=600.0):
    while time.monotonic() - since < timeout:
        if status_of(server) == value:
            return time.monotonic() - since
        time.sleep(0.1)
    die(f"{server.name} never answered status {value!r} within {timeout:.0f} s; see {server.log}")


def reload(args):
    original = SOURCE.read_bytes()
    if original.decode().count(ORIGINAL_LINE) != 1:
        die(f"{SOURCE} no longer has exactly one line {ORIGINAL_LINE.strip()!r}; update this script")
    results = {}
    try:
        for make in (encache_local, cargo_lambda):
            server = make(True)
            try:
                server.wait_ready()
                time.sleep(args.settle)  # let a start-up build finish
                if status_of(server) != "ok":
                    die(f"{server.name} does not answer status 'ok' before the change")
                edits, reverts = [], []
                # Unmeasured first: the first build after the other tool built this binary
                # recompiles more than the crate (cargo's fingerprints differ between them).
                for i in range(-args.warmup_runs, args.runs):
                    marker = f"ok-reload-{i + 1}"
                    changed = original.decode().replace(ORIGINAL_LINE, f'                    status: "{marker}",\n')
                    SOURCE.write_bytes(changed.encode())
                    edits.append(wait_for(server, marker, time.monotonic()))
                    SOURCE.write_bytes(original)
                    reverts.append(wait_for(server, "ok", time.monotonic()))
                    if i < 0:
                        print(f"{server.name} warm-up: change {edits.pop():.1f} s, revert {reverts.pop():.1f} s", flush=True)
                        unanswered.pop(server.name, None)
                    else:
                        print(f"{server.name} run {i + 1}: change {edits[-1]:.1f} s, revert {reverts[-1]:.1f} s", flush=True)
                    time.sleep(args.settle)
                results[server.name] = (edits, reverts)
                print(f"load average after {server.name}: {os.getloadavg()[0]:.2f}", flush=True)
            finally:
                SOURCE.write_bytes(original)
                server.stop()
    finally:
        SOURCE.write_bytes(original)
    print(f"\n| server, one-line change in functions/health, {args.runs} runs | median save → new code answers | runs (change; revert) |")
    print("|---|---|---|")
    for name, (edits, reverts) in results.items():
        runs = ", ".join(f"{x:.1f}" for x in edits) + "; " + ", ".join(f"{x:.1f}" for x in reverts)
        print(f"| {name} | {statistics.median(edits + reverts):.1f} s | {runs} s |")
    for name, n in unanswered.items():
        print(f"{name}: {n} request(s) got no answer within {POLL_TIMEOUT:.0f} s (sent while it reloaded)")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    o = sub.add_parser("overhead")
    o.add_argument("--n", type=int, default=500)
    o.add_argument("--warmup", type=int, default=100)
    o.add_argument("--rounds", type=int, default=3)
    o.add_argument("--settle", type=float, default=10.0)
    r = sub.add_parser("reload")
    r.add_argument("--runs", type=int, default=3)
    r.add_argument("--settle", type=float, default=5.0)
    r.add_argument("--warmup-runs", type=int, default=1)
    args = p.parse_args()
    for tool in (ENCACHE_LOCAL, CARGO_LAMBDA):
        if not os.access(tool, os.X_OK):
            die(f"no executable {tool}")
    (overhead if args.cmd == "overhead" else reload)(args)


if __name__ == "__main__":
    main()
