"""Planning a provisioning cycle: pure functions from a snapshot to the work to send (no database, no HTTP).

The users in scope (assignments, Default Access rule, scoping filters) are compared with what the app holds
(its ``provisioned_objects`` rows, as ``State``). An *initial* cycle looks at every user in scope; an
*incremental* one only at users modified since the watermark, users entering or returning to scope, and objects
whose last attempt failed — plus everyone when the mappings changed. Users the app holds that left scope are
disabled (``active=false``), and deleted once they have been disabled for the configured period; groups that
left scope are deleted. Memberships are planned as the difference between the directory's direct members and
those the app holds, in PATCH batches. The accidental-deletion threshold is checked on the plan.

The cycle (``engine.Cycle``) reads the snapshot in two steps: which objects to read (``users_to_read``,
``groups_to_read``) from the state and the changes, then the resources themselves, streamed through the plan.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from tenantry.core.batches import chunks
from tenantry.core.errors import Invalid
from tenantry.directory.reads import StoredResource
from tenantry.provisioning.config import AppConfig
from tenantry.provisioning.mappings import (
    APP_ROLE_ASSIGNMENTS,
    AttributeMapping,
    map_object,
    pick_role,
    uses_app_roles,
)
from tenantry.provisioning.paths import read_path
from tenantry.provisioning.results import LogStep, ObjectStatus, StepName, StepResult
from tenantry.provisioning.roles import fingerprint
from tenantry.provisioning.scoping import in_scope

READ = (StepName.IMPORT, StepResult.SUCCESS, "read from the directory")


@dataclass
class State:
    """What the app holds of one object, as the last cycle recorded it."""

    target_id: str | None
    status: ObjectStatus
    sent: str
    error: str | None
    disabled_at: datetime | None
    source_version: int | None = None     # the directory version these values were computed from
    roles: str | None = None              # the user's app roles these values were computed from (fingerprint)


class WorkKind(StrEnum):
    """What a cycle does with one object (stored as text in logs: a StrEnum is its value)."""

    UPSERT = "upsert"       # create, or PATCH what changed
    DISABLE = "disable"     # left scope: active=false in the app
    DELETE = "delete"       # left scope long enough, or deleted here
    EXCLUDE = "exclude"     # assigned but not entitled (Default Access), or out of every scoping filter
    FORGET = "forget"       # never in the app: the state row goes
    SKIP = "skip"           # nothing to send this cycle
    FAIL = "fail"           # could not be prepared (a mapping failed)
    MEMBERS = "members"     # a group's membership changes
    STOPPED = "stopped"     # the cycle's own entry when quarantine stops it


@dataclass
class Work:
    kind: WorkKind
    object_type: str                # User | Group (App: the cycle's own "stopped" entry)
    source_id: str
    display: str | None = None
    create: dict[str, Any] | None = None
    update: dict[str, Any] | None = None
    state: State | None = None
    reason: str = ""
    steps: list[LogStep] = field(default_factory=list)
    add: list[tuple[str, str]] = field(default_factory=list)      # (user id, its id in the app)
    remove: list[tuple[str, str | None]] = field(default_factory=list)
    version: int | None = None      # the source object's version when it was read
    roles: str | None = None        # the user's app roles when it was read (fingerprint); None: as before


@dataclass(frozen=True)
class Scope:
    """Who the app provisions, as ``ProvisioningService.scope`` decided it for this cycle."""

    user_ids: frozenset[str]
    skipped: Mapping[str, str] = field(default_factory=dict)          # user id → why not (assigned, not entitled)
    roles: Mapping[str, list[dict[str, Any]]] = field(default_factory=dict)   # user id → its app roles
    all: bool = False                                                 # the app's scope is "all"
    assigned_groups: Sequence[str] = ()
    groups_skipped: Mapping[str, str] = field(default_factory=dict)   # assigned, not entitled: not created


@dataclass(frozen=True)
class UserSnapshot:
    state: Mapping[str, State]              # what the app holds, by user id
    resources: Iterable[StoredResource]     # the users ``users_to_read`` named, as the directory holds them
    present: frozenset[str] = frozenset()   # of ``users_leaving``, those the directory still has


@dataclass(frozen=True)
class GroupSnapshot:
    state: Mapping[str, State]
    candidates: frozenset[str]              # the groups the app would provision that the directory has
    not_entitled: Iterable[StoredResource]  # the assigned groups skipped (``Scope.groups_skipped``)
    resources: Iterable[StoredResource]     # the candidates ``groups_to_read`` named


@dataclass(frozen=True)
class MemberSnapshot:
    users: Mapping[str, State]
    groups: Mapping[str, State]
    wanted: Mapping[str, set[str]]          # provisioned group id → its direct user members in the directory
    held: Mapping[str, set[str]]            # group id → the members the app holds (provisioned_members)


@dataclass(frozen=True)
class MemberBatch:
    """One member PATCH of a group; ``operations`` is empty for removals the app needs no request for."""

    operations: list[dict[str, Any]]
    added: list[str]
    removed: list[str]


def step(name: StepName, result: StepResult, detail: str) -> LogStep:
    return LogStep(name, result, detail)


def display_of(state: State) -> str | None:
    """The name last sent (the app's object has no directory resource to take it from any more)."""
    try:
        sent = json.loads(state.sent or "{}")
    except ValueError:
        return None
    value = sent.get("userName") or sent.get("displayName")
    return str(value) if value is not None else None


def _reader(doc: dict[str, Any]) -> Callable[[str], Any]:
    return lambda path: read_path(doc, path)


def map_both(mappings: Sequence[AttributeMapping], doc: dict[str, Any],
             ) -> tuple[dict[str, Any], dict[str, Any]]:  # dict: target path → value (map_object)
    """The values to create the object with, and those to keep up to date (``ApplyWhen``)."""
    read = _reader(doc)
    return map_object(mappings, read, creating=True), map_object(mappings, read, creating=False)


@dataclass
class Planner:
    """The rules of one cycle of one app; every method is pure."""

    config: AppConfig
    scope: Scope
    started: datetime
    full: bool                      # initial, or the mappings changed: every object in scope is looked at
    only_user: str | None = None    # on demand: this user only

    def __post_init__(self) -> None:
        self.user_maps = self.config.users()
        self.group_maps = self.config.groups()
        self.filters = self.config.filters()
        self.group_filters = self.config.group_filters()
        # Mappings that read the app roles make a role change (assignment, group membership, the role's value)
        # a change of the user, though the user itself is unchanged.
        self.uses_roles = uses_app_roles(self.user_maps)
        self.single_role = any("singleapproleassignment" in m.source.lower() for m in self.user_maps)

    # -- users -----------------------------------------------------------------------------------------

    def users_to_read(self, state: Mapping[str, State], changed: Mapping[str, int] | None) -> set[str]:
        """The users in scope to read and compare. ``changed``: the users modified since the watermark (less a
        margin) with their version; ``None`` in a full cycle."""
        if self.only_user:
            return {self.only_user} if self.only_user in self.scope.user_ids else set()
        if changed is None:
            return set(self.scope.user_ids)
        # Changed: modified since the watermark and not at the version last seen. "skipped": was not entitled
        # (Default Access); being in scope now, it is (an assignment change does not touch lastModified).
        # Roles changed: the mappings read them, and they are not what they were when last sent.
        return {uid for uid in self.scope.user_ids
                if (uid in changed and (uid not in state or state[uid].source_version != changed[uid]))
                or uid not in state or state[uid].status in (ObjectStatus.DISABLED, ObjectStatus.SKIPPED)
                or state[uid].error
                or (self.uses_roles and state[uid].roles != fingerprint(self.scope.roles.get(uid, [])))}

    def users_leaving(self, state: Mapping[str, State]) -> list[str]:
        """Users the app holds that are no longer in scope (unassigned, or deleted from the directory)."""
        if self.only_user:
            return [self.only_user] if self.only_user not in self.scope.user_ids and self.only_user in state else []
        return [uid for uid in state if uid not in self.scope.user_ids]

    def plan_users(self, snapshot: UserSnapshot) -> list[Work]:
        state = snapshot.state
        work = self._users_not_entitled(state)
        filtered_out: set[str] = set()
        for stored in snapshot.resources:
            doc = {**stored.resource, APP_ROLE_ASSIGNMENTS: self.scope.roles.get(stored.id, [])}
            old = state.get(stored.id)
            if in_scope(self.filters, _reader(doc)):
                work.append(self._user_in_scope(stored, doc, old))
                continue
            filtered_out.add(stored.id)
            planned = self._user_filtered_out(stored, doc, old)
            if planned is not None:
                work.append(planned)
        work += self._users_left(state, snapshot.present)
        work += self._users_due(state, {w.source_id for w in work}, filtered_out)
        # Deleting at once (no waiting period) replaces disabling, when deleting is on.
        if self.config.delete_after_days == 0 and self.config.actions.delete:
            for w in work:
                if w.kind == WorkKind.DISABLE:
                    w.kind = WorkKind.DELETE
        return work

    def _users_not_entitled(self, state: Mapping[str, State]) -> list[Work]:
        """Assigned but not entitled (Default Access, no such user): logged once, remembered as skipped. One the
        app holds is handled as leaving scope (``_users_left``)."""
        work = []
        for uid, why in sorted(self.scope.skipped.items()):
            if self.only_user and uid != self.only_user:
                continue
            old = state.get(uid)
            if old is None or (old.target_id is None
                               and (self.full or old.status != ObjectStatus.SKIPPED or self.only_user)):
                work.append(Work(WorkKind.SKIP, "User", uid, state=old, reason=why,
                                 steps=[step(*READ), step(StepName.SCOPE, StepResult.SKIPPED, why)]))
        return work

    def _user_filtered_out(self, stored: StoredResource, doc: dict[str, Any], old: State | None) -> Work | None:
        steps = [step(*READ), step(StepName.SCOPE, StepResult.SKIPPED, "out of scope: no scoping filter holds")]
        display = doc.get("userName")
        if old and old.target_id and old.status == ObjectStatus.ACTIVE:
            return Work(WorkKind.DISABLE, "User", stored.id, display, state=old, steps=steps,
                        reason="left scope: no scoping filter holds any more", version=stored.version)
        if old and old.target_id:
            return None   # disabled already; deleted when its time comes (_users_due)
        if not old or old.status != ObjectStatus.EXCLUDED or old.error:
            return Work(WorkKind.EXCLUDE, "User", stored.id, display, state=old, steps=steps,
                        reason="out of scope: no scoping filter holds", version=stored.version)
        return None

    def _user_in_scope(self, stored: StoredResource, doc: dict[str, Any], old: State | None) -> Work:
        steps = [step(*READ), step(StepName.SCOPE, StepResult.SUCCESS, "in scope")]
        display = doc.get("userName")
        grants = doc[APP_ROLE_ASSIGNMENTS]
        if self.single_role and len(grants) > 1:
            chosen = pick_role(grants)
            assert chosen is not None
            why = ("the role assigned to the user directly" if chosen.get("direct") else
                   "the lowest value of the roles it holds through groups")
            steps.append(step(StepName.ROLES, StepResult.SUCCESS, f"{len(grants)} roles; SingleAppRoleAssignment sends "
                              f"{chosen.get('value') or chosen.get('displayName')!r}, {why}"))
        try:
            create, upd = map_both(self.user_maps, doc)
        except Invalid as exc:
            return Work(WorkKind.FAIL, "User", stored.id, display, state=old, reason=f"mapping failed: {exc}",
                        steps=steps)
        return Work(WorkKind.UPSERT, "User", stored.id, display, create, upd, old, steps=steps, version=stored.version,
                    roles=fingerprint(grants))

    def _users_left(self, state: Mapping[str, State], present: frozenset[str]) -> list[Work]:
        work = []
        for uid in self.users_leaving(state):
            old = state[uid]
            if uid in self.scope.skipped:
                why = self.scope.skipped[uid]
                if old.target_id and old.status == ObjectStatus.ACTIVE:
                    work.append(Work(WorkKind.DISABLE, "User", uid, display_of(old), state=old,
                                     reason=f"left scope: {why}",
                                     steps=[step(StepName.SCOPE, StepResult.SKIPPED, why)]))
                continue   # not held by the app: _users_not_entitled logged it
            why = "no longer assigned to the app" if uid in present else "deleted from the directory"
            if old.status in (ObjectStatus.EXCLUDED, ObjectStatus.SKIPPED) or not old.target_id:
                work.append(Work(WorkKind.FORGET, "User", uid, state=old, reason=why))
            elif old.status == ObjectStatus.ACTIVE:
                work.append(Work(WorkKind.DISABLE, "User", uid, display_of(old), state=old,
                                 reason=f"left scope: {why}", steps=[step(StepName.SCOPE, StepResult.SKIPPED, why)]))
        return work

    def _users_due(self, state: Mapping[str, State], planned: set[str], filtered_out: set[str]) -> list[Work]:
        """Disabled long enough, and still out of scope: delete."""
        after = self.config.delete_after_days
        if after is None:
            return []
        work = []
        for uid, old in state.items():
            due = (old.status == ObjectStatus.DISABLED and old.target_id is not None and old.disabled_at is not None
                   and old.disabled_at + timedelta(days=after) <= self.started)
            if due and uid not in planned and (uid not in self.scope.user_ids or uid in filtered_out):
                work.append(Work(WorkKind.DELETE, "User", uid, display_of(old), state=old,
                                 reason=f"disabled for {after:g} days and still out of scope",
                                 steps=[step(StepName.SCOPE, StepResult.SKIPPED, "out of scope")]))
        return work

    # -- groups ----------------------------------------------------------------------------------------

    def entitled_groups(self) -> list[str]:
        """The assigned groups the app would create (not those assigned with Default Access only)."""
        return [g for g in self.scope.assigned_groups if g not in self.scope.groups_skipped]

    @staticmethod
    def groups_to_read(state: Mapping[str, State], candidates: Iterable[str],
                       changed: Mapping[str, int] | None) -> set[str]:
        """As ``users_to_read``. "skipped": was not entitled (Default Access); a candidate now, it is (an
        assignment change does not touch the group's lastModified)."""
        if changed is None:
            return set(candidates)
        return {g for g in candidates
                if (g in changed and (g not in state or state[g].source_version != changed[g]))
                or g not in state or state[g].status == ObjectStatus.SKIPPED or state[g].error}

    def plan_groups(self, snapshot: GroupSnapshot) -> tuple[list[Work], list[Work]]:
        """(groups to create/update, groups to delete)."""
        state = snapshot.state
        upserts: list[Work] = []
        deletes: list[Work] = []
        not_entitled: set[str] = set()
        for stored in snapshot.not_entitled:
            not_entitled.add(stored.id)
            planned = self._group_not_entitled(stored, state.get(stored.id))
            if planned is not None:
                (deletes if planned.kind == WorkKind.DELETE else upserts).append(planned)
        for stored in snapshot.resources:
            planned = self._group(stored, state.get(stored.id))
            if planned is not None:
                (deletes if planned.kind == WorkKind.DELETE else upserts).append(planned)
        gone = {gid: old for gid, old in state.items() if gid not in snapshot.candidates and gid not in not_entitled}
        deletes += [Work(WorkKind.DELETE, "Group", gid, display_of(old), state=old, reason="left scope",
                         steps=[step(StepName.SCOPE, StepResult.SKIPPED, "no longer in scope")])
                    for gid, old in gone.items() if old.target_id]
        deletes += [Work(WorkKind.FORGET, "Group", gid, state=old, reason="left scope")
                    for gid, old in gone.items() if not old.target_id]
        return upserts, deletes

    def _group_not_entitled(self, stored: StoredResource, old: State | None) -> Work | None:
        """Assigned with Default Access only (skip_default_access): not created, logged once and remembered as
        skipped, as such users are; one the app holds left scope and is deleted (groups have no disabled state
        to wait in)."""
        why = self.scope.groups_skipped[stored.id]
        display = stored.resource.get("displayName")
        steps = [step(*READ), step(StepName.SCOPE, StepResult.SKIPPED, why)]
        if old and old.target_id:
            return Work(WorkKind.DELETE, "Group", stored.id, display, state=old, steps=steps,
                        reason=f"left scope: {why}")
        if old is None or self.full or old.status != ObjectStatus.SKIPPED or old.error:
            return Work(WorkKind.SKIP, "Group", stored.id, display, state=old, reason=why, steps=steps)
        return None

    def _group(self, stored: StoredResource, old: State | None) -> Work | None:
        doc, display = stored.resource, stored.resource.get("displayName")
        if not in_scope(self.group_filters, _reader(doc)):
            # As a group leaving scope by unassignment: the app's group is deleted; one never provisioned is
            # logged once and remembered.
            steps = [step(*READ),
                     step(StepName.SCOPE, StepResult.SKIPPED, "out of scope: no group scoping filter holds")]
            if old and old.target_id:
                return Work(WorkKind.DELETE, "Group", stored.id, display, state=old, steps=steps,
                            reason="left scope: no group scoping filter holds any more", version=stored.version)
            if not old or old.status != ObjectStatus.EXCLUDED or old.error:
                return Work(WorkKind.EXCLUDE, "Group", stored.id, display, state=old, steps=steps,
                            reason="out of scope: no group scoping filter holds", version=stored.version)
            return None
        steps = [step(*READ), step(StepName.SCOPE, StepResult.SUCCESS, "in scope")]
        try:
            create, upd = map_both(self.group_maps, doc)
        except Invalid as exc:
            return Work(WorkKind.FAIL, "Group", stored.id, display, state=old, reason=f"mapping failed: {exc}",
                        steps=steps)
        return Work(WorkKind.UPSERT, "Group", stored.id, display, create, upd, old, steps=steps, version=stored.version)

    # -- memberships -----------------------------------------------------------------------------------

    @staticmethod
    def provisioned_groups(groups: Mapping[str, State]) -> list[str]:
        return [gid for gid, s in groups.items() if s.target_id and s.status == ObjectStatus.ACTIVE]

    def plan_members(self, snapshot: MemberSnapshot, deleting: set[str]) -> tuple[list[Work], list[str]]:
        """(member changes, groups whose recorded memberships are to be forgotten). The app's groups should have
        the direct members the app holds active, not those about to be deleted (``deleting``). Memberships of
        groups the app no longer holds are forgotten with them."""
        held_ids = {uid: s.target_id for uid, s in snapshot.users.items() if s.target_id}
        users = {uid: s for uid, s in snapshot.users.items()
                 if s.target_id and s.status == ObjectStatus.ACTIVE and uid not in deleting}
        provisioned = self.provisioned_groups(snapshot.groups)
        work = []
        for gid in provisioned:
            want = {u for u in snapshot.wanted.get(gid, set()) if u in users}
            have = snapshot.held.get(gid, set())
            add = sorted(want - have)
            remove = sorted(have - want)
            if add or remove:
                work.append(Work(WorkKind.MEMBERS, "Group", gid, state=snapshot.groups[gid],
                                 add=[(u, users[u].target_id or "") for u in add],
                                 remove=[(u, held_ids.get(u)) for u in remove]))
        kept = set(provisioned)
        return work, [gid for gid in snapshot.held if gid not in kept]

    # -- the whole plan --------------------------------------------------------------------------------

    def removals(self, work: Iterable[Work]) -> int:
        """The disables and deletes the accidental-deletion threshold counts: those whose action is on."""
        actions = self.config.actions
        return sum(1 for w in work if (w.kind == WorkKind.DISABLE and actions.disable)
                   or (w.kind == WorkKind.DELETE and actions.delete))

    def over_threshold(self, removals: int) -> bool:
        threshold = self.config.deletion_threshold
        return threshold is not None and removals > threshold


def member_batches(work: Work, size: int) -> list[MemberBatch]:
    """The PATCHes that settle a group's members, ``size`` members each: additions first, then removals. A member
    the app no longer holds (no id there) went from the group with it: recorded as removed, nothing to send."""
    batches = [MemberBatch([{"op": "add", "path": "members", "value": [{"value": tid} for _, tid in chunk]}],
                           [uid for uid, _ in chunk], [])
               for chunk in chunks(work.add, size)]
    gone = [uid for uid, tid in work.remove if not tid]
    if gone:
        batches.append(MemberBatch([], [], gone))
    known = [(uid, tid) for uid, tid in work.remove if tid]
    batches += [MemberBatch([{"op": "remove", "path": f'members[value eq "{tid}"]'} for _, tid in chunk], [],
                            [uid for uid, _ in chunk])
                for chunk in chunks(known, size)]
    return batches
