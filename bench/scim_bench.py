"""SCIM provider benchmark: Tenantry (SQLite) against the reference scim2-server, same run, same workload.

    .venv/bin/python bench/scim_bench.py [--users 100000] [--requests N] [--concurrency C] [--json]

What it does, in order:

1. Starts ``tenantry serve`` (SQLite in a fresh temp data dir, uvicorn's default single worker) and
   ``scim2-server`` (in-memory) as subprocesses on free 127.0.0.1 ports, and waits until both answer.
2. Loads the same ``--users`` generated users into each through ``POST /Bulk`` (both announce Bulk in
   their ServiceProviderConfig), with the same batch size and the same number of concurrent batches,
   checking every operation answered 201. Load time and users/s are reported.
3. Measures, with a light load generator (``--concurrency`` connections spread over ``--processes`` worker
   processes, raw HTTP/1.1 over sockets with the requests pre-built, keep-alive where the server allows it,
   a new connection per request where it does not; see "The load generator" below):
   (a) ``GET /Users?filter=userName eq "<random existing user>"``, checking 200, totalResults 1 and the
       userName of the answer; (b) ``PATCH /Users/{id}`` replacing ``name.givenName`` and ``active``,
       checking the status (200 with the patched resource, or 204 as RFC 7644 §3.5.2 allows) and, after
       the pass, re-reading a sample of patched users. Then a single-connection pass of both operations
       for latency (one connection, sequential, same client); then (c) ``POST /Users`` of new users (the
       generated shape, a userName no server holds yet), checking 201 and the userName of the answer, at
       ``--concurrency`` connections and over one (``--no-post`` leaves them out). The servers take turns, so
       only one is under load at a time.
4. Prints a table (or JSON with ``--json``): requests/s, p50/p99/max latency, and the CPU each server and
   the client spent per request (from /proc, Linux), then the ratios Tenantry / scim2-server and issue #16's
   goals (scim2-server's requests/s: filtered GET >= 8x at ``--concurrency``; PATCH and POST >= 2x there and
   over one connection; Bulk load >= 2x its users/s; p99 < 10 ms over one connection for PATCH and the filtered
   GET). Stops both servers (also on Ctrl-C, kill or an error).

A request that fails its check is counted as an error; any error makes the exit status 1. Every pass is
bounded by ``--requests`` and ``--max-seconds``; loading is bounded by ``--load-timeout`` per server.
"""

from __future__ import annotations

import argparse
import datetime as dt
import errno
import gc
import json
import multiprocessing
import os
import platform
import queue
import random
import secrets
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

BIN = Path(sys.executable).parent
SCIM_JSON = "application/scim+json"
CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"

FIRST = ["adele", "alex", "allan", "ben", "carla", "chen", "christie", "debra", "diego", "emily", "fatima",
         "grady", "henrietta", "isaiah", "joni", "johanna", "lee", "lidia", "lynne", "megan", "miriam",
         "nestor", "olga", "patti", "pradeep", "raul", "sakura", "sofia", "tomas", "yuki", "zainab", "wei"]
LAST = ["adams", "brown", "bianchi", "cruz", "dubois", "garcia", "gupta", "hansen", "ito", "jensen",
        "kim", "kowalski", "larsen", "lopez", "martin", "meyer", "nguyen", "novak", "okafor", "patel",
        "rossi", "sato", "schmidt", "silva", "smith", "tanaka", "vargas", "weber", "wilson", "zhang"]
DEPARTMENTS = ["Sales", "Engineering", "Finance", "Legal", "Marketing", "Operations", "Support", "HR"]
TITLES = ["Analyst", "Engineer", "Manager", "Director", "Specialist", "Consultant", "Associate"]


# -- workload ----------------------------------------------------------------------------------------


