"""Reading a SCIM resource by attribute path, and building one from target paths (for mappings).

Paths are the ones mappings use: ``userName``, ``name.givenName``, ``emails[type eq "work"].value``,
``urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter``. Two selectors are supported (what
Entra's mappings use): ``[type eq "…"]`` and ``[primary eq "True"]`` (``roles[primary eq "True"].value``, the
target of SingleAppRoleAssignment); anything else is refused when read or written.
"""

from __future__ import annotations

from typing import Any

from tenantry.core.errors import Invalid
from tenantry.protocols.scim.paths import PLAIN_PATH as _PLAIN
from tenantry.protocols.scim.paths import PRIMARY_PATH as _PRIMARY
from tenantry.protocols.scim.paths import TYPED_PATH as _TYPED
from tenantry.protocols.scim.paths import split_urn as _split


def _get(obj: dict[str, Any], name: str) -> Any:
    for key, value in obj.items():
        if key.lower() == name.lower():
            return value
    return None


def _is_primary(entry: dict[str, Any]) -> bool:
    flag = _get(entry, "primary")
    return flag is True or (isinstance(flag, str) and flag.lower() == "true")


def read_path(resource: dict[str, Any], path: str) -> Any:
    urn, rest = _split(path)
    base: Any = _get(resource, urn) if urn else resource
    if not isinstance(base, dict):
        return None
    typed = _TYPED.match(rest)
    if typed:
        entries = _get(base, typed.group(1)) or []
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and str(entry.get("type", "")).lower() == typed.group(2).lower():
                return _get(entry, typed.group(3))
        return None
    primary = _PRIMARY.match(rest)
    if primary:
        entries = _get(base, primary.group(1)) or []
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and _is_primary(entry):
                return _get(entry, primary.group(2))
        return None
    if not _PLAIN.match(rest):
        raise Invalid(f"unsupported attribute path {path!r}")
    value: Any = base
    for part in rest.split("."):
        value = _get(value, part) if isinstance(value, dict) else None
    return value


def build_resource(values: dict[str, Any], schema: str = "urn:ietf:params:scim:schemas:core:2.0:User",
                   ) -> dict[str, Any]:  # dict: a SCIM resource, extensible by schema
    """A SCIM resource holding ``values`` (target path → value), with its ``schemas`` list."""
    out: dict[str, Any] = {"schemas": [schema]}
    for path, value in values.items():
        urn, rest = _split(path)
        base = out
        if urn:
            base = out.setdefault(urn, {})
            if urn not in out["schemas"]:
                out["schemas"].append(urn)
        typed = _TYPED.match(rest)
        if typed:
            entries = base.setdefault(typed.group(1), [])
            entry = next((e for e in entries if e.get("type") == typed.group(2)), None)
            if entry is None:
                entry = {"type": typed.group(2)}
                if typed.group(1).lower() == "emails" and typed.group(2) == "work":
                    entry["primary"] = True
                entries.append(entry)
            entry[typed.group(3)] = value
            continue
        primary = _PRIMARY.match(rest)
        if primary:
            entries = base.setdefault(primary.group(1), [])
            entry = next((e for e in entries if e.get("primary") is True), None)
            if entry is None:
                entry = {"primary": True}
                entries.append(entry)
            entry[primary.group(2)] = value
            continue
        if not _PLAIN.match(rest):
            raise Invalid(f"unsupported attribute path {path!r}")
        parts = rest.split(".")
        for part in parts[:-1]:
            base = base.setdefault(part, {})
        base[parts[-1]] = value
    return out
