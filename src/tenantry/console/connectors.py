"""What the console's data connector pages show and start, through the connectors' service and the jobs table:
each connector with the live state of its run, its runs and their reports, items imported per day per kind, and
"run now" as a tracked job (``connector.run``) that the job engine runs (a thread here, or a Celery worker).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tenantry.connectors.items import ItemKind
from tenantry.connectors.models import RunStatus
from tenantry.connectors.results import ConnectorInfo, RunReport, RunSummary
from tenantry.console.service import READ_CONNECTORS
from tenantry.core.access import IMPORT, ORGANIZATION
from tenantry.core.clock import as_utc, utcnow
from tenantry.core.errors import Invalid, NotFound
from tenantry.jobstore import JobInfo, JobState
from tenantry.services import Services

# The admin API's roles for the same reads and changes (connectors/api.py, docs/security.md "Roles"); reading
# is READ_CONNECTORS (console.service).
__all__ = ["CHANGE_CONNECTORS", "CONSENT", "READ_CONNECTORS", "ConnectorsConsole", "Live"]
CHANGE_CONNECTORS = (IMPORT,)          # create, mapping, enable, upload, run
CONSENT = (ORGANIZATION,)
RUN_JOB = "connector.run"
CHART_DAYS = 30
RUNS_SHOWN = 50


@dataclass(frozen=True, slots=True)
class Live:
    """A connector's current run as the console follows it: ``active`` while a run is queued or running."""

    active: bool
    queued: bool                 # handed to the job engine, not started yet
    run: RunSummary | None       # the latest run (the running one while active)
    job_error: str | None        # the latest "run now" failed before its run could start (e.g. no consent)


@dataclass(frozen=True, slots=True)
class ConnectorDetail:
    info: ConnectorInfo
    live: Live
    runs: list[RunSummary]
    takes_files: bool


def _when(iso: str) -> datetime:
    return as_utc(datetime.fromisoformat(iso))


class ConnectorsConsole:
    def __init__(self, services: Services) -> None:
        self.connectors = services.connectors
        self.jobs = services.jobstore

    def _latest_job(self, tenant: str, connector_id: str) -> JobInfo | None:
        jobs = self.jobs.list(tenant, kind=RUN_JOB, subject=connector_id, limit=1)
        return jobs[0] if jobs else None

    def live(self, tenant: str, info: ConnectorInfo) -> Live:
        job = self._latest_job(tenant, info.id)
        last = info.last_run
        job_open = job is not None and job.state in (JobState.QUEUED, JobState.RUNNING)
        # The job is queued until its run's row exists: a run started after the job was made.
        run_of_job = (job is not None and last is not None and _when(last.started_at) >= _when(job.created_at))
        error = None
        if job is not None and job.state == JobState.FAILED and not run_of_job:
            error = job.error
        running = last is not None and last.status == RunStatus.RUNNING
        return Live(active=job_open or running, queued=job_open and not run_of_job and not running, run=last,
                    job_error=error)

    def listing(self, tenant: str) -> list[tuple[ConnectorInfo, Live]]:
        return [(info, self.live(tenant, info)) for info in self.connectors.list_connectors(tenant)]

    def detail(self, tenant: str, connector_id: str) -> ConnectorDetail:
        info = self.connectors.describe(tenant, connector_id)
        kind = self.connectors.kinds.find_source(info.kind)
        return ConnectorDetail(info, self.live(tenant, info), self.connectors.runs(tenant, connector_id, RUNS_SHOWN),
                               bool(kind and kind.takes_files))

    def report(self, tenant: str, connector_id: str, run_id: str) -> RunReport:
        report = self.connectors.report(tenant, run_id)
        if report.connector_id != connector_id:
            raise NotFound(f"no run {run_id} of this connector")
        return report

    def chart(self, tenant: str, connector_id: str | None) -> tuple[list[str], list[tuple[str, list[int]]]]:
        """Items imported per day per kind over the last ``CHART_DAYS`` days: the chart's columns and rows (the
        days that had runs; the kinds that were imported, in ItemKind's order)."""
        days = self.connectors.imported_per_day(tenant, connector_id, utcnow() - timedelta(days=CHART_DAYS))
        seen = {kind for counts in days.values() for kind in counts}
        kinds = [k.value for k in ItemKind if k.value in seen] + sorted(seen - {k.value for k in ItemKind})
        return ["Day", *kinds], [(day, [counts.get(k, 0) for k in kinds]) for day, counts in days.items()]

    def start_run(self, tenant: str, connector_id: str, actor: str) -> JobInfo:
        """A run of the connector as a tracked job (the caller hands it to the engine); refused while one is
        queued or running, and before the admin consent (the run would refuse it too, later and out of sight)."""
        info = self.connectors.describe(tenant, connector_id)
        if info.consent_at is None:
            raise Invalid("the organisation's admin consent is needed before the first run: an Organization "
                          "Management holder gives it on the set-up's consent step")
        if self.live(tenant, info).active:
            raise Invalid("a run of this connector is queued or running already")
        return self.jobs.create(tenant, RUN_JOB, {"connector_id": connector_id}, actor, subject=connector_id)


def shown_settings(info: ConnectorInfo) -> list[tuple[str, Any]]:
    """The source settings as the pages list them (secrets are never among them: ``ConnectorInfo.source``)."""
    return sorted(info.source.items())