def make_users(count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` realistic, deterministic users (the same for both servers)."""
    rng = random.Random(seed)
    users = []
    for i in range(1, count + 1):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        given, family = first.capitalize(), last.capitalize()
        user_name = f"{first}.{last}.{i}@contoso.com"
        users.append({
            "schemas": [CORE_USER, ENTERPRISE],
            "userName": user_name,
            "externalId": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "name": {"givenName": given, "familyName": family, "formatted": f"{given} {family}"},
            "displayName": f"{given} {family}",
            "title": rng.choice(TITLES),
            "preferredLanguage": "en-US",
            "active": rng.random() < 0.95,
            "emails": [{"value": user_name, "type": "work", "primary": True}],
            # +1 425 2xx xxxx: valid NANP numbers in E.164, one per user.
            "phoneNumbers": [{"value": f"+1425{2_000_000 + i}", "type": "mobile", "primary": True}],
            ENTERPRISE: {
                "employeeNumber": str(100_000 + i),
                "costCenter": f"CC-{rng.randrange(100, 140)}",
                "department": rng.choice(DEPARTMENTS),
                "organization": "Contoso",
            },
        })
    return users


def bulk_batches(users: list[dict[str, Any]], max_ops: int, max_bytes: int) -> list[bytes]:
    """BulkRequest bodies of at most ``max_ops`` operations and ``max_bytes`` bytes each, in user order."""
    bodies: list[bytes] = []
    ops: list[str] = []
    size = 0
    envelope = len(json.dumps({"schemas": [BULK_REQUEST], "Operations": []})) + 16

    def flush() -> None:
        nonlocal ops, size
        if ops:
            head = f'{{"schemas":["{BULK_REQUEST}"],"Operations":['
            bodies.append((head + ",".join(ops) + "]}").encode())
        ops, size = [], 0

    for i, user in enumerate(users):
        op = json.dumps({"method": "POST", "path": "/Users", "bulkId": f"u{i}", "data": user},
                        separators=(",", ":"))
        if ops and (len(ops) >= max_ops or envelope + size + len(op) + 1 > max_bytes):
            flush()
        ops.append(op)
        size += len(op) + 1
    flush()
    return bodies


# -- servers -----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    name: str
    base: str  # SCIM base URL, without a trailing slash
    token: str
    proc: subprocess.Popen[bytes]
    workdir: Path
    log: Path
    max_ops: int = 1000
    max_bytes: int = 1_048_576
    ids: dict[int, str] = field(default_factory=dict)  # user index → SCIM id

    @property
    def host(self) -> str:
        return urllib.parse.urlsplit(self.base).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        return urllib.parse.urlsplit(self.base).port or 80

    @property
    def addr(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def path(self) -> str:
        return urllib.parse.urlsplit(self.base).path

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process and its threads so far (Linux /proc), or None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@contextmanager
def run_server(kind: str, keep: bool, database_url: str | None = None, answer: bytes | None = None
               ) -> Iterator[Server]:
    """Start one server on a free loopback port with a fresh temp dir; stop it and remove the dir after.

    ``database_url``: Tenantry's database (default: SQLite in the temp dir). ``answer``: the bytes the bare
    anchor answers every ``GET /scim/v2/Users`` with."""
    workdir = Path(tempfile.mkdtemp(prefix=f"scim-bench-{kind}-"))
    port = free_port()
    token = secrets.token_urlsafe(24)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTRY_")}
    if kind == "tenantry":
        env.update(TENANTRY_DATA_DIR=str(workdir / "data"), TENANTRY_BOOTSTRAP_SCIM_TOKEN=token)
        if database_url:
            env["TENANTRY_DATABASE_URL"] = database_url
        cmd = [str(BIN / "tenantry"), "serve", "--host", "127.0.0.1", "--port", str(port)]
        base = f"http://127.0.0.1:{port}/scim/v2"
    elif kind == "bare":
        (workdir / "answer.json").write_bytes(answer or b"{}")
        cmd = [sys.executable, str(Path(__file__).resolve()), "--serve-bare", str(port), str(workdir / "answer.json")]
        base = f"http://127.0.0.1:{port}/scim/v2"
    else:
        # One argument, "--bearer-token=…": a random token may begin with "-", which argparse takes for an option.
        cmd = [str(BIN / "scim2-server"), "--hostname", "127.0.0.1", "--port", str(port), f"--bearer-token={token}"]
        base = f"http://127.0.0.1:{port}/v2"
    log = workdir / "server.log"
    with open(log, "wb") as out:
        # cwd is the temp dir, so no tenantry.toml of the caller is read.
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    server = Server(kind, base, token, proc, workdir, log)
    try:
        _wait_ready(server)
        yield server
    finally:
        if proc.poll() is not None:
            print(f"{kind} had exited with {proc.returncode}; its log ends with:\n{server.log_tail()}",
                  file=sys.stderr)
        _stop(proc)
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


def _wait_ready(server: Server, timeout: float = 300.0) -> None:  # a loaded machine starts slowly
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.proc.returncode}:\n{server.log_tail()}")
        try:
            if server.name == "bare":
                if httpx.get(f"{server.base}/Users", timeout=2).status_code == 200:
                    return
                time.sleep(0.2)
                continue
            r = httpx.get(f"{server.base}/ServiceProviderConfig", timeout=2)
            if r.status_code == 200:
                bulk = r.json().get("bulk") or {}
                if not bulk.get("supported"):
                    raise RuntimeError(f"{server.name} does not announce Bulk support")
                server.max_ops = int(bulk.get("maxOperations") or 1000)
                server.max_bytes = int(bulk.get("maxPayloadSize") or 1_048_576)
                return
            last = f"HTTP {r.status_code}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.2)
    raise RuntimeError(f"{server.name} did not answer within {timeout:.0f}s ({last}):\n{server.log_tail()}")


def client(server: Server, connections: int) -> httpx.Client:
    return httpx.Client(
        headers={"Authorization": f"Bearer {server.token}", "Content-Type": SCIM_JSON, "Accept": SCIM_JSON},
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        timeout=httpx.Timeout(120.0),
    )


# -- loading -----------------------------------------------------------------------------------------


@dataclass
class LoadResult:
    server: str
    users: int
    loaded: int
    batches: int
    batch_ops: int
    concurrency: int
    seconds: float
    complete: bool
    errors: list[str]

    @property
    def users_per_s(self) -> float:
        return self.loaded / self.seconds if self.seconds else 0.0


def load(server: Server, bodies: list[bytes], first_index: list[int], concurrency: int, timeout: float,
         progress: Callable[[str], None]) -> LoadResult:
    """POST the bulk bodies, ``concurrency`` at a time; record the id of each created user."""
    lock = threading.Lock()
    next_batch = iter(range(len(bodies)))
    errors: list[str] = []
    done = [0, 0]  # batches, users
    stop = threading.Event()
    deadline = time.monotonic() + timeout
    total_users = first_index[-1]

    def worker(http: httpx.Client) -> None:
        while not stop.is_set():
            if time.monotonic() > deadline:
                stop.set()
                return
            with lock:
                b = next(next_batch, None)
            if b is None:
                return
            try:
                r = http.post(f"{server.base}/Bulk", content=bodies[b])
                if r.status_code != 200:
                    raise RuntimeError(f"batch {b}: HTTP {r.status_code} {r.text[:300]}")
                ops = r.json()["Operations"]
                created = {}
                for op in ops:
                    if op.get("status") != "201":
                        raise RuntimeError(f"batch {b}: {op.get('bulkId')} answered {json.dumps(op)[:300]}")
                    created[int(op["bulkId"][1:])] = op["location"].rstrip("/").rsplit("/", 1)[1]
                expected = first_index[b + 1] - first_index[b]
                if len(created) != expected:
                    raise RuntimeError(f"batch {b}: {len(created)} results for {expected} operations")
            except Exception as exc:  # noqa: BLE001 - reported, and the load stops
                with lock:
                    errors.append(str(exc))
                stop.set()
                return
            with lock:
                server.ids.update(created)
                done[0] += 1
                done[1] += len(created)
                if done[0] % max(1, len(bodies) // 10) == 0:
                    progress(f"  {server.name}: {done[1]}/{total_users} users loaded "
                             f"({time.monotonic() - start:.0f}s)")

    start = time.monotonic()
    with client(server, concurrency) as http:
        threads = [threading.Thread(target=worker, args=(http,), daemon=True) for _ in range(concurrency)]
        for t in threads:
            t.start()
        _join(threads, stop)
    seconds = time.monotonic() - start
    complete = not errors and done[1] == total_users
    if not complete and not errors:
        errors.append(f"load stopped by --load-timeout ({timeout:.0f}s) after {done[1]} users")
    return LoadResult(server.name, total_users, done[1], len(bodies), server.max_ops, concurrency, seconds,
                      complete, errors)


def _join(threads: list[threading.Thread], stop: threading.Event) -> None:
    """Join worker threads in short steps, so Ctrl-C reaches the main thread (and stops the workers)."""
    try:
        for t in threads:
            while t.is_alive():
                t.join(0.2)
    except BaseException:
        stop.set()
        raise


def serve_bare(port: int, answer_file: str) -> None:
    """The HTTP stack's bound: FastAPI on uvicorn, started as ``tenantry serve`` starts its app (``uvicorn.run``,
    one worker, uvloop and httptools where installed), answering every ``GET /scim/v2/Users`` with the bytes of
    one of Tenantry's filtered GET answers, doing nothing else (no token check, no database, no JSON)."""
    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import Response

    answer = Path(answer_file).read_bytes()
    app = FastAPI()

    @app.get("/scim/v2/Users")
    async def users() -> Response:
        return Response(answer, media_type=SCIM_JSON)

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def create_pg_database(url: str) -> tuple[str, Callable[[], None]]:
    """A fresh PostgreSQL database on the server ``url`` names (for Tenantry to migrate and fill), and a function
    that drops it. The database ``url`` names is only connected to, to create and drop the new one."""
    import sqlalchemy as sa

    name = f"scim_bench_{secrets.token_hex(4)}"
    admin = sa.create_engine(sa.make_url(url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return sa.make_url(url).set(database=name).render_as_string(hide_password=False), drop


# -- measuring ---------------------------------------------------------------------------------------


@dataclass
class PassResult:
    server: str
    operation: str
    concurrency: int
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    first_errors: list[str]
    server_cpu_s: float | None = None
    client_cpu_s: float | None = None
    checked: int = 0  # PATCH: users re-read after the pass, and found patched

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        """Nearest-rank percentile of the latencies, in ms."""
        lat = sorted(self.latencies_ms)
        if not lat:
            return float("nan")
        rank = max(1, min(len(lat), int(-(-p * len(lat) // 100))))
        return lat[rank - 1]

    def summary(self) -> dict[str, Any]:
        return {
            "server": self.server, "operation": self.operation, "concurrency": self.concurrency,
            "requests": self.requests, "errors": self.errors, "seconds": round(self.seconds, 3),
            "requests_per_s": round(self.rps, 1), "p50_ms": round(self.pct(50), 2),
            "p90_ms": round(self.pct(90), 2), "p99_ms": round(self.pct(99), 2),
            "max_ms": round(max(self.latencies_ms, default=float("nan")), 2),
            "server_cpu_ms_per_request": self._per_request(self.server_cpu_s),
            "client_cpu_ms_per_request": self._per_request(self.client_cpu_s),
            "server_cpu_share": round(self.server_cpu_s / self.seconds, 2)
            if self.server_cpu_s is not None and self.seconds else None,
            "first_errors": self.first_errors, "patched_users_verified": self.checked or None,
        }

    def _per_request(self, seconds: float | None) -> float | None:
        return round(seconds * 1000 / self.requests, 2) if seconds is not None and self.requests else None


# The load generator. Each pass runs in worker processes (``--processes``, 2 by default, each with its own
# interpreter and GIL, so they neither share a lock nor wait on one) that multiplex their share of the
# ``concurrency`` connections with one selector each. Requests are raw HTTP/1.1 built as bytes before the pass;
# the answer parser reads the status line, the headers (Content-Length, Connection, ETag) and the body, and
# every answer is checked. A connection is kept alive while the server allows it (HTTP/1.1 without
# ``Connection: close``, or HTTP/1.0 with ``Connection: keep-alive``); when the server closes it (scim2-server's
# wsgiref answers HTTP/1.0 and closes after each answer), the next request opens a new one, and the connect is
# part of that request's latency. Workers take requests from one shared counter, so a stalled connection does
# not hold up the others' share.

Job = tuple[bytes, str, str, bool]  # the request, "get" | "patch" | "post", expected userName | givenName, active


def http_request(server: Server, method: str, target: str, body: bytes | None = None) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {server.host}:{server.port}",
             f"Authorization: Bearer {server.token}", f"Accept: {SCIM_JSON}"]
    if body is not None:
        lines += [f"Content-Type: {SCIM_JSON}", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


def get_jobs(server: Server, users: list[dict[str, Any]], picks: list[int], answers: str | None = None
             ) -> list[Job]:
    """Filtered GETs of the picked users; ``answers``: the userName every answer holds (the bare anchor's)."""
    jobs: list[Job] = []
    for i in picks:
        user_name = users[i]["userName"]
        query = urllib.parse.urlencode({"filter": f'userName eq "{user_name}"'}, quote_via=urllib.parse.quote)
        jobs.append((http_request(server, "GET", f"{server.path}/Users?{query}"), "get", answers or user_name,
                     False))
    return jobs


def patch_jobs(server: Server, picks: list[tuple[int, str, bool]]) -> list[Job]:
    jobs: list[Job] = []
    for i, given, active in picks:
        body = json.dumps({"schemas": [PATCH_OP], "Operations": [
            {"op": "replace", "path": "name.givenName", "value": given},
            {"op": "replace", "path": "active", "value": active},
        ]}).encode()
        jobs.append((http_request(server, "PATCH", f"{server.path}/Users/{server.ids[i]}", body),
                     "patch", given, active))
    return jobs


def post_jobs(server: Server, new_users: list[dict[str, Any]]) -> list[Job]:
    """``POST /Users`` of each new user (userNames no server holds yet)."""
    return [(http_request(server, "POST", f"{server.path}/Users", json.dumps(u).encode()), "post", u["userName"],
             False) for u in new_users]


def check_answer(kind: str, status: int, head: bytes, body: bytes, value: str, active: bool) -> str | None:
    """An error message, or None when the answer is right. ``head``: the header block, lower-cased."""
    try:
        if kind == "post":
            if status != 201:
                return f"HTTP {status} {body[:200]!r}"
            found = json.loads(body).get("userName")
            return None if found == value else f"created userName {found!r}, expected {value!r}"
        if kind == "get":
            if status != 200:
                return f"HTTP {status} {body[:200]!r}"
            doc = json.loads(body)
            if doc.get("totalResults") != 1:
                return f"totalResults {doc.get('totalResults')}, expected 1"
            found = (doc.get("Resources") or [{}])[0].get("userName")
            if found != value:
                return f"answered userName {found!r}, expected {value!r}"
            return None
        # PATCH, RFC 7644 §3.5.2: 200 with the resource, or 204 when no attributes were asked for.
        if status == 204:
            return None if b"\r\netag:" in head else "204 without an ETag"
        if status != 200:
            return f"HTTP {status} {body[:200]!r}"
        doc = json.loads(body)
        if (doc.get("name") or {}).get("givenName") != value or doc.get("active") is not active:
            return f"answer not patched: name={doc.get('name')} active={doc.get('active')}"
        return None
    except (ValueError, AttributeError, IndexError, TypeError) as exc:
        return f"unreadable answer ({type(exc).__name__}: {exc}): {body[:200]!r}"


class _Conn:
    __slots__ = ("sock", "events", "job", "t0", "out", "buf", "hend", "status", "head", "length", "keep",
                 "connecting", "reused", "retried")

    def __init__(self) -> None:
        self.sock: socket.socket | None = None
        self.job: Job | None = None


class _Driver:
    """One worker process's connections: each sends a request, reads and checks the answer, takes the next."""

    def __init__(self, jobs: list[Job], counter: Any, lock: Any, addr: tuple[str, int], connections: int,
                 max_seconds: float, timeout_s: float) -> None:
        self.jobs, self.counter, self.lock, self.addr = jobs, counter, lock, addr
        self.max_seconds, self.timeout_ns = max_seconds, int(timeout_s * 1e9)
        self.sel = selectors.DefaultSelector()
        self.conns = [_Conn() for _ in range(connections)]
        self.ready: list[_Conn] = []
        self.active = connections
        self.latencies: list[int] = []  # ns, every request answered or failed
        self.errors = 0
        self.failures: list[str] = []

    def run(self) -> None:
        self.deadline = time.monotonic() + self.max_seconds
        self.ready = list(self.conns)
        checked = time.monotonic()
        while True:
            while self.ready:
                self.begin(self.ready.pop())
            if not self.active:
                break
            events = self.sel.select(1.0)
            for key, mask in events:
                if mask & selectors.EVENT_WRITE:
                    self.on_write(key.data)
                else:
                    self.on_read(key.data)
            if time.monotonic() - checked >= 1.0:
                checked = time.monotonic()
                self.expire()
        self.sel.close()

    def take(self) -> int | None:
        if time.monotonic() > self.deadline:
            return None
        with self.lock:
            k = self.counter.value
            self.counter.value = k + 1
        return k if k < len(self.jobs) else None

    def begin(self, c: _Conn) -> None:
        k = self.take()
        if k is None:
            self.drop(c)
            self.active -= 1
            return
        c.job = self.jobs[k]
        c.retried = False
        c.t0 = time.perf_counter_ns()
        self.send(c)

    def send(self, c: _Conn) -> None:
        assert c.job is not None
        c.out, c.buf, c.hend = c.job[0], bytearray(), -1
        if c.sock is not None:
            c.reused = True
            self.write(c)
            return
        c.reused, c.connecting = False, True
        s = c.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        err = s.connect_ex(self.addr)
        if err not in (0, errno.EINPROGRESS, errno.EAGAIN):
            self.fail(c, f"connect: {os.strerror(err)}")
            return
        c.events = selectors.EVENT_WRITE
        self.sel.register(s, c.events, c)

    def on_write(self, c: _Conn) -> None:
        assert c.sock is not None
        if c.connecting:
            c.connecting = False
            err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self.fail(c, f"connect: {os.strerror(err)}")
                return
        self.write(c)

    def write(self, c: _Conn) -> None:
        assert c.sock is not None
        try:
            sent = c.sock.send(c.out)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self.closed(c, exc)
            return
        if sent < len(c.out):
            c.out = c.out[sent:]
            want = selectors.EVENT_WRITE
        else:
            c.out = b""
            want = selectors.EVENT_READ
        if c.events != want:
            c.events = want
            self.sel.modify(c.sock, want, c)

    def on_read(self, c: _Conn) -> None:
        assert c.sock is not None
        try:
            data = c.sock.recv(262_144)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.closed(c, exc)
            return
        if not data:
            self.closed(c, None)
            return
        c.buf += data
        if c.hend < 0:
            end = c.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(c.buf) > 65_536:
                    self.fail(c, "no end of the headers in 64 KiB")
                return
            problem = self.parse_head(c, end)
            if problem:
                self.fail(c, problem)
                return
        if c.length is not None and len(c.buf) - c.hend >= c.length:
            self.complete(c, bytes(c.buf[c.hend : c.hend + c.length]), len(c.buf) - c.hend > c.length)

    def parse_head(self, c: _Conn, end: int) -> str | None:
        """Status, keep-alive and body length from the header block ending at ``end``."""
        head = c.head = bytes(c.buf[:end]).lower()
        c.hend = end + 4
        lines = head.split(b"\r\n")
        version, _, rest = lines[0].partition(b" ")
        try:
            c.status = int(rest[:3])
        except ValueError:
            return f"bad status line {lines[0][:100]!r}"
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip()] = value.strip()
        connection = headers.get(b"connection", b"")
        if version == b"http/1.1":
            c.keep = b"close" not in connection
        elif version == b"http/1.0":
            c.keep = b"keep-alive" in connection
        else:
            return f"bad status line {lines[0][:100]!r}"
        if b"transfer-encoding" in headers:
            return f"Transfer-Encoding {headers[b'transfer-encoding']!r} (not read by this client)"
        length = headers.get(b"content-length")
        if length is not None:
            try:
                c.length = int(length)
            except ValueError:
                return f"bad Content-Length {length!r}"
        elif c.status in (204, 304) or c.status < 200:
            c.length = 0
        else:
            c.length, c.keep = None, False  # the body ends when the server closes the connection
        return None

    def closed(self, c: _Conn, exc: OSError | None) -> None:
        """The server closed the connection (or reset it)."""
        if exc is None and c.hend >= 0 and c.length is None:
            self.complete(c, bytes(c.buf[c.hend :]), False)
        elif c.reused and not c.buf and not c.retried:
            # A kept-alive connection the server had closed before it read the request: once more on a new one.
            self.drop(c)
            c.retried = True
            self.send(c)
        else:
            self.fail(c, f"connection closed ({exc or 'EOF'}) after {len(c.buf)} bytes of the answer")

    def complete(self, c: _Conn, body: bytes, extra: bool) -> None:
        assert c.job is not None
        self.latencies.append(time.perf_counter_ns() - c.t0)
        problem = check_answer(c.job[1], c.status, c.head, body, c.job[2], c.job[3])
        if not c.keep or extra:
            self.drop(c)
        if problem:
            self.record(c, problem)
        c.job = None
        self.ready.append(c)

    def fail(self, c: _Conn, problem: str) -> None:
        self.latencies.append(time.perf_counter_ns() - c.t0)
        self.record(c, problem)
        self.drop(c)
        c.job = None
        self.ready.append(c)

    def record(self, c: _Conn, problem: str) -> None:
        assert c.job is not None
        self.errors += 1
        if len(self.failures) < 5:
            line = c.job[0].split(b"\r\n", 1)[0].decode(errors="replace")
            self.failures.append(f"{line.removesuffix(' HTTP/1.1')}: {problem}")

    def expire(self) -> None:
        now = time.perf_counter_ns()
        for c in self.conns:
            if c.job is not None and c.sock is not None and now - c.t0 > self.timeout_ns:
                self.fail(c, f"no answer within {self.timeout_ns / 1e9:.0f} s")

    def drop(self, c: _Conn) -> None:
        if c.sock is not None:
            with suppress(KeyError, ValueError):
                self.sel.unregister(c.sock)
            c.sock.close()
            c.sock = None


def _worker(jobs: list[Job], counter: Any, lock: Any, addr: tuple[str, int], connections: int,
            max_seconds: float, start: Any, out: Any) -> None:
    """A load-generator process (forked): say ready, wait for the start, run, report."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops the pass (and this process)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    gc.freeze()  # the parent's objects, inherited by fork, are left out of garbage collection
    try:
        driver = _Driver(jobs, counter, lock, addr, connections, max_seconds, 120.0)
        out.put(("ready", None))
        start.wait()
        t0, cpu0 = time.monotonic_ns(), time.process_time()
        driver.run()
        cpu, t1 = time.process_time() - cpu0, time.monotonic_ns()
        out.put(("done", {"latencies": driver.latencies, "errors": driver.errors, "failures": driver.failures,
                          "cpu_s": cpu, "t0": t0, "t1": t1}))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which aborts the run
        out.put(("failed", f"{type(exc).__name__}: {exc}"))


def _collect(out: Any, procs: list[Any], kind: str, timeout: float) -> list[Any]:
    """One ``kind`` message from each worker process."""
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(got) < len(procs):
        try:
            what, data = out.get(timeout=0.5)
        except queue.Empty:
            if time.monotonic() > deadline:
                raise RuntimeError(f"load generator: no '{kind}' from its processes in {timeout:.0f}s") from None
            if any(p.exitcode not in (None, 0) for p in procs):
                raise RuntimeError("load generator: a process died") from None
            continue
        if what == "failed":
            raise RuntimeError(f"load generator: {data}")
        got.append(data)
    return got


def run_pass(server: Server, operation: str, jobs: list[Job], concurrency: int, max_seconds: float,
             processes: int) -> PassResult:
    """Send ``jobs`` over ``concurrency`` connections spread over ``processes`` worker processes."""
    ctx = multiprocessing.get_context("fork")
    nproc = max(1, min(processes, concurrency))
    shares = [concurrency // nproc + (k < concurrency % nproc) for k in range(nproc)]
    counter, lock, start, out = ctx.RawValue("q", 0), ctx.Lock(), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(jobs, counter, lock, server.addr, share, max_seconds, start, out),
                         daemon=True) for share in shares]
    try:
        for p in procs:
            p.start()
        _collect(out, procs, "ready", 60)
        server_cpu = process_cpu_seconds(server.proc.pid)
        client_cpu = time.process_time()
        start.set()
        reports = _collect(out, procs, "done", max_seconds + 180)
        client_cpu = time.process_time() - client_cpu + sum(r["cpu_s"] for r in reports)
        server_after = process_cpu_seconds(server.proc.pid)
        for p in procs:
            p.join(10)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
                p.join(5)
        out.close()
    seconds = (max(r["t1"] for r in reports) - min(r["t0"] for r in reports)) / 1e9
    latencies = [ns / 1e6 for r in reports for ns in r["latencies"]]
    failures = [f for r in reports for f in r["failures"]][:5]
    result = PassResult(server.name, operation, concurrency, len(latencies), sum(r["errors"] for r in reports),
                        seconds, latencies, failures, client_cpu_s=client_cpu)
    if server_cpu is not None and server_after is not None:
        result.server_cpu_s = server_after - server_cpu
    return result

def verify_patched(server: Server, picks: list[tuple[int, str, bool]], sample: int,
                   rng: random.Random) -> str | None:
    """Re-read a sample of patched users: the last value sent to each must be stored."""
    last: dict[int, tuple[str, bool]] = {i: (g, a) for i, g, a in picks}
    chosen = rng.sample(sorted(last), min(sample, len(last)))
    with client(server, 1) as http:
        for i in chosen:
            try:
                r = http.get(f"{server.base}/Users/{server.ids[i]}")
            except httpx.HTTPError as exc:
                return f"GET user {i}: {type(exc).__name__}: {exc}"
            if r.status_code != 200:
                return f"GET user {i}: HTTP {r.status_code}"
            doc = r.json()
            given, active = last[i]
            if (doc.get("name") or {}).get("givenName") != given or doc.get("active") is not active:
                return f"user {i} not patched: name={doc.get('name')} active={doc.get('active')}"
    return None


# -- reporting ---------------------------------------------------------------------------------------


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b else None


def render(report: dict[str, Any]) -> str:
    out = []
    meta = report["meta"]
    out.append(f"SCIM benchmark  {meta['date']}  {meta['cpus']} CPUs  Python {meta['python']}  "
               f"users={meta['users']}  requests={meta['requests']}  concurrency={meta['concurrency']}  "
               f"Tenantry on {meta.get('database', 'sqlite')}  load average at start {meta.get('load_average')}")
    src = meta.get("tenantry") or {}
    if src:
        state = f" commit {src['commit']}" if src.get("commit") else ""
        state += " + uncommitted changes" if src.get("uncommitted_changes") else ""
        out.append(f"Tenantry {src.get('version')} from {src.get('package')}{state}")
    if meta.get("load_average_end"):
        out.append(f"load average at the end {meta['load_average_end']}")
    out.append("")
    out.append(f"{'load (POST /Bulk)':<22}{'users':>9}{'batches':>9}{'ops/batch':>10}{'conc':>6}"
               f"{'seconds':>10}{'users/s':>10}")
    for ld in report["load"]:
        flag = "" if ld["complete"] else "  INCOMPLETE"
        out.append(f"{ld['server']:<22}{ld['loaded']:>9}{ld['batches']:>9}{ld['batch_ops']:>10}"
                   f"{ld['concurrency']:>6}{ld['seconds']:>10.1f}{ld['users_per_s']:>10.0f}{flag}")
    if report.get("load_ratio") is not None:
        out.append(f"load users/s, Tenantry / scim2-server: x{report['load_ratio']}")
    out.append("")
    out.append(f"{'operation':<16}{'conc':>5}  {'server':<14}{'requests':>9}{'errors':>7}{'req/s':>9}"
               f"{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'srv CPU ms/req':>16}{'client':>8}")
    for r in report["results"]:
        cpu = "".join(f"{v:>{w}.2f}" if v is not None else f"{'-':>{w}}" for v, w in (
            (r["server_cpu_ms_per_request"], 16), (r["client_cpu_ms_per_request"], 8)))
        out.append(f"{r['operation']:<16}{r['concurrency']:>5}  {r['server']:<14}{r['requests']:>9}"
                   f"{r['errors']:>7}{r['requests_per_s']:>9.1f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}"
                   f"{r['max_ms']:>9.2f}{cpu}")
    out.append("")
    bare = "Tenantry / bare FastAPI+uvicorn answering the same bytes (the HTTP stack's bound)"
    for against, title in (("scim2-server", "Tenantry / scim2-server"), ("bare", bare)):
        rows = [c for c in report["comparisons"] if c.get("against", "scim2-server") == against]
        if not rows:
            continue
        out.append(title)
        for c in rows:
            r = {k: str(v) for k, v in c.items()}
            out.append(f"  {c['operation']:<16} c={c['concurrency']:<3} req/s x{r['rps_ratio']:<6} "
                       f"p50 x{r['p50_ratio']:<6} p99 x{r['p99_ratio']:<6} server CPU/req x{r.get('server_cpu_ratio')}")
    out.append("  (req/s: higher is better for Tenantry; latency and CPU ratios: lower is better)")
    out.append("")
    for goal in report["goals"]:
        out.append(f"goal: {goal['goal']}: {'MET' if goal['met'] else 'NOT MET'} ({goal['measured']})")
    for r in report["results"]:
        for e in r["first_errors"]:
            out.append(f"error [{r['server']} {r['operation']} c={r['concurrency']}]: {e}")
    for ld in report["load"]:
        for e in ld["errors"]:
            out.append(f"load error [{ld['server']}]: {e}")
    if "aborted" in report:
        out.append(f"ABORTED: {report['aborted']}")
    return "\n".join(out)


# -- main --------------------------------------------------------------------------------------------


def tenantry_source() -> dict[str, Any]:
    """Which Tenantry code the server runs (the package its interpreter imports), and its git state."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTRY_")}
    code = "import tenantry; print(tenantry.__file__); print(tenantry.__version__)"
    try:
        out = subprocess.run([str(BIN / "python"), "-c", code], env=env, capture_output=True, text=True,
                             timeout=60, check=True).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return {}
    info: dict[str, Any] = {"package": str(Path(out[0]).parent), "version": out[1]}
    try:
        where = Path(out[0]).parent

        def git(*cmd: str) -> str:
            return subprocess.run(["git", "-C", str(where), *cmd], capture_output=True, text=True,
                                  timeout=30, check=True).stdout.strip()

        info["commit"] = git("rev-parse", "--short", "HEAD")
        info["uncommitted_changes"] = bool(git("status", "--porcelain", "--", "."))
    except (OSError, subprocess.SubprocessError):
        pass  # not a git checkout (an installed wheel, an exported tree)
    return info


# -- main --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=100_000, help="users loaded into each server (100000)")
    p.add_argument("--requests", type=int, default=5000, help="requests per concurrent pass (5000)")
    p.add_argument("--concurrency", type=int, default=8, help="connections in the concurrent passes (8)")
    p.add_argument("--processes", type=int, default=2,
                   help="load-generator processes the connections are spread over (2)")
    p.add_argument("--latency-requests", type=int, default=2000,
                   help="requests per single-connection pass (2000)")
    p.add_argument("--warmup", type=int, default=200, help="unmeasured requests before each pass (200)")
    p.add_argument("--max-seconds", type=float, default=120, help="time bound of each pass (120)")
    p.add_argument("--load-concurrency", type=int, default=2, help="concurrent BulkRequests when loading (2)")
    p.add_argument("--batch", type=int, default=1000,
                   help="operations per BulkRequest (1000, lowered to what both servers announce)")
    p.add_argument("--load-timeout", type=float, default=1200, help="time bound of loading one server (1200)")
    p.add_argument("--database-url", default=None,
                   help="run Tenantry on PostgreSQL: a URL of the server (postgresql+psycopg://user@host:port/db); "
                        "a fresh database is created there for the run and dropped after (default: SQLite)")
    p.add_argument("--no-anchor", dest="anchor", action="store_false",
                   help="skip the bare FastAPI/uvicorn anchor of the filtered GET passes")
    p.add_argument("--no-post", dest="post", action="store_false", help="skip the POST /Users passes")
    p.add_argument("--serve-bare", nargs=2, metavar=("PORT", "FILE"), help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=7643)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--keep", action="store_true", help="keep the servers' temp dirs (logs, SQLite file)")
    args = p.parse_args(argv)
    if min(args.users, args.requests, args.concurrency, args.processes, args.latency_requests, args.batch,
           args.load_concurrency) < 1:
        p.error("counts must be positive")
    return args


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_bare:
        serve_bare(int(args.serve_bare[0]), args.serve_bare[1])
        return 0
    # Ctrl-C and kill both unwind through the servers' cleanup (even when started with SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)

    def progress(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    rng = random.Random(args.seed)
    progress(f"generating {args.users} users")
    users = make_users(args.users, args.seed)
    started = dt.datetime.now(dt.UTC)
    report: dict[str, Any] = {"meta": {
        "date": started.strftime("%Y-%m-%d %H:%M UTC"), "cpus": os.cpu_count(),
        "python": platform.python_version(), "platform": platform.platform(), "users": args.users,
        "requests": args.requests, "concurrency": args.concurrency, "latency_requests": args.latency_requests,
        "client": f"raw HTTP/1.1 over sockets, {min(args.processes, args.concurrency)} processes",
        "warmup": args.warmup, "load_concurrency": args.load_concurrency, "seed": args.seed,
        "command": " ".join([".venv/bin/python", "bench/scim_bench.py", *(argv or sys.argv[1:])]),
        "tenantry": tenantry_source(), "database": "postgresql" if args.database_url else "sqlite",
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }, "load": [], "results": [], "comparisons": [], "goals": []}

    plan = [("filtered GET", args.concurrency, args.requests),
            ("PATCH", args.concurrency, args.requests),
            ("filtered GET", 1, args.latency_requests),
            ("PATCH", 1, args.latency_requests)]
    if args.post:
        plan += [("POST", args.concurrency, args.requests), ("POST", 1, args.latency_requests)]
    try:
        with ExitStack() as stack:
            database_url = None
            if args.database_url:
                database_url, drop = create_pg_database(args.database_url)
                stack.callback(drop)
                progress(f"Tenantry on a fresh PostgreSQL database: {database_url.rsplit('/', 1)[1]}")
            servers = []
            for kind in ("tenantry", "scim2-server"):
                progress(f"starting {kind}")
                servers.append(stack.enter_context(run_server(kind, args.keep, database_url)))
            measure(args, users, servers, plan, rng, report, progress, stack)
    except RuntimeError as exc:
        # A server that died or answered nonsense: report what was measured up to there, and fail.
        report["aborted"] = str(exc)
        progress(f"aborted: {exc}")
    summarise(args, plan, report)
    report["meta"]["seconds"] = round((dt.datetime.now(dt.UTC) - started).total_seconds(), 1)
    report["meta"]["load_average_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    failed = ("aborted" in report or any(r["errors"] for r in report["results"])
              or not all(ld["complete"] for ld in report["load"]))
    report["valid"] = not failed
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 1 if failed else 0


Plan = list[tuple[str, int, int]]


def measure(args: argparse.Namespace, users: list[dict[str, Any]], servers: list[Server], plan: Plan,
            rng: random.Random, report: dict[str, Any], progress: Callable[[str], None], stack: ExitStack) -> None:
    """Load both servers, then run every pass of the plan on each in turn (the filtered GETs on the bare
    anchor too); results go into ``report``."""

    def alive(server: Server) -> None:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.proc.returncode}:\n{server.log_tail()}")

    max_ops = min([args.batch, *(s.max_ops for s in servers)])
    max_bytes = min(s.max_bytes for s in servers)
    bodies = bulk_batches(users, max_ops, max_bytes)
    first_index = [0]
    for body in bodies:
        first_index.append(first_index[-1] + body.count(b'"method":"POST"'))
    for server in servers:
        progress(f"loading {args.users} users into {server.name}: {len(bodies)} BulkRequests "
                 f"of <= {max_ops} operations, {args.load_concurrency} at a time")
        result = load(server, bodies, first_index, args.load_concurrency, args.load_timeout, progress)
        report["load"].append({**result.__dict__, "users_per_s": round(result.users_per_s, 1),
                               "seconds": round(result.seconds, 1)})
        progress(f"  {server.name}: {result.loaded} users in {result.seconds:.1f}s "
                 f"({result.users_per_s:.0f} users/s)")
        alive(server)
    # Only users both servers hold are queried (all of them, unless a load was cut short).
    common = sorted(set.intersection(*(set(s.ids) for s in servers)))
    if not common:
        raise RuntimeError("no user was loaded into both servers")

    anchor: Server | None = None
    anchor_user = ""
    if args.anchor:
        # The bare anchor answers with the bytes of one of Tenantry's own filtered GET answers.
        anchor_user = users[common[0]]["userName"]
        tenantry = servers[0]
        with client(tenantry, 1) as http:
            answer = http.get(f"{tenantry.base}/Users", params={"filter": f'userName eq "{anchor_user}"'}).content
        progress(f"starting the bare FastAPI/uvicorn anchor ({len(answer)}-byte answer)")
        anchor = stack.enter_context(run_server("bare", args.keep, answer=answer))

    def gets(n: int) -> list[int]:
        return [rng.choice(common) for _ in range(n)]

    def patches(n: int) -> list[tuple[int, str, bool]]:
        # Distinct users within a pass (while there are enough), so the last value sent to each is known.
        chosen = rng.sample(common, n) if n <= len(common) else [rng.choice(common) for _ in range(n)]
        return [(i, f"{rng.choice(FIRST).capitalize()}-{k}", rng.random() < 0.5) for k, i in enumerate(chosen)]

    created = 0
    for operation, concurrency, n in plan:
        picks_get = gets(args.warmup + n)
        picks_patch = patches(args.warmup + n)
        # New users for a POST pass: the generator's shape, userNames of their own (the same for both servers).
        new_users = [{**u, "userName": f"post{created + k}.{u['userName']}", "externalId": f"post-{created + k}"}
                     for k, u in enumerate(make_users(args.warmup + n, args.seed + 1 + created))] \
            if operation == "POST" else []
        created += len(new_users)
        for server in [*servers, *([anchor] if anchor and operation == "filtered GET" else [])]:
            alive(server)
            if operation == "filtered GET":
                jobs: list[Any] = get_jobs(server, users, picks_get, anchor_user if server is anchor else None)
            elif operation == "POST":
                jobs = post_jobs(server, new_users)
            else:
                jobs = patch_jobs(server, picks_patch)
            progress(f"{operation} c={concurrency} on {server.name}: {args.warmup} warm-up + {n}")
            if args.warmup:
                run_pass(server, operation, jobs[: args.warmup], concurrency, args.max_seconds, args.processes)
            res = run_pass(server, operation, jobs[args.warmup :], concurrency, args.max_seconds, args.processes)
            if operation == "PATCH":
                sent = picks_patch[: args.warmup + res.requests]
                problem = verify_patched(server, sent, 50, rng)
                if problem:
                    res.errors += 1
                    res.first_errors.append(f"after the pass: {problem}")
                else:
                    res.checked = min(50, len({i for i, _, _ in sent}))
            report["results"].append(res.summary())
            progress(f"  {res.rps:.0f} req/s, p50 {res.pct(50):.2f} ms, p99 {res.pct(99):.2f} ms, "
                     f"{res.errors} errors")
            alive(server)


def summarise(args: argparse.Namespace, plan: Plan, report: dict[str, Any]) -> None:
    """Ratios Tenantry / scim2-server, and the goals (issue #16's), from whatever passes completed."""
    by_key = {(r["server"], r["operation"], r["concurrency"]): r for r in report["results"]}
    for operation, concurrency, _ in plan:
        t = by_key.get(("tenantry", operation, concurrency))
        s = by_key.get(("scim2-server", operation, concurrency))
        if t and s:
            report["comparisons"].append({
                "operation": operation, "concurrency": concurrency,
                "rps_ratio": ratio(t["requests_per_s"], s["requests_per_s"]),
                "p50_ratio": ratio(t["p50_ms"], s["p50_ms"]), "p99_ratio": ratio(t["p99_ms"], s["p99_ms"]),
                "server_cpu_ratio": ratio(t["server_cpu_ms_per_request"] or 0.0,
                                          s["server_cpu_ms_per_request"] or 0.0),
            })
        b = by_key.get(("bare", operation, concurrency))
        if t and b:
            report["comparisons"].append({
                "operation": operation, "concurrency": concurrency, "against": "bare",
                "rps_ratio": ratio(t["requests_per_s"], b["requests_per_s"]),
                "p50_ratio": ratio(t["p50_ms"], b["p50_ms"]), "p99_ratio": ratio(t["p99_ms"], b["p99_ms"]),
                "server_cpu_ratio": ratio(t["server_cpu_ms_per_request"] or 0.0,
                                          b["server_cpu_ms_per_request"] or 0.0),
            })
    loads = {ld["server"]: ld for ld in report["load"]}
    if len(loads) == 2:
        report["load_ratio"] = ratio(loads["tenantry"]["users_per_s"], loads["scim2-server"]["users_per_s"])
    get_c = by_key.get(("tenantry", "filtered GET", args.concurrency))
    get_1 = by_key.get(("tenantry", "filtered GET", 1))
    # Issue #16's goals: each a ratio to scim2-server in this run, judged only where both passes ran without error.
    against = {(c["operation"], c["concurrency"]): c["rps_ratio"] or 0.0
               for c in report["comparisons"] if "against" not in c}
    for operation, concurrency, least in (("filtered GET", args.concurrency, 8), ("PATCH", args.concurrency, 2),
                                          ("PATCH", 1, 2), ("POST", args.concurrency, 2), ("POST", 1, 2)):
        mine = by_key.get(("tenantry", operation, concurrency))
        theirs = by_key.get(("scim2-server", operation, concurrency))
        if (operation, concurrency) in against and mine and theirs and not mine["errors"] and not theirs["errors"]:
            measured = against[(operation, concurrency)]
            report["goals"].append({"goal": f"{operation} req/s >= {least}x scim2-server (c={concurrency})",
                                    "met": measured >= least, "measured": f"x{measured}"})
    if "load_ratio" in report and all(ld["complete"] and not ld["errors"] for ld in loads.values()):
        report["goals"].append({"goal": "POST /Bulk load users/s >= 2x scim2-server",
                                "met": (report["load_ratio"] or 0.0) >= 2, "measured": f"x{report['load_ratio']}"})
    patch_1 = by_key.get(("tenantry", "PATCH", 1))
    if patch_1 and not patch_1["errors"]:
        report["goals"].append({"goal": "PATCH p99 < 10 ms (single connection)", "met": patch_1["p99_ms"] < 10,
                                "measured": f"{patch_1['p99_ms']} ms"})
    if get_1 and get_c and not get_1["errors"]:
        database = report["meta"].get("database", "sqlite")
        report["goals"].append({"goal": f"filtered GET p99 < 10 ms on {database} (single connection)",
                                "met": get_1["p99_ms"] < 10,
                                "measured": f"{get_1['p99_ms']} ms; at c={args.concurrency}: {get_c['p99_ms']} ms"})


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; servers stopped", file=sys.stderr)
        sys.exit(130)
