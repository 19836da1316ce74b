"""One provisioning cycle: plan from the directory and the app's state, then send what changed.

**Plan** (database only, no requests): the users in scope (assignments, Default Access rule, scoping filters)
are compared with what the app holds (``provisioned_objects``). An *initial* cycle (no watermark) looks at
every user in scope; an *incremental* one only at users modified since the watermark, users entering or
returning to scope, and objects whose last attempt failed — plus everyone when the mappings changed. Users the
app holds that left scope are disabled (``active=false``), and deleted once they have been disabled for the
configured period; the deletion threshold is checked on this plan, before anything is sent.

**Send**: a thread pool of the app's concurrency, paced by its rate limit. Each object is matched (the app's
id from an earlier cycle, else a filter query on the matching attributes in precedence order), then created,
or patched with the changed attributes only. Groups follow the users, then memberships (member PATCHes in
batches), then groups that left scope are deleted. Every object gets one log entry with its steps.

**Quarantine**: once enough objects were attempted, a failure share above the threshold stops the cycle.

Only the calling thread touches the database; worker threads only talk HTTP.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update

from tenantry.core.batches import chunks
from tenantry.core.clock import as_utc, utcnow
from tenantry.core.db import Database
from tenantry.core.errors import Invalid
from tenantry.protocols.scim.patch import patch_ops
from tenantry.provisioning import source
from tenantry.provisioning.client import ScimTarget, TargetError
from tenantry.provisioning.config import AppConfig
from tenantry.provisioning.mappings import (
    APP_ROLE_ASSIGNMENTS,
    ApplyWhen,
    AttributeMapping,
    map_object,
    matching_order,
    pick_role,
    uses_app_roles,
)
from tenantry.provisioning.models import (
    ProvisionedMember,
    ProvisionedObject,
    ProvisioningApp,
    ProvisioningCycle,
    ProvisioningLog,
)
from tenantry.provisioning.paths import build_resource, read_path
from tenantry.provisioning.roles import fingerprint
from tenantry.provisioning.scoping import in_scope

log = logging.getLogger(__name__)

# Directory clocks of several machines are not perfectly in step: re-read a minute before the watermark.
# Re-reading an unchanged user costs a comparison, not a request.
WATERMARK_MARGIN = timedelta(seconds=60)
FLUSH_EVERY = 500
FLUSH_SECONDS = 1.0
CYCLE_LEASE = timedelta(minutes=10)
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
RESOURCE = {"User": "Users", "Group": "Groups"}


@dataclass
class State:
    target_id: str | None
    status: str
    sent: str
    error: str | None
    disabled_at: datetime | None
    source_version: int | None = None     # the directory version these values were computed from
    roles: str | None = None              # the user's app roles these values were computed from (fingerprint)


@dataclass
class Work:
    kind: str                       # upsert | disable | delete | exclude | forget | skip | members
    object_type: str                # User | Group
    source_id: str
    display: str | None = None
    create: dict[str, Any] | None = None
    update: dict[str, Any] | None = None
    state: State | None = None
    reason: str = ""
    steps: list[dict[str, str]] = field(default_factory=list)
    add: list[tuple[str, str]] = field(default_factory=list)      # (user id, its id in the app)
    remove: list[tuple[str, str | None]] = field(default_factory=list)
    version: int | None = None      # the source object's version when it was read
    roles: str | None = None        # the user's app roles when it was read (fingerprint); None: as before


@dataclass
class Outcome:
    work: Work
    action: str
    result: str                      # success | failure | skipped
    reason: str = ""
    target_id: str | None = None
    state: dict[str, Any] | None = None   # the row to write
    forget: bool = False                  # remove the row
    attempted: bool = False               # a request was sent: counts for quarantine
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    not_attempted: bool = False


@dataclass
class CycleReport:
    id: str
    kind: str
    status: str
    total: int = 0
    done: int = 0
    stats: dict[str, int] = field(default_factory=dict)
    reason: str | None = None
    logs: list[dict[str, Any]] = field(default_factory=list)   # on-demand: the object's log entries

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "status": self.status, "total": self.total, "done": self.done,
                "stats": self.stats, "reason": self.reason}


Progress = Callable[[int, int], None]


def _step(step: str, result: str, detail: str) -> dict[str, str]:
    return {"step": step, "result": result, "detail": detail}


@dataclass
class Cycle:
    """One cycle of one app. Built by ``ProvisioningService.run_cycle``; ``run()`` does the work."""

    db: Database
    app_id: str
    tenant: str
    config: AppConfig
    target: ScimTarget
    cycle_id: str
    kind: str                                   # initial | incremental | on_demand
    started: datetime
    watermark: datetime | None
    config_changed: bool
    scope_ids: set[str]
    scope_skipped: dict[str, str]
    allow_deletions: bool = False
    only_user: str | None = None
    progress: Progress | None = None
    scope_all: bool = False
    assigned_groups: Sequence[str] = ()
    groups_skipped: Mapping[str, str] = field(default_factory=dict)   # assigned, not entitled: not created
    user_roles: Mapping[str, list[dict[str, Any]]] = field(default_factory=dict)   # user id → its app roles

    def __post_init__(self) -> None:
        self.user_maps = self.config.users()
        # Mappings that read the app roles make a role change (assignment, group membership, the role's value)
        # a change of the user, though the user itself is unchanged.
        self.uses_roles = uses_app_roles(self.user_maps)
        self.single_role = any("singleapproleassignment" in m.source.lower() for m in self.user_maps)
        self.group_maps = self.config.groups()
        self.filters = self.config.filters()
        self.group_filters = self.config.group_filters()
        self.stats: Counter[str] = Counter()
        self.total = 0
        self.done = 0
        self._recent: deque[bool] = deque(maxlen=self.config.quarantine_min_attempts)   # True: failed
        self.stop = threading.Event()
        self.stop_reason: str | None = None
        self._pending: list[Outcome] = []
        self.not_attempted = 0
        self._last_flush = time.monotonic()
        self.logs: list[dict[str, Any]] = []

    # -- planning --------------------------------------------------------------------------------------

    def _state(self, object_type: str, ids: Iterable[str] | None = None) -> dict[str, State]:
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
        return {r[0]: State(r[1], r[2], r[3], r[4], as_utc(r[5]) if r[5] else None, r[6], r[7]) for r in rows}

    def _roles_of(self, user_id: str) -> str:
        return fingerprint(self.user_roles.get(user_id, []))

    def _map(self, mappings: Sequence[AttributeMapping], doc: dict[str, Any]) -> tuple[dict[str, Any],
                                                                                      dict[str, Any]]:
        def read(path: str) -> Any:
            return read_path(doc, path)
        return map_object(mappings, read, creating=True), map_object(mappings, read, creating=False)

    def plan_users(self) -> list[Work]:
        work: list[Work] = []
        full = self.watermark is None or self.config_changed
        if self.only_user:
            state = self._state("User", [self.only_user])
            look = {self.only_user} if self.only_user in self.scope_ids else set()
        else:
            state = self._state("User")
            if full:
                look = set(self.scope_ids)
            else:
                with self.db.session() as session:
                    changed = source.changed_versions(session, self.tenant, "User",
                                                      as_utc(self.watermark) - WATERMARK_MARGIN)  # type: ignore[arg-type]
                # Changed: modified since the watermark (less the margin) and not at the version last seen.
                # "skipped": was not entitled (Default Access); being in scope now, it is (an assignment
                # change does not touch the user's lastModified).
                # Roles changed: the mappings read them, and they are not what they were when last sent.
                look = {uid for uid in self.scope_ids
                        if (uid in changed and (uid not in state or state[uid].source_version != changed[uid]))
                        or uid not in state or state[uid].status in ("disabled", "skipped") or state[uid].error
                        or (self.uses_roles and state[uid].roles != self._roles_of(uid))}
        # Assigned but not entitled (Default Access, no such user): logged once, remembered as excluded. One the
        # app holds is handled as leaving scope (below).
        for uid, why in sorted(self.scope_skipped.items()):
            if self.only_user and uid != self.only_user:
                continue
            old = state.get(uid)
            if old is None or (old.target_id is None and (full or old.status != "skipped" or self.only_user)):
                work.append(Work("skip", "User", uid, state=old, reason=why, steps=[
                    _step("import", "success", "read from the directory"), _step("scope", "skipped", why)]))
        now = self.started
        filtered_out: set[str] = set()
        with self.db.session() as session:
            for doc, version in source.docs(session, self.tenant, "User", sorted(look)):
                uid = doc["id"]
                display = doc.get("userName")
                steps = [_step("import", "success", "read from the directory")]
                old = state.get(uid)
                doc[APP_ROLE_ASSIGNMENTS] = self.user_roles.get(uid, [])
                if not in_scope(self.filters, lambda p, d=doc: read_path(d, p)):  # type: ignore[misc]
                    steps.append(_step("scope", "skipped", "out of scope: no scoping filter holds"))
                    filtered_out.add(uid)
                    if old and old.target_id and old.status == "active":
                        work.append(Work("disable", "User", uid, display, state=old, steps=steps,
                                         reason="left scope: no scoping filter holds any more", version=version))
                    elif old and old.target_id:
                        pass   # disabled already; deleted when its time comes (below)
                    elif not old or old.status != "excluded" or old.error:
                        work.append(Work("exclude", "User", uid, display, state=old, steps=steps,
                                         reason="out of scope: no scoping filter holds", version=version))
                    continue
                steps.append(_step("scope", "success", "in scope"))
                grants = doc[APP_ROLE_ASSIGNMENTS]
                if self.single_role and len(grants) > 1:
                    chosen = pick_role(grants)
                    assert chosen is not None
                    why = ("the role assigned to the user directly" if chosen.get("direct") else
                           "the lowest value of the roles it holds through groups")
                    steps.append(_step("roles", "success", f"{len(grants)} roles; SingleAppRoleAssignment sends "
                                       f"{chosen.get('value') or chosen.get('displayName')!r}, {why}"))
                try:
                    create, upd = self._map(self.user_maps, doc)
                except Invalid as exc:
                    work.append(Work("fail", "User", uid, display, state=old, reason=f"mapping failed: {exc}",
                                     steps=steps))
                    continue
                work.append(Work("upsert", "User", uid, display, create, upd, old, steps=steps, version=version,
                                 roles=fingerprint(grants)))
        # Users the app holds that are no longer in scope (unassigned, or deleted from the directory).
        if self.only_user:
            leaving = [self.only_user] if self.only_user not in self.scope_ids and self.only_user in state else []
        else:
            leaving = [uid for uid in state if uid not in self.scope_ids]
        if leaving:
            with self.db.session() as session:
                present = source.existing_ids(session, self.tenant, "User", leaving)
        for uid in leaving:
            old = state[uid]
            if uid in self.scope_skipped:
                if old.target_id and old.status == "active":
                    work.append(Work("disable", "User", uid, _display(old), state=old, steps=[
                        _step("scope", "skipped", self.scope_skipped[uid])],
                        reason=f"left scope: {self.scope_skipped[uid]}"))
                continue   # not held by the app: the skip above logged it
            why = "no longer assigned to the app" if uid in present else "deleted from the directory"
            if old.status in ("excluded", "skipped") or not old.target_id:
                work.append(Work("forget", "User", uid, state=old, reason=why))
            elif old.status == "active":
                work.append(Work("disable", "User", uid, _display(old), state=old, reason=f"left scope: {why}",
                                 steps=[_step("scope", "skipped", why)]))
        # Disabled long enough, and still out of scope: delete.
        after = self.config.delete_after_days
        if after is not None:
            planned = {w.source_id for w in work}
            for uid, old in state.items():
                due = (old.status == "disabled" and old.target_id is not None and old.disabled_at is not None
                       and old.disabled_at + timedelta(days=after) <= now)
                if due and uid not in planned and (uid not in self.scope_ids or uid in filtered_out):
                    work.append(Work("delete", "User", uid, _display(old), state=old,
                                     reason=f"disabled for {after:g} days and still out of scope",
                                     steps=[_step("scope", "skipped", "out of scope")]))
        # Deleting at once (no waiting period) replaces disabling, when deleting is on.
        if after == 0 and self.config.actions.delete:
            for w in work:
                if w.kind == "disable":
                    w.kind = "delete"
        return work

    def plan_groups(self) -> tuple[list[Work], list[Work]]:
        """(groups to create/update, groups to delete)."""
        with self.db.session() as session:
            candidates = set(source.group_ids(session, self.tenant) if self.scope_all else
                             source.existing_ids(session, self.tenant, "Group",
                                                 [g for g in self.assigned_groups if g not in self.groups_skipped]))
            state = self._state("Group")
            full = self.watermark is None or self.config_changed
            if full:
                look = candidates
            else:
                changed = source.changed_versions(session, self.tenant, "Group",
                                                  as_utc(self.watermark) - WATERMARK_MARGIN)  # type: ignore[arg-type]
                # "skipped": was not entitled (Default Access); a candidate now, it is (an assignment change
                # does not touch the group's lastModified).
                look = {g for g in candidates if (g in changed and (g not in state or state[g].source_version
                                                                    != changed[g]))
                        or g not in state or state[g].status == "skipped" or state[g].error}
            upserts: list[Work] = []
            filtered_out: list[Work] = []
            # Assigned with Default Access only (skip_default_access): not created, logged once and remembered
            # as skipped, as such users are; one the app holds left scope and is deleted (groups have no
            # disabled state to wait in).
            not_entitled: set[str] = set()
            for doc, _version in source.docs(session, self.tenant, "Group", sorted(self.groups_skipped)):
                gid, display, old = doc["id"], doc.get("displayName"), state.get(doc["id"])
                not_entitled.add(gid)
                why = self.groups_skipped[gid]
                steps = [_step("import", "success", "read from the directory"), _step("scope", "skipped", why)]
                if old and old.target_id:
                    filtered_out.append(Work("delete", "Group", gid, display, state=old, steps=steps,
                                             reason=f"left scope: {why}"))
                elif old is None or full or old.status != "skipped" or old.error:
                    upserts.append(Work("skip", "Group", gid, display, state=old, reason=why, steps=steps))
            for doc, version in source.docs(session, self.tenant, "Group", sorted(look)):
                gid, display, old = doc["id"], doc.get("displayName"), state.get(doc["id"])
                if not in_scope(self.group_filters, lambda p, d=doc: read_path(d, p)):  # type: ignore[misc]
                    # As a group leaving scope by unassignment: the app's group is deleted (groups have no
                    # disabled state to wait in); one never provisioned is logged once and remembered.
                    steps = [_step("import", "success", "read from the directory"),
                             _step("scope", "skipped", "out of scope: no group scoping filter holds")]
                    if old and old.target_id:
                        filtered_out.append(Work("delete", "Group", gid, display, state=old, steps=steps,
                                                 reason="left scope: no group scoping filter holds any more",
                                                 version=version))
                    elif not old or old.status != "excluded" or old.error:
                        upserts.append(Work("exclude", "Group", gid, display, state=old, steps=steps,
                                            reason="out of scope: no group scoping filter holds", version=version))
                    continue
                steps = [_step("import", "success", "read from the directory"), _step("scope", "success",
                                                                                       "in scope")]
                try:
                    create, upd = self._map(self.group_maps, doc)
                except Invalid as exc:
                    upserts.append(Work("fail", "Group", doc["id"], doc.get("displayName"), state=state.get(
                        doc["id"]), reason=f"mapping failed: {exc}", steps=steps))
                    continue
                upserts.append(Work("upsert", "Group", doc["id"], doc.get("displayName"), create, upd,
                                    state.get(doc["id"]), steps=steps, version=version))
        gone = {gid: old for gid, old in state.items() if gid not in candidates and gid not in not_entitled}
        deletes = filtered_out + [Work("delete", "Group", gid, _display(old), state=old, reason="left scope",
                                       steps=[_step("scope", "skipped", "no longer in scope")])
                                  for gid, old in gone.items() if old.target_id]
        deletes += [Work("forget", "Group", gid, state=old, reason="left scope")
                    for gid, old in gone.items() if not old.target_id]
        return upserts, deletes

    def plan_members(self, deleting: set[str]) -> list[Work]:
        """Members the app's groups should have: direct members the app holds active (not those leaving)."""
        user_state = self._state("User")
        held_ids = {uid: s.target_id for uid, s in user_state.items() if s.target_id}
        users = {uid: s for uid, s in user_state.items()
                 if s.target_id and s.status == "active" and uid not in deleting}
        groups = self._state("Group")
        with self.db.session() as session:
            provisioned = [gid for gid, s in groups.items() if s.target_id and s.status == "active"]
            wanted = source.direct_user_members(session, self.tenant, provisioned)
            held: dict[str, set[str]] = {}
            for gid, uid in session.execute(select(ProvisionedMember.group_id, ProvisionedMember.user_id).where(
                    ProvisionedMember.app_id == self.app_id)):
                held.setdefault(gid, set()).add(uid)
        work = []
        for gid in provisioned:
            want = {u for u in wanted.get(gid, set()) if u in users}
            have = held.get(gid, set())
            add = sorted(want - have)
            remove = sorted(have - want)
            if add or remove:
                work.append(Work("members", "Group", gid, state=groups[gid],
                                 add=[(u, users[u].target_id or "") for u in add],
                                 remove=[(u, held_ids.get(u)) for u in remove]))
        # Memberships of groups the app no longer holds are forgotten with them.
        gone = [gid for gid in held if gid not in provisioned]
        if gone:
            with self.db.writing(), self.db.session() as session:
                session.execute(delete(ProvisionedMember).where(ProvisionedMember.app_id == self.app_id,
                                                                ProvisionedMember.group_id.in_(gone)))
        return work

    # -- sending ---------------------------------------------------------------------------------------

    def _match(self, w: Work, mappings: Sequence[AttributeMapping]) -> tuple[dict[str, Any] | None, str]:
        resource = RESOURCE[w.object_type]
        tried = []
        for m in matching_order(mappings):
            value = (w.create or {}).get(m.target)
            if value in (None, ""):
                continue
            found = self.target.find(resource, m.target, value)
            tried.append(f"{m.target} eq {value!r}")
            if len(found) > 1:
                raise TargetError(f"{len(found)} objects in the app match {m.target} eq {value!r}: "
                                  "cannot tell which one is ours")
            if found:
                return found[0], f"matched on {m.target} eq {value!r} (id {found[0].get('id')})"
        if not tried:
            raise TargetError("no matching attribute has a value: the object cannot be matched")
        return None, "no match on " + ", ".join(tried)

    def _upsert(self, w: Work) -> Outcome:
        mappings = self.user_maps if w.object_type == "User" else self.group_maps
        resource = RESOURCE[w.object_type]
        actions = self.config.actions
        paths = [m.target for m in mappings if m.apply is ApplyWhen.ALWAYS]
        update_values = w.update or {}
        old = w.state
        if old and old.status == "disabled" and "active" not in paths:
            paths, update_values = [*paths, "active"], {**update_values, "active": True}   # back in scope
        if old and old.target_id and old.status in ("active", "disabled"):
            w.steps.append(_step("match", "success", f"provisioned earlier as id {old.target_id}"))
            before = json.loads(old.sent or "{}")
            ops = patch_ops(before, update_values, paths)
            sent = {k: v for k, v in {**before, **update_values}.items()
                    if not (k in paths and update_values.get(k) is None)}
            row = self._row(w, old.target_id, "active", sent)
            if not ops:
                return Outcome(w, "none", "skipped", "no mapped attribute changed", old.target_id, row)
            if not actions.update:
                return Outcome(w, "update", "skipped", "update is switched off", old.target_id,
                               self._row(w, old.target_id, old.status, before))
            try:
                self.target.patch(resource, old.target_id, ops)
            except TargetError as exc:
                if exc.status != 404:
                    raise
                w.steps.append(_step("match", "warning", f"id {old.target_id} is gone from the app: matching again"))
            else:
                return Outcome(w, "update", "success", "changed: " + ", ".join(op["path"] for op in ops),
                               old.target_id, row, attempted=True)
        found, detail = self._match(w, mappings)
        w.steps.append(_step("match", "success", detail))
        if found is not None:
            target_id = str(found["id"])
            before = {p: read_path(found, p) for p in paths}
            ops = patch_ops(before, update_values, paths)
            row = self._row(w, target_id, "active", {
                k: v for k, v in {**before, **(w.create or {}), **update_values}.items()
                if not (k in paths and update_values.get(k) is None)})
            if not ops:
                return Outcome(w, "none", "success", "matched; already up to date", target_id, row, attempted=True)
            if not actions.update:
                return Outcome(w, "update", "skipped", "matched, but update is switched off", target_id,
                               self._row(w, target_id, "active", before), attempted=True)
            self.target.patch(resource, target_id, ops)
            return Outcome(w, "update", "success", "matched; changed: " + ", ".join(op["path"] for op in ops),
                           target_id, row, attempted=True)
        if not actions.create:
            return Outcome(w, "create", "skipped", "create is switched off", attempted=True)
        schema = USER_SCHEMA if w.object_type == "User" else GROUP_SCHEMA
        created = self.target.create(resource, build_resource(w.create or {}, schema))
        target_id = str(created["id"])
        return Outcome(w, "create", "success", "created", target_id,
                       self._row(w, target_id, "active", dict(w.create or {})), attempted=True)

    def _row(self, w: Work, target_id: str | None, status: str, sent: dict[str, Any],
             disabled_at: datetime | None = None) -> dict[str, Any]:
        return {"app_id": self.app_id, "object_type": w.object_type, "source_id": w.source_id,
                "target_id": target_id, "status": status, "sent": json.dumps(sent, sort_keys=True, default=str),
                "error": None, "disabled_at": disabled_at, "updated_at": self.started, "source_version": w.version,
                "roles": w.roles if w.roles is not None else (w.state.roles if w.state else None)}

    def _disable(self, w: Work) -> Outcome:
        assert w.state is not None and w.state.target_id
        before = json.loads(w.state.sent or "{}")
        if not self.config.actions.disable:
            return Outcome(w, "disable", "skipped", f"{w.reason}; disable is switched off", w.state.target_id)
        try:
            self.target.patch(RESOURCE[w.object_type], w.state.target_id,
                              [{"op": "replace", "path": "active", "value": False}])
        except TargetError as exc:
            if exc.status != 404:
                raise
            return Outcome(w, "disable", "success", f"{w.reason}; already gone from the app", w.state.target_id,
                           forget=True, attempted=True)
        return Outcome(w, "disable", "success", w.reason, w.state.target_id,
                       self._row(w, w.state.target_id, "disabled", {**before, "active": False},
                                 disabled_at=self.started), attempted=True)

    def _delete(self, w: Work) -> Outcome:
        assert w.state is not None and w.state.target_id
        if not self.config.actions.delete:
            return Outcome(w, "delete", "skipped", f"{w.reason}; delete is switched off", w.state.target_id)
        existed = self.target.delete(RESOURCE[w.object_type], w.state.target_id)
        return Outcome(w, "delete", "success", w.reason + ("" if existed else "; already gone from the app"),
                       w.state.target_id, forget=True, attempted=True)

    def _members(self, w: Work) -> Outcome:
        assert w.state is not None and w.state.target_id
        batch = self.config.member_batch
        added: list[str] = []
        removed: list[str] = []
        outcome = Outcome(w, "members", "success", "", w.state.target_id, attempted=True,
                          added=added, removed=removed)
        try:
            for i in range(0, len(w.add), batch):
                chunk = w.add[i:i + batch]
                self.target.patch("Groups", w.state.target_id, [
                    {"op": "add", "path": "members", "value": [{"value": tid} for _, tid in chunk]}])
                added.extend(uid for uid, _ in chunk)
            known = [(uid, tid) for uid, tid in w.remove if tid]
            removed.extend(uid for uid, tid in w.remove if not tid)   # the user is gone from the app with it
            for i in range(0, len(known), batch):
                chunk = known[i:i + batch]
                self.target.patch("Groups", w.state.target_id, [
                    {"op": "remove", "path": f'members[value eq "{tid}"]'} for _, tid in chunk])
                removed.extend(uid for uid, _ in chunk)
        except TargetError as exc:
            outcome.result = "failure"
            outcome.reason = f"{exc.message} (after adding {len(added)}, removing {len(removed)})"
            if exc.status == 404:   # deleted in the app by hand: forgotten here, so the next cycle creates it
                outcome.reason += "; the group is gone from the app and is created again next cycle"
                outcome.forget = True
                added.clear()
                removed.clear()
        else:
            outcome.reason = f"added {len(added)}, removed {len(removed)} member(s)"
        return outcome

    def _do(self, w: Work) -> Outcome:
        if self.stop.is_set():
            return Outcome(w, w.kind, "skipped", f"not attempted: {self.stop_reason}", not_attempted=True)
        try:
            if w.kind == "upsert":
                return self._upsert(w)
            if w.kind == "disable":
                return self._disable(w)
            if w.kind == "delete":
                return self._delete(w)
            if w.kind == "members":
                return self._members(w)
            if w.kind == "exclude":
                return Outcome(w, "none", "skipped", w.reason, state=self._row(w, None, "excluded", {}))
            if w.kind == "forget":
                return Outcome(w, "none", "skipped", w.reason, forget=True)
            if w.kind == "fail":    # could not even be prepared (a mapping failed): the row keeps its id
                return Outcome(w, "none", "failure", w.reason, w.state.target_id if w.state else None)
            return Outcome(w, "none", "skipped", w.reason, state=self._row(w, None, "skipped", {}))
        except TargetError as exc:
            return Outcome(w, w.kind if w.kind != "upsert" else "create/update", "failure", exc.message,
                           w.state.target_id if w.state else None, attempted=True)
        except Exception as exc:  # noqa: BLE001 - one object's surprise must not sink the cycle; it is logged
            log.exception("provisioning %s %s failed", w.object_type, w.source_id)
            return Outcome(w, w.kind if w.kind != "upsert" else "create/update", "failure",
                           f"{type(exc).__name__}: {exc}", w.state.target_id if w.state else None, attempted=True)

    def execute(self, work: Sequence[Work]) -> None:
        """Send ``work``; once the cycle is stopped, what was not sent is only counted (``not_attempted``)."""
        if not work:
            return
        sent = 0
        if self.config.concurrency == 1 or len(work) == 1 or self.stop.is_set():
            for w in work:
                if self.stop.is_set():
                    break
                self._record(self._do(w))
                sent += 1
            self.not_attempted += len(work) - sent
            self.flush()
            return
        with ThreadPoolExecutor(self.config.concurrency, thread_name_prefix="provisioning") as pool:
            queue = iter(work)
            running: set[Future[Outcome]] = set()
            limit = self.config.concurrency * 4
            while True:
                while len(running) < limit and not self.stop.is_set():
                    item = next(queue, None)
                    if item is None:
                        break
                    running.add(pool.submit(self._do, item))
                    sent += 1
                if not running:
                    break
                finished, running = wait(running, timeout=FLUSH_SECONDS * 5, return_when=FIRST_COMPLETED)
                for future in finished:
                    self._record(future.result())
                if not finished:
                    self.flush()     # nothing finished (429 waits, timeouts): progress and the lease stay fresh
        self.not_attempted += len(work) - sent
        self.flush()

    def _record(self, outcome: Outcome) -> None:
        w = outcome.work
        if outcome.not_attempted:     # in flight when the cycle stopped: counted, said once in the cycle's log
            self.not_attempted += 1
            self.done += 1
            return
        key = f"{w.object_type.lower()}s_{'failed' if outcome.result == 'failure' else _past(outcome)}"
        self.stats[key] += 1
        if outcome.attempted:
            self._recent.append(outcome.result == "failure")
        if w.kind == "members":
            self.stats["members_added"] += len(outcome.added)
            self.stats["members_removed"] += len(outcome.removed)
        self.done += 1
        self._pending.append(outcome)
        if len(self._pending) >= FLUSH_EVERY or time.monotonic() - self._last_flush > FLUSH_SECONDS:
            self.flush()
        # Quarantine looks at the last quarantine_min_attempts objects attempted, not the whole cycle: a target
        # that dies after 10,000 good objects is noticed within that many more, not after 6,700 failures.
        c = self.config
        failed = sum(self._recent)
        if (not self.stop.is_set() and len(self._recent) >= c.quarantine_min_attempts
                and failed / len(self._recent) > c.quarantine_failure_ratio):
            self.stop_reason = (f"{failed} of the last {len(self._recent)} objects attempted failed (over "
                                f"{c.quarantine_failure_ratio:.0%}); last error: {outcome.reason}")
            self.stop.set()

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        self._last_flush = time.monotonic()
        rows: list[dict[str, Any]] = []
        forget: list[tuple[str, str]] = []
        errors: list[tuple[Outcome, str]] = []
        logs: list[dict[str, Any]] = []
        member_adds: list[dict[str, Any]] = []
        member_removes: list[tuple[str, str]] = []
        # Memberships recorded for an object the app no longer holds under that id (forgotten, or re-created
        # after it vanished there) are void: the next membership pass adds them again.
        void: list[tuple[str, str]] = []
        for o in pending:
            w = o.work
            if o.state is not None:
                rows.append(o.state)
                if w.state and w.state.target_id and o.target_id != w.state.target_id:
                    void.append((w.object_type, w.source_id))
            elif o.forget:
                forget.append((w.object_type, w.source_id))
                void.append((w.object_type, w.source_id))
            elif o.result == "failure" and w.kind != "members":
                errors.append((o, o.reason))
            member_adds += [{"app_id": self.app_id, "group_id": w.source_id, "user_id": u} for u in o.added]
            member_removes += [(w.source_id, u) for u in o.removed]
            if w.kind != "forget":
                steps = list(w.steps)
                if w.kind not in ("skip", "fail"):
                    steps.append(_step("action", o.result, f"{o.action}: {o.reason}" if o.reason else o.action))
                logs.append({"app_id": self.app_id, "cycle_id": self.cycle_id, "at": self.started,
                             "object_type": w.object_type, "source_id": w.source_id, "display": w.display,
                             "target_id": o.target_id, "action": o.action, "result": o.result,
                             "reason": o.reason or w.reason or None, "steps": json.dumps(steps)})
        with self.db.writing(), self.db.session() as session:
            keys = [(r["object_type"], r["source_id"]) for r in rows] + forget
            for object_type in ("User", "Group"):
                ids = [sid for t, sid in keys if t == object_type]
                for batch in chunks(ids):
                    session.execute(delete(ProvisionedObject).where(
                        ProvisionedObject.app_id == self.app_id, ProvisionedObject.object_type == object_type,
                        ProvisionedObject.source_id.in_(batch)))
                column = ProvisionedMember.user_id if object_type == "User" else ProvisionedMember.group_id
                for batch in chunks([sid for t, sid in void if t == object_type]):
                    session.execute(delete(ProvisionedMember).where(ProvisionedMember.app_id == self.app_id,
                                                                    column.in_(batch)))
            if rows:
                session.execute(insert(ProvisionedObject), rows)
            for o, reason in errors:
                w = o.work
                if w.state is None:
                    session.execute(insert(ProvisionedObject), [{
                        "app_id": self.app_id, "object_type": w.object_type, "source_id": w.source_id,
                        "target_id": None, "status": "pending", "sent": "{}", "error": reason,
                        "disabled_at": None, "updated_at": self.started, "source_version": None,
                        "roles": None}])
                else:
                    session.execute(update(ProvisionedObject).where(
                        ProvisionedObject.app_id == self.app_id, ProvisionedObject.object_type == w.object_type,
                        ProvisionedObject.source_id == w.source_id).values(error=reason))
            for group_id, user_id in member_removes:
                session.execute(delete(ProvisionedMember).where(
                    ProvisionedMember.app_id == self.app_id, ProvisionedMember.group_id == group_id,
                    ProvisionedMember.user_id == user_id))
            if member_adds:
                session.execute(insert(ProvisionedMember), member_adds)
            if logs:
                session.execute(insert(ProvisioningLog), logs)
            session.execute(update(ProvisioningCycle).where(ProvisioningCycle.id == self.cycle_id).values(
                done=self.done, total=self.total, stats=json.dumps(self._stats())))
            # The cycle's lease on the app is renewed while it makes progress; a dead process's lapses.
            session.execute(update(ProvisioningApp).where(ProvisioningApp.id == self.app_id).values(
                running_until=utcnow() + CYCLE_LEASE))
        if self.only_user:
            self.logs.extend({**entry, "at": entry["at"].isoformat(), "steps": json.loads(entry["steps"])}
                             for entry in logs)
        if self.progress:
            self.progress(self.done, self.total)

    def _stats(self) -> dict[str, int]:
        out = dict(self.stats)
        counts = self.target.snapshot()
        out["requests"] = sum(v for k, v in counts.items() if k.isupper())
        for key, value in counts.items():
            out[f"requests_{key.lower()}" if key.isupper() else key] = value
        if self.not_attempted:
            out["not_attempted"] = self.not_attempted
        return out

    # -- the whole cycle -------------------------------------------------------------------------------

    def run(self) -> CycleReport:
        users = self.plan_users()
        groups: list[Work] = []
        group_deletes: list[Work] = []
        if self.config.provision_groups and not self.only_user:
            groups, group_deletes = self.plan_groups()
        removals = [w for w in users + group_deletes if w.kind in ("disable", "delete")]
        counted = [w for w in removals if (self.config.actions.disable if w.kind == "disable"
                                           else self.config.actions.delete)]
        threshold = self.config.deletion_threshold
        self.total = len(users) + len(groups) + len(group_deletes)
        if threshold is not None and len(counted) > threshold and not self.allow_deletions:
            reason = (f"the cycle would disable or delete {len(counted)} objects, over the accidental-deletion "
                      f"threshold of {threshold}: nothing was sent. Check the scope, then run it with "
                      "--allow-deletions (or raise the threshold)")
            self.stats["would_remove"] = len(counted)
            self.flush()
            return self._report("threshold_exceeded", reason)
        # Memberships are settled before users are deleted, so the app's groups never point at a deleted user.
        self.execute([w for w in users if w.kind != "delete"])
        if not self.stop.is_set() and groups:
            self.execute(groups)
        if not self.stop.is_set() and self.config.provision_groups and not self.only_user:
            members = self.plan_members({w.source_id for w in users if w.kind == "delete"})
            self.total += len(members)
            self.execute(members)
        if not self.stop.is_set():
            self.execute([w for w in users if w.kind == "delete"])
        if not self.stop.is_set() and group_deletes:
            self.execute(group_deletes)
        if self.stop.is_set():
            self._pending.append(Outcome(Work("stopped", "App", self.app_id, reason=self.stop_reason or ""),
                                         "none", "skipped", f"the cycle stopped: {self.stop_reason}; "
                                         f"{self.not_attempted} object(s) not attempted, retried next cycle"))
        self.flush()
        if self.stop.is_set():
            return self._report("quarantined", self.stop_reason)
        failed = sum(v for k, v in self.stats.items() if k.endswith("_failed"))
        if failed:
            return self._report("completed_with_failures", f"{failed} object(s) failed; they are retried next "
                                                           "cycle")
        return self._report("succeeded", None)

    def _report(self, status: str, reason: str | None) -> CycleReport:
        return CycleReport(self.cycle_id, self.kind, status, self.total, self.done, self._stats(), reason,
                           self.logs)


def _display(state: State) -> str | None:
    try:
        sent = json.loads(state.sent or "{}")
    except ValueError:
        return None
    value = sent.get("userName") or sent.get("displayName")
    return str(value) if value is not None else None


def _past(outcome: Outcome) -> str:
    if outcome.result == "skipped":
        return "unchanged" if outcome.action == "none" and outcome.work.kind == "upsert" else (
            "excluded" if outcome.work.kind in ("exclude", "forget") else "skipped")
    return {"create": "created", "update": "updated", "disable": "disabled", "delete": "deleted",
            "members": "members_changed", "none": "matched"}.get(outcome.action, outcome.action)
