"""What Entra ID and Okta send that RFC 7644 does not quite say, made regular before validation.

Every rewrite here is one documented identity-provider habit (see docs/scim.md "Compatibility"); the rest
of the tolerance (case-insensitive ``op``, "True"/"False" strings, Entra's value-selected ``Remove``) is
the scim2-models policy in ``resources.POLICY``.
"""

from __future__ import annotations

from typing import Any

from scim2_models import InvalidSyntaxException

from tenantry.protocols.scim.resources import ENTERPRISE_USER, KNOWN_SCHEMAS

_MANAGER_PATHS = {f"{ENTERPRISE_USER}:manager".lower(), "manager"}
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def normalize_resource(payload: dict[str, Any]) -> dict[str, Any]:
    """Drop schema URIs that only *name* an unknown schema (Entra's ADSCIM group URI) and fix ``manager``.

    A URI that also carries attributes is kept, so that its attributes are refused as unknown rather than
    dropped in silence.
    """
    schemas = payload.get("schemas")
    out = dict(payload)
    if isinstance(schemas, list):
        keys = {k.lower() for k in payload}
        out["schemas"] = [
            s for s in schemas if not isinstance(s, str) or s in KNOWN_SCHEMAS or s.lower() in keys
        ]
    enterprise = out.get(ENTERPRISE_USER)
    if isinstance(enterprise, dict) and "manager" in enterprise:
        out[ENTERPRISE_USER] = {**enterprise, "manager": _manager(enterprise["manager"])}
    return out


def _manager(value: Any) -> Any:
    # Entra: [{"$ref": null, "value": "id"}] or a bare id; the schema says a single complex value.
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, str):
        return {"value": value}
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if not (k == "$ref" and v is None)}
    return value


def normalize_patch(payload: Any) -> dict[str, Any]:
    """Check a PATCH body's envelope (RFC 7644 §3.5.2) and make Entra's ``manager`` shapes regular.

    "The body of each request MUST contain the "schemas" attribute with the URI value of
    "urn:ietf:params:scim:api:messages:2.0:PatchOp"": a body without it is refused (400 invalidSyntax).
    Entra ID, Okta, scim2-client and scim-sanity all send it (tests/interop), so no real client is turned away;
    a body that is not a PatchOp message (a resource PUT to the wrong verb, say) is, before it changes anything.
    The URI is compared case-insensitively, as schema URIs are elsewhere here.
    """
    if not isinstance(payload, dict):
        raise InvalidSyntaxException(detail="the PATCH body must be a JSON object")
    schemas = payload.get("schemas")
    if not isinstance(schemas, list) or not any(
        isinstance(s, str) and s.strip().lower() == PATCH_OP.lower() for s in schemas
    ):
        raise InvalidSyntaxException(
            detail=f"a PATCH body must carry \"schemas\": [\"{PATCH_OP}\"] (RFC 7644 §3.5.2)"
        )
    ops = payload.get("Operations", payload.get("operations"))
    if not isinstance(ops, list) or not ops:
        raise InvalidSyntaxException(detail="a PATCH body needs 'Operations', a list of one or more operations")
    fixed: list[Any] = []
    for op in ops:
        if not isinstance(op, dict):
            raise InvalidSyntaxException(detail=f"a PATCH operation must be an object, got {op!r}")
        op = dict(op)
        path = op.get("path")
        if isinstance(path, str) and path.strip().lower() in _MANAGER_PATHS:
            # Entra's "manager" is the enterprise extension's (its example 5 uses the short path).
            op["path"] = f"{ENTERPRISE_USER}:manager"
            if "value" in op:
                op["value"] = _manager(op["value"])
        elif path is None and isinstance(op.get("value"), dict):
            value = dict(op["value"])
            for key in list(value):
                if key.lower() in _MANAGER_PATHS:
                    value[key] = _manager(value[key])
            op["value"] = value
        fixed.append(op)
    out = {k: v for k, v in payload.items() if k not in ("operations",)}
    out["Operations"] = fixed
    out["schemas"] = [PATCH_OP]
    return out
