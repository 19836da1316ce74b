"""What the SCIM request log keeps of a request: the resource's names and a one-line outline of a PATCH.

The log must tell an administrator what an identity provider asked for without holding the body: a body can
carry secrets (``password``) and megabytes (a group's members). So a PATCH (RFC 7644 §3.5.2) is outlined by its
operations and paths only — ``replace active, add members(3)`` — and a resource by its ``externalId``,
``userName`` and ``displayName``. Values never appear, except inside a path's own filter (``members[value eq
"…"]``), which is an address, not data. Pure: no SQL, no HTTP.
"""

from __future__ import annotations

import re
from typing import Any

MAX_OUTLINE = 512       # the log's column; what does not fit ends in "… (+N more)"
MAX_TARGET = 96         # one path or attribute name in an outline
MAX_KEYS = 12           # attribute names listed for one path-less operation

# RFC 7644 §3.10: an attribute of an extension is addressed as "<schema URN>:<attribute>". The URN is long and
# the same in every request, so the outline keeps the extension's name: "enterprise:costCenter".
_EXTENSION_ATTR = re.compile(r"^urn:.*?:extension:([^:]+):.*?:(?:user|group):(.+)$", re.IGNORECASE)
_CORE_ATTR = re.compile(r"^urn:.*?:core:[^:]+:(?:user|group):(.+)$", re.IGNORECASE)
_EXTENSION = re.compile(r"^urn:.*?:extension:([^:]+):", re.IGNORECASE)


def names(doc: Any) -> tuple[str | None, str | None, str | None]:
    """(externalId, userName, displayName) of a resource or a request body; None where absent or not a string."""
    if not isinstance(doc, dict):
        return None, None, None

    def text(key: str) -> str | None:
        value = doc.get(key)
        return value if isinstance(value, str) else None

    return text("externalId"), text("userName"), text("displayName")


def resource_outline(doc: Any) -> str | None:
    """What a create or replace carries besides names: the number of group members (``members(120)``)."""
    if isinstance(doc, dict) and isinstance(doc.get("members"), list):
        return f"members({len(doc['members'])})"
    return None


def patch_outline(payload: Any) -> str | None:
    """``replace displayName, add members(3), remove members[value eq "…"]``: one part per operation."""
    if not isinstance(payload, dict) or not isinstance(payload.get("Operations"), list):
        return None
    return join_bounded([_operation(op) for op in payload["Operations"]])


def join_bounded(parts: list[str], limit: int = MAX_OUTLINE) -> str:
    """Parts joined by ", "; those that do not fit in ``limit`` are counted instead of shown."""
    out = ""
    for i, part in enumerate(parts):
        if len(part) > limit // 2:
            part = part[: limit // 2 - 1] + "…"
        candidate = f"{out}, {part}" if out else part
        after = len(parts) - i - 1            # parts still to come, counted if they do not fit
        room = limit - (len(f", … (+{after} more)") if after else 0)
        if len(candidate) > room:
            return f"{out}, … (+{after + 1} more)"
        out = candidate
    return out


def _operation(op: Any) -> str:
    if not isinstance(op, dict):
        return "?"
    verb = str(op.get("op", "?")).strip().lower()[:16] or "?"
    path = op.get("path")
    value = op.get("value")
    if isinstance(path, str) and path.strip():
        target = short_path(path.strip())
        return f"{verb} {target}({len(value)})" if isinstance(value, list) else f"{verb} {target}"
    if isinstance(value, dict):   # path-less: the value's keys are the attributes (Entra's replace of several)
        keys = _keys(value)
        shown = ", ".join(keys[:MAX_KEYS]) + (f", … (+{len(keys) - MAX_KEYS} more)" if len(keys) > MAX_KEYS else "")
        return f"{verb} ({shown})"
    return verb


def _keys(value: dict[str, Any]) -> list[str]:
    keys: list[str] = []
    for key, inner in value.items():
        key = str(key)
        extension = _EXTENSION.match(key + ":")
        if extension and isinstance(inner, dict):   # {"urn:…:enterprise:2.0:User": {"costCenter": …}}
            keys.extend(f"{extension.group(1)}:{k}" for k in _keys(inner))
        elif isinstance(inner, list):
            keys.append(f"{short_path(key)}({len(inner)})")
        else:
            keys.append(short_path(key))
    return keys


def short_path(path: str) -> str:
    """An attribute path as an administrator reads it: extension URNs shortened, at most MAX_TARGET long."""
    found = _EXTENSION_ATTR.match(path)
    if found:
        path = f"{found.group(1)}:{found.group(2)}"
    else:
        core = _CORE_ATTR.match(path)
        if core:
            path = core.group(1)
    return path if len(path) <= MAX_TARGET else path[: MAX_TARGET - 1] + "…"


__all__ = ["join_bounded", "names", "patch_outline", "resource_outline", "short_path"]
