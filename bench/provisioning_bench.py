"""Outbound provisioning benchmark (#5): an initial and an incremental cycle into a real SCIM target, each beside
a plain httpx loop sending the same kind of requests, same run, same target, same concurrency.

    .venv/bin/python bench/provisioning_bench.py [--users 100000] [--changed-percent 1] [--concurrency 8] [--json]

What it does, in order:

1. Starts a second Tenantry as the target (``tenantry serve``, SQLite in a fresh temp data dir, a bootstrap
   SCIM token) on a free 127.0.0.1 port and waits until it answers.
2. Builds the source directory in-process (``build_services``, SQLite in another temp dir, or the empty
   database ``--source-database-url`` names, e.g. PostgreSQL) and loads
   ``--users`` users through ``ScimStore.create``, the public path (timed, not part of any figure).
3. Creates a provisioning app for the target (scope "all", groups off, ``--concurrency`` workers) and runs
   the **initial cycle** (``ProvisioningService.run_cycle``): for each user a filter GET on userName (the
   match), then a POST. Checked: status "succeeded", users_created == users, GET == POST == users, and the
   target's totalResults; a sample of users re-read from the target (userName, externalId, givenName).
4. **Initial anchor**: a plain ``httpx.Client`` shared by ``--concurrency`` threads sends the same two
   requests per user — the filter GET (checked: 0 results) then the POST of the very body the engine's
   mappings build (checked: 201) — for an ``--anchor-percent`` sample of the users, under new userNames
   and externalIds, into the same target (which then holds ``--users`` users, as at the end of the cycle).
   The users/s of the cycle and of the anchor are printed side by side: both are measured, nothing is
   extrapolated.
5. Changes ``--changed-percent`` of the users in the source (``ScimStore.patch``: ``name.givenName``) and
   runs the **incremental cycle**. Checked: status "succeeded", users_updated == changed, and every request
   it sent is a PATCH, one per changed user; a sample of changed users is read back from the target
   (``GET /Users?filter=userName eq "…"``) with the new givenName.
6. **Incremental anchor**: the same plain httpx loop sends one PATCH (``replace name.givenName``, the
   operation the engine sent) per user to as many *other* users (their ids in the target taken from the
   engine's state beforehand), checked 200/204. Ratio: incremental cycle time / anchor time = the engine's
   overhead over the requests it has to send.

An incremental cycle looks again at the users modified up to 60 s before the previous cycle started (a
clock-skew margin); since 139984c it skips those whose version is the one already synced. ``--settle 0``
(default) starts the initial cycle right after loading, so the users loaded in the last minute (about a third
of them at 100,000) fall in that margin: the first incremental cycle after a bulk load, the harder case.
``--settle 61`` waits between loading and the initial cycle, so only the changed users are candidates. Users
the incremental cycle read and found unchanged are reported as users_unchanged (no request). How long
planning took shows as the time until the first object was done (``first_object_s``).

Also reported: CPU seconds of the target server and of this process (the engine, or the anchor's client)
during each measured phase (Linux /proc), and the 1-minute load average at the end of each phase. Exit
status 1 when a cycle does not succeed, a count is wrong or a check fails; the 10 s goal is reported MET or
NOT MET. The target is stopped on exit (Ctrl-C and kill too).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from tenantry.app import build_services
from tenantry.core.settings import Settings
from tenantry.provisioning.mappings import map_object
from tenantry.provisioning.models import ProvisionedObject
from tenantry.provisioning.paths import build_resource, read_path

BIN = Path(sys.executable).parent
TENANT = "t1"
SCIM_JSON = "application/scim+json"
CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
GOAL_SECONDS = 10.0

FIRST = ["adele", "alex", "allan", "ben", "carla", "chen", "christie", "debra", "diego", "emily", "fatima",
         "grady", "henrietta", "isaiah", "joni", "johanna", "lee", "lidia", "lynne", "megan", "miriam",
         "nestor", "olga", "patti", "pradeep", "raul", "sakura", "sofia", "tomas", "yuki", "zainab", "wei"]
LAST = ["adams", "brown", "bianchi", "cruz", "dubois", "garcia", "gupta", "hansen", "ito", "jensen",
        "kim", "kowalski", "larsen", "lopez", "martin", "meyer", "nguyen", "novak", "okafor", "patel",
        "rossi", "sato", "schmidt", "silva", "smith", "tanaka", "vargas", "weber", "wilson", "zhang"]


def progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- the target ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Target:
    base_url: str  # ends in /scim/v2
    token: str
    proc: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"the target exited with {self.proc.returncode}:\n{self.log_tail()}")


@contextmanager
def run_target(workdir: Path) -> Iterator[Target]:
    """``tenantry serve`` on a free loopback port, its own data dir, a bootstrap SCIM token; stopped after."""
    data = workdir / "target"
    data.mkdir()
    port = free_port()
    token = "tnt_bench_" + secrets.token_urlsafe(24)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTRY_")}
    env.update(TENANTRY_DATA_DIR=str(data), TENANTRY_BOOTSTRAP_SCIM_TOKEN=token)
    log = data / "server.log"
    with open(log, "wb") as out:
        # cwd is the temp dir, so no tenantry.toml of the caller is read.
        proc = subprocess.Popen([str(BIN / "tenantry"), "serve", "--host", "127.0.0.1", "--port", str(port)],
                                cwd=data, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    target = Target(f"http://127.0.0.1:{port}/scim/v2", token, proc, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            target.alive()
            try:
                if httpx.get(f"{target.base_url}/ServiceProviderConfig", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the target did not answer within 60 s:\n{target.log_tail()}")
            time.sleep(0.2)
        yield target
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def client(target: Target, connections: int) -> httpx.Client:
    return httpx.Client(
        headers={"Authorization": f"Bearer {target.token}", "Content-Type": SCIM_JSON, "Accept": SCIM_JSON},
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        timeout=httpx.Timeout(60.0),
    )


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process and its threads so far (Linux /proc), or None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


@contextmanager
def measured(target: Target, into: dict[str, Any]) -> Iterator[None]:
    """Wall time, the target's CPU and this process's CPU (all its threads) over the block."""
    srv0, own0, t0 = process_cpu_seconds(target.proc.pid), time.process_time(), time.perf_counter()
    yield
    into["seconds"] = round(time.perf_counter() - t0, 3)
    into["client_cpu_s"] = round(time.process_time() - own0, 2)
    srv1 = process_cpu_seconds(target.proc.pid)
    into["target_cpu_s"] = round(srv1 - srv0, 2) if srv0 is not None and srv1 is not None else None
    into["load_average_1min"] = round(os.getloadavg()[0], 2)   # at the end: other work on the machine shows here


# -- the source directory -----------------------------------------------------------------------------


def user_payload(i: int, rng: random.Random) -> dict[str, Any]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    user_name = f"user{i:06d}@contoso.com"
    return {"schemas": [CORE_USER], "userName": user_name, "active": True,
            "name": {"givenName": first.capitalize(), "familyName": last.capitalize()},
            "emails": [{"type": "work", "value": user_name, "primary": True}]}


def load_source(services: Any, count: int, rng: random.Random) -> list[tuple[str, str]]:
    """(id, userName) of ``count`` users created through ScimStore.create, in order."""
    users = []
    started = time.perf_counter()
    for i in range(count):
        doc = services.scim.create(TENANT, "User", user_payload(i, rng))
        users.append((doc["id"], doc["userName"]))
        if (i + 1) % max(1, count // 10) == 0:
            progress(f"  {i + 1}/{count} source users ({time.perf_counter() - started:.0f} s)")
    return users


# -- the anchors: a plain httpx loop at the same concurrency -------------------------------------------


def run_pool(jobs: list[Any], concurrency: int, do: Callable[[httpx.Client, Any], str | None],
             target: Target) -> tuple[int, list[str]]:
    """Run ``do(http, job)`` for every job on ``concurrency`` threads sharing one httpx.Client; returns
    (jobs done, the first errors)."""
    lock = threading.Lock()
    errors: list[str] = []
    done = [0]
    with client(target, concurrency) as http:
        def one(job: Any) -> None:
            problem = do(http, job)
            with lock:
                done[0] += 1
                if problem and len(errors) < 10:
                    errors.append(problem)
        with ThreadPoolExecutor(concurrency, thread_name_prefix="anchor") as pool:
            list(pool.map(one, jobs))
    return done[0], errors


def anchor_initial(target: Target, bodies: list[dict[str, Any]], concurrency: int) -> dict[str, Any]:
    """Per user: GET /Users?filter=userName eq "…" (expect no match), then POST /Users (expect 201)."""
    counts: Counter[str] = Counter()
    lock = threading.Lock()

    def do(http: httpx.Client, body: dict[str, Any]) -> str | None:
        text = body["userName"].replace("\\", "\\\\").replace('"', '\\"')
        r = http.get(f"{target.base_url}/Users", params={"filter": f'userName eq "{text}"'})
        with lock:
            counts["GET"] += 1
        if r.status_code != 200 or r.json().get("totalResults") != 0:
            return f"GET {body['userName']}: HTTP {r.status_code} {r.text[:200]}"
        r = http.post(f"{target.base_url}/Users", content=json.dumps(body))
        with lock:
            counts["POST"] += 1
        if r.status_code != 201:
            return f"POST {body['userName']}: HTTP {r.status_code} {r.text[:200]}"
        return None

    result: dict[str, Any] = {"what": "filter GET + POST per user, plain httpx", "users": len(bodies)}
    with measured(target, result):
        done, errors = run_pool(bodies, concurrency, do, target)
    result.update(done=done, errors=errors, requests=dict(counts))
    return result


def anchor_patch(target: Target, target_ids: list[str], concurrency: int) -> dict[str, Any]:
    """One PATCH replace name.givenName per user (expect 200 or 204)."""
    counts: Counter[str] = Counter()
    lock = threading.Lock()
    jobs = list(enumerate(target_ids))

    def do(http: httpx.Client, job: tuple[int, str]) -> str | None:
        k, tid = job
        body = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "name.givenName",
                                                       "value": f"Anchor{k}"}]}
        r = http.patch(f"{target.base_url}/Users/{tid}", content=json.dumps(body))
        with lock:
            counts["PATCH"] += 1
        if r.status_code not in (200, 204):
            return f"PATCH {tid}: HTTP {r.status_code} {r.text[:200]}"
        return None

    result: dict[str, Any] = {"what": "PATCH replace name.givenName per user, plain httpx", "users": len(jobs)}
    with measured(target, result):
        done, errors = run_pool(jobs, concurrency, do, target)
    result.update(done=done, errors=errors, requests=dict(counts))
    return result


# -- checks against the target ------------------------------------------------------------------------


def find_user(http: httpx.Client, target: Target, user_name: str) -> dict[str, Any] | str:
    r = http.get(f"{target.base_url}/Users", params={"filter": f'userName eq "{user_name}"'})
    if r.status_code != 200:
        return f"GET {user_name}: HTTP {r.status_code} {r.text[:200]}"
    found = r.json().get("Resources") or []
    if len(found) != 1:
        return f"GET {user_name}: {len(found)} results"
    return dict(found[0])


def target_total(target: Target) -> int | None:
    with client(target, 1) as http:
        r = http.get(f"{target.base_url}/Users", params={"count": "0"})
        return r.json().get("totalResults") if r.status_code == 200 else None


def check_sample(target: Target, expect: list[tuple[str, str | None, str]]) -> list[str]:
    """(userName, externalId or None, givenName) → problems found in the target."""
    problems = []
    with client(target, 1) as http:
        for user_name, external_id, given in expect:
            doc = find_user(http, target, user_name)
            if isinstance(doc, str):
                problems.append(doc)
                continue
            got = (doc.get("name") or {}).get("givenName")
            if got != given:
                problems.append(f"{user_name}: givenName {got!r} in the target, expected {given!r}")
            if external_id is not None and doc.get("externalId") != external_id:
                problems.append(f"{user_name}: externalId {doc.get('externalId')!r}, expected {external_id!r}")
    return problems


# -- the run ------------------------------------------------------------------------------------------


def run_cycle(services: Any, app_id: str, target: Target, label: str) -> dict[str, Any]:
    last = [0.0, -1]   # when, done
    first: list[float] = []
    started = time.perf_counter()

    def report_progress(done: int, total: int) -> None:
        now = time.perf_counter()
        if done and not first:
            first.append(now - started)   # planning (database only) ends before the first object is done
        if done != last[1] and (now - last[0] >= 30 or done == total):
            last[:] = [now, done]
            progress(f"  {label}: {done}/{total} ({now - started:.0f} s)")

    result: dict[str, Any] = {}
    with measured(target, result):
        report = services.provisioning.run_cycle(TENANT, app_id, progress=report_progress)
    result.update(report.as_dict())
    result["first_object_s"] = round(first[0], 2) if first else None
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=100_000, help="users in the source directory (100000)")
    p.add_argument("--changed-percent", type=float, default=1.0,
                   help="share of the users changed before the incremental cycle (1)")
    p.add_argument("--concurrency", type=int, default=8,
                   help="the app's concurrency, and the anchors' threads/connections (8)")
    p.add_argument("--anchor-percent", type=float, default=5.0,
                   help="share of --users sent by the initial anchor (5)")
    p.add_argument("--settle", type=float, default=0.0,
                   help="seconds to wait between loading and the initial cycle (0: the last minute of loading "
                        "falls in the incremental cycle's 60 s margin; 61: it does not)")
    p.add_argument("--verify", type=int, default=50, help="users re-read from the target after each cycle (50)")
    p.add_argument("--seed", type=int, default=5005)
    p.add_argument("--source-database-url", default=None,
                   help="the source directory in this (empty) database, e.g. postgresql+psycopg://postgres@127.0.0.1/"
                        "bench_prov, instead of SQLite in a temp dir")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--keep", action="store_true", help="keep the temp dirs (both SQLite files, the target log)")
    args = p.parse_args(argv)
    if args.users < 1 or args.concurrency < 1 or not 0 < args.changed_percent <= 50 or args.anchor_percent <= 0:
        p.error("--users and --concurrency must be positive, --changed-percent in (0, 50], --anchor-percent > 0")
    # Ctrl-C and kill both unwind through the target's cleanup.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)

    rng = random.Random(args.seed)
    changed_n = max(1, round(args.users * args.changed_percent / 100))
    anchor_n = max(1, round(args.users * args.anchor_percent / 100))
    began = dt.datetime.now(dt.UTC)
    out: dict[str, Any] = {"meta": {
        "date": began.strftime("%Y-%m-%d %H:%M UTC"), "cpus": os.cpu_count(), "python": platform.python_version(),
        "platform": platform.platform(), "users": args.users, "changed": changed_n, "concurrency": args.concurrency,
        "anchor_users": anchor_n, "settle_s": args.settle, "seed": args.seed,
        "source_database": (args.source_database_url or "sqlite").split("://")[0],
        "command": " ".join([".venv/bin/python", "bench/provisioning_bench.py", *(argv or sys.argv[1:])]),
        "tenantry": tenantry_source(),
    }}
    problems: list[str] = []
    workdir = Path(tempfile.mkdtemp(prefix="provisioning-bench-"))
    services = None
    try:
        with ExitStack() as stack:
            progress("starting the target (tenantry serve)")
            target = stack.enter_context(run_target(workdir))
            # The target runs on 127.0.0.1: the outbound policy refuses loopback unless allowed.
            services = build_services(Settings(data_dir=workdir / "source", outbound_allow_loopback=True,
                                               database_url=args.source_database_url))
            services.directory.create_tenant(TENANT, "Bench")
            progress(f"loading {args.users} users into the source directory (ScimStore.create)")
            t0 = time.perf_counter()
            users = load_source(services, args.users, rng)
            out["load"] = {"users": len(users), "seconds": round(time.perf_counter() - t0, 1)}
            if args.settle:
                progress(f"waiting {args.settle:g} s (--settle)")
                time.sleep(args.settle)

            app = services.provisioning.create_app(TENANT, name="Bench", tenant_url=target.base_url,
                                                   token=target.token, scope="all")
            app_id = app.id
            services.provisioning.configure(TENANT, app_id, {"concurrency": args.concurrency,
                                                             "provision_groups": False})

            # 1. Initial cycle. The target may hold users of its own already (a Tenantry target's first
            # administrator, issue #12): the cycle adds ours to them.
            before = target_total(target) or 0
            progress(f"initial cycle: {args.users} users, concurrency {args.concurrency}")
            initial = run_cycle(services, app_id, target, "initial")
            out["initial"] = initial
            target.alive()
            stats = initial["stats"]
            expect = {"users_created": args.users, "requests_get": args.users, "requests_post": args.users,
                      "requests": 2 * args.users}
            if initial["status"] != "succeeded":
                problems.append(f"initial cycle {initial['status']}: {initial['reason']}")
            problems += [f"initial cycle: {k} = {stats.get(k)}, expected {v}" for k, v in expect.items()
                         if stats.get(k) != v]
            total = target_total(target)
            out["initial"]["target_total"] = total
            if total != before + args.users:
                problems.append(f"after the initial cycle the target holds {total} users, expected {before} + "
                                f"{args.users}")
            sample = rng.sample(range(args.users), min(args.verify, args.users))
            given = {users[i][0]: read_path(services.scim.get(TENANT, "User", users[i][0]), "name.givenName")
                     for i in sample}
            problems += [f"initial: {x}" for x in check_sample(
                target, [(users[i][1], users[i][0], given[users[i][0]]) for i in sample])]
            progress(f"  {initial['status']} in {initial['seconds']:.1f} s; requests {stats.get('requests')}")

            # 2. Initial anchor: the same two requests per user, for a sample, under new names.
            mappings = services.provisioning.config(TENANT, app_id).users()
            picked = rng.sample(range(args.users), min(anchor_n, args.users))
            bodies = []
            for k, i in enumerate(picked):
                doc = {**services.scim.get(TENANT, "User", users[i][0]), "id": str(uuid.uuid4()),
                       "userName": f"anchor{k:06d}@contoso.com"}

                def read(path: str, d: dict[str, Any] = doc) -> Any:
                    return read_path(d, path)
                bodies.append(build_resource(map_object(mappings, read, creating=True), CORE_USER))
            progress(f"initial anchor: filter GET + POST of {len(bodies)} users with plain httpx")
            a_init = anchor_initial(target, bodies, args.concurrency)
            out["anchor_initial"] = a_init
            problems += [f"initial anchor: {e}" for e in a_init["errors"]]
            target.alive()
            progress(f"  {a_init['seconds']:.1f} s")

            # 3. Change some users, then the incremental cycle.
            order = rng.sample(range(args.users), min(2 * changed_n, args.users))
            changed, others = order[:changed_n], order[changed_n:]
            progress(f"changing {len(changed)} users in the source (ScimStore.patch name.givenName)")
            new_given = {}
            for k, i in enumerate(changed):
                uid = users[i][0]
                new_given[i] = f"Changed{k}"
                services.scim.patch(TENANT, "User", uid, {"schemas": [PATCH_OP], "Operations": [
                    {"op": "replace", "path": "name.givenName", "value": new_given[i]}]})
            progress("incremental cycle")
            incremental = run_cycle(services, app_id, target, "incremental")
            out["incremental"] = incremental
            target.alive()
            stats = incremental["stats"]
            expect = {"users_updated": len(changed), "requests_patch": len(changed), "requests": len(changed)}
            if incremental["status"] != "succeeded":
                problems.append(f"incremental cycle {incremental['status']}: {incremental['reason']}")
            problems += [f"incremental cycle: {k} = {stats.get(k)}, expected {v}" for k, v in expect.items()
                         if stats.get(k) != v]
            problems += [f"incremental: {x}" for x in check_sample(
                target, [(users[i][1], None, new_given[i]) for i in changed[:args.verify]])]
            progress(f"  {incremental['status']} in {incremental['seconds']:.2f} s; "
                     f"requests {stats.get('requests')}")

            # 4. Incremental anchor: as many PATCHes, to other users (target ids from the engine's state).
            with services.db.session() as session:
                ids = dict(session.execute(select(ProvisionedObject.source_id, ProvisionedObject.target_id).where(
                    ProvisionedObject.app_id == app_id, ProvisionedObject.object_type == "User")).all())
            other_ids = [str(ids[users[i][0]]) for i in others]
            if len(other_ids) < len(changed):   # a tiny directory: PATCH the changed users again
                other_ids = [str(ids[users[i][0]]) for i in changed]
            progress(f"incremental anchor: {len(other_ids)} PATCHes with plain httpx")
            a_patch = anchor_patch(target, other_ids[:len(changed)], args.concurrency)
            out["anchor_patch"] = a_patch
            problems += [f"PATCH anchor: {e}" for e in a_patch["errors"]]
            target.alive()
            progress(f"  {a_patch['seconds']:.2f} s")
    except RuntimeError as exc:
        problems.append(f"aborted: {exc}")
    finally:
        if services is not None:
            services.db.dispose()
        if args.keep:
            progress(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    summarise(out, problems)
    out["meta"]["seconds"] = round((dt.datetime.now(dt.UTC) - began).total_seconds(), 1)
    print(json.dumps(out, indent=2) if args.json else render(out))
    return 1 if problems else 0


def summarise(out: dict[str, Any], problems: list[str]) -> None:
    init, a_init = out.get("initial"), out.get("anchor_initial")
    inc, a_patch = out.get("incremental"), out.get("anchor_patch")
    if init and a_init and init["seconds"] and a_init["seconds"]:
        init["users_per_s"] = round(init["stats"].get("users_created", 0) / init["seconds"], 1)
        a_init["users_per_s"] = round(a_init["done"] / a_init["seconds"], 1)
        out["initial_ratio"] = round(a_init["users_per_s"] / init["users_per_s"], 2) if init["users_per_s"] else None
    if inc and a_patch and a_patch["seconds"]:
        out["incremental_ratio"] = round(inc["seconds"] / a_patch["seconds"], 2)
    if inc:
        stats = inc["stats"]
        sent_only_changed = (stats.get("requests") == out["meta"]["changed"] == stats.get("requests_patch"))
        out["goals"] = [
            {"goal": f"incremental cycle < {GOAL_SECONDS:g} s", "met": inc["seconds"] < GOAL_SECONDS,
             "measured": f"{inc['seconds']:.2f} s"},
            {"goal": "incremental sends only the changed users, all PATCH", "met": sent_only_changed,
             "measured": f"{stats.get('requests')} requests ({_methods(stats)}) for {out['meta']['changed']} changed"},
        ]
    out["problems"] = problems
    out["valid"] = not problems


def _methods(stats: dict[str, int]) -> str:
    parts = [f"{k.split('_', 1)[1].upper()} {v}" for k, v in stats.items() if k.startswith("requests_")]
    parts += [f"{k} {stats[k]}" for k in ("retries", "throttled") if stats.get(k)]
    return ", ".join(parts) or "none"


def render(out: dict[str, Any]) -> str:
    m = out["meta"]
    lines = [f"Provisioning benchmark  {m['date']}  {m['cpus']} CPUs  Python {m['python']}  users={m['users']}  "
             f"changed={m['changed']}  concurrency={m['concurrency']}"]
    src = m.get("tenantry") or {}
    if src:
        state = f" commit {src['commit']}" if src.get("commit") else ""
        state += " + uncommitted changes" if src.get("uncommitted_changes") else ""
        lines.append(f"Tenantry {src.get('version')} from {src.get('package')}{state}")
    if "load" in out:
        lines.append(f"source loaded: {out['load']['users']} users via ScimStore.create in {out['load']['seconds']} s "
                     "(setup, not measured)")
    lines.append("")
    lines.append(f"{'phase':<34}{'users':>8}{'seconds':>10}{'users/s':>10}{'target CPU s':>14}"
                 f"{'client CPU s':>14}  requests")

    def row(name: str, r: dict[str, Any] | None, users: int | None, reqs: str) -> None:
        if not r:
            return
        rate = f"{users / r['seconds']:.1f}" if users and r["seconds"] else "-"
        tcpu = f"{r['target_cpu_s']:.1f}" if r.get("target_cpu_s") is not None else "-"
        lines.append(f"{name:<34}{users if users is not None else '-':>8}{r['seconds']:>10.2f}{rate:>10}"
                     f"{tcpu:>14}{r['client_cpu_s']:>14.1f}  {reqs}")

    init, inc = out.get("initial"), out.get("incremental")
    a_init, a_patch = out.get("anchor_initial"), out.get("anchor_patch")
    if init:
        row(f"initial cycle ({init['status']})", init, init["stats"].get("users_created"),
            f"{init['stats'].get('requests')} ({_methods(init['stats'])})")
    if a_init:
        row("anchor: httpx filter GET + POST", a_init, a_init["done"],
            f"{sum(a_init['requests'].values())} ({', '.join(f'{k} {v}' for k, v in a_init['requests'].items())})")
    if inc:
        row(f"incremental cycle ({inc['status']})", inc, inc["stats"].get("users_updated"),
            f"{inc['stats'].get('requests')} ({_methods(inc['stats'])})")
    if a_patch:
        row("anchor: httpx PATCH", a_patch, a_patch["done"],
            f"{sum(a_patch['requests'].values())} ({', '.join(f'{k} {v}' for k, v in a_patch['requests'].items())})")
    lines.append("")
    if inc:
        s = inc["stats"]
        lines.append(f"incremental cycle looked at {inc['total']} users: {s.get('users_updated', 0)} updated, "
                     f"{s.get('users_unchanged', 0)} unchanged (re-read within the 60 s margin, no request)")
    for name, r in (("initial", init), ("incremental", inc)):
        if r and r.get("first_object_s") is not None:
            lines.append(f"{name} cycle: first object done after {r['first_object_s']:.2f} s (planning, "
                         f"database only), the last after {r['seconds']:.2f} s")
    if out.get("initial_ratio") is not None:
        lines.append(f"initial: anchor users/s / cycle users/s = x{out['initial_ratio']} "
                     "(how much faster the bare requests are)")
    if out.get("incremental_ratio") is not None:
        lines.append(f"incremental: cycle seconds / anchor seconds = x{out['incremental_ratio']} "
                     "(the engine's overhead over the requests it must send)")
    for goal in out.get("goals", []):
        lines.append(f"goal: {goal['goal']}: {'MET' if goal['met'] else 'NOT MET'} ({goal['measured']})")
    for problem in out["problems"]:
        lines.append(f"PROBLEM: {problem}")
    return "\n".join(lines)


def tenantry_source() -> dict[str, Any]:
    """Which Tenantry code runs (the package this interpreter imports), and its git state."""
    import tenantry

    info: dict[str, Any] = {"package": str(Path(tenantry.__file__).parent),
                            "version": getattr(tenantry, "__version__", None)}
    try:
        def git(*cmd: str) -> str:
            return subprocess.run(["git", "-C", info["package"], *cmd], capture_output=True, text=True,
                                  timeout=30, check=True).stdout.strip()

        info["commit"] = git("rev-parse", "--short", "HEAD")
        info["uncommitted_changes"] = bool(git("status", "--porcelain", "--", "."))
    except (OSError, subprocess.SubprocessError):
        pass  # not a git checkout
    return info


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; target stopped", file=sys.stderr)
        sys.exit(130)
