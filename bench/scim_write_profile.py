"""Where a SCIM write's CPU goes: Tenantry's ASGI app driven in-process, one request at a time, no client.

    PYTHONPATH=src .venv/bin/python bench/scim_write_profile.py [--mode patch|post|bulk|get] [--users 500]
                                                                [--requests 400] [--profile] [--top 40]

Loads ``--users`` generated users (bench/scim_bench.py's) through ``POST /Bulk`` into a fresh SQLite data folder (or
``--database-url``), then sends ``--requests`` PATCHes (``name.givenName`` + ``active``, as scim_bench.py) or POSTs
of new users, or Bulk requests of 100 new users each (``--mode bulk``: ``--requests`` users), or filtered GETs by
userName (``--mode get``), each checked. The worker-thread hop of the SCIM routes
is made inline, so the whole request runs on this thread (the start's objects frozen first, as ``tenantry serve``
freezes them) and ``time.process_time`` (printed per request, with the
Bulk load's CPU per user) and ``--profile`` (cProfile, the top functions by own time, the stats in ``--out``) see
all of it: the HTTP stack, the store, the SQL and the request-log row. CPU time, not wall time, so it says something
on a loaded machine; compare two trees by running it with each on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import random
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scim_bench  # noqa: E402 - the workload generator beside this file

from tenantry.app import bootstrap, build_services, create_app  # noqa: E402
from tenantry.core.settings import Settings  # noqa: E402
from tenantry.directory import scim_api  # noqa: E402
from tenantry.serving import freeze_start_heap  # noqa: E402

TOKEN = "bench-profile-token-" + "x" * 20


async def _inline(fn: Any, *args: Any, **kwargs: Any) -> Any:
    return fn(*args, **kwargs)


def _pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile of seconds, in ms."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * len(ordered)) - 1))] * 1e3


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mode", choices=("patch", "post", "bulk", "get"), default="patch")
    p.add_argument("--users", type=int, default=500)
    p.add_argument("--requests", type=int, default=400)
    p.add_argument("--database-url", default=None)
    p.add_argument("--profile", action="store_true")
    p.add_argument("--top", type=int, default=40)
    p.add_argument("--out", default="scim_write.prof")
    p.add_argument("--no-freeze", action="store_true", help="leave the start's objects to the collector "
                   "(tenantry serve freezes them: serving.freeze_start_heap)")
    args = p.parse_args()

    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="scim-profile-")) / "data", bootstrap_scim_token=TOKEN,
                        **({"database_url": args.database_url} if args.database_url else {}))
    services = build_services(settings)
    bootstrap(services)
    scim_api.run_in_threadpool = _inline  # type: ignore[assignment] - the whole request on this thread
    app = create_app(settings, services)
    if not args.no_freeze:
        freeze_start_heap()   # as tenantry serve does before it answers
    headers = [(b"host", b"bench"), (b"authorization", f"Bearer {TOKEN}".encode()),
               (b"content-type", b"application/scim+json")]

    async def call(method: str, target: str, body: bytes = b"") -> tuple[int, bytes]:
        path, _, query = target.partition("?")
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
                 "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query.encode(),
                 "root_path": "",
                 "headers": [*headers, (b"content-length", str(len(body)).encode())],
                 "client": ("127.0.0.1", 1), "server": ("bench", 80)}
        sent = False
        status, chunks = 0, []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await app(scope, receive, send)
        return status, b"".join(chunks)

    async def run() -> None:
        users = scim_bench.make_users(args.users, 1)
        ids: list[str] = []
        t0 = time.process_time()
        for body in scim_bench.bulk_batches(users, 1000, 1_048_576):
            status, out = await call("POST", "/scim/v2/Bulk", body)
            assert status == 200, out[:300]
            for op in json.loads(out)["Operations"]:
                assert op["status"] == "201", op
                ids.append(op["location"].rsplit("/", 1)[1])
        print(f"Bulk load: {(time.process_time() - t0) / args.users * 1e6:,.0f} us CPU per user")
        rng = random.Random(1)
        if args.mode == "patch":
            requests = [("PATCH", f"/scim/v2/Users/{rng.choice(ids)}", json.dumps({
                "schemas": [scim_bench.PATCH_OP], "Operations": [
                    {"op": "replace", "path": "name.givenName", "value": f"G{k}"},
                    {"op": "replace", "path": "active", "value": k % 2 == 0}]}).encode(), 200)
                for k in range(args.requests)]
        elif args.mode == "get":
            requests = [("GET", "/scim/v2/Users?" + urllib.parse.urlencode(
                {"filter": f'userName eq "{users[rng.randrange(len(users))]["userName"]}"'},
                quote_via=urllib.parse.quote), b"", 200) for _ in range(args.requests)]
        elif args.mode == "bulk":
            more = [{**u, "userName": "b" + u["userName"]}
                    for u in scim_bench.make_users(args.users + args.requests, 2)[args.users:]]
            requests = [("POST", "/scim/v2/Bulk", body, 200) for body in scim_bench.bulk_batches(more, 100, 1_048_576)]
        else:
            more = scim_bench.make_users(args.users + args.requests, 2)[args.users:]
            requests = [("POST", "/scim/v2/Users", json.dumps({**u, "userName": "p" + u["userName"]}).encode(), 201)
                        for u in more]
        for method, path, body, _ in requests[:20]:   # warm-up, unmeasured (for POST: distinct users)
            if method != "POST":
                await call(method, path, body)
        prof = cProfile.Profile()
        t0 = time.process_time()
        if args.profile:
            prof.enable()
        walls: list[float] = []
        for method, path, body, expected in requests:
            t1 = time.perf_counter()
            status, out = await call(method, path, body)
            walls.append(time.perf_counter() - t1)
            assert status == expected, out[:300]
        if args.profile:
            prof.disable()
        cpu = time.process_time() - t0
        per = args.requests if args.mode == "bulk" else len(requests)
        print(f"{args.mode.upper()}: {cpu / per * 1e6:,.0f} us CPU per {'user' if args.mode == 'bulk' else 'request'}"
              f"{' (profiled)' if args.profile else ''}; wall per request p50 {_pct(walls, 50):.2f} ms, p99 "
              f"{_pct(walls, 99):.2f} ms, max {max(walls) * 1e3:.2f} ms; load average {os.getloadavg()[0]:.1f}")
        if args.profile:
            prof.dump_stats(args.out)
            pstats.Stats(prof).sort_stats("tottime").print_stats(args.top)

    asyncio.run(run())
    services.db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
