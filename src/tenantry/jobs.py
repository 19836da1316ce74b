"""The job engines — in-process by default, or Celery tasks on Redis/RabbitMQ workers — and the one scheduler.

Domains register their jobs, due work and periodic work (``core.registry``, ``tenantry.domains``); this module
only runs them. The scheduler hands due work to ``Jobs.submit``; with ``TENANTRY_BROKER_URL`` set, ``submit``
queues it for ``tenantry worker`` processes, which build the same services from the same settings.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from tenantry.core.clock import utcnow
from tenantry.core.registry import Task
from tenantry.core.schedule import claim_periodic
from tenantry.core.settings import Settings
from tenantry.domains import registry
from tenantry.services import Services

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger(__name__)


def tasks() -> dict[str, Task]:
    """Every job a domain registered (``core.registry``), by name."""
    return registry().tasks


def run_tracked(services: Services, job_id: str) -> None:
    """Run a job of the ``jobs`` table and record its outcome there (never raises: the row says it)."""
    from tenantry.core.errors import TenantryError

    store = services.jobstore
    claimed = store.claim(job_id)
    if claimed is None:
        return
    tenant, kind, params = claimed
    try:
        result = registry().tracked[kind](services, job_id, tenant, params, store.reporter(job_id))
    except TenantryError as exc:
        store.fail(job_id, exc.message)
    except Exception as exc:  # noqa: BLE001 - the job's row must say it failed; the details go to the log
        log.exception("job %s (%s) failed", job_id, kind)
        store.fail(job_id, f"internal error ({exc.__class__.__name__}); the server log has the details")
    else:
        store.finish(job_id, result)


class Jobs(Protocol):
    def submit(self, name: str, **kwargs: Any) -> str: ...

    def enqueue(self, job_id: str) -> None: ...


class InlineJobs:
    """Runs a job at once, in this process (the embedded default); API jobs run on a small thread pool."""

    def __init__(self, services: Services, workers: int = 2) -> None:
        self.services = services
        # dict: each job's result as its task returned it (core.registry.Task: JSON, shape per task)
        self.results: dict[str, dict[str, Any]] = {}
        self._queue: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._workers = workers
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def enqueue(self, job_id: str) -> None:
        with self._lock:
            if not self._threads:
                # Daemon threads: stopping the server does not wait for a long export; the job's row is
                # reported failed ("interrupted") at the next start (JobStore.fail_orphans).
                for n in range(self._workers):
                    thread = threading.Thread(target=self._work, name=f"tenantry-job-{n}", daemon=True)
                    thread.start()
                    self._threads.append(thread)
        self._queue.put(job_id)

    def _work(self) -> None:
        while True:
            job_id = self._queue.get()
            try:
                run_tracked(self.services, job_id)
            except Exception:  # noqa: BLE001 - e.g. the database was unreachable when claiming; keep serving
                log.exception("job %s could not be run", job_id)

    def submit(self, name: str, **kwargs: Any) -> str:
        result = tasks()[name](self.services, kwargs)
        job_id = str(result.get("id", len(self.results)))
        self.results[job_id] = result
        return job_id


def make_celery(settings: Settings, build: Callable[[Settings], Services]) -> Celery:
    """The Celery application of ``tenantry worker``; ``build`` makes the services (``app.build_services``)."""
    from celery import Celery

    if not settings.broker_url:
        raise ValueError("TENANTRY_BROKER_URL is not set")
    app = Celery("tenantry", broker=settings.broker_url, backend=settings.broker_url)
    app.conf.update(task_default_queue=settings.broker_queue, task_serializer="json", result_serializer="json",
                    accept_content=["json"], task_acks_late=True, task_reject_on_worker_lost=True,
                    worker_prefetch_multiplier=1, broker_connection_retry_on_startup=True,
                    result_expires=7 * 24 * 3600)
    services_holder: dict[str, Services] = {}
    building = threading.Lock()

    def services() -> Services:
        # Built once for the worker's threads (--concurrency N): two first tasks at once used to build twice,
        # running two alembic upgrades in one process at once, which alembic's module-level context cannot do.
        with building:
            if "services" not in services_holder:
                services_holder["services"] = build(settings)
            return services_holder["services"]

    @app.task(name="tenantry.job")  # type: ignore[untyped-decorator]
    def job(name: str, kwargs: dict[str, Any]) -> dict[str, Any]:   # dict: the task's JSON result (core.registry)
        # Acked late and rejected if the worker dies: a killed worker's job runs again, which is safe
        # because every job is idempotent (connector deliveries are by Message-ID).
        built = services()
        result = tasks()[name](built, kwargs)
        built.indexer.flush()   # see below
        return result

    @app.task(name="tenantry.tracked")  # type: ignore[untyped-decorator]
    def tracked(job_id: str) -> None:
        built = services()
        run_tracked(built, job_id)
        built.indexer.flush()

    # With the embedded tantivy index a worker's index writes are committed by its own background thread, and a
    # search in the server flushes only the server's. Waiting here means a task whose Celery result is in has its
    # items committed in the index, where every process's next search sees them (TantivySearchIndex._searcher).
    # An indexing failure fails the task loudly; the items are in the store and the next catch-up indexes them.
    return app


class CeleryJobs:
    def __init__(self, settings: Settings, build: Callable[[Settings], Services] | None = None) -> None:
        self.app = make_celery(settings, build or _build)
        self.queue = settings.broker_queue

    def submit(self, name: str, **kwargs: Any) -> str:
        result = self.app.send_task("tenantry.job", args=[name, kwargs], queue=self.queue)
        return str(result.id)

    def enqueue(self, job_id: str) -> None:
        self.app.send_task("tenantry.tracked", args=[job_id], queue=self.queue)


def _build(settings: Settings) -> Services:
    raise RuntimeError("this process only queues jobs; tenantry worker runs them")


def make_jobs(services: Services) -> Jobs:
    return CeleryJobs(services.settings) if services.settings.broker_url else InlineJobs(services)


class Scheduler:
    """Every ``interval`` seconds, in a daemon thread, hands the domains' due work (connector runs, provisioning
    cycles) and their periodic work (the daily retention of every tenant, the SCIM request log's sweep) to the
    jobs. Every hand-out is a claim in the database (``core.schedule``): any number of schedulers, in any
    number of processes, hand each run out once."""

    def __init__(self, services: Services, jobs: Jobs, interval: float) -> None:
        self.services = services
        self.jobs = jobs
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tenantry-scheduler", daemon=True)

    def start(self) -> None:
        self.services.connectors.recover_interrupted()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 5)

    def tick(self, now: datetime | None = None) -> list[str]:
        """Recover the runs whose process stopped (by the wall clock: a heartbeat is real time), then submit every
        due run once."""
        self.services.connectors.recover_interrupted()
        now = now or utcnow()
        reg = registry()
        work = [job for due in reg.due for job in due(self.services, now)]
        for periodic in reg.periodic:
            if claim_periodic(self.services.db, periodic.name, periodic.every, now):
                work.extend(periodic.jobs(self.services))
        submitted = []
        for name, kwargs in work:
            # Each on its own: the work is claimed already, so one that cannot be submitted (or, in-process, fails
            # as it runs) must not take the rest of the tick — another tenant's run, the day's retention — with it.
            try:
                submitted.append(self.jobs.submit(name, **kwargs))
            except Exception:  # noqa: BLE001 - logged with what it was; the next due time brings it back
                log.exception("scheduler: %s %s could not be run", name,
                              ", ".join(f"{k}={v}" for k, v in sorted(kwargs.items()))[:300])
        return submitted

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the loop must outlive one bad tick; the error is logged
                log.exception("scheduler tick failed")
            self._stop.wait(self.interval)
