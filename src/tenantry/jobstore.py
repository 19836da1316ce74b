"""The state of jobs the admin API starts (retention apply, eDiscovery exports), kept in the database.

A job is a row per tenant: queued → running → succeeded | failed, with progress (done/total) and the result
or the error. Any process — the server that accepted it, the Celery worker running it, another server on the
same PostgreSQL — reports a job from its row, and a job id is only ever looked up inside the caller's tenant.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.core.clock import as_utc, utcnow
from tenantry.core.db import Base, Database
from tenantry.core.errors import NotFound

log = logging.getLogger(__name__)

_JOB_ID = re.compile(r"\A[0-9a-f-]{36}\Z")


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


FINISHED = (JobState.SUCCEEDED, JobState.FAILED)

ProgressFn = Callable[[int, int | None], None]


class JobRecord(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_tenant_created", "tenant_id", "created_at"),
        Index("ix_jobs_tenant_kind_subject", "tenant_id", "kind", "subject"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(64))
    # What the job works on, for listing (an export's case id); "" when it is the whole tenant.
    subject: Mapped[str] = mapped_column(String(64), default="")
    params: Mapped[str] = mapped_column(Text, default="{}")       # JSON: what the job function receives
    state: Mapped[str] = mapped_column(String(16))
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int | None] = mapped_column(Integer, nullable=True)
    result: Mapped[str | None] = mapped_column(Text, nullable=True)    # JSON
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_by: Mapped[str] = mapped_column(String(256))
    # host:pid of the process running it: an in-process job whose process died is reported failed.
    runner: Mapped[str | None] = mapped_column(String(256), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True, slots=True)
class Progress:
    done: int
    total: int | None   # None: not known yet


@dataclass(frozen=True, slots=True)
class JobInfo:
    """A job as any process reports it (``GET …/jobs/{id}``); timestamps are ISO 8601 strings, as on the wire."""

    id: str
    kind: str
    subject: str | None
    state: JobState
    progress: Progress
    result: dict[str, Any] | None   # dict: the job function's result, JSON whose shape is the job kind's
    error: str | None
    created_by: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    params: dict[str, Any]          # dict: what the job function receives, JSON whose shape is the job kind's


def _runner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class JobStore:
    """Rows of ``jobs``: written by whoever runs the job, read by any process."""

    def __init__(self, db: Database, *, progress_every: float = 0.5) -> None:
        self.db = db
        # Progress is written at most this often (and always at the end): a row update per item would cost
        # more than the work it reports on SQLite's single writer.
        self.progress_every = progress_every

    def create(self, tenant: str, kind: str, params: dict[str, Any], actor: str, subject: str = "") -> JobInfo:
        now = utcnow()
        job = JobRecord(id=str(uuid.uuid4()), tenant_id=tenant, kind=kind, subject=subject,
                        params=json.dumps(params), state=JobState.QUEUED, done=0, total=None, created_by=actor,
                        created_at=now, updated_at=now)
        with self.db.session() as session:
            session.add(job)
        return job_info(job)

    def get(self, tenant: str, job_id: str, kind: str | None = None, subject: str | None = None) -> JobInfo:
        """The job, looked up inside ``tenant`` (and of ``kind``/``subject`` when given); NotFound otherwise."""
        if not _JOB_ID.match(job_id):
            # Ids are UUIDs we made: anything else is not looked up (a NUL byte would be a PostgreSQL error).
            raise NotFound(f"no job {job_id[:64]!r}")
        with self.db.session() as session:
            job = session.get(JobRecord, job_id)
            if (job is None or job.tenant_id != tenant or (kind is not None and job.kind != kind)
                    or (subject is not None and job.subject != subject)):
                raise NotFound(f"no job {job_id}")
            return job_info(job)

    def list(self, tenant: str, *, kind: str | None = None, subject: str | None = None,
             limit: int = 100) -> list[JobInfo]:
        with self.db.session() as session:
            stmt = select(JobRecord).where(JobRecord.tenant_id == tenant)
            if kind is not None:
                stmt = stmt.where(JobRecord.kind == kind)
            if subject is not None:
                stmt = stmt.where(JobRecord.subject == subject)
            stmt = stmt.order_by(JobRecord.created_at.desc(), JobRecord.id).limit(max(1, min(limit, 1000)))
            return [job_info(j) for j in session.scalars(stmt)]

    def claim(self, job_id: str) -> tuple[str, str, dict[str, Any]] | None:   # dict: the job's params
        """Mark the job running here; (tenant, kind, params), or None if it is finished (a redelivered message).

        A ``running`` job is claimed again: Celery hands a job whose worker died to another worker, and every
        job function is idempotent (retention) or writes to its own new folder (an export starts over).
        """
        now = utcnow()
        with self.db.session() as session:
            job = session.get(JobRecord, job_id, with_for_update=True)
            if job is None or job.state in FINISHED:
                return None
            job.state, job.started_at, job.updated_at, job.runner = JobState.RUNNING, now, now, _runner()
            job.done, job.total = 0, None
            return job.tenant_id, job.kind, json.loads(job.params)

    def reporter(self, job_id: str) -> ProgressFn:
        """A progress callback for the job function: writes (done, total) at most every ``progress_every``."""
        last = [0.0]

        def report(done: int, total: int | None) -> None:
            now = time.monotonic()
            if now - last[0] < self.progress_every and (total is None or done < total):
                return
            last[0] = now
            try:
                with self.db.session() as session:
                    session.execute(update(JobRecord).where(JobRecord.id == job_id, JobRecord.state == JobState.RUNNING)
                                    .values(done=done, total=total, updated_at=utcnow()))
            except SQLAlchemyError:
                # Progress is advice: a busy database must not fail the job it describes.
                log.warning("progress of job %s not recorded", job_id, exc_info=True)

        return report

    def finish(self, job_id: str, result: dict[str, Any], done: int | None = None) -> None:
        now = utcnow()
        values: dict[str, Any] = {"state": JobState.SUCCEEDED, "result": json.dumps(result, default=str),
                                  "finished_at": now, "updated_at": now, "error": None}
        with self.db.session() as session:
            job = session.get(JobRecord, job_id)
            if job is None:
                return
            final = done if done is not None else (job.total if job.total is not None else job.done)
            values["done"] = final
            values["total"] = final if job.total is None else max(job.total, final)
            session.execute(update(JobRecord).where(JobRecord.id == job_id).values(**values))

    def fail(self, job_id: str, error: str) -> None:
        now = utcnow()
        with self.db.session() as session:
            session.execute(update(JobRecord).where(JobRecord.id == job_id).values(
                state=JobState.FAILED, error=error, finished_at=now, updated_at=now))

    def fail_orphans(self) -> int:
        """Jobs this host ran in-process whose process is gone (a restart) are failed, not left 'running'."""
        host = socket.gethostname()
        gone: list[str] = []
        with self.db.session() as session:
            for job_id, runner in session.execute(select(JobRecord.id, JobRecord.runner).where(
                    JobRecord.state == JobState.RUNNING, JobRecord.runner.like(f"{host}:%"))):
                pid = int(str(runner).rpartition(":")[2] or 0)
                if pid != os.getpid() and not _alive(pid):
                    gone.append(job_id)
        for job_id in gone:
            self.fail(job_id, "interrupted: the process running it stopped; start it again")
        return len(gone)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def job_info(job: JobRecord) -> JobInfo:
    return JobInfo(
        id=job.id, kind=job.kind, subject=job.subject or None, state=JobState(job.state),
        progress=Progress(job.done, job.total),
        result=json.loads(job.result) if job.result else None, error=job.error,
        created_by=job.created_by, created_at=as_utc(job.created_at).isoformat(),
        started_at=as_utc(job.started_at).isoformat() if job.started_at else None,
        finished_at=as_utc(job.finished_at).isoformat() if job.finished_at else None,
        params=json.loads(job.params),
    )
