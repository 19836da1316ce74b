"""``tenantry serve --workers N``: what may run in several web processes, and the app each of them builds.

The supervising process (the one ``tenantry serve`` starts in) migrates, bootstraps (first-run tokens printed
once), runs the scheduler and the SIP listener, and hands the listening socket to N uvicorn worker processes;
each worker builds its own services from the same settings (the environment and ``tenantry.toml``) without
migrating, and serves HTTP only. docs/ARCHITECTURE.md "Several processes" says why.
"""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING

from tenantry.core.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

# What uvicorn imports in every worker process (``factory=True``: it calls it there).
WORKER_APP = "tenantry.serving:worker_app"
MAX_WORKERS = 64
# How long uvicorn's supervisor waits for a worker to answer its health ping before killing it as hung and
# starting another. A spawned worker answers only once it has imported the application (~3.5 s of CPU); uvicorn's
# default of 5 s killed every worker, again and again, on a loaded 2-core machine, and the server never answered.
WORKER_HEALTHCHECK_SECONDS = 60


def several_processes_refused(settings: Settings, workers: int) -> str | None:
    """Why ``workers`` web processes may not serve with these settings, or None when they may.

    Several processes need the PostgreSQL database *and* the PostgreSQL search backend. SQLite's writers would
    be safe (a write transaction begins with BEGIN IMMEDIATE and the ledger takes the write lock before it reads
    its head, against other processes too: tests/reliability/test_concurrency.py), but the only search index on
    SQLite is the embedded tantivy one, and tantivy has one writer: N processes delivering at once would queue
    on its lock (up to two minutes each), and a search in one process does not wait for what another has
    delivered and not yet committed — a query-based hold evaluated there could miss an item just archived.
    """
    if workers <= 1:
        return None
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        return (f"--workers {workers} needs PostgreSQL: set TENANTRY_DATABASE_URL=postgresql+psycopg://… and "
                "TENANTRY_SEARCH_BACKEND=postgres. On SQLite the search index is the embedded tantivy one, which "
                "one process writes at a time (docs/search.md, \"Several processes\"); run one process "
                "(--workers 1), or move to PostgreSQL.")
    if settings.search_backend != "postgres":
        return (f"--workers {workers} needs the shared search index: set TENANTRY_SEARCH_BACKEND=postgres (PostgreSQL "
                f"full-text in the same database). The embedded {settings.search_backend} index has one writer at a "
                "time and a search in one process would not see what another has just delivered "
                "(docs/search.md, \"Several processes\").")
    return None


def freeze_start_heap() -> None:
    """Put what starting made — modules, schemas, routes, the services — out of the cyclic collector's reach, just
    before a server process starts answering.

    A full collection walks every live object: ~240,000 once the application is imported, ~100 ms a time on this
    machine. Requests allocate enough for one to run every few hundred requests, so a request now and then waited
    100 ms and about a fifth of a Bulk load's CPU went to walking objects that live as long as the process
    (bench/scim_write_profile.py, issue #16). Frozen, they are never walked again; what requests make is collected
    as before. Garbage is collected first, so nothing unreachable is kept. Server processes only: a test process
    that builds many applications would keep each one's start objects."""
    gc.collect()
    gc.freeze()


def worker_app() -> FastAPI:
    """The application of one worker process: the services over the already-migrated database, HTTP only."""
    from tenantry.app import build_services, create_app
    from tenantry.core.private import restrict_process_umask

    restrict_process_umask()   # a spawned interpreter: files it makes are owner-only, as in the supervisor
    settings = Settings()
    # Not migrated here: the supervisor did it before starting the workers (N alembic runs would race).
    services = build_services(settings, migrate=False)
    app = create_app(settings, services)
    freeze_start_heap()
    return app
