"""PATCH rules of RFC 7644 §3.5.2 that scim2-models leaves to the server: group members, and the diff.

- Operations on a group's ``members`` are taken out of a PatchOp (``split_member_operations``) and become
  ``MemberChange``s: a group may have 50,000 members, kept as rows, and adding one is one row, not a rewrite
  of the list that scim2-models' PATCH would make. The other operations stay for scim2-models to apply.
- ``member_refs`` reads the members a request names (a Group's ``members``, a PATCH value), bounded.
- ``patch_ops`` is the other direction, for a SCIM client: the operations that turn the values last sent into
  the values wanted (the provisioning engine's PATCH of the changed attributes).

Pure: no SQL, no HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError
from scim2_models import InvalidValueException, SCIMException
from scim2_models.path import CompareOperator, Comparison, LogicalExpr, LogicalOperator, ValuePath

from tenantry.protocols.scim.limits import check_member
from tenantry.protocols.scim.paths import primary_path, typed_path
from tenantry.protocols.scim.resources import CORE_GROUP, scim_path

_OPS = ("add", "remove", "replace")
_CORE_GROUP_PREFIX = CORE_GROUP.lower() + ":"


# -- group members ------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberRef:
    """A member as a request names it: its id, and the ``type`` and ``display`` it was sent with, if any."""

    id: str
    type: str | None = None      # "User" or "Group" when the request said so; the store checks its own rows
    display: str | None = None


@dataclass(frozen=True)
class MemberChange:
    """One change to a group's member rows.

    ``add`` and ``replace`` carry ``members``; ``remove`` carries ``ids``, or None for "every member"
    (RFC 7644 §3.5.2.2: a remove of ``members`` without a value or a filter empties the group).
    """

    op: Literal["add", "remove", "replace"]
    members: tuple[MemberRef, ...] = ()
    ids: tuple[Any, ...] | None = None


def member_refs(values: Iterable[Any]) -> list[MemberRef]:
    """The members named by ``values`` (``{"value": id, "type"?, "display"?}`` objects or bare ids), one per
    id in the order first named, the last object naming an id giving its type and display. An entry without
    an id, or over the limits of ``limits.check_member``, is refused (400 invalidValue)."""
    refs: dict[str, MemberRef] = {}
    for item in values:
        value = item.get("value") if isinstance(item, dict) else item
        if not isinstance(value, str) or not value:
            raise InvalidValueException(detail=f"a member needs a 'value' holding an id, got {item!r}")
        check_member(value, item.get("display") if isinstance(item, dict) else None)
        if isinstance(item, dict):
            mtype = item.get("type") if item.get("type") in ("User", "Group") else None
            display = item.get("display") if isinstance(item.get("display"), str) else None
            refs[value] = MemberRef(value, mtype, display)
        else:
            refs.setdefault(value, MemberRef(value))
    return list(refs.values())


def split_member_operations(payload: dict[str, Any]) -> tuple[dict[str, Any], list[MemberChange]]:
    """Take the operations on ``members`` out of a group's PatchOp (already ``normalize_patch``-ed).

    Returns the PatchOp with the other operations (possibly none) and the member changes, in order. Handled:
    ``path: "members"`` with any op; ``remove`` with ``members[value eq "…" or …]`` (the only filter a member
    may be selected by); path-less ``add``/``replace`` whose value holds ``members`` beside other attributes.
    """
    kept: list[dict[str, Any]] = []
    changes: list[MemberChange] = []
    for op in payload["Operations"]:
        kind = str(op.get("op", "")).lower()
        path = op.get("path")
        if isinstance(path, str) and path.strip():
            lpath = path.strip().lower().removeprefix(_CORE_GROUP_PREFIX)
            if lpath == "members":
                changes.append(_member_change(kind, op.get("value")))
            elif lpath.startswith("members["):
                if kind != "remove":
                    raise InvalidValueException(
                        detail="only 'remove' may select members with a filter; use add/replace with values"
                    )
                changes.append(MemberChange("remove", ids=tuple(member_ids_from_path(path))))
            else:
                kept.append(op)
            continue
        value = op.get("value")
        if kind in ("add", "replace") and isinstance(value, dict):
            rest = {k: v for k, v in value.items() if k.lower() != "members"}
            members = [v for k, v in value.items() if k.lower() == "members"]
            if members:
                changes.append(_member_change(kind, members[0]))
            if rest:
                kept.append({**op, "value": rest})
            continue
        kept.append(op)
    return {**payload, "Operations": kept}, changes


def _member_change(kind: str, value: Any) -> MemberChange:
    """The change an operation on ``members`` asks for; its value checked before anything is looked up."""
    if kind not in _OPS:
        raise InvalidValueException(detail=f"{kind!r} is not a PATCH operation: add, remove or replace")
    values = [value] if isinstance(value, (dict, str)) else value
    if kind == "remove":
        # Entra removes members by value (a list of {"value": id}); without a value, every member goes.
        if values is None:
            return MemberChange("remove", ids=None)
        if not isinstance(values, list):
            raise InvalidValueException(detail="members to remove must be given as a list of {\"value\": id}")
        return MemberChange("remove", ids=tuple(v.get("value") if isinstance(v, dict) else v for v in values))
    if not isinstance(values, list) or isinstance(value, str):
        raise InvalidValueException(detail="members must be given as a list of {\"value\": id}")
    return MemberChange("add" if kind == "add" else "replace", members=tuple(member_refs(values)))


def member_ids_from_path(path: str) -> list[str]:
    """``members[value eq "a" or value eq "b"]`` → ["a", "b"]; any other selector is refused (400)."""
    try:
        node = scim_path("Group", path).ast
    except (SCIMException, ValueError, ValidationError) as exc:
        raise InvalidValueException(detail=f"invalid path {path!r}") from exc
    if not isinstance(node, ValuePath):
        raise InvalidValueException(detail=f"invalid members path {path!r}")
    inner = node.val_filter
    terms = inner.terms if isinstance(inner, LogicalExpr) and inner.op is LogicalOperator.or_ else (inner,)
    ids: list[str] = []
    for term in terms:
        if (
            isinstance(term, Comparison)
            and term.op is CompareOperator.eq
            and term.attr_path.attr.lower() == "value"
            and isinstance(term.value, str)
        ):
            ids.append(term.value)
        else:
            raise InvalidValueException(detail=f"members may be selected by 'value eq \"id\"' only, not {term}")
    return ids


# -- the diff a client sends ------------------------------------------------------------------------


def _norm(value: Any) -> Any:
    """The form two values are compared in: ``42`` and ``"42"`` are one value, a list or object its JSON."""
    if value is None or isinstance(value, bool):
        return value
    return str(value) if not isinstance(value, (list, dict)) else json.dumps(value, sort_keys=True)


def patch_ops(old: dict[str, Any], new: dict[str, Any], paths: Iterable[str]) -> list[dict[str, Any]]:
    """The PATCH operations that turn ``old`` into ``new`` on ``paths``: replace for a changed value (and for
    a new simple one: RFC 7644 §3.5.2.3 adds an absent attribute), remove for a value that is gone. A new value
    in an entry that does not exist yet (``emails[type eq "work"].value``) is an ``add`` of the entry, since a
    replace whose filter matches nothing is a 400 noTarget (§3.5.2.3).

    The primary entry (``roles[primary eq "True"].value``, SingleAppRoleAssignment's target) is sent by
    replacing the whole attribute with it: Entra's mapping holds one role, and a replace filtered on
    ``primary`` would leave a server that stores the flag differently with the old role beside the new one."""
    paths = list(paths)
    ops = _primary_ops(old, new, paths)
    entries: dict[tuple[str, str], dict[str, Any]] = {}
    removed_entries: set[tuple[str, str]] = set()
    for path in paths:
        before, after = old.get(path), new.get(path)
        if _norm(before) == _norm(after) or primary_path(path) is not None:
            continue
        typed = typed_path(path)
        if after is None:
            if typed is not None and not _entry_kept(new, typed):
                # Nothing of the entry is left: remove the entry, not just its value ({"type": "mobile"} is
                # not a phone number, and a later add would make a second entry of that type).
                if typed[:2] not in removed_entries:
                    removed_entries.add(typed[:2])
                    ops.append({"op": "remove", "path": f'{typed[0]}[type eq "{typed[1]}"]'})
                continue
            ops.append({"op": "remove", "path": path})
            continue
        if before is None and typed is not None:
            attr, kind, sub = typed
            entry = entries.get((attr, kind))
            if entry is None:
                entry = entries[(attr, kind)] = {"type": kind}
                if attr.lower() == "emails" and kind == "work":
                    entry["primary"] = True
                ops.append({"op": "add", "path": attr, "value": [entry]})
            entry[sub] = after
            continue
        ops.append({"op": "replace", "path": path, "value": after})
    return ops


def _primary_ops(old: dict[str, Any], new: dict[str, Any], paths: Sequence[str]) -> list[dict[str, Any]]:
    """The whole-attribute replace (or remove) for each attribute whose primary entry changed."""
    primaries: dict[str, list[tuple[str, str]]] = {}
    for path in paths:
        primary = primary_path(path)
        if primary is not None:
            primaries.setdefault(primary[0], []).append((path, primary[1]))
    ops: list[dict[str, Any]] = []
    for attr, members in primaries.items():
        if all(_norm(old.get(path)) == _norm(new.get(path)) for path, _ in members):
            continue
        wanted = {sub: new[path] for path, sub in members if new.get(path) is not None}
        ops.append({"op": "replace", "path": attr, "value": [{"primary": True, **wanted}]} if wanted
                   else {"op": "remove", "path": attr})
    return ops


def _entry_kept(new: dict[str, Any], typed: tuple[str, str, str]) -> bool:
    """Whether ``new`` still holds a value of the entry ``typed`` names (``emails`` of type ``work``)."""
    for path, value in new.items():
        other = typed_path(path)
        if other is not None and other[:2] == typed[:2] and value is not None:
            return True
    return False


__all__ = ["MemberChange", "MemberRef", "member_ids_from_path", "member_refs", "patch_ops",
           "split_member_operations"]
