"""One provisioning cycle: read a snapshot, plan, send what changed, record what happened.

The parts: ``planner`` (pure: the snapshot in, the work out), ``sender`` (HTTP only: upsert, disable, delete,
members), ``recorder`` (the database: state, logs, progress, quarantine) and the directory's read service
(``directory.reads``). This module reads the snapshot, checks the deletion threshold and sends the work in
order: users, then groups, then memberships (member PATCHes in batches), then users and groups that left scope
are deleted — memberships are settled before users are deleted, so the app's groups never point at a deleted
user.

**Send**: a thread pool of the app's concurrency, paced by its rate limit. Only the calling thread touches the
database; worker threads only talk HTTP. Once enough objects were attempted, a failure share above the
threshold stops the cycle (quarantine); what was not sent is counted and retried next cycle.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta

from tenantry.core.clock import as_utc
from tenantry.core.db import Database
from tenantry.directory.reads import DirectoryReads, ObjectType
from tenantry.provisioning.client import ScimTarget
from tenantry.provisioning.config import AppConfig
from tenantry.provisioning.planner import (
    GroupSnapshot,
    MemberSnapshot,
    Planner,
    Scope,
    UserSnapshot,
    Work,
    WorkKind,
)
from tenantry.provisioning.recorder import FLUSH_SECONDS, Progress, Recorder
from tenantry.provisioning.results import CycleKind, CycleReport, CycleStatus, LogAction, Result
from tenantry.provisioning.sender import Outcome, Sender

# Directory clocks of several machines are not perfectly in step: re-read a minute before the watermark.
# Re-reading an unchanged user costs a comparison, not a request.
WATERMARK_MARGIN = timedelta(seconds=60)


@dataclass(frozen=True)
class CycleSpec:
    """Which cycle of which app: what ``ProvisioningService.run_cycle`` decided before it began."""

    app_id: str
    tenant: str
    cycle_id: str
    kind: CycleKind
    started: datetime
    watermark: datetime | None
    config_changed: bool
    allow_deletions: bool = False
    only_user: str | None = None


class Cycle:
    """One cycle of one app. Built by ``ProvisioningService.run_cycle``; ``run()`` does the work."""

    def __init__(self, db: Database, reads: DirectoryReads, config: AppConfig, target: ScimTarget, spec: CycleSpec,
                 scope: Scope, progress: Progress | None = None) -> None:
        self.reads = reads
        self.config = config
        self.spec = spec
        self.planner = Planner(config, scope, spec.started, full=spec.watermark is None or spec.config_changed,
                               only_user=spec.only_user)
        self.sender = Sender(target, config, spec.app_id, spec.started)
        self.recorder = Recorder(db, config, spec.app_id, spec.cycle_id, spec.started, requests=target.snapshot,
                                 progress=progress, keep_logs=bool(spec.only_user))

    # -- the snapshot ----------------------------------------------------------------------------------

    def _changed(self, object_type: ObjectType) -> dict[str, int] | None:
        """What changed in the directory since the watermark; ``None`` in a full cycle (everything is read)."""
        if self.planner.full:
            return None
        assert self.spec.watermark is not None   # not full: there is one
        return self.reads.changed_versions(self.spec.tenant, object_type,
                                           as_utc(self.spec.watermark) - WATERMARK_MARGIN)

    def plan_users(self) -> list[Work]:
        only = self.spec.only_user
        state = self.recorder.state("User", [only] if only else None)
        look = self.planner.users_to_read(state, None if only else self._changed("User"))
        leaving = self.planner.users_leaving(state)
        present = frozenset(self.reads.existing_ids(self.spec.tenant, "User", leaving) if leaving else ())
        return self.planner.plan_users(UserSnapshot(
            state, self.reads.resources(self.spec.tenant, "User", sorted(look)), present))

    def plan_groups(self) -> tuple[list[Work], list[Work]]:
        """(groups to create/update, groups to delete)."""
        tenant, scope = self.spec.tenant, self.planner.scope
        candidates = frozenset(self.reads.group_ids(tenant) if scope.all else
                               self.reads.existing_ids(tenant, "Group", self.planner.entitled_groups()))
        state = self.recorder.state("Group")
        look = self.planner.groups_to_read(state, candidates, self._changed("Group"))
        return self.planner.plan_groups(GroupSnapshot(
            state, candidates, self.reads.resources(tenant, "Group", sorted(scope.groups_skipped)),
            self.reads.resources(tenant, "Group", sorted(look))))

    def plan_members(self, deleting: set[str]) -> list[Work]:
        users, groups = self.recorder.state("User"), self.recorder.state("Group")
        wanted = self.reads.user_members_of(self.spec.tenant, self.planner.provisioned_groups(groups))
        work, gone = self.planner.plan_members(MemberSnapshot(users, groups, wanted, self.recorder.memberships()),
                                               deleting)
        self.recorder.forget_memberships(gone)
        return work

    # -- sending ---------------------------------------------------------------------------------------

    def _send(self, w: Work) -> Outcome:
        if self.recorder.stop.is_set():
            # Counted, never logged (Recorder.record): no action was taken.
            return Outcome(w, LogAction.NONE, Result.SKIPPED, f"not attempted: {self.recorder.stop_reason}",
                           not_attempted=True)
        return self.sender.send(w)

    def execute(self, work: Sequence[Work]) -> None:
        """Send ``work``; once the cycle is stopped, what was not sent is only counted (``not_attempted``)."""
        if not work:
            return
        recorder, stop = self.recorder, self.recorder.stop
        sent = 0
        if self.config.concurrency == 1 or len(work) == 1 or stop.is_set():
            for w in work:
                if stop.is_set():
                    break
                recorder.record(self._send(w))
                sent += 1
            recorder.not_attempted += len(work) - sent
            recorder.flush()
            return
        with ThreadPoolExecutor(self.config.concurrency, thread_name_prefix="provisioning") as pool:
            queue = iter(work)
            running: set[Future[Outcome]] = set()
            limit = self.config.concurrency * 4
            while True:
                while len(running) < limit and not stop.is_set():
                    item = next(queue, None)
                    if item is None:
                        break
                    running.add(pool.submit(self._send, item))
                    sent += 1
                if not running:
                    break
                finished, running = wait(running, timeout=FLUSH_SECONDS * 5, return_when=FIRST_COMPLETED)
                for future in finished:
                    recorder.record(future.result())
                if not finished:
                    recorder.flush()     # nothing finished (429 waits, timeouts): progress and the lease stay fresh
        recorder.not_attempted += len(work) - sent
        recorder.flush()

    # -- the whole cycle -------------------------------------------------------------------------------

    def run(self) -> CycleReport:
        recorder, stop = self.recorder, self.recorder.stop
        groups_too = self.config.provision_groups and not self.spec.only_user
        users = self.plan_users()
        groups, group_deletes = self.plan_groups() if groups_too else ([], [])
        recorder.total = len(users) + len(groups) + len(group_deletes)
        removals = self.planner.removals(users + group_deletes)
        if self.planner.over_threshold(removals) and not self.spec.allow_deletions:
            reason = (f"the cycle would disable or delete {removals} objects, over the accidental-deletion "
                      f"threshold of {self.config.deletion_threshold}: nothing was sent. Check the scope, then run "
                      "it with --allow-deletions (or raise the threshold)")
            recorder.stats["would_remove"] = removals
            recorder.flush()
            return self.report(CycleStatus.THRESHOLD_EXCEEDED, reason)
        # Memberships are settled before users are deleted, so the app's groups never point at a deleted user.
        self.execute([w for w in users if w.kind != WorkKind.DELETE])
        if not stop.is_set() and groups:
            self.execute(groups)
        if not stop.is_set() and groups_too:
            members = self.plan_members({w.source_id for w in users if w.kind == WorkKind.DELETE})
            recorder.total += len(members)
            self.execute(members)
        if not stop.is_set():
            self.execute([w for w in users if w.kind == WorkKind.DELETE])
        if not stop.is_set() and group_deletes:
            self.execute(group_deletes)
        if stop.is_set():
            recorder.stopped()
        recorder.flush()
        if stop.is_set():
            return self.report(CycleStatus.QUARANTINED, recorder.stop_reason)
        failed = sum(v for k, v in recorder.stats.items() if k.endswith("_failed"))
        if failed:
            return self.report(CycleStatus.COMPLETED_WITH_FAILURES,
                               f"{failed} object(s) failed; they are retried next cycle")
        return self.report(CycleStatus.SUCCEEDED, None)

    def report(self, status: CycleStatus, reason: str | None, *, logs: bool = True) -> CycleReport:
        r = self.recorder
        return CycleReport(self.spec.cycle_id, self.spec.kind, status, r.total, r.done, r.all_stats(), reason,
                           list(r.logs) if logs else [])
