"""Recording a provisioning cycle: the app's state per object, memberships, one log entry per object, the
cycle's progress, its lease on the app, and quarantine (a failure share over the threshold stops the cycle).

Outcomes are written in batches (every ``FLUSH_EVERY`` objects or ``FLUSH_SECONDS``). Only the cycle's own
thread calls the recorder; the ``stop`` event is what worker threads look at.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from tenantry.core.batches import chunks
from tenantry.core.clock import as_utc, utcnow
from tenantry.core.db import Database
from tenantry.provisioning.config import AppConfig
from tenantry.provisioning.models import (
    ProvisionedMember,
    ProvisionedObject,
    ProvisioningApp,
    ProvisioningCycle,
    ProvisioningLog,
)
from tenantry.provisioning.planner import State, Work, WorkKind, step
from tenantry.provisioning.results import (
    LogAction,
    ObjectStatus,
    OnDemandEntry,
    Result,
    StepName,
    StepResult,
)
from tenantry.provisioning.sender import Outcome

FLUSH_EVERY = 500
FLUSH_SECONDS = 1.0
CYCLE_LEASE = timedelta(minutes=10)

Progress = Callable[[int, int], None]


@dataclass
class _Writes:
    """One flush's statements, gathered from the outcomes before the transaction opens."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    forget: list[tuple[str, str]] = field(default_factory=list)
    errors: list[tuple[Outcome, str]] = field(default_factory=list)
    logs: list[dict[str, Any]] = field(default_factory=list)
    entries: list[OnDemandEntry] = field(default_factory=list)   # the logs as returned (on demand only)
    member_adds: list[dict[str, Any]] = field(default_factory=list)
    member_removes: list[tuple[str, str]] = field(default_factory=list)
    # Memberships recorded for an object the app no longer holds under that id (forgotten, or re-created
    # after it vanished there) are void: the next membership pass adds them again.
    void: list[tuple[str, str]] = field(default_factory=list)


