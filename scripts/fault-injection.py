#!/usr/bin/env python3
"""Fault injection through the local stack (docs/reliability.md).

One command: it starts the dev services (scripts/dev-services.sh up) and a local stack
(encache-local init + provision + start, env files of its own), signs a user up with
`encache-local user create/token`, seeds data, then runs each scenario as a steady stream
of concurrent requests through the local gateway while a fault is injected:

  a  load: N requests at C concurrent across the feeds, /v1/me, /v1/health and writes
  b  the database (this dev-services cluster) stopped and started mid-load
  c  the AWS emulator (this dev-services moto) stopped and started on the same port
     mid-load, on a fresh stack whose feed processes cold-start during the outage
  d  a fake Discord answering 5xx then 429 (Retry-After) storms while alarms reach the
     cost-alert forwarder (encache-local invoke, as SNS would, duplicates + retries)
  e  function processes SIGKILLed mid-invocation (memory feed, upload API,
     conversation feed) while requests flow

For each: requests, status histogram, 5xx and whether each is a 503 StandardError,
recovery time, rows the client got 201 for vs rows in the database. Markdown to stdout
(and --out FILE).

    export ENCACHE_DEV_DIR=$PWD/.dev-faults ENCACHE_API_ADDR=127.0.0.1:3100
    .venv/bin/python scripts/fault-injection.py --out /tmp/faults.md

Settings: ENCACHE_DEV_DIR (default .dev: the dev services it starts, stops and restarts
are that folder's), ENCACHE_API_ADDR (127.0.0.1:3000), ENCACHE_BIN_DIR (default
$CARGO_TARGET_DIR/debug: build first with `cargo build --workspace --bins`). With
--url URL it uses a stack that is already running (e.g. scripts/start-local.sh) and the
env files ENCACHE_ENV_VARS / ENCACHE_CONTAINER_ENV_VARS instead of starting its own; its
dev services must then be ENCACHE_DEV_DIR's. Python 3.11, the standard library and boto3
(in .venv, as moto's dependency). Every process it starts it stops; the dev services are
left running (scripts/dev-services.sh down stops them). docs/reliability.md has a run.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import http.client
import http.server
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
PASSWORD = "Passw0rd!long-faults"


def log(msg: str) -> None:
    print(f"==> {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- services


class Services:
    """The dev services of ENCACHE_DEV_DIR: their env, and how to stop/start each."""

    def __init__(self, dev_dir: Path):
        self.dev_dir = dev_dir
        self.state = dev_dir / "services"
        self.env: dict[str, str] = {}

    def up(self) -> None:
        env = dict(os.environ, ENCACHE_DEV_DIR=str(self.dev_dir))
        out = subprocess.run([str(ROOT / "scripts/dev-services.sh"), "up"], env=env,
                             capture_output=True, text=True, check=False)
        if out.returncode != 0:
            sys.exit(f"scripts/dev-services.sh up failed:\n{out.stderr}")
        for line in out.stdout.splitlines():
            if line.startswith("export "):
                for part in shlex.split(line[len("export "):]):
                    k, _, v = part.partition("=")
                    self.env[k] = v

    # PostgreSQL ------------------------------------------------------------------
    @property
    def pg_data(self) -> Path:
        return Path((self.state / "pg_dir").read_text().strip()) / "data"

    def _as_pg(self, *args: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else list(args)

    def pg_stop(self) -> None:
        # The postmaster's own command line, to start it again exactly so (same port).
        self._pg_opts = (self.pg_data / "postmaster.opts").read_text()
        subprocess.run(self._as_pg(str(PG_BIN / "pg_ctl"), "-D", str(self.pg_data), "-m", "fast",
                                   "-w", "stop"), check=True, capture_output=True)

    def pg_start(self) -> None:
        words = shlex.split(self._pg_opts)[1:]
        # drop "-D <dir>": pg_ctl passes its own
        opts = []
        skip = False
        for w in words:
            if skip:
                skip = False
                continue
            if w == "-D":
                skip = True
                continue
            opts.append(w)
        logf = self.pg_data.parent / "postgres.log"
        subprocess.run(self._as_pg(str(PG_BIN / "pg_ctl"), "-D", str(self.pg_data), "-l", str(logf),
                                   "-w", "-t", "60", "-o", shlex.join(opts), "start"),
                       check=True, capture_output=True)

    def psql(self, sql: str) -> list[list[str]]:
        out = subprocess.run([str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", self.env["PGPORT"],
                              "-U", "postgres", "-d", "encache", "-qtAX", "-F", "\t", "-c", sql],
                             capture_output=True, text=True, check=True)
        return [line.split("\t") for line in out.stdout.splitlines() if line]

    # moto ------------------------------------------------------------------------
    @property
    def moto_port(self) -> str:
        return (self.state / "moto_port").read_text().strip()

    def moto_stop(self) -> None:
        pid = int((self.state / "moto.pid").read_text().strip())
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)

    def moto_start(self) -> None:
        venv = Path(os.environ.get("ENCACHE_VENV", ROOT / ".venv"))
        logf = open(self.state / "moto.log", "ab")
        # As scripts/dev-services.sh starts it: setsid, same host and port.
        p = subprocess.Popen([str(venv / "bin/python"), "-m", "moto.server", "-H", "127.0.0.1",
                              "-p", self.moto_port], stdout=logf, stderr=logf,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        (self.state / "moto.pid").write_text(f"{p.pid}\n")
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                c = http.client.HTTPConnection("127.0.0.1", int(self.moto_port), timeout=1)
                c.request("GET", "/moto-api/")
                c.getresponse().read()
                return
            except OSError:
                time.sleep(0.1)
        sys.exit("moto did not come back within 60 s")


# --------------------------------------------------------------------------- stack


class Stack:
    """encache-local for this run: its own env files, started and stopped by us."""

    def __init__(self, services: Services, addr: str, bin_dir: Path, work: Path, env_files: tuple[str, str] | None = None):
        self.services = services
        self.addr = addr
        self.bin_dir = bin_dir
        self.work = work
        self.proc: subprocess.Popen | None = None
        self.log_path = work / "stack.log"
        self.env = dict(os.environ)
        self.env.update(services.env)
        self.env.update(
            ENCACHE_BIN_DIR=str(bin_dir),
            ENCACHE_ENV_VARS=env_files[0] if env_files else str(work / "sam-env.local.json"),
            ENCACHE_CONTAINER_ENV_VARS=env_files[1] if env_files else str(work / "sam-container-env.local.json"),
            ENCACHE_TEMPLATE=str(ROOT / "template.yaml"),
            ENCACHE_API_ADDR=addr,
        )
        self.local = str(bin_dir / "encache-local")
        self.max_instances = 4
        self.external = False  # --url: a stack someone else started (scripts/start-local.sh)

    def run(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        r = subprocess.run([self.local, *args], env=self.env, cwd=ROOT, input=stdin,
                           capture_output=True, text=True)
        if check and r.returncode != 0:
            sys.exit(f"encache-local {' '.join(args)} failed:\n{r.stderr[-3000:]}")
        return r

    def init(self, webhook_parameter: str) -> None:
        self.run("init")
        path = self.work / "sam-env.local.json"
        env = json.loads(path.read_text())
        env["CostAlertFunction"] = {"DISCORD_WEBHOOK_PARAMETER": webhook_parameter}
        path.write_text(json.dumps(env, indent=2) + "\n")

    def provision(self, full: bool = True) -> None:
        args = ["provision", "--api-url", f"http://{self.addr}"]
        if not full:
            args += ["--no-custom-resources", "--no-traffic-hooks"]
        self.run(*args)

    def start(self) -> None:
        if self.external:
            return
        logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.local, "--max-instances", str(self.max_instances), "start", "--addr", self.addr], env=self.env, cwd=ROOT,
                                     stdout=logf, stderr=logf, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"encache-local start exited: see {self.log_path}")
            try:
                status, _ = request(self.addr, "GET", "/v1/health", timeout=5)
                if status in (200, 503):
                    return
            except OSError:
                pass
            time.sleep(0.2)
        sys.exit(f"the local API did not answer within 60 s: see {self.log_path}")

    def stop(self) -> None:
        if self.external:
            return
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def pid(self) -> int:
        """encache-local's process: ours, or (--url) the one listening on the API's port."""
        if self.proc:
            return self.proc.pid
        port = int(self.addr.rsplit(":", 1)[1])
        inodes = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for line in Path(table).read_text().splitlines()[1:]:
                f = line.split()
                if int(f[1].rsplit(":", 1)[1], 16) == port and f[3] == "0A":
                    inodes.add(f[9])
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                for fd in (d / "fd").iterdir():
                    if os.readlink(fd) in {f"socket:[{i}]" for i in inodes}:
                        return int(d.name)
            except OSError:
                continue
        sys.exit(f"no process listens on {self.addr}")

    def function_pids(self, binary: str) -> list[int]:
        """Processes of `binary` that the stack's encache-local spawned (its children only)."""
        parent = self.pid()
        pids = []
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                stat = (d / "stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                exe = os.readlink(d / "exe")
            except OSError:
                continue
            if ppid == parent and os.path.basename(exe) == binary:
                pids.append(int(d.name))
        return pids


# --------------------------------------------------------------------------- HTTP


_local = threading.local()


def request(addr: str, method: str, path: str, token: str | None = None, body: dict | None = None,
            timeout: float = 15.0) -> tuple[int, bytes]:
    """One request on this thread's keep-alive connection (a new one after any error)."""
    host, port = addr.rsplit(":", 1)
    conn = getattr(_local, "conn", None)
    if conn is None or getattr(_local, "addr", None) != addr:
        conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
        _local.conn, _local.addr = conn, addr
    headers = {}
    data = None
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=data, headers=headers)
        r = conn.getresponse()
        return r.status, r.read()
    except Exception:
        conn.close()
        _local.conn = None
        raise


