"""Which roles open which door (issue #12): each admin route names the roles that may call it, beside the route.

A route says ``@router.post(..., openapi_extra=needs(COMPLIANCE))``; the API guard (``directory.api``) checks the
caller's principal against it before the body is read, and refuses a route under ``/tenants/{tenant_id}`` that
names no roles (closed by default). The OpenAPI document shows each operation's roles (``x-tenantry-roles``).
The role names are the catalogue's (``directory.catalogue.ROLES``); the table of who may do what is in
docs/security.md, "Roles".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, model_validator
from starlette.requests import Request

from tenantry.core.errors import Forbidden
from tenantry.core.principals import Principal

ROLES_KEY = "x-tenantry-roles"

ORGANIZATION = "Organization Management"
COMPLIANCE = "Compliance Administrator"
EDISCOVERY = "eDiscovery Manager"
IMPORT = "Mailbox Import Export"
APPLICATIONS = "Application Administrator"
VOICE = "Voice Administrator"
# The administrator roles: every other role in the catalogue is a partner application's (part E).
ADMIN_ROLES = (ORGANIZATION, COMPLIANCE, EDISCOVERY, IMPORT, APPLICATIONS, VOICE)

# Where each role is granted: the built-in role group that holds it, or how to make one (seed 000 leaves
# Mailbox Import Export to an administrator's decision: no built-in group holds it).
GRANTED_BY = {
    ORGANIZATION: "Organization Management",
    COMPLIANCE: "Compliance Management",
    EDISCOVERY: "eDiscovery Management",
    APPLICATIONS: "Application Management",
}


def needs(*roles: str) -> dict[str, Any]:
    """The ``openapi_extra`` of a route any of ``roles`` may call."""
    unknown = [r for r in roles if r not in ADMIN_ROLES]
    if not roles or unknown:
        raise ValueError(f"a route needs one or more of {ADMIN_ROLES}, not {roles}")
    return {ROLES_KEY: list(roles)}


def route_roles(openapi_extra: dict[str, Any] | None) -> list[str] | None:
    """The roles a route declared, or None when it declared none."""
    declared = (openapi_extra or {}).get(ROLES_KEY)
    return list(declared) if declared else None


def grant_hint(role: str, who: str) -> str:
    """The command that gives ``who`` the role (for a denial's message)."""
    group = GRANTED_BY.get(role)
    if group is not None:
        return f"tenantry directory role-group-member '{group}' {who}"
    return (f"tenantry directory role-group-add Importers --role '{role}' (once), then "
            f"tenantry directory role-group-member Importers {who}")


def require(principal: Principal, roles: Iterable[str], what: str) -> None:
    """Forbidden unless the principal holds one of ``roles``; the message names them and how to grant one."""
    wanted = list(roles)
    if principal.holds_any(wanted):
        return
    held = ", ".join(sorted(principal.roles)) or "no role"
    raise Forbidden(f"{what} needs the role {' or '.join(repr(r) for r in wanted)}; {principal.name} holds {held}. "
                    f"An administrator with Organization Management grants it: {grant_hint(wanted[0], principal.name)}")


def principal_in(request: Request) -> Principal:
    """The principal the API guard resolved for this request (every ``/api/v1`` route passes the guard first)."""
    found = getattr(request.state, "principal", None)
    if not isinstance(found, Principal):
        raise Forbidden("no authenticated principal for this request")
    return found


class Body(BaseModel):
    """An admin API body. Who acts is the authenticated caller (issue #12): a body that still names one
    (``actor``, ``created_by``, ``admin_user``, ``by``) is refused, so a client never believes it was recorded."""

    @model_validator(mode="before")
    @classmethod
    def _no_claimed_actor(cls, data: Any) -> Any:
        if isinstance(data, dict):
            claimed = sorted(CLAIMED_ACTOR_FIELDS & data.keys())
            if claimed:
                raise ValueError(f"{', '.join(claimed)}: who acts is the authenticated caller (the token's "
                                 "administrator), not a field of the body; remove it")
        return data


CLAIMED_ACTOR_FIELDS = frozenset({"actor", "created_by", "admin_user", "by"})
