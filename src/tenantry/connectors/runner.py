"""A connector's run: every item the source yields is delivered to the mailbox of each participant who is a user
("WhatsApp Archiver" folder) or written to the run's report with the reason — never dropped.

Deliveries are idempotent by Message-ID and the checkpoint moves only when a run succeeds, so a run that crashed
is simply run again (``recover_interrupted`` marks it failed and makes its connector due at once). Which runs
crashed: those whose heartbeat — written every ``HEARTBEAT`` by a thread of the process doing the run — is older
than ``HEARTBEAT_LEASE``; a run another live process (a second server, a Celery worker) is doing is left alone. The
data flow is in docs/ARCHITECTURE.md ("Part C").
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import func, insert, select, update

from tenantry.archive.service import WHATSAPP_FOLDER, Delivery
from tenantry.connectors.convert import index_fields, render_item
from tenantry.connectors.items import ItemKind, Participant, RunCounts, SkipReason, SourceIssue, SourceItem, printable
from tenantry.connectors.mapping import MappingRow, MatchedBy, Recipient, UserMapper
from tenantry.connectors.models import (
    Connector,
    ConnectorStatus,
    ExportFile,
    MappingEntry,
    Run,
    RunIssue,
    RunStatus,
    RunTrigger,
)
from tenantry.connectors.records import get_connector, iso, run_summary
from tenantry.connectors.registry import Environment, Kinds
from tenantry.connectors.results import ReportedIssue, RunReport, RunSummary, UnmappedParticipant
from tenantry.connectors.schedule import next_daily, retry_at
from tenantry.connectors.sources import ExportUpload, SourceUnavailable
from tenantry.connectors.targets import Target, TargetError
from tenantry.connectors.uploads import ExportFiles
from tenantry.connectors.wizard import CONSENT_HINT
from tenantry.core.clock import as_utc, utcnow
from tenantry.core.db import FOR_WRITE, Database
from tenantry.core.errors import Conflict, Invalid, NotFound, TenantryError
from tenantry.directory.service import DirectoryService

BATCH = 2000
# A batch is also cut at this many bytes of items: an export's media are up to the item limit (10 MB) each,
# and 2,000 of them must not be in memory together.
BATCH_BYTES = 64 * 1024 * 1024
# How often a working run says it is alive, and how long without a word before it counts as crashed. A process
# killed mid-run is recovered by the next scheduler tick after HEARTBEAT_LEASE; a live one never is (a database that
# refuses the heartbeat for the whole lease aside: the run is then failed and run again, which Message-IDs make
# harmless).
HEARTBEAT = timedelta(seconds=30)
HEARTBEAT_LEASE = timedelta(minutes=2)

# A run's last sign of life: its heartbeat, or its start for a row written before heartbeats (migration 0021).
_alive_at = func.coalesce(Run.heartbeat_at, Run.started_at)

log = logging.getLogger("tenantry.connectors")

Progress = Callable[[int, int | None], None]


@dataclass
class _Started:
    """What a run has fixed when its row is written: the connector as it was, its mapping and files, its window."""

    run_id: str
    connector: Connector
    rows: list[MappingRow]
    files: list[ExportFile]
    window_start: datetime


@dataclass
class ConnectorRunner:
    db: Database
    directory: DirectoryService
    kinds: Kinds
    env: Environment
    files: ExportFiles
    region: str | None = None     # the default phone region of the user mapping

    def recover_interrupted(self, now: datetime | None = None) -> int:
        """Runs left 'running' by a process that stopped (no heartbeat for ``HEARTBEAT_LEASE``) are marked failed; their
        connectors run again at once. Runs other live processes are doing are left alone. The number recovered."""
        now = now or utcnow()
        lapsed = now - HEARTBEAT_LEASE
        with self.db.writing(), self.db.session() as session:
            stale = session.scalars(select(Run).where(
                Run.status == RunStatus.RUNNING, _alive_at < lapsed).with_for_update()).all()
            for run in stale:
                run.status = RunStatus.FAILED
                run.finished_at = now
                run.error = "interrupted (the process stopped during the run); it is run again"
                session.execute(update(Connector).where(
                    Connector.id == run.connector_id, Connector.status == ConnectorStatus.ENABLED,
                ).values(next_run_at=now))
            return len(stale)

    def _heartbeat(self, run_id: str) -> Callable[[], None]:
        """Starts writing the run's heartbeat every ``HEARTBEAT`` on a thread of its own; the returned call stops it."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(HEARTBEAT.total_seconds()):
                try:
                    with self.db.writing(), self.db.session() as session:
                        session.execute(update(Run).where(Run.id == run_id, Run.status == RunStatus.RUNNING)
                                        .values(heartbeat_at=utcnow()))
                except Exception:  # noqa: BLE001 - a missed beat is retried; the lease allows for several
                    log.warning("connector run %s: could not write its heartbeat", run_id, exc_info=True)

        thread = threading.Thread(target=beat, name=f"run-heartbeat-{run_id[:8]}", daemon=True)
        thread.start()

        def stopped() -> None:
            stop.set()
            thread.join()
        return stopped

    def run(self, tenant: str, connector_id: str, *, trigger: RunTrigger = RunTrigger.MANUAL,
            now: datetime | None = None, progress: Progress | None = None) -> RunReport:
        now = now or utcnow()
        started = self._start(tenant, connector_id, trigger, now)
        stop_heartbeat = self._heartbeat(started.run_id)
        try:
            uploads = [ExportUpload(self.files.path(f.sha256), f.filename, f.owner_user_id, f.chat_name)
                       for f in started.files]
            mapper = UserMapper(self.directory, tenant, started.rows,
                                use_directory_mobiles=started.connector.use_directory_mobiles,
                                default_region=self.region)
            return self._work(tenant, connector_id, started, uploads, mapper, now, progress)
        finally:
            stop_heartbeat()

    def _work(self, tenant: str, connector_id: str, started: _Started, uploads: list[ExportUpload],
              mapper: UserMapper, now: datetime, progress: Progress | None) -> RunReport:
        connector, run_id = started.connector, started.run_id
        counts = RunCounts()
        issues: list[SourceIssue] = []
        error: str | None = None
        target = self.kinds.open_target(connector, self.env)
        source = self.kinds.open_source(connector, self.env, uploads, mapper.person_keys, target.history(tenant))
        try:
            for batch in _batches(source.items(started.window_start, now), BATCH):
                self._run_batch(tenant, connector, batch, mapper, target, counts, issues)
                self._flush_issues(run_id, issues)
                self._save_counts(run_id, counts)
                if progress:
                    progress(counts.seen, None)
        except (SourceUnavailable, TargetError, TenantryError) as exc:
            error = str(exc)
        finally:
            source.close()
            try:
                target.close()      # the store target: everything delivered is searchable from here on
            except TenantryError as exc:
                error = error or f"the items were stored, but {exc}"
        self._flush_issues(run_id, issues)
        return self._finish(tenant, connector_id, run_id, counts, error, [f.id for f in started.files], now)

    def _start(self, tenant: str, connector_id: str, trigger: RunTrigger, now: datetime) -> _Started:
        """Check that the connector may run, fix its window and write the run's row (``running``). One run of a
        connector at a time: its row is locked while this is decided, so two starts at once (a double-clicked
        "Run now", a manual run beside a scheduled one, two processes) cannot both begin."""
        with self.db.writing(), self.db.session() as session:
            connector = get_connector(session, tenant, connector_id, lock=True)
            if connector.status == ConnectorStatus.DRAFT and trigger == RunTrigger.SCHEDULE:
                raise Invalid("a draft connector is not scheduled")
            # Seed 000: the import needs the organisation's admin consent — for every kind of connector, not
            # only the feed: an export file carries other people's messages just the same.
            if connector.consent_at is None:
                raise Invalid(f"the organisation's admin consent is needed before the first run; {CONSENT_HINT}")
            # A run whose heartbeat has lapsed is a crashed one (recover_interrupted fails it): it does not count.
            running = session.scalar(select(Run.id).where(
                Run.connector_id == connector_id, Run.status == RunStatus.RUNNING,
                _alive_at >= utcnow() - HEARTBEAT_LEASE).limit(1))
            if running is not None:
                raise Conflict(f"a run of this connector is in progress ({running}); its report will say how it "
                               "ended, and a new run can start once it has")
            rows = [MappingRow(m.line, m.e164, m.name_key, m.email) for m in session.scalars(
                select(MappingEntry).where(MappingEntry.connector_id == connector_id))]
            files = list(session.scalars(select(ExportFile).where(
                ExportFile.connector_id == connector_id, ExportFile.imported_by_run.is_(None))
                .order_by(ExportFile.received_at)))
            # A feed item is selected by its own timestamp, and archivers sync once a day: a message sent
            # before the last run that reached the archiver after it would never be read again. Each run
            # therefore re-reads ``overlap_hours`` behind the checkpoint; what it reads twice is already in the
            # mailboxes (Message-IDs) and is counted as already archived (issue #10, item 1).
            window_start = (as_utc(connector.checkpoint) - timedelta(hours=connector.overlap_hours)
                            if connector.checkpoint else now - timedelta(days=connector.backfill_days))
            begun = utcnow()
            run = Run(id=str(uuid.uuid4()), connector_id=connector_id, tenant_id=tenant, trigger=trigger,
                      status=RunStatus.RUNNING, started_at=begun, heartbeat_at=begun, window_start=window_start,
                      window_end=now)
            session.add(run)
            session.expunge(connector)
        return _Started(run.id, connector, rows, files, window_start)

    def _run_batch(self, tenant: str, connector: Connector, batch: list[SourceItem | SourceIssue],
                   mapper: UserMapper, target: Target, counts: RunCounts, issues: list[SourceIssue]) -> None:
        items = [b for b in batch if isinstance(b, SourceItem)]
        for b in batch:
            if isinstance(b, SourceIssue):
                if b.reason.skips:
                    counts.seen += 1
                    counts.skip(b.reason)
                issues.append(b)
        people = [p for item in items for p in item.participants] + [i.sender for i in items if i.sender]
        mapper.prefetch([p.phone for p in people if p.phone], [p.email for p in people if p.email])
        owners = self._owner_recipients(tenant, {u for item in items for u in item.owner_user_ids})
        deliveries: list[Delivery] = []
        delivered_items: list[tuple[SourceItem, int]] = []
        for item in items:
            copies = _deliveries(item, connector, mapper, owners, counts, issues)
            if copies:
                deliveries.extend(copies)
                delivered_items.append((item, len(copies)))
        results = target.deliver(tenant, deliveries) if deliveries else []
        counts.copies += sum(results)
        counts.duplicates += len(results) - sum(results)
        start = 0
        for item, copies_made in delivered_items:
            counts.imported += 1
            counts.by_kind[item.kind.value] = counts.by_kind.get(item.kind.value, 0) + 1
            if not any(results[start:start + copies_made]):
                counts.already_archived += 1
            start += copies_made

    def _owner_recipients(self, tenant: str, user_ids: set[str]) -> dict[str, Recipient]:
        out: dict[str, Recipient] = {}
        for user in self.directory.users_by_id(tenant, sorted(user_ids)):
            out[user.id] = Recipient(user.id, user.email, user.display_name, MatchedBy.OWNER)
        return out

    def _flush_issues(self, run_id: str, issues: list[SourceIssue]) -> None:
        if not issues:
            return
        with self.db.session() as session:
            session.execute(insert(RunIssue), [
                {"run_id": run_id, "reason": i.reason.value, "detail": i.detail[:4000], "source_id": i.source_id,
                 "location": i.location, "kind": i.kind, "size": i.size} for i in issues])
        issues.clear()

    def _save_counts(self, run_id: str, counts: RunCounts) -> None:
        with self.db.session() as session:
            session.execute(update(Run).where(Run.id == run_id).values(
                seen=counts.seen, imported=counts.imported, skipped=sum(counts.skipped.values()),
                copies=counts.copies, duplicates=counts.duplicates,
                counts=json.dumps({"imported": counts.by_kind, "skipped": counts.skipped,
                                   "already_archived": counts.already_archived,
                                   "unmapped": [u.as_dict() for u in counts.unmapped.values()],
                                   "unmapped_not_listed": counts.unmapped_not_listed})))

    def _finish(self, tenant: str, connector_id: str, run_id: str, counts: RunCounts, error: str | None,
                file_ids: list[str], now: datetime) -> RunReport:
        self._save_counts(run_id, counts)
        finished = utcnow()
        with self.db.writing(), self.db.session() as session:
            run = session.get(Run, run_id)
            # Locked: the failure count and the checkpoint are read and written back, and another run of the
            # connector (a manual one beside the scheduled one, in another process) may finish at the same time.
            connector = session.get(Connector, connector_id, with_for_update=FOR_WRITE)
            assert run is not None and connector is not None
            run.finished_at = finished
            if error is None:
                run.status = RunStatus.SUCCEEDED
                if connector.checkpoint is None or as_utc(connector.checkpoint) < now:
                    connector.checkpoint = now   # never backwards: a run with an earlier window may end later
                connector.failures_in_a_row = 0
                if connector.status == ConnectorStatus.ENABLED:
                    connector.next_run_at = next_daily(now, connector.run_at)
                if file_ids:
                    session.execute(update(ExportFile).where(ExportFile.id.in_(file_ids))
                                    .values(imported_by_run=run_id))
            else:
                run.status = RunStatus.FAILED
                run.error = error
                connector.failures_in_a_row += 1
                if connector.status == ConnectorStatus.ENABLED:
                    # Retried with back-off; nothing moves the checkpoint.
                    connector.next_run_at = retry_at(finished, connector.failures_in_a_row)
        return self.report(tenant, run_id)

    def report(self, tenant: str, run_id: str, *, issue_limit: int = 1000) -> RunReport:
        with self.db.session() as session:
            run = session.get(Run, run_id)
            if run is None or run.tenant_id != tenant:
                raise NotFound(f"no run {run_id}")
            issues = session.scalars(select(RunIssue).where(RunIssue.run_id == run_id)
                                     .order_by(RunIssue.id).limit(issue_limit))
            return _report(run, [_reported(i) for i in issues])

    def imported_per_day(self, tenant: str, connector_id: str | None, since: datetime,
                         limit: int = 5000) -> dict[str, dict[str, int]]:
        """Items imported per day (the UTC date a run started) per kind, from the runs' saved counts: of one
        connector, or (``None``) of every connector of the tenant. At most ``limit`` runs are read, newest first."""
        with self.db.session() as session:
            stmt = select(Run.started_at, Run.counts).where(Run.tenant_id == tenant, Run.started_at >= since)
            if connector_id is not None:
                get_connector(session, tenant, connector_id)
                stmt = stmt.where(Run.connector_id == connector_id)
            rows = session.execute(stmt.order_by(Run.started_at.desc()).limit(limit)).all()
        days: dict[str, dict[str, int]] = {}
        for started, counts in rows:
            day = days.setdefault(as_utc(started).date().isoformat(), {})
            for kind, n in json.loads(counts or "{}").get("imported", {}).items():
                day[kind] = day.get(kind, 0) + int(n)
        return dict(sorted(days.items()))

    def runs(self, tenant: str, connector_id: str, limit: int = 20) -> list[RunSummary]:
        with self.db.session() as session:
            get_connector(session, tenant, connector_id)
            rows = session.scalars(select(Run).where(Run.connector_id == connector_id)
                                   .order_by(Run.started_at.desc()).limit(limit))
            return [run_summary(r) for r in rows]


