"""The common PATCH (RFC 7644 §3.5.2) applied straight to a stored resource: set single-valued attributes.

What identity providers send most — ``replace`` (or ``add``) of ``active``, ``name.givenName``, ``title``, an
enterprise ``costCenter`` — sets one single-valued string or boolean that the resource already holds. For those
operations scim2-models' PatchOp (parse, resolve each path against the model, deep-copy the resource, apply,
revalidate) costs most of a PATCH's CPU. Here such a PatchOp is read against the served schemas once
(``read_simple_patch``, before the transaction) and applied to the stored JSON (``apply_simple_patch``), giving
the document scim2-models would give. Anything else — a filter in the path, a multi-valued or complex target, a
value of another JSON type (Entra's ``"False"`` strings), ``remove``, an attribute the resource does not hold
yet, a read-only or write-only attribute — is not read here (None), and goes the general way, so every rule
and error of the general path still applies to it. tests/protocols/test_scim_simple_patch.py compares both paths.

Pure: no SQL, no HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from tenantry.protocols.scim.resources import CORE_USER, schema_documents

_TYPES: dict[str, type] = {"string": str, "boolean": bool}


@dataclass(frozen=True)
class SimpleSet:
    """One operation: set ``key`` (the attribute's name as the schema spells it) in the object at ``parent``
    (() for the resource itself; (urn,) for an extension; (attr,) or (urn, attr) for a complex attribute)."""

    parent: tuple[str, ...]
    key: str
    value: str | bool
    # The extension URN the resource must already name in ``schemas`` (scim2-models would add it).
    schema: str | None = None


@cache
def _targets(resource_type: str) -> dict[str, tuple[tuple[str, ...], str, type, str | None]]:
    """Lower-cased path → (parent, key, Python type, extension URN) for every single-valued, read-write string or
    boolean attribute (or sub-attribute of a single-valued complex one) of the resource type's schemas."""
    if resource_type != "User":
        return {}
    out: dict[str, tuple[tuple[str, ...], str, type, str | None]] = {}
    # externalId is common to every resource (RFC 7643 §3.1), not listed in the core schema.
    out["externalid"] = ((), "externalId", str, None)
    for schema in schema_documents():
        urn = schema.id or ""
        if not urn.endswith(":User"):
            continue
        doc = schema.model_dump(by_alias=True, exclude_none=True)
        extension = None if urn == CORE_USER else urn
        base: tuple[str, ...] = (urn,) if extension else ()
        prefixes = [urn.lower() + ":"] + ([""] if extension is None else [])
        for attr in doc["attributes"]:
            if attr.get("multiValued") or attr.get("mutability", "readWrite") != "readWrite":
                continue
            name = attr["name"]
            kind = _TYPES.get(attr["type"])
            if kind is not None:
                for prefix in prefixes:
                    out[prefix + name.lower()] = (base, name, kind, extension)
            elif attr["type"] == "complex":
                subs = attr.get("subAttributes") or []
                # Only a complex attribute of plain values (name): one with a reference or a read-only part
                # (the enterprise manager's $ref and displayName) has rules of its own.
                if not subs or any(_TYPES.get(sub["type"]) is None or sub.get("multiValued")
                                   or sub.get("mutability", "readWrite") != "readWrite" for sub in subs):
                    continue
                for sub in subs:
                    sub_kind = _TYPES[sub["type"]]
                    for prefix in prefixes:
                        out[f"{prefix}{name.lower()}.{sub['name'].lower()}"] = (
                            (*base, name), sub["name"], sub_kind, extension)
    return out


def read_simple_patch(resource_type: str, payload: dict[str, Any]) -> list[SimpleSet] | None:
    """The operations of a PatchOp body (``normalize.normalize_patch``'s output) when every one is a simple
    set; else None."""
    targets = _targets(resource_type)
    if not targets:
        return None
    ops = payload.get("Operations")
    if not isinstance(ops, list) or not ops:
        return None
    out: list[SimpleSet] = []
    for op in ops:
        if not isinstance(op, dict) or set(op) - {"op", "path", "value"}:
            return None
        verb, path, value = op.get("op"), op.get("path"), op.get("value")
        if not isinstance(verb, str) or verb.lower() not in ("add", "replace") or not isinstance(path, str):
            return None
        target = targets.get(path.lower())
        # type() rather than isinstance(): a JSON true is no string, and a bool is an int.
        if target is None or type(value) is not target[2] or not isinstance(value, str | bool):
            return None
        parent, key, _kind, schema = target
        out.append(SimpleSet(parent, key, value, schema))
    return out


def apply_simple_patch(doc: dict[str, Any], ops: list[SimpleSet]) -> tuple[dict[str, Any], bool] | None:
    """``doc`` (the stored resource, left as it is) with the operations applied, and whether anything changed;
    None when one of them needs the general path: its attribute (or the object holding it) is not in the
    resource yet, or its extension is not in ``schemas``."""
    out = dict(doc)
    copied: set[tuple[str, ...]] = {()}
    changed = False
    for op in ops:
        if op.schema is not None and op.schema not in (out.get("schemas") or ()):
            return None
        holder = out
        for depth in range(len(op.parent)):
            step = op.parent[: depth + 1]
            inner = holder.get(op.parent[depth])
            if not isinstance(inner, dict):
                return None
            if step not in copied:
                inner = dict(inner)
                holder[op.parent[depth]] = inner
                copied.add(step)
            holder = inner
        if op.key not in holder or holder[op.key] is None:
            return None
        if holder[op.key] != op.value or type(holder[op.key]) is not type(op.value):
            holder[op.key] = op.value
            changed = True
    return out, changed


__all__ = ["SimpleSet", "apply_simple_patch", "read_simple_patch"]
