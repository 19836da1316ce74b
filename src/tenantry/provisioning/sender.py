"""Sending planned work to the app: create or update (upsert), disable, delete, and member PATCHes.

Each object is matched (the app's id from an earlier cycle, else a filter query on the matching attributes in
precedence order), then created, or patched with the changed attributes only. The sender talks HTTP and never
the database, so it runs in the cycle's worker threads; what happened comes back as an ``Outcome``, with the
state row for the recorder to write.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tenantry.protocols.scim.patch import patch_ops
from tenantry.provisioning.client import ScimTarget, TargetError
from tenantry.provisioning.config import AppConfig
from tenantry.provisioning.mappings import ApplyWhen, AttributeMapping, matching_order
from tenantry.provisioning.paths import build_resource, read_path
from tenantry.provisioning.planner import Work, WorkKind, member_batches, step
from tenantry.provisioning.results import LogAction, ObjectStatus, Result, StepName, StepResult

log = logging.getLogger(__name__)

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
RESOURCE = {"User": "Users", "Group": "Groups"}


@dataclass
class Outcome:
    work: Work
    action: LogAction
    result: Result
    reason: str = ""
    target_id: str | None = None
    state: dict[str, Any] | None = None   # dict: the provisioned_objects row to insert (Sender.row)
    forget: bool = False                  # remove the row
    attempted: bool = False               # a request was sent: counts for quarantine
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    not_attempted: bool = False


class Sender:
    """Sends one cycle's work to one app."""

    def __init__(self, target: ScimTarget, config: AppConfig, app_id: str, started: datetime) -> None:
        self.target = target
        self.config = config
        self.app_id = app_id
        self.started = started
        self.user_maps = config.users()
        self.group_maps = config.groups()

    def send(self, w: Work) -> Outcome:
        """Do ``w``; a failure is an ``Outcome``, never an exception (one object must not sink the cycle)."""
        try:
            return self._send(w)
        except TargetError as exc:
            return Outcome(w, _failed(w), Result.FAILURE, exc.message, w.state.target_id if w.state else None,
                           attempted=True)
        except Exception as exc:  # noqa: BLE001 - one object's surprise must not sink the cycle; it is logged
            log.exception("provisioning %s %s failed", w.object_type, w.source_id)
            return Outcome(w, _failed(w), Result.FAILURE, f"{type(exc).__name__}: {exc}",
                           w.state.target_id if w.state else None, attempted=True)

    def _send(self, w: Work) -> Outcome:
        if w.kind == WorkKind.UPSERT:
            return self._upsert(w)
        if w.kind == WorkKind.DISABLE:
            return self._disable(w)
        if w.kind == WorkKind.DELETE:
            return self._delete(w)
        if w.kind == WorkKind.MEMBERS:
            return self._members(w)
        if w.kind == WorkKind.EXCLUDE:
            return Outcome(w, LogAction.NONE, Result.SKIPPED, w.reason,
                           state=self.row(w, None, ObjectStatus.EXCLUDED, {}))
        if w.kind == WorkKind.FORGET:
            return Outcome(w, LogAction.NONE, Result.SKIPPED, w.reason, forget=True)
        if w.kind == WorkKind.FAIL:    # could not even be prepared (a mapping failed): the row keeps its id
            return Outcome(w, LogAction.NONE, Result.FAILURE, w.reason, w.state.target_id if w.state else None)
        return Outcome(w, LogAction.NONE, Result.SKIPPED, w.reason,
                       state=self.row(w, None, ObjectStatus.SKIPPED, {}))

    def row(self, w: Work, target_id: str | None, status: ObjectStatus, sent: dict[str, Any],
            disabled_at: datetime | None = None) -> dict[str, Any]:  # dict: a row for insert(ProvisionedObject)
        """The ``provisioned_objects`` row that records ``w`` as the app now holds it."""
        return {"app_id": self.app_id, "object_type": w.object_type, "source_id": w.source_id,
                "target_id": target_id, "status": status, "sent": json.dumps(sent, sort_keys=True, default=str),
                "error": None, "disabled_at": disabled_at, "updated_at": self.started, "source_version": w.version,
                "roles": w.roles if w.roles is not None else (w.state.roles if w.state else None)}

    # -- upsert ----------------------------------------------------------------------------------------

    def _match(self, w: Work, mappings: Sequence[AttributeMapping],
               ) -> tuple[dict[str, Any] | None, str]:  # dict: the app's SCIM resource that matched
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
        paths = [m.target for m in mappings if m.apply is ApplyWhen.ALWAYS]
        values = w.update or {}
        old = w.state
        if old and old.status == ObjectStatus.DISABLED and "active" not in paths:
            paths, values = [*paths, "active"], {**values, "active": True}   # back in scope
        if old and old.target_id and old.status in (ObjectStatus.ACTIVE, ObjectStatus.DISABLED):
            known = self._update_known(w, paths, values)
            if known is not None:
                return known
        found, detail = self._match(w, mappings)
        w.steps.append(step(StepName.MATCH, StepResult.SUCCESS, detail))
        if found is not None:
            return self._update_matched(w, str(found["id"]), found, paths, values)
        if not self.config.actions.create:
            return Outcome(w, LogAction.CREATE, Result.SKIPPED, "create is switched off", attempted=True)
        schema = USER_SCHEMA if w.object_type == "User" else GROUP_SCHEMA
        created = self.target.create(RESOURCE[w.object_type], build_resource(w.create or {}, schema))
        target_id = str(created["id"])
        return Outcome(w, LogAction.CREATE, Result.SUCCESS, "created", target_id,
                       self.row(w, target_id, ObjectStatus.ACTIVE, dict(w.create or {})), attempted=True)

    def _update_known(self, w: Work, paths: list[str], values: dict[str, Any]) -> Outcome | None:
        """Update the object the app holds under the id from an earlier cycle; ``None`` when it is gone there
        (matched again)."""
        old = w.state
        assert old is not None and old.target_id is not None
        w.steps.append(step(StepName.MATCH, StepResult.SUCCESS, f"provisioned earlier as id {old.target_id}"))
        before = json.loads(old.sent or "{}")
        ops = patch_ops(before, values, paths)
        row = self.row(w, old.target_id, ObjectStatus.ACTIVE, _kept({**before, **values}, paths, values))
        if not ops:
            return Outcome(w, LogAction.NONE, Result.SKIPPED, "no mapped attribute changed", old.target_id, row)
        if not self.config.actions.update:
            return Outcome(w, LogAction.UPDATE, Result.SKIPPED, "update is switched off", old.target_id,
                           self.row(w, old.target_id, old.status, before))
        try:
            self.target.patch(RESOURCE[w.object_type], old.target_id, ops)
        except TargetError as exc:
            if exc.status != 404:
                raise
            w.steps.append(step(StepName.MATCH, StepResult.WARNING,
                                f"id {old.target_id} is gone from the app: matching again"))
            return None
        return Outcome(w, LogAction.UPDATE, Result.SUCCESS, "changed: " + ", ".join(op["path"] for op in ops),
                       old.target_id, row, attempted=True)

    def _update_matched(self, w: Work, target_id: str, found: dict[str, Any], paths: list[str],
                        values: dict[str, Any]) -> Outcome:
        before = {p: read_path(found, p) for p in paths}
        ops = patch_ops(before, values, paths)
        row = self.row(w, target_id, ObjectStatus.ACTIVE,
                       _kept({**before, **(w.create or {}), **values}, paths, values))
        if not ops:
            return Outcome(w, LogAction.NONE, Result.SUCCESS, "matched; already up to date", target_id, row,
                           attempted=True)
        if not self.config.actions.update:
            return Outcome(w, LogAction.UPDATE, Result.SKIPPED, "matched, but update is switched off", target_id,
                           self.row(w, target_id, ObjectStatus.ACTIVE, before), attempted=True)
        self.target.patch(RESOURCE[w.object_type], target_id, ops)
        return Outcome(w, LogAction.UPDATE, Result.SUCCESS,
                       "matched; changed: " + ", ".join(op["path"] for op in ops), target_id, row, attempted=True)

    # -- disable, delete, members ----------------------------------------------------------------------

    def _disable(self, w: Work) -> Outcome:
        assert w.state is not None and w.state.target_id
        before = json.loads(w.state.sent or "{}")
        if not self.config.actions.disable:
            return Outcome(w, LogAction.DISABLE, Result.SKIPPED, f"{w.reason}; disable is switched off",
                           w.state.target_id)
        try:
            self.target.patch(RESOURCE[w.object_type], w.state.target_id,
                              [{"op": "replace", "path": "active", "value": False}])
        except TargetError as exc:
            if exc.status != 404:
                raise
            return Outcome(w, LogAction.DISABLE, Result.SUCCESS, f"{w.reason}; already gone from the app",
                           w.state.target_id, forget=True, attempted=True)
        return Outcome(w, LogAction.DISABLE, Result.SUCCESS, w.reason, w.state.target_id,
                       self.row(w, w.state.target_id, ObjectStatus.DISABLED, {**before, "active": False},
                                disabled_at=self.started), attempted=True)

    def _delete(self, w: Work) -> Outcome:
        assert w.state is not None and w.state.target_id
        if not self.config.actions.delete:
            return Outcome(w, LogAction.DELETE, Result.SKIPPED, f"{w.reason}; delete is switched off",
                           w.state.target_id)
        existed = self.target.delete(RESOURCE[w.object_type], w.state.target_id)
        return Outcome(w, LogAction.DELETE, Result.SUCCESS,
                       w.reason + ("" if existed else "; already gone from the app"), w.state.target_id, forget=True,
                       attempted=True)

    def _members(self, w: Work) -> Outcome:
        assert w.state is not None and w.state.target_id
        added: list[str] = []
        removed: list[str] = []
        outcome = Outcome(w, LogAction.MEMBERS, Result.SUCCESS, "", w.state.target_id, attempted=True,
                          added=added, removed=removed)
        try:
            for batch in member_batches(w, self.config.member_batch):
                if batch.operations:
                    self.target.patch("Groups", w.state.target_id, batch.operations)
                added.extend(batch.added)
                removed.extend(batch.removed)
        except TargetError as exc:
            outcome.result = Result.FAILURE
            outcome.reason = f"{exc.message} (after adding {len(added)}, removing {len(removed)})"
            if exc.status == 404:   # deleted in the app by hand: forgotten here, so the next cycle creates it
                outcome.reason += "; the group is gone from the app and is created again next cycle"
                outcome.forget = True
                added.clear()
                removed.clear()
        else:
            outcome.reason = f"added {len(added)}, removed {len(removed)} member(s)"
        return outcome


# The action a failure is logged under: a create-or-update failed before it knew which.
_FAILED = {WorkKind.UPSERT: LogAction.CREATE_UPDATE, WorkKind.DISABLE: LogAction.DISABLE,
           WorkKind.DELETE: LogAction.DELETE, WorkKind.MEMBERS: LogAction.MEMBERS}


def _failed(w: Work) -> LogAction:
    """Only these kinds send requests, so only they can fail with an exception."""
    return _FAILED.get(w.kind, LogAction.NONE)


def _kept(values: dict[str, Any], paths: list[str], wanted: dict[str, Any]) -> dict[str, Any]:  # dict: path → value
    """The values recorded as sent: all of ``values`` but the mapped paths now empty (removed in the app)."""
    return {k: v for k, v in values.items() if not (k in paths and wanted.get(k) is None)}
