"""The SCIM PATCH operations that turn the values last sent into the values wanted (RFC 7644 §3.5.2).

Pure, and kept apart from the cycle on purpose: issue #11 moves it into ``protocols/scim/patch.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from tenantry.provisioning.paths import primary_path, typed_path


def _norm(value: Any) -> Any:
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
    ops: list[dict[str, Any]] = []
    entries: dict[tuple[str, str], dict[str, Any]] = {}
    removed_entries: set[tuple[str, str]] = set()
    paths = list(paths)
    primaries: dict[str, list[tuple[str, str]]] = {}
    for path in paths:
        primary = primary_path(path)
        if primary is not None:
            primaries.setdefault(primary[0], []).append((path, primary[1]))
    for attr, members in primaries.items():
        if all(_norm(old.get(path)) == _norm(new.get(path)) for path, _ in members):
            continue
        wanted = {sub: new[path] for path, sub in members if new.get(path) is not None}
        ops.append({"op": "replace", "path": attr, "value": [{"primary": True, **wanted}]} if wanted
                   else {"op": "remove", "path": attr})
    for path in paths:
        before, after = old.get(path), new.get(path)
        if _norm(before) == _norm(after) or primary_path(path) is not None:
            continue
        typed = typed_path(path)
        if after is None:
            if typed is not None and not any(typed_path(p) is not None and typed_path(p)[:2] == typed[:2]  # type: ignore[index]
                                              and new.get(p) is not None for p in new):
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
