"""Console benchmark: the users page's first page over 100,000 users, server time, beside the same listing
through the SCIM API in the same run.

    .venv/bin/python bench/console_users_bench.py [--users 100000] [--requests 100] [--database-url URL] [--json]

Loads ``--users`` generated users (the SCIM benchmark's workload: name, displayName, title, a work e-mail, a
mobile number, the enterprise extension) into a fresh tenant, through the SCIM store's own validation and
writes, 1,000 users a transaction (SQLite in a temp folder by default). Signs an Organization Management
administrator in to the console with a password, then times, in one process through the ASGI app (no network,
so the figure is the server's time: routing, session and role look-ups, the query, the template):

- ``GET /console/users`` — the first page (50 users by userName, with the total);
- ``GET /console/users?q=<prefix>`` — a search by the start of a name (``userName``/``displayName``/e-mail sw);
- the anchor: ``GET /tenants/{t}/scim/v2/Users?sortBy=userName&count=50`` with the tenant's SCIM token — the same
  listing through the SCIM API.

Each is warmed up (10 requests) and then requested ``--requests`` times, every answer checked (200, the expected
users on the page). Prints p50/p95/max in ms and the goal (console first page p95 < 150 ms).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from tenantry.app import build_services, create_app
from tenantry.core.clock import utcnow
from tenantry.core.settings import Settings

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
FIRST = ["adele", "alex", "allan", "ben", "carla", "chen", "christie", "debra", "diego", "emily", "fatima",
         "grady", "henrietta", "isaiah", "joni", "johanna", "lee", "lidia", "lynne", "megan", "miriam",
         "nestor", "olga", "patti", "pradeep", "raul", "sakura", "sofia", "tomas", "yuki", "zainab", "wei"]
LAST = ["adams", "brown", "bianchi", "cruz", "dubois", "garcia", "gupta", "hansen", "ito", "jensen",
        "kim", "kowalski", "larsen", "lopez", "martin", "meyer", "nguyen", "novak", "okafor", "patel",
        "rossi", "sato", "schmidt", "silva", "smith", "tanaka", "vargas", "weber", "wilson", "zhang"]
ADMIN = "bench.admin@contoso.com"
PASSWORD = "console benchmark password"
TENANT = "bench"


def user(i: int, rng: random.Random) -> dict[str, Any]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    user_name = f"{first}.{last}.{i}@contoso.com"
    return {"schemas": [CORE_USER, ENTERPRISE], "userName": user_name,
            "externalId": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "name": {"givenName": first.capitalize(), "familyName": last.capitalize()},
            "displayName": f"{first.capitalize()} {last.capitalize()}", "title": "Analyst", "active": True,
            "emails": [{"value": user_name, "type": "work", "primary": True}],
            "phoneNumbers": [{"value": f"+1425{2_000_000 + i}", "type": "mobile", "primary": True}],
            ENTERPRISE: {"employeeNumber": str(100_000 + i), "department": "Sales", "organization": "Contoso"}}


def load(services: Any, tenant: str, count: int, batch: int = 1000) -> float:
    """``count`` users through the store's validation and repository writes, ``batch`` a transaction (what
    ``ScimStore.create`` does per user, without a commit per user): seconds taken."""
    from scim2_models import Context

    store = services.scim
    repo = store.users
    rng = random.Random(7)
    started = time.perf_counter()
    for at in range(0, count, batch):
        with store.db.writing(), store.db.session() as session:
            for i in range(at, min(count, at + batch)):
                model = store._validate("User", user(i + 1, rng), Context.RESOURCE_CREATION_REQUEST)
                row = repo.new(tenant, str(uuid.uuid4()), utcnow())
                repo.write(session, tenant, row, model)
                session.flush()
        print(f"\rloaded {min(count, at + batch):,} users", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return time.perf_counter() - started


def timed(client: TestClient, url: str, requests: int, check: Any, headers: dict[str, str] | None = None,
          ) -> dict[str, float]:
    for _ in range(10):
        check(client.get(url, headers=headers))
    times = []
    for _ in range(requests):
        t0 = time.perf_counter()
        r = client.get(url, headers=headers)
        times.append((time.perf_counter() - t0) * 1000)
        check(r)
    times.sort()
    return {"p50_ms": round(statistics.median(times), 2), "p95_ms": round(times[int(len(times) * 0.95) - 1], 2),
            "max_ms": round(times[-1], 2), "requests": requests}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="console-bench-") as tmp:
        extra = {"database_url": args.database_url} if args.database_url else {}
        settings = Settings(data_dir=Path(tmp), cookie_secure=False, default_tenant=TENANT, **extra)
        services = build_services(settings)
        services.directory.ensure_tenant(TENANT, "Benchmark")
        services.directory.ensure_builtin_role_groups(TENANT)
        load_s = load(services, TENANT, args.users)
        admin = services.scim.create(TENANT, "User", {"schemas": [CORE_USER], "userName": ADMIN})["id"]
        services.directory.add_role_group_member(TENANT, "Organization Management", admin)
        services.signin.set_password(TENANT, ADMIN, PASSWORD)
        scim_token = services.directory.issue_token(TENANT, "scim", "bench").secret
        first_names = sorted(d["userName"] for d in services.scim.search(
            TENANT, "User", sort_by="userName", count=50).resources)

        with TestClient(create_app(settings, services)) as client:
            form = client.get("/auth/login", params={"tenant": TENANT})
            token = form.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
            signed = client.post("/auth/login", data={"tenant": TENANT, "username": ADMIN, "password": PASSWORD,
                                                      "csrf_token": token, "next": "/console/"},
                                 follow_redirects=False)
            assert signed.status_code == 303, signed.text

            def console_page(r: Any) -> None:
                assert r.status_code == 200 and first_names[0] in r.text and first_names[-1] in r.text, r.text[:300]

            def console_search(r: Any) -> None:
                assert r.status_code == 200 and "of " in r.text and "megan." in r.text, r.text[:300]

            def scim_page(r: Any) -> None:
                body = r.json()
                assert r.status_code == 200 and body["Resources"][0]["userName"] == first_names[0], r.text[:300]

            results = {
                "console_first_page": timed(client, "/console/users", args.requests, console_page),
                "console_search": timed(client, "/console/users?q=megan", args.requests, console_search),
                "scim_first_page (anchor)": timed(
                    client, f"/tenants/{TENANT}/scim/v2/Users?sortBy=userName&count=50", args.requests, scim_page,
                    headers={"Authorization": f"Bearer {scim_token}"}),
            }
        services.db.dispose()

    goal = results["console_first_page"]["p95_ms"] < 150
    report = {"users": args.users, "load_seconds": round(load_s, 1), "database": "sqlite" if not args.database_url
              else args.database_url.split(":", 1)[0], "results": results,
              "goal": "console first page p95 < 150 ms", "goal_met": goal}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{args.users:,} users loaded in {load_s:.1f} s ({report['database']})")
        print(f"{'request':<28}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}")
        for name, r in results.items():
            print(f"{name:<28}{r['p50_ms']:>10}{r['p95_ms']:>10}{r['max_ms']:>10}")
        print(f"goal (console first page p95 < 150 ms): {'met' if goal else 'NOT met'}")
    return 0 if goal else 1


if __name__ == "__main__":
    sys.exit(main())