def is_standard_error(raw: bytes) -> bool:
    """`{"status"?: number, "code"?: string, "message": string}` and nothing else."""
    try:
        b = json.loads(raw)
    except ValueError:
        return False
    if not isinstance(b, dict) or not isinstance(b.get("message"), str):
        return False
    if set(b) - {"status", "code", "message"}:
        return False
    if "status" in b and not isinstance(b["status"], int):
        return False
    if "code" in b and not isinstance(b["code"], str):
        return False
    return True


@dataclass
class Result:
    start: float
    end: float
    route: str
    status: int  # 0: no HTTP answer (connection error / client timeout)
    body: bytes
    write_key: str | None = None  # the unique title/text of a write


@dataclass
class Seed:
    token: str
    memory_ids: list[str]
    conversation_ids: list[str]


class ConnSampler:
    """The most connections the stack held on the database, sampled every 0.2 s."""

    def __init__(self, services: Services):
        self.services, self.max, self.stop = services, 0, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                n = int(self.services.psql("SELECT count(*) FROM pg_stat_activity WHERE datname = 'encache' "
                                           "AND pid <> pg_backend_pid() AND backend_type = 'client backend'")[0][0])
                self.max = max(self.max, n)
            except (subprocess.CalledProcessError, IndexError, ValueError):
                pass  # the database is down (scenario b)
            self.stop.wait(0.2)

    def done(self) -> int:
        self.stop.set()
        self.thread.join()
        return self.max