def _report(run: Run, issues: list[ReportedIssue]) -> RunReport:
    """The run's report from its row: the counts the runner saved after each batch (``_save_counts``)."""
    counts = json.loads(run.counts or "{}")
    skipped: dict[str, int] = counts.get("skipped", {})
    started, finished = as_utc(run.started_at), as_utc(run.finished_at) if run.finished_at else None
    return RunReport(
        id=run.id, connector_id=run.connector_id, status=RunStatus(run.status), trigger=RunTrigger(run.trigger),
        started_at=started.isoformat(), finished_at=finished.isoformat() if finished else None,
        duration_seconds=round((finished - started).total_seconds(), 3) if finished else None,
        window_start=iso(run.window_start), window_end=iso(run.window_end),
        seen=run.seen, imported=run.imported, skipped=sum(skipped.values()), copies=run.copies,
        duplicates=run.duplicates, already_archived=counts.get("already_archived", 0),
        imported_by_kind=counts.get("imported", {}), skipped_by_reason=skipped, error=_printable(run.error),
        issues=issues, unmapped_participants=[_unmapped(u) for u in counts.get("unmapped", [])],
        unmapped_not_listed=counts.get("unmapped_not_listed", 0))


def _reported(issue: RunIssue) -> ReportedIssue:
    # Details quote the source (a line of a file anyone could hand in): control bytes are escaped.
    return ReportedIssue(SkipReason(issue.reason), printable(issue.detail), _printable(issue.source_id),
                         _printable(issue.location), ItemKind(issue.kind) if issue.kind else None, issue.size)


