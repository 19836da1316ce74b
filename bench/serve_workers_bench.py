"""``tenantry serve --workers N`` on PostgreSQL: SCIM throughput with 1 and 2 web worker processes, same run.

    .venv/bin/python bench/serve_workers_bench.py [--users 5000] [--requests 3000] [--concurrency 8]
                                                  [--rounds 2] [--json]

1. Creates a fresh PostgreSQL database (``TENANTRY_BENCH_PG``, default the test server's ``test`` database's
   server) and starts ``tenantry serve`` on it with ``TENANTRY_SEARCH_BACKEND=postgres`` (what several
   processes need); loads ``--users`` users through ``POST /Bulk`` (bench/scim_bench.py's users and loader).
2. For each round, for 1 then 2 workers: starts ``tenantry serve --workers N`` on that database and runs
   bench/scim_bench.py's load generator (raw HTTP/1.1, ``--concurrency`` connections over 2 client processes):
   ``GET /Users?filter=userName eq "…"`` (each answer checked), then ``PATCH /Users/{id}`` (each checked, a
   sample re-read). The servers take turns; rounds alternate, so a change in the machine's load falls on both.
3. Prints requests/s, p50/p99, server CPU per request (the process tree: the supervisor and its workers) for
   each, the 2-worker/1-worker ratio (median over rounds), the machine's cores and the load average.

The client, the servers and PostgreSQL share the machine: on 2 cores, a second web process can only use what
the client and PostgreSQL leave, so the ratio says what N processes buy on *this* machine, not in general.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scim_bench as sb  # noqa: E402 - the SCIM benchmark's users, loader and load generator

PG = os.environ.get("TENANTRY_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and all its descendants (Linux /proc): the supervisor and its worker processes."""
    total = sb.process_cpu_seconds(pid) or 0.0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += tree_cpu_seconds(int(child))
    except OSError:
        pass
    return total


@contextmanager
def database() -> Iterator[str]:
    import sqlalchemy as sa

    admin = sa.create_engine(PG, isolation_level="AUTOCOMMIT")
    name = f"tenantry_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def serve(url: str, workers: int, token: str, workdir: Path) -> Iterator[sb.Server]:
    port = sb.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTRY_")}
    env.update(TENANTRY_DATA_DIR=str(workdir / "data"), TENANTRY_DATABASE_URL=url,
               TENANTRY_SEARCH_BACKEND="postgres", TENANTRY_BOOTSTRAP_SCIM_TOKEN=token)
    log = workdir / f"serve-{workers}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(sb.BIN / "tenantry"), "serve", "--host", "127.0.0.1", "--port", str(port),
                                 "--workers", str(workers), "--no-scheduler"], cwd=workdir, env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = sb.Server(f"{workers} worker{'s' if workers > 1 else ''}", f"http://127.0.0.1:{port}/scim/v2", token,
                       proc, workdir, log)
    try:
        sb._wait_ready(server, timeout=180)
        yield server
    finally:
        sb._stop(proc)


def measured(server: sb.Server, operation: str, jobs: list[Any], args: argparse.Namespace) -> sb.PassResult:
    if args.warmup:
        sb.run_pass(server, operation, jobs[:args.warmup], args.concurrency, args.max_seconds, 2)
    before = tree_cpu_seconds(server.proc.pid)
    result = sb.run_pass(server, operation, jobs[args.warmup:], args.concurrency, args.max_seconds, 2)
    result.server_cpu_s = tree_cpu_seconds(server.proc.pid) - before
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--max-seconds", type=float, default=300)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    token = secrets.token_urlsafe(24)
    users = sb.make_users(args.users, args.seed)
    load_before = os.getloadavg()
    results: list[dict[str, Any]] = []
    failed = False
    with tempfile.TemporaryDirectory(prefix="serve-workers-bench-") as tmp, database() as url:
        workdir = Path(tmp)
        print(f"loading {args.users} users", file=sys.stderr, flush=True)
        with serve(url, 1, token, workdir) as server:
            bodies = sb.bulk_batches(users, min(server.max_ops, 200), server.max_bytes)
            first = [0]
            for body in bodies:
                first.append(first[-1] + body.count(b'"method":"POST"'))
            loaded = sb.load(server, bodies, first, 2, 1800, lambda m: None)
            if not loaded.complete:
                raise SystemExit(f"load failed: {loaded.errors}")
            ids = dict(server.ids)
        indexes = sorted(ids)
        for round_ in range(args.rounds):
            for workers in (1, 2) if round_ % 2 == 0 else (2, 1):
                with serve(url, workers, token, workdir) as server:
                    server.ids = ids
                    gets = sb.get_jobs(server, users, [rng.choice(indexes) for _ in range(args.warmup + args.requests)])
                    picks = [(i, f"Given-{round_}-{workers}-{k}", rng.random() < 0.5)
                             for k, i in enumerate(rng.sample(indexes, min(len(indexes), args.warmup + args.requests)))]
                    for operation, jobs in (("filtered GET", gets), ("PATCH", sb.patch_jobs(server, picks))):
                        res = measured(server, operation, jobs, args)
                        if operation == "PATCH":
                            problem = sb.verify_patched(server, picks[:args.warmup + res.requests], 50, rng)
                            if problem:
                                res.errors += 1
                                res.first_errors.append(problem)
                        failed = failed or bool(res.errors)
                        row = {"round": round_, "workers": workers, **res.summary()}
                        results.append(row)
                        print(f"round {round_} {operation:12} {workers} worker(s): {res.rps:7.0f} req/s  "
                              f"p50 {res.pct(50):6.2f} ms  p99 {res.pct(99):7.2f} ms  server CPU "
                              f"{row['server_cpu_ms_per_request']} ms/req  errors {res.errors}",
                              file=sys.stderr, flush=True)
    summary = []
    for operation in ("filtered GET", "PATCH"):
        rps = {w: statistics.median(r["requests_per_s"] for r in results
                                    if r["operation"] == operation and r["workers"] == w) for w in (1, 2)}
        cpu = {w: statistics.median(r["server_cpu_ms_per_request"] or 0 for r in results
                                    if r["operation"] == operation and r["workers"] == w) for w in (1, 2)}
        summary.append({"operation": operation, "rps_1": rps[1], "rps_2": rps[2],
                        "ratio_2_over_1": round(rps[2] / rps[1], 2) if rps[1] else None,
                        "server_cpu_ms_per_request_1": cpu[1], "server_cpu_ms_per_request_2": cpu[2]})
    report = {"cpus": os.cpu_count(), "load_before": [round(x, 2) for x in load_before],
              "load_after": [round(x, 2) for x in os.getloadavg()], "users": args.users,
              "requests": args.requests, "concurrency": args.concurrency, "rounds": args.rounds,
              "summary": summary, "results": results, "valid": not failed}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{os.cpu_count()} CPUs; load average before {report['load_before']}, after {report['load_after']}")
        print(f"{'operation':14}{'1 worker req/s':>16}{'2 workers req/s':>17}{'2/1':>7}"
              f"{'CPU ms/req (1)':>16}{'CPU ms/req (2)':>16}")
        for s in summary:
            print(f"{s['operation']:14}{s['rps_1']:16.0f}{s['rps_2']:17.0f}{s['ratio_2_over_1']:7.2f}"
                  f"{s['server_cpu_ms_per_request_1']:16.2f}{s['server_cpu_ms_per_request_2']:16.2f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