class Load:
    """A steady stream of requests at `concurrency`, across every feed route and writes."""

    READS = [
        ("GET /v1/memories", lambda s, i: f"/v1/memories?limit={5 + i % 20}"),
        ("GET /v1/memories?status", lambda s, i: "/v1/memories?status=pending&limit=10"),
        ("GET /v1/memories/{id}", lambda s, i: f"/v1/memories/{s.memory_ids[i % len(s.memory_ids)]}"),
        ("GET /v1/conversations", lambda s, i: f"/v1/conversations?limit={1 + i % 10}"),
        ("GET /v1/conversations/{id}/messages",
         lambda s, i: f"/v1/conversations/{s.conversation_ids[i % len(s.conversation_ids)]}/messages?limit=10"),
        ("GET /v1/me", lambda s, i: "/v1/me"),
        ("GET /v1/health", lambda s, i: "/v1/health"),
    ]

    def __init__(self, addr: str, seed: Seed, tag: str, concurrency: int):
        self.addr, self.seed, self.tag, self.concurrency = addr, seed, tag, concurrency
        self.results: list[Result] = []
        self.lock = threading.Lock()
        self.counter = 0
        self.stop = threading.Event()
        # Which routes to use: "all", or "no-feeds" (scenario c's first phase).
        self.mix = "all"

    def _next(self) -> int:
        with self.lock:
            self.counter += 1
            return self.counter

    def one(self, i: int) -> Result:
        s = self.seed
        kind = i % 8
        write_key = None
        if kind == 0:  # an upload declaration
            write_key = f"fi-{self.tag}-u{i}-{uuid.uuid4().hex[:8]}"
            route, method, path = "POST /v1/memories/uploads", "POST", "/v1/memories/uploads"
            body = {"content_type": "text/plain", "size_bytes": 6, "title": write_key}
        elif kind == 4:  # a message
            write_key = f"fi-{self.tag}-m{i}-{uuid.uuid4().hex[:8]}"
            cid = s.conversation_ids[i % len(s.conversation_ids)]
            route, method, path = "POST /v1/conversations/{id}/messages", "POST", f"/v1/conversations/{cid}/messages"
            body = {"role": "user", "text": write_key}
        else:
            reads = self.READS if self.mix == "all" else [r for r in self.READS if r[0] in ("GET /v1/me", "GET /v1/health")]
            route, fn = reads[i % len(reads)]
            method, path, body = "GET", fn(s, i), None
        t0 = time.monotonic()
        try:
            status, raw = request(self.addr, method, path, s.token, body)
        except Exception as e:  # no HTTP answer at all: counted, never hidden
            status, raw = 0, repr(e).encode()
        return Result(t0, time.monotonic(), route, status, raw, write_key)

    def _worker(self, limit: int | None) -> None:
        while not self.stop.is_set():
            i = self._next()
            if limit is not None and i > limit:
                return
            r = self.one(i)
            with self.lock:
                self.results.append(r)

    def run_count(self, n: int) -> float:
        t0 = time.monotonic()
        threads = [threading.Thread(target=self._worker, args=(n,)) for _ in range(self.concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.monotonic() - t0

    def start_background(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=self._worker, args=(None,), daemon=True) for _ in range(self.concurrency)]
        for t in threads:
            t.start()
        return threads

    def finish(self, threads: list[threading.Thread]) -> None:
        self.stop.set()
        for t in threads:
            t.join()


# --------------------------------------------------------------------------- reporting


@dataclass
class Row:
    scenario: str
    fault: str = ""
    requests: int = 0
    histogram: str = ""
    five_xx: int = 0
    five_xx_kinds: str = "—"
    no_answer: int = 0
    p50: str = "—"
    p99: str = "—"
    outage: str = "—"
    recovery: str = "—"
    writes_201: int = 0
    lost: int | str = 0
    duplicated: int | str = 0
    extra: int | str = 0
    max_conns: int | str = "—"
    notes: list[str] = field(default_factory=list)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    k = min(len(values) - 1, max(0, int(round(p / 100 * len(values) + 0.5)) - 1))
    return values[k]


def summarise(row: Row, results: list[Result], services: Services, tag: str,
              fault_start: float | None = None, fault_clear: float | None = None) -> Row:
    row.requests = len(results)
    hist = Counter(r.status for r in results)
    row.histogram = " ".join(f"{k or 'none'}:{v}" for k, v in sorted(hist.items()))
    fives = [r for r in results if r.status >= 500]
    row.five_xx = len(fives)
    row.no_answer = hist.get(0, 0)
    kinds = Counter()
    for r in fives:
        std = is_standard_error(r.body)
        try:
            b = json.loads(r.body)
            label = b.get("code") or b.get("message")
        except ValueError:
            label = "non-JSON"
        if std and set(json.loads(r.body)) == {"message"}:
            what = "gateway's own body"  # the local gateway's (and API Gateway's) answer, not a handler's
        else:
            what = "StandardError" if std else "NOT StandardError"
        kinds[f"{r.status} {what} ({label}; {r.route})"] += 1
    if kinds:
        row.five_xx_kinds = "<br>".join(f"{v}× {k}" for k, v in kinds.most_common())
        row.five_xx_kinds += f"<br>slowest 5xx: {max(r.end - r.start for r in fives) * 1000:.0f} ms"
    lat = [(r.end - r.start) * 1000 for r in results if r.status]
    if lat:
        row.p50 = f"{statistics.median(lat):.0f} ms"
        row.p99 = f"{pct(lat, 99):.0f} ms"
    if fault_start is not None and fault_clear is not None:
        row.outage = f"{fault_clear - fault_start:.1f} s"
        after = [r for r in results if r.start >= fault_clear]
        good = [r for r in after if 200 <= r.status < 300]
        bad_after = [r for r in results if (r.status >= 500 or r.status == 0) and r.end > fault_clear]
        first_good = min((r.end for r in good), default=None)
        parts = []
        if first_good is not None:
            parts.append(f"first 2xx {first_good - fault_clear:.2f} s after")
        if bad_after:
            parts.append(f"last failure {max(r.end for r in bad_after) - fault_clear:.2f} s after")
        else:
            parts.append("no failure after")
        row.recovery = "; ".join(parts)
    # Rows: every write the client got 201 for must be in the database exactly once;
    # a write that failed may or may not be there (no idempotency key in this API).
    created = {r.write_key for r in results if r.write_key and r.status == 201}
    failed = {r.write_key for r in results if r.write_key and r.status != 201}
    row.writes_201 = len(created)
    rows = services.psql(
        f"SELECT title, count(*) FROM memories WHERE title LIKE 'fi-{tag}-%' GROUP BY title "
        f"UNION ALL SELECT body, count(*) FROM messages WHERE body LIKE 'fi-{tag}-%' GROUP BY body")
    in_db = {k: int(n) for k, n in rows}
    row.lost = sum(1 for k in created if k not in in_db)
    row.duplicated = sum(1 for k, n in in_db.items() if n > 1)
    row.extra = sum(1 for k in failed if k in in_db)
    return row


def render(rows: list[Row], header: str) -> str:
    out = [header, "",
           "| scenario | fault | requests | statuses | 5xx | 5xx bodies | no answer | p50 | p99 | fault lasted | recovery (from fault cleared) | writes 201 | lost | duplicated | failed write stored | max DB connections |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r.scenario} | {r.fault} | {r.requests} | {r.histogram} | {r.five_xx} | {r.five_xx_kinds} | "
                   f"{r.no_answer} | {r.p50} | {r.p99} | {r.outage} | {r.recovery} | {r.writes_201} | "
                   f"{r.lost} | {r.duplicated} | {r.extra} | {r.max_conns} |")
    notes = [(r.scenario, n) for r in rows for n in r.notes]
    if notes:
        out.append("")
        for s, n in notes:
            out.append(f"- {s}: {n}")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- seeding


def upload_roundtrip(addr: str, token: str, title: str, wait: float = 20.0) -> float | None:
    """POST a declaration, PUT the bytes to the presigned URL, poll until the memory is
    ready (S3 event -> queue -> UploadCompleteFunction). Seconds to ready, or None."""
    t0 = time.monotonic()
    st, body = request(addr, "POST", "/v1/memories/uploads", token,
                       {"content_type": "text/plain", "size_bytes": 6, "title": title})
    if st != 201:
        return None
    ticket = json.loads(body)
    u = urllib.parse.urlsplit(ticket["upload_url"])
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    c.request("PUT", f"{u.path}?{u.query}", body=b"hello\n", headers=ticket["headers"])
    r = c.getresponse()
    r.read()
    if r.status != 200:
        return None
    while time.monotonic() - t0 < wait:
        st, body = request(addr, "GET", f"/v1/memories/{ticket['memory_id']}", token)
        if st == 200 and json.loads(body).get("status") == "ready":
            return time.monotonic() - t0
        time.sleep(0.2)
    return None


def seed(stack: Stack, email: str) -> Seed:
    stack.run("user", "create", email, "--password", PASSWORD)
    token = stack.run("user", "token", email, "--password", PASSWORD).stdout.strip()
    addr = stack.addr
    st, body = request(addr, "GET", "/v1/me", token)
    assert st == 200, (st, body)
    conversations = []
    for n in range(3):
        st, body = request(addr, "POST", "/v1/conversations", token, {"title": f"seed {n}"})
        assert st == 201, (st, body)
        cid = json.loads(body)["id"]
        conversations.append(cid)
        for m in range(5):
            st, body = request(addr, "POST", f"/v1/conversations/{cid}/messages", token,
                               {"role": "user" if m % 2 == 0 else "assistant", "text": f"seed message {m}"})
            assert st == 201, (st, body)
    memories = []
    for n in range(5):
        st, body = request(addr, "POST", "/v1/memories/uploads", token,
                           {"content_type": "text/plain", "size_bytes": 6, "title": f"seed {n}"})
        assert st == 201, (st, body)
        ticket = json.loads(body)
        memories.append(ticket["memory_id"])
        # the bytes, so some memories are ready (S3 event -> UploadCompleteFunction)
        u = urllib.parse.urlsplit(ticket["upload_url"])
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        c.request("PUT", f"{u.path}?{u.query}", body=b"hello\n", headers=ticket["headers"])
        r = c.getresponse()
        r.read()
        assert r.status == 200, r.status
    deadline = time.time() + 20
    while time.time() < deadline:
        st, body = request(addr, "GET", "/v1/memories?status=ready", token)
        if st == 200 and len(json.loads(body)["items"]) == len(memories):
            break
        time.sleep(0.3)
    else:
        log("warning: not every seeded upload became ready within 20 s")
    return Seed(token, memories, conversations)


# --------------------------------------------------------------------------- scenarios


def scenario_load(stack, services, s: Seed, n: int, c: int) -> Row:
    load = Load(stack.addr, s, "a", c)
    sampler = ConnSampler(services)
    took = load.run_count(n)
    row = summarise(Row("a. load", f"none ({n} requests, {c} concurrent)"), load.results, services, "a")
    row.max_conns = sampler.done()
    procs = {b: len(stack.function_pids(b)) for b in ("memory-feed", "conversation-feed", "upload-api", "auth-me", "health")}
    row.notes.append("function processes after the run: " + ", ".join(f"{b} {n}" for b, n in procs.items())
                     + f" (encache-local --max-instances {stack.max_instances} caps each function; "
                     "each process holds at most DB_MAX_CONNECTIONS = 1)")
    row.notes.append(f"{n} requests in {took:.1f} s ({n / took:.0f} req/s); 1 in 8 an upload "
                     f"declaration, 1 in 8 a message, the rest the 7 read routes in turn")
    return row


def with_fault(stack, services, s: Seed, tag: str, c: int, before: float, inject, clear,
               after: float, mix_before: str = "all", after_clear=None) -> tuple[list[Result], float, float, int]:
    load = Load(stack.addr, s, tag, c)
    load.mix = mix_before
    load.sampler = ConnSampler(services)
    threads = load.start_background()
    time.sleep(before)
    t_fault = time.monotonic()
    inject()
    load.mix = "all"
    clear()
    t_clear = time.monotonic()
    if after_clear:
        after_clear()
    time.sleep(max(0.0, after - (time.monotonic() - t_clear)))
    load.finish(threads)
    return load.results, t_fault, t_clear, load.sampler.done()


def scenario_db(stack, services, s: Seed, c: int, down: float) -> Row:
    def inject():
        services.pg_stop()

    def clear():
        time.sleep(down)
        services.pg_start()

    results, t0, t1, conns = with_fault(stack, services, s, "b", c, 3, inject, clear, 6)
    row = summarise(Row("b. database restart", f"pg_ctl stop -m fast, {down:.0f} s down, pg_ctl start (same port)"),
                    results, services, "b", t0, t1)
    row.max_conns = conns
    return row


def scenario_moto(stack, services, s: Seed, c: int, down: float) -> Row:
    import boto3  # moto's dependency, in .venv

    endpoint = services.env["AWS_ENDPOINT_URL"]
    ssm = boto3.client("ssm", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
    saved = []
    provision_took: list[float] = []

    def inject():
        # What the emulator holds that a restart would lose and AWS would not: the SSM
        # parameters (the feeds' cursor key among them), put back as they were.
        for page in ssm.get_paginator("describe_parameters").paginate():
            for p in page["Parameters"]:
                v = ssm.get_parameter(Name=p["Name"], WithDecryption=True)["Parameter"]
                saved.append((p["Name"], v["Value"], p["Type"]))
        services.moto_stop()

    def clear():
        time.sleep(down)
        services.moto_start()
        for name, value, typ in saved:
            ssm.put_parameter(Name=name, Value=value, Type=typ, Overwrite=True)

    def after_clear():
        # buckets, queues, notifications, tables, the stack record (while the load goes on)
        t = time.monotonic()
        stack.provision(full=False)
        provision_took.append(time.monotonic() - t)

    # A fresh stack: the feed processes cold-start (and read the cursor key from SSM)
    # during the outage, as new Lambda containers would.
    stack.stop()
    stack.start()
    results, t0, t1, conns = with_fault(stack, services, s, "c", c, 2, inject, clear, 6,
                                 mix_before="all" if stack.external else "no-feeds",
                                 after_clear=after_clear)
    row = summarise(Row("c. AWS emulator restart",
                        f"moto SIGTERM, {down:.0f} s down, started on the same port, state restored"),
                    results, services, "c", t0, t1)
    row.max_conns = conns
    ready = upload_roundtrip(stack.addr, s.token, f"after-c-{uuid.uuid4().hex[:6]}")
    row.notes.append("an upload after the restart (POST, PUT to the emulator's S3, S3 event, UploadCompleteFunction): "
                     + (f"ready in {ready:.1f} s" if ready is not None else "NOT ready within 20 s"))
    row.notes.append(f"saved and restored {len(saved)} SSM parameters (fault cleared = moto answering with "
                     f"them back); then `encache-local provision --no-custom-resources --no-traffic-hooks` "
                     f"({provision_took[0] if provision_took else float('nan'):.1f} s, under load) recreated the rest (moto keeps nothing "
                     "across a restart); the feeds were first called after moto stopped, so each feed "
                     "process's first request needed SSM during the outage")
    return row


def scenario_kill(stack, services, s: Seed, c: int) -> Row:
    killed = []

    def inject():
        for binary in ("memory-feed", "upload-api", "conversation-feed"):
            pids = stack.function_pids(binary)
            if pids:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(f"{binary} pid {pids[0]}")
            time.sleep(1.0)

    def crashes() -> int:
        if stack.external or not stack.log_path.exists():
            return 0
        # The gateway's 500 for a request whose process died: in flight ("the process exited
        # during the invocation"), or handed to it before the runtime saw it die (logged as
        # "initialisation failed: process exited").
        return sum(1 for line in stack.log_path.read_text(errors="replace").splitlines()
                   if line.startswith("[gateway]") and ": 500 (" in line and "SIGKILL" in line)

    before = crashes()
    results, t0, t1, conns = with_fault(stack, services, s, "e", c, 3, inject, lambda: None, 5)
    hit = crashes() - before
    row = summarise(Row("e. process killed", "SIGKILL of one memory-feed, upload-api and conversation-feed process, 1 s apart, under load"),
                    results, services, "e", t0, t1)
    row.max_conns = conns
    row.notes.append("killed: " + ", ".join(killed) + ("" if stack.external else f"; the gateway answered {hit} request(s) 500 because "
                     "their process was killed (its log: `the process exited during the invocation`, or "
                     "`initialisation failed: process exited` for one handed to the process as it died)"))
    return row


# The fake Discord: the tests' contract (5 requests / 2 s per webhook, 429 with
# Retry-After + retry_after), plus a storm schedule.
class FakeDiscord:
    def __init__(self, storm_5xx: float, storm_429: float):
        self.storm_5xx, self.storm_429 = storm_5xx, storm_429
        self.t0 = None
        self.lock = threading.Lock()
        self.window: list[float] = []
        self.log: list[tuple[float, int, str]] = []
        self.accepted: Counter = Counter()
        fake = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    title = json.loads(raw)["embeds"][0]["title"]
                except (ValueError, KeyError, IndexError, TypeError):
                    title = "?"
                status, headers, body = fake.answer(title)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                data = json.dumps(body).encode() if body is not None else b""
                self.send_header("Content-Length", str(len(data)))
                if data:
                    self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/api/webhooks/123456789012345678/tok-faults"

    def answer(self, title: str):
        now = time.monotonic()
        with self.lock:
            t = now - (self.t0 or now)
            if self.t0 is not None and t < self.storm_5xx:
                status = (500, 502, 503, 504)[len(self.log) % 4]
                self.log.append((t, status, title))
                return status, {}, {"message": "injected failure", "code": 0}
            if self.t0 is not None and t < self.storm_5xx + self.storm_429:
                self.log.append((t, 429, title))
                return 429, {"Retry-After": "1", "X-RateLimit-Remaining": "0"}, \
                    {"message": "You are being rate limited.", "retry_after": 1.0, "global": True}
            self.window = [w for w in self.window if now - w < 2.0]
            if len(self.window) >= 5:
                wait = 2.0 - (now - self.window[0])
                self.log.append((t, 429, title))
                return 429, {"Retry-After": str(int(wait) + 1), "X-RateLimit-Remaining": "0",
                             "X-RateLimit-Reset-After": f"{wait:.3f}"}, \
                    {"message": "You are being rate limited.", "retry_after": round(wait, 3), "global": False}
            self.window.append(now)
            self.log.append((t, 204, title))
            self.accepted[title] += 1
            return 204, {"X-RateLimit-Remaining": str(5 - len(self.window))}, None


def scenario_discord(stack, services, parameter: str, alerts: int, storm_5xx: float, storm_429: float) -> Row:
    import boto3

    fake = FakeDiscord(storm_5xx, storm_429)
    ssm = boto3.client("ssm", endpoint_url=services.env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
    try:
        previous = ssm.get_parameter(Name=parameter, WithDecryption=True)["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        previous = None
    ssm.put_parameter(Name=parameter, Value=fake.url, Type="SecureString", Overwrite=True)
    sample = json.loads((ROOT / "events/alarm-sns-alarm.json").read_text())
    run_id = uuid.uuid4().hex[:6]
    events = []
    for n in range(alerts):
        ev = json.loads(json.dumps(sample))
        rec = ev["Records"][0]["Sns"]
        msg = json.loads(rec["Message"])
        name = f"encache-faults-{run_id}-alarm-{n}"
        msg["AlarmName"] = name
        msg["AlarmArn"] = f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"
        msg["StateChangeTime"] = f"2026-11-30T18:{n:02d}:00.000+0000"
        rec["Message"] = json.dumps(msg)
        rec["Subject"] = f'ALARM: "{name}" in US East (N. Virginia)'
        rec["MessageId"] = str(uuid.uuid4())
        events.append((f"ALARM: {name}", json.dumps(ev)))

    invocations = Counter()
    outcomes: dict[str, list[str]] = defaultdict(list)

    def deliver(title: str, event: str) -> None:
        # Lambda's asynchronous invocation as SNS uses it: one attempt and two retries
        # (minutes apart in AWS, 4 s and 8 s here).
        for attempt, delay in enumerate((0, 4, 8)):
            time.sleep(delay)
            invocations[title] += 1
            r = stack.run("invoke", "CostAlertFunction", "--event", "-", stdin=event, check=False)
            if r.returncode == 0:
                outcomes[title].append(f"ok:{r.stdout.strip()[-40:]}")
                return
            try:
                outcomes[title].append(json.loads(r.stdout.strip().splitlines()[-1])["errorType"])
            except (ValueError, IndexError, KeyError):
                outcomes[title].append("error")
        outcomes[title].append("gave up (would go to the DLQ)")

    fake.t0 = time.monotonic()
    # Every alert delivered twice at once (SNS delivers at least once; two containers).
    with cf.ThreadPoolExecutor(max_workers=2 * alerts) as ex:
        futures = [ex.submit(deliver, t, e) for t, e in events for _ in range(2)]
        for f in futures:
            f.result()
    took = time.monotonic() - fake.t0
    fake.server.shutdown()
    if previous is not None:
        ssm.put_parameter(Name=parameter, Value=previous, Type="SecureString", Overwrite=True)
    hist = Counter(st for _, st, _ in fake.log)
    row = Row("d. Discord storm", f"{storm_5xx:.0f} s of 500/502/503/504, then {storm_429:.0f} s of 429 "
              f"(Retry-After: 1, global), then Discord's 5/2 s limit")
    row.requests = len(fake.log)
    row.histogram = " ".join(f"{k}:{v}" for k, v in sorted(hist.items()))
    row.five_xx = sum(v for k, v in hist.items() if k >= 500)
    row.five_xx_kinds = "injected by the fake Discord (upstream), not answered by us"
    row.writes_201 = alerts
    per = [fake.accepted[t] for t, _ in events]
    row.lost = sum(1 for n in per if n == 0)
    row.duplicated = sum(1 for n in per if n > 1)
    row.extra = "—"
    last_post = max((t for t, st, _ in fake.log if st == 204), default=None)
    storm_end = storm_5xx + storm_429
    row.outage = f"{storm_end:.1f} s"
    if last_post is not None:
        first_after = min((t for t, st, _ in fake.log if st == 204 and t >= storm_end), default=None)
        row.recovery = (f"first post {first_after - storm_end:.2f} s after, last {last_post - storm_end:.2f} s after"
                        if first_after is not None else "—")
    row.notes.append(f"{alerts} alarms × 2 simultaneous deliveries, each retried like an async invoke; "
                     f"{sum(invocations.values())} invocations in {took:.1f} s; Discord posts per alarm: "
                     f"{per} (rows here = Discord posts: lost = an alarm never posted, duplicated = posted twice)")
    kinds = Counter(o for t in outcomes for o in outcomes[t] if not o.startswith("ok"))
    oks = sum(1 for t in outcomes for o in outcomes[t] if o.startswith("ok"))
    row.notes.append(f"invocation outcomes: {oks} ok, " + ", ".join(f"{v}× {k}" for k, v in kinds.items()))
    return row


# --------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="also write the Markdown table here")
    ap.add_argument("--url", help="use this running stack (e.g. scripts/start-local.sh's http://127.0.0.1:3000) "
                    "with the env files ENCACHE_ENV_VARS / ENCACHE_CONTAINER_ENV_VARS (default: the "
                    "repository's) instead of starting one; scenario c then does not restart it")
    ap.add_argument("--scenarios", default="abdec", help="which, in order (default abdec)")
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--fault-concurrency", type=int, default=20,
                    help="concurrent clients during the fault scenarios (default 20)")
    ap.add_argument("--down", type=float, default=4.0, help="seconds the database / emulator stays down")
    ap.add_argument("--alerts", type=int, default=5)
    ap.add_argument("--max-instances", type=int, default=4,
                    help="encache-local's processes per function (its default, 4)")
    args = ap.parse_args()

    dev_dir = Path(os.environ.get("ENCACHE_DEV_DIR", ROOT / ".dev"))
    addr = os.environ.get("ENCACHE_API_ADDR", "127.0.0.1:3000")
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    bin_dir = Path(os.environ.get("ENCACHE_BIN_DIR", target / "debug"))
    if not (bin_dir / "encache-local").exists():
        sys.exit(f"no encache-local in {bin_dir}: cargo build --workspace --bins (or set ENCACHE_BIN_DIR)")
    work = dev_dir / "faults"
    work.mkdir(parents=True, exist_ok=True)
    t_start = time.monotonic()

    services = Services(dev_dir)
    log(f"dev services of {dev_dir}")
    services.up()
    if args.url:
        addr = urllib.parse.urlsplit(args.url).netloc
        env_files = (os.environ.get("ENCACHE_ENV_VARS", str(ROOT / "sam-env.local.json")),
                     os.environ.get("ENCACHE_CONTAINER_ENV_VARS", str(ROOT / "sam-container-env.local.json")))
        stack = Stack(services, addr, bin_dir, work, env_files)
        stack.external = True
        env = json.loads(Path(env_files[0]).read_text())
        webhook_parameter = (env.get("CostAlertFunction", {}).get("DISCORD_WEBHOOK_PARAMETER")
                             or env.get("Parameters", {}).get("CostAlertWebhookParameterName")
                             or "/encache/dev/cost-alerts/discord-webhook")
    else:
        stack = Stack(services, addr, bin_dir, work)
        stack.log_path.write_bytes(b"")
        webhook_parameter = "/encache-faults/discord-webhook"
    stack.max_instances = args.max_instances
    rows: list[Row] = []
    try:
        if not stack.external:
            log("encache-local init + provision (migrations) + start")
            stack.init(webhook_parameter)
            stack.provision()
            stack.start()
        log("signing a user up and seeding conversations, messages and uploads")
        s = seed(stack, f"faults-{uuid.uuid4().hex[:8]}@example.com")
        for sc in args.scenarios:
            log(f"scenario {sc}")
            if sc == "a":
                rows.append(scenario_load(stack, services, s, args.requests, args.concurrency))
            elif sc == "b":
                rows.append(scenario_db(stack, services, s, args.fault_concurrency, args.down))
            elif sc == "c":
                rows.append(scenario_moto(stack, services, s, args.fault_concurrency, args.down))
            elif sc == "d":
                rows.append(scenario_discord(stack, services, webhook_parameter, args.alerts, 6, 4))
            elif sc == "e":
                rows.append(scenario_kill(stack, services, s, args.fault_concurrency))
            log(f"  {rows[-1].requests} requests, {rows[-1].five_xx} 5xx, lost {rows[-1].lost}, "
                f"duplicated {rows[-1].duplicated}")
    finally:
        stack.stop()
    load = os.getloadavg()
    header = (f"Run of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, "
              f"{time.monotonic() - t_start:.0f} s in all, load average after {load[0]:.1f}; "
              f"binaries {bin_dir}, API {addr}, dev services {dev_dir}")
    md = render(rows, header)
    print(md)
    if args.out:
        Path(args.out).write_text(md)


if __name__ == "__main__":
    main()