def _unmapped(saved: dict[str, Any]) -> UnmappedParticipant:  # dict: an entry of the run's saved counts (JSON)
    # Names and numbers come from the source: escaped like the issues.
    p = Participant(phone=saved["phone"], name=saved["name"], email=saved["email"])
    return UnmappedParticipant(printable(p.label()), _printable(p.phone), _printable(p.name), _printable(p.email),
                               saved["messages"], printable(saved["rule"]))


def _deliveries(item: SourceItem, connector: Connector, mapper: UserMapper, owners: dict[str, Recipient],
                counts: RunCounts, issues: list[SourceIssue]) -> list[Delivery]:
    """One item's copies, one per user it maps to (the size rule and participants → users, seed 000); none, with
    the reason in ``issues``, for an item that is skipped."""
    counts.seen += 1
    size = item.approximate_size
    if size > connector.max_item_bytes:
        counts.skip(SkipReason.TOO_LARGE)
        issues.append(SourceIssue(SkipReason.TOO_LARGE, f"{size} bytes is over the {connector.max_item_bytes}-byte "
                                  "limit", item.source_id, item.location, size, item.kind))
        return []
    recipients = _recipients(item, mapper)
    for p, r in recipients.items():
        if r.by_digits and p.phone and p.phone not in counts.by_digits:
            counts.by_digits.add(p.phone)
            issues.append(SourceIssue(
                SkipReason.NOTICE, f"{p.label()} is not a valid phone number by its country's plan; mapped "
                f"to {r.address} ({r.via}) by its digits", item.source_id, item.location))
    for p in dict.fromkeys((*item.participants, *((item.sender,) if item.sender else ()))):
        if p not in recipients:  # reported, not silently absent (issue #10, item 2)
            counts.note_unmapped(p, p == item.sender, partial(mapper.why_unmapped, p.phone, p.name, p.email))
    users = {r.user_id: r for r in recipients.values()}
    for owner_id in item.owner_user_ids:
        if owner_id in owners:
            users.setdefault(owner_id, owners[owner_id])
    if not users:
        counts.skip(SkipReason.NO_USER)
        issues.append(SourceIssue(SkipReason.NO_USER, "no participant maps to a user: "
                                  + ", ".join(p.label() for p in item.participants)[:500],
                                  item.source_id, item.location, size, item.kind))
        return []

    def resolve(p: Participant) -> str | None:
        r = recipients.get(p)
        return r.address if r else None

    # One rendering, shared by every participant's copy: the bytes are identical, so the blob is stored once.
    mail, raw = render_item(item, resolve, connector.outsider_domain)
    fields = index_fields(item, mail, resolve, connector.outsider_domain)
    return [Delivery(user_id=r.user_id, address=r.address, folder=WHATSAPP_FOLDER, raw=raw,
                     message_id=mail.message_id, kind=item.kind.value, source=item.source, sent_at=item.sent_at,
                     chat_id=item.chat_id, subject=mail.subject, sender=mail.sender.addr, fields=fields,
                     aliases=item.aliases) for r in users.values()]


def _recipients(item: SourceItem, mapper: UserMapper) -> dict[Participant, Recipient]:
    found: dict[Participant, Recipient] = {}
    everyone = list(item.participants)
    if item.sender and item.sender not in everyone:
        everyone.insert(0, item.sender)
    for p in everyone:
        users = mapper.resolve(p.phone, p.name, p.email)
        if users:
            found[p] = users[0]
    return found


def _batches(iterator: Iterator[SourceItem | SourceIssue], size: int) -> Iterator[list[SourceItem | SourceIssue]]:
    batch: list[SourceItem | SourceIssue] = []
    held = 0
    for entry in iterator:
        batch.append(entry)
        if isinstance(entry, SourceItem):
            held += entry.approximate_size
        if len(batch) >= size or held >= BATCH_BYTES:
            yield batch
            batch = []
            held = 0
    if batch:
        yield batch


def _printable(text: str | None) -> str | None:
    return None if text is None else printable(text)
