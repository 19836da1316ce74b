"""Background jobs: run in-process by default, or as Celery tasks on Redis/RabbitMQ workers.

Domains name their jobs in ``TASKS`` (name → function of the services and keyword arguments). The scheduler
hands due work to ``Jobs.submit``; with ``TENANTRY_BROKER_URL`` set, ``submit`` queues it for
``tenantry worker`` processes, which build the same services from the same settings.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from tenantry.core.clock import utcnow
from tenantry.core.settings import Settings
from tenantry.jobstore import ProgressFn

if TYPE_CHECKING:
    from celery import Celery

    from tenantry.app import Services

log = logging.getLogger(__name__)


def _connector_run(services: Services, kwargs: dict[str, Any]) -> dict[str, Any]:
    report = services.connectors.run(kwargs["tenant"], kwargs["connector_id"],
                                     trigger=kwargs.get("trigger", "manual"))
    return report.as_dict()


def _retention_apply(services: Services, kwargs: dict[str, Any]) -> dict[str, Any]:
    counts = services.compliance.apply_retention(kwargs["tenant"])
    return {"id": f"retention-{kwargs['tenant']}-{utcnow().isoformat()}", "tenant": kwargs["tenant"], **counts}


def _provisioning_run(services: Services, kwargs: dict[str, Any]) -> dict[str, Any]:
    from tenantry.core.errors import Conflict

    try:
        report = services.provisioning.run_cycle(kwargs["tenant"], kwargs["app_id"],
                                                 trigger=kwargs.get("trigger", "manual"))
    except Conflict as exc:   # a cycle of this app is still running: this one is not needed
        return {"id": f"provisioning-{kwargs['app_id']}-{utcnow().isoformat()}", "status": "skipped",
                "reason": exc.message}
    return report.as_dict()


def _scim_log_purge(services: Services, _kwargs: dict[str, Any]) -> dict[str, Any]:
    # Every tenant's SCIM request log past TENANTRY_SCIM_LOG_DAYS: a tenant whose identity provider went quiet
    # is not purged by its own writes (directory.scim_log). Idempotent.
    return {"id": f"scim-log-purge-{utcnow().isoformat()}", "kind": "scim_log.purge",
            "deleted": services.scim_log.purge()}


TASKS: dict[str, Callable[[Services, dict[str, Any]], dict[str, Any]]] = {
    "connector.run": _connector_run,
    "retention.apply": _retention_apply,
    "provisioning.run": _provisioning_run,
    "scim_log.purge": _scim_log_purge,
}

RETENTION_EVERY = timedelta(days=1)


# Jobs started over the admin API: their state is a row of ``jobs`` (tenantry.jobstore), so the POST answers
# 202 with the job's id and any process reports it. Each function gets (services, job id, tenant, params, progress).
def _tracked_retention(services: Services, _job_id: str, tenant: str, _params: dict[str, Any],
                       progress: ProgressFn) -> dict[str, Any]:
    return {"tenant": tenant, **services.compliance.apply_retention(tenant, progress=progress)}


def _tracked_export(services: Services, job_id: str, tenant: str, params: dict[str, Any],
                    progress: ProgressFn) -> dict[str, Any]:
    return services.ediscovery.run_export_job(job_id, tenant, params, progress)


TRACKED: dict[str, Callable[[Services, str, str, dict[str, Any], ProgressFn], dict[str, Any]]] = {
    "retention.apply": _tracked_retention,
    "ediscovery.export": _tracked_export,
}


def run_tracked(services: Services, job_id: str) -> None:
    """Run a job of the ``jobs`` table and record its outcome there (never raises: the row says it)."""
    from tenantry.core.errors import TenantryError

    store = services.jobstore
    claimed = store.claim(job_id)
    if claimed is None:
        return
    tenant, kind, params = claimed
    try:
        result = TRACKED[kind](services, job_id, tenant, params, store.reporter(job_id))
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
        result = TASKS[name](self.services, kwargs)
        job_id = str(result.get("id", len(self.results)))
        self.results[job_id] = result
        return job_id


def make_celery(settings: Settings) -> Celery:
    from celery import Celery

    if not settings.broker_url:
        raise ValueError("TENANTRY_BROKER_URL is not set")
    app = Celery("tenantry", broker=settings.broker_url, backend=settings.broker_url)
    app.conf.update(task_default_queue=settings.broker_queue, task_serializer="json", result_serializer="json",
                    accept_content=["json"], task_acks_late=True, task_reject_on_worker_lost=True,
                    worker_prefetch_multiplier=1, broker_connection_retry_on_startup=True,
                    result_expires=7 * 24 * 3600)
    services_holder: dict[str, Services] = {}

    @app.task(name="tenantry.job")  # type: ignore[untyped-decorator]
    def job(name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        # Acked late and rejected if the worker dies: a killed worker's job runs again, which is safe
        # because every job is idempotent (connector deliveries are by Message-ID).
        if "services" not in services_holder:
            from tenantry.app import build_services

            services_holder["services"] = build_services(settings)
        return TASKS[name](services_holder["services"], kwargs)

    @app.task(name="tenantry.tracked")  # type: ignore[untyped-decorator]
    def tracked(job_id: str) -> None:
        if "services" not in services_holder:
            from tenantry.app import build_services

            services_holder["services"] = build_services(settings)
        run_tracked(services_holder["services"], job_id)

    return app


class CeleryJobs:
    def __init__(self, settings: Settings) -> None:
        self.app = make_celery(settings)
        self.queue = settings.broker_queue

    def submit(self, name: str, **kwargs: Any) -> str:
        result = self.app.send_task("tenantry.job", args=[name, kwargs], queue=self.queue)
        return str(result.id)

    def enqueue(self, job_id: str) -> None:
        self.app.send_task("tenantry.tracked", args=[job_id], queue=self.queue)


def make_jobs(services: Services) -> Jobs:
    return CeleryJobs(services.settings) if services.settings.broker_url else InlineJobs(services)


class Scheduler:
    """Hands due connector runs, provisioning cycles and the daily retention (archive retention of every tenant,
    the SCIM request log's purge) to the jobs, every ``interval`` seconds, in a daemon thread."""

    def __init__(self, services: Services, jobs: Jobs, interval: float) -> None:
        self.services = services
        self.jobs = jobs
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tenantry-scheduler", daemon=True)
        self._next_retention = utcnow()  # once at start, then daily (the job is idempotent)

    def start(self) -> None:
        self.services.connectors.recover_interrupted()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 5)

    def tick(self) -> list[str]:
        """Submit every due run once; a claimed run is leased for an hour so a queued job is not queued again."""
        submitted = []
        now = utcnow()
        for tenant, connector_id in self.services.connectors.claim_due(now, timedelta(hours=1)):
            submitted.append(self.jobs.submit("connector.run", tenant=tenant, connector_id=connector_id,
                                              trigger="schedule"))
        for tenant, app_id in self.services.provisioning.claim_due(now):
            submitted.append(self.jobs.submit("provisioning.run", tenant=tenant, app_id=app_id, trigger="schedule"))
        if now >= self._next_retention:
            self._next_retention = now + RETENTION_EVERY
            for row in self.services.directory.list_tenants():
                submitted.append(self.jobs.submit("retention.apply", tenant=row["id"]))
            submitted.append(self.jobs.submit("scim_log.purge"))
        return submitted

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the loop must outlive one bad tick; the error is logged
                log.exception("scheduler tick failed")
            self._stop.wait(self.interval)
