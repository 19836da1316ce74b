"""The common new user (RFC 7644 §3.3) read without scim2-models: the document it would store, or None.

What identity providers create — ``userName``, ``name``, ``displayName``, ``title``, ``active``, ``emails`` and
``phoneNumbers`` with a ``type`` and a ``primary``, the enterprise extension's strings — is plain strings and
booleans where the schema says so. For such a body scim2-models' creation-context validation and its dump cost
more than the rest of a create (bench/scim_write_profile.py --mode bulk, issue #16). Here the body is checked
against the served schemas, read once (``_shape``), and the document is built as scim2-models dumps it: its
attributes in the schema's order, ``schemas`` as the core URN then each extension the body fills, a canonical
``type`` as written. Anything else — a key not spelled as the schema spells it, a value of another JSON type
(Entra's ``"True"`` strings), a null or an empty value, a reference, a binary, a read-only or write-only
attribute, two primaries, a schema URI that is not the User's, a canonical ``type`` in another case — is not
read here (None) and goes the general way, so every rule and error of the general path still applies to it.
tests/protocols/test_scim_simple_create.py compares both paths.

Pure: no SQL, no HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from tenantry.protocols.scim.resources import CORE_USER, schema_documents

_TYPES: dict[str, type] = {"string": str, "boolean": bool}


@dataclass(frozen=True)
class _Complex:
    """A complex attribute's sub-attributes, in the schema's order: name → Python type; and the canonical values
    of its ``type`` (a value in another case is scim2-models' to fold)."""

    subs: dict[str, type]
    canonical: frozenset[str]
    folded: frozenset[str]


@dataclass(frozen=True)
class _Shape:
    """A User schema's attributes the simple path reads, in the schema's order: name → a Python type (single
    string or boolean), a ``_Complex`` (single complex), or a one-item tuple of a ``_Complex`` (multi-valued)."""

    urn: str
    attributes: dict[str, Any]


def _complex(attr: dict[str, Any]) -> _Complex | None:
    subs: dict[str, type] = {}
    canonical: frozenset[str] = frozenset()
    for sub in attr.get("subAttributes") or []:
        kind = _TYPES.get(sub["type"])
        if kind is None or sub.get("multiValued") or sub.get("mutability", "readWrite") != "readWrite":
            return None   # a reference, a binary, a read-only part: rules of its own
        subs[sub["name"]] = kind
        if sub["name"] == "type":
            canonical = frozenset(sub.get("canonicalValues") or ())
    return _Complex(subs, canonical, frozenset(v.lower() for v in canonical)) if subs else None


@cache
def _shape() -> tuple[_Shape, ...]:
    """The core User schema first, then its extensions, as the served schemas list them."""
    shapes: list[_Shape] = []
    for schema in schema_documents():
        urn = schema.id or ""
        if not urn.endswith(":User"):
            continue
        attributes: dict[str, Any] = {}
        if urn == CORE_USER:
            attributes["externalId"] = str   # common to every resource (RFC 7643 §3.1), dumped before userName
        for attr in schema.model_dump(by_alias=True, exclude_none=True)["attributes"]:
            if attr.get("mutability", "readWrite") != "readWrite":
                continue
            if attr["type"] in _TYPES:
                if not attr.get("multiValued"):
                    attributes[attr["name"]] = _TYPES[attr["type"]]
            elif attr["type"] == "complex" and (shape := _complex(attr)) is not None:
                attributes[attr["name"]] = (shape,) if attr.get("multiValued") else shape
        shapes.append(_Shape(urn, attributes))
    shapes.sort(key=lambda s: s.urn != CORE_USER)
    return tuple(shapes)


def _object(value: Any, shape: _Complex) -> dict[str, Any] | None:
    """A complex value in the schema's order, or None where the general path must read it."""
    if not isinstance(value, dict) or not value or not value.keys() <= shape.subs.keys():
        return None
    out: dict[str, Any] = {}
    for name, kind in shape.subs.items():
        if name in value:
            item = value[name]
            if type(item) is not kind:   # a JSON true is no string, and a bool is an int
                return None
            if name == "type" and item not in shape.canonical and str(item).lower() in shape.folded:
                return None
            out[name] = item
    return out


def _attributes(body: dict[str, Any], shape: _Shape) -> dict[str, Any] | None:
    if not body.keys() <= shape.attributes.keys():
        return None
    out: dict[str, Any] = {}
    for name, kind in shape.attributes.items():
        if name not in body:
            continue
        value = body[name]
        if isinstance(kind, type):
            if type(value) is not kind:
                return None
            out[name] = value
        elif isinstance(kind, _Complex):
            if (obj := _object(value, kind)) is None:
                return None
            out[name] = obj
        else:
            if not isinstance(value, list) or not value:
                return None
            items = [_object(item, kind[0]) for item in value]
            if any(item is None for item in items) or sum(item.get("primary") is True for item in items if item) > 1:
                return None
            out[name] = items
    return out


def read_simple_resource(resource_type: str, payload: Any) -> dict[str, Any] | None:
    """The document a new resource is stored as (``scim_repositories.dump``'s form) when the body is a simple one;
    else None. The body is ``normalize.normalize_resource``'s output."""
    if resource_type != "User" or not isinstance(payload, dict):
        return None
    shapes = _shape()
    urns = {s.urn for s in shapes}
    schemas = payload.get("schemas")
    if not isinstance(schemas, list) or not all(isinstance(s, str) and s in urns for s in schemas):
        return None
    core = {k: v for k, v in payload.items() if k != "schemas" and k not in urns}
    if not isinstance(core.get("userName"), str):
        return None
    doc = _attributes(core, shapes[0])
    if doc is None:
        return None
    out: dict[str, Any] = {"schemas": [CORE_USER], **doc}
    for shape in shapes[1:]:
        if shape.urn not in payload:
            continue
        extension = payload[shape.urn]
        if not isinstance(extension, dict) or not extension or (inner := _attributes(extension, shape)) is None:
            return None
        out["schemas"].append(shape.urn)
        out[shape.urn] = inner
    return out


__all__ = ["read_simple_resource"]