class Recorder:
    def __init__(self, db: Database, config: AppConfig, app_id: str, cycle_id: str, started: datetime, *,
                 requests: Callable[[], dict[str, int]], progress: Progress | None = None,
                 keep_logs: bool = False) -> None:
        self.db = db
        self.config = config
        self.app_id = app_id
        self.cycle_id = cycle_id
        self.started = started
        self.requests = requests          # the target's request counts, for the cycle's stats
        self.progress = progress
        self.keep_logs = keep_logs        # on demand: the log entries are returned with the report
        self.stats: Counter[str] = Counter()
        self.total = 0
        self.done = 0
        self.not_attempted = 0
        self.logs: list[OnDemandEntry] = []
        self.stop = threading.Event()
        self.stop_reason: str | None = None
        self._recent: deque[bool] = deque(maxlen=config.quarantine_min_attempts)   # True: failed
        self._pending: list[Outcome] = []
        self._last_flush = time.monotonic()

    # -- what the app holds ----------------------------------------------------------------------------

    def state(self, object_type: str, ids: Iterable[str] | None = None) -> dict[str, State]:
        """The app's objects of ``object_type`` as recorded (all, or those of ``ids``), by directory id."""
        with self.db.session() as session:
            stmt = select(ProvisionedObject.source_id, ProvisionedObject.target_id, ProvisionedObject.status,
                          ProvisionedObject.sent, ProvisionedObject.error, ProvisionedObject.disabled_at,
                          ProvisionedObject.source_version, ProvisionedObject.roles).where(
                ProvisionedObject.app_id == self.app_id, ProvisionedObject.object_type == object_type)
            if ids is None:
                rows = session.execute(stmt).all()
            else:
                rows = [r for batch in chunks(ids) for r in
                        session.execute(stmt.where(ProvisionedObject.source_id.in_(batch))).all()]
        return {r[0]: State(r[1], ObjectStatus(r[2]), r[3], r[4], as_utc(r[5]) if r[5] else None, r[6], r[7])
                for r in rows}

    def memberships(self) -> dict[str, set[str]]:
        """Group id → the user ids the app holds as its members."""
        held: dict[str, set[str]] = {}
        with self.db.session() as session:
            for gid, uid in session.execute(select(ProvisionedMember.group_id, ProvisionedMember.user_id).where(
                    ProvisionedMember.app_id == self.app_id)):
                held.setdefault(gid, set()).add(uid)
        return held

    def forget_memberships(self, group_ids: list[str]) -> None:
        if group_ids:
            with self.db.writing(), self.db.session() as session:
                session.execute(delete(ProvisionedMember).where(ProvisionedMember.app_id == self.app_id,
                                                                ProvisionedMember.group_id.in_(group_ids)))

    # -- outcomes --------------------------------------------------------------------------------------

    def record(self, outcome: Outcome) -> None:
        w = outcome.work
        if outcome.not_attempted:     # in flight when the cycle stopped: counted, said once in the cycle's log
            self.not_attempted += 1
            self.done += 1
            return
        key = f"{w.object_type.lower()}s_{'failed' if outcome.result == Result.FAILURE else _past(outcome)}"
        self.stats[key] += 1
        if outcome.attempted:
            self._recent.append(outcome.result == Result.FAILURE)
        if w.kind == WorkKind.MEMBERS:
            self.stats["members_added"] += len(outcome.added)
            self.stats["members_removed"] += len(outcome.removed)
        self.done += 1
        self._pending.append(outcome)
        if len(self._pending) >= FLUSH_EVERY or time.monotonic() - self._last_flush > FLUSH_SECONDS:
            self.flush()
        self._watch(outcome)

    def _watch(self, outcome: Outcome) -> None:
        """Quarantine looks at the last quarantine_min_attempts objects attempted, not the whole cycle: a target
        that dies after 10,000 good objects is noticed within that many more, not after 6,700 failures."""
        c = self.config
        failed = sum(self._recent)
        if (not self.stop.is_set() and len(self._recent) >= c.quarantine_min_attempts
                and failed / len(self._recent) > c.quarantine_failure_ratio):
            self.stop_reason = (f"{failed} of the last {len(self._recent)} objects attempted failed (over "
                                f"{c.quarantine_failure_ratio:.0%}); last error: {outcome.reason}")
            self.stop.set()

    def stopped(self) -> None:
        """One entry in the cycle's log saying it stopped, and how much it left for the next cycle."""
        self._pending.append(Outcome(Work(WorkKind.STOPPED, "App", self.app_id, reason=self.stop_reason or ""),
                                     LogAction.NONE, Result.SKIPPED, f"the cycle stopped: {self.stop_reason}; "
                                     f"{self.not_attempted} object(s) not attempted, retried next cycle"))

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        self._last_flush = time.monotonic()
        writes = self._gather(pending)
        with self.db.writing(), self.db.session() as session:
            self._write(session, writes)
            session.execute(update(ProvisioningCycle).where(ProvisioningCycle.id == self.cycle_id).values(
                done=self.done, total=self.total, stats=json.dumps(self.all_stats())))
            # The cycle's lease on the app is renewed while it makes progress; a dead process's lapses.
            session.execute(update(ProvisioningApp).where(ProvisioningApp.id == self.app_id).values(
                running_until=utcnow() + CYCLE_LEASE))
        self.logs.extend(writes.entries)
        if self.progress:
            self.progress(self.done, self.total)

    def _gather(self, pending: list[Outcome]) -> _Writes:
        out = _Writes()
        for o in pending:
            w = o.work
            if o.state is not None:
                out.rows.append(o.state)
                if w.state and w.state.target_id and o.target_id != w.state.target_id:
                    out.void.append((w.object_type, w.source_id))
            elif o.forget:
                out.forget.append((w.object_type, w.source_id))
                out.void.append((w.object_type, w.source_id))
            elif o.result == Result.FAILURE and w.kind != WorkKind.MEMBERS:
                out.errors.append((o, o.reason))
            out.member_adds += [{"app_id": self.app_id, "group_id": w.source_id, "user_id": u} for u in o.added]
            out.member_removes += [(w.source_id, u) for u in o.removed]
            if w.kind != WorkKind.FORGET:
                steps = list(w.steps)
                if w.kind not in (WorkKind.SKIP, WorkKind.FAIL):
                    steps.append(step(StepName.ACTION, StepResult(o.result),
                                      f"{o.action}: {o.reason}" if o.reason else o.action.value))
                reason = o.reason or w.reason or None
                out.logs.append({"app_id": self.app_id, "cycle_id": self.cycle_id, "at": self.started,
                                 "object_type": w.object_type, "source_id": w.source_id, "display": w.display,
                                 "target_id": o.target_id, "action": o.action, "result": o.result,
                                 "reason": reason, "steps": json.dumps([s.stored() for s in steps])})
                if self.keep_logs:
                    out.entries.append(OnDemandEntry(self.app_id, self.cycle_id, self.started.isoformat(),
                                                     w.object_type, w.source_id, w.display, o.target_id, o.action,
                                                     o.result, reason, steps))
        return out

    def _write(self, session: Session, writes: _Writes) -> None:
        keys = [(r["object_type"], r["source_id"]) for r in writes.rows] + writes.forget
        for object_type in ("User", "Group"):
            for batch in chunks([sid for t, sid in keys if t == object_type]):
                session.execute(delete(ProvisionedObject).where(
                    ProvisionedObject.app_id == self.app_id, ProvisionedObject.object_type == object_type,
                    ProvisionedObject.source_id.in_(batch)))
            column = ProvisionedMember.user_id if object_type == "User" else ProvisionedMember.group_id
            for batch in chunks([sid for t, sid in writes.void if t == object_type]):
                session.execute(delete(ProvisionedMember).where(ProvisionedMember.app_id == self.app_id,
                                                                column.in_(batch)))
        if writes.rows:
            session.execute(insert(ProvisionedObject), writes.rows)
        for o, reason in writes.errors:
            self._write_error(session, o.work, reason)
        for group_id, user_id in writes.member_removes:
            session.execute(delete(ProvisionedMember).where(
                ProvisionedMember.app_id == self.app_id, ProvisionedMember.group_id == group_id,
                ProvisionedMember.user_id == user_id))
        if writes.member_adds:
            session.execute(insert(ProvisionedMember), writes.member_adds)
        if writes.logs:
            session.execute(insert(ProvisioningLog), writes.logs)

    def _write_error(self, session: Session, w: Work, reason: str) -> None:
        """A failed object keeps what the app holds and gets the error (retried next cycle)."""
        if w.state is None:
            session.execute(insert(ProvisionedObject), [{
                "app_id": self.app_id, "object_type": w.object_type, "source_id": w.source_id,
                "target_id": None, "status": ObjectStatus.PENDING, "sent": "{}", "error": reason,
                "disabled_at": None, "updated_at": self.started, "source_version": None, "roles": None}])
        else:
            session.execute(update(ProvisionedObject).where(
                ProvisionedObject.app_id == self.app_id, ProvisionedObject.object_type == w.object_type,
                ProvisionedObject.source_id == w.source_id).values(error=reason))

    def all_stats(self) -> dict[str, int]:
        """The cycle's counts with the requests sent, by method and by outcome."""
        out = dict(self.stats)
        counts = self.requests()
        out["requests"] = sum(v for k, v in counts.items() if k.isupper())
        for key, value in counts.items():
            out[f"requests_{key.lower()}" if key.isupper() else key] = value
        if self.not_attempted:
            out["not_attempted"] = self.not_attempted
        return out


def _past(outcome: Outcome) -> str:
    if outcome.result == Result.SKIPPED:
        return "unchanged" if outcome.action == LogAction.NONE and outcome.work.kind == WorkKind.UPSERT else (
            "excluded" if outcome.work.kind in (WorkKind.EXCLUDE, WorkKind.FORGET) else "skipped")
    return _PAST.get(outcome.action, outcome.action.value)


# The stats key of a successful action: users_created, groups_members_changed, …
_PAST = {LogAction.CREATE: "created", LogAction.UPDATE: "updated", LogAction.DISABLE: "disabled",
         LogAction.DELETE: "deleted", LogAction.MEMBERS: "members_changed", LogAction.NONE: "matched"}
