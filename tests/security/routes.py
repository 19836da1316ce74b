"""The route table of ``create_app``, as (METHOD, path template) pairs, for the suites generated from it."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Route

SCIM_PREFIXES = ("/tenants/{tenant_id}/scim/v2", "/scim/v2")
# Read by anyone, the same for every tenant: RFC 7644 §4 discovery (and the refusal of writes to it, 405),
# the health check.
SCIM_DISCOVERY = ("/ServiceProviderConfig", "/Schemas", "/ResourceTypes")
# The browser's pages — sign-in (auth/pages.py) and the console (console/pages.py, ``/`` and ``/console/…``): their
# credential is the console session cookie, never a bearer token.
BROWSER_PREFIX = "/auth/"
CONSOLE_PREFIX = "/console/"
# The partner endpoints (trust/partner_api.py): their credential is a partner's token (or, at the token endpoint,
# its client assertion), never an admin, SCIM or operator token. The documents partners fetch first are public.
PARTNER_PREFIX = "/trust/{realm}/"
PARTNER_DOCUMENTS = ("/metadata/json/1", "/.well-known/oauth-authorization-server", "/jwks")


def api_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path template) the application answers, sub-routers included."""
    try:
        from fastapi.routing import iter_route_contexts  # FastAPI ≥ 0.16x keeps included routers lazily
    except ImportError:  # pragma: no cover - older FastAPI flattens included routes into app.routes
        pairs: list[tuple[Any, str]] = [(r, getattr(r, "path", "")) for r in app.routes]
    else:
        pairs = [(c.original_route, c.path or "") for c in iter_route_contexts(app.routes)]
    out = [(method, path) for route, path in pairs if _answers(route, path) for method in route.methods
           if not (method == "HEAD" and not isinstance(route, APIRoute))]   # Starlette's HEAD is its GET
    return sorted(set(out), key=lambda mp: (mp[1], mp[0]))


def _answers(route: Any, path: str) -> bool:
    """An application route: an APIRoute, or one of SCIM's (plain Starlette routes, which skip FastAPI's parameter
    solving: scim_api.build_router). The OpenAPI document and docs pages are Starlette routes too, and are not."""
    return isinstance(route, APIRoute) or (isinstance(route, Route) and scim_suffix(path) is not None)


def scim_suffix(path: str) -> str | None:
    """The part after the SCIM prefix (``/Users``…), or None for a route that is not SCIM."""
    for prefix in SCIM_PREFIXES:
        if path.startswith(prefix + "/") or path == prefix:
            return path[len(prefix):]
    return None


def is_browser(path: str) -> bool:
    return path in ("/", CONSOLE_PREFIX.rstrip("/")) or path.startswith((BROWSER_PREFIX, CONSOLE_PREFIX))


def is_partner(path: str) -> bool:
    return path.startswith(PARTNER_PREFIX)


def is_public(method: str, path: str) -> bool:
    """Routes that answer without a credential (docs/security.md): nothing of any tenant is behind them (a
    realm's signing keys and endpoints are published for partners by design: public keys, no secret)."""
    if path == "/healthz":
        return True
    if is_partner(path) and method == "GET" and path.removeprefix(PARTNER_PREFIX[:-1]) in PARTNER_DOCUMENTS:
        return True
    suffix = scim_suffix(path)
    return suffix is not None and suffix.split("/")[1] in {d.strip("/") for d in SCIM_DISCOVERY}


def fill(template: str, values: dict[str, str]) -> str:
    """``/tenants/{tenant_id}/users/{user_id}`` with the values (``{x:path}`` convertors included)."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"no value for {{{name}}} in {template}")
        return quote(values[name], safe="")

    return re.sub(r"\{(\w+)(?::\w+)?\}", one, template)


# A value for every path parameter of the route table: ids that name nothing (the suites need the door's answer,
# not the room's).
PLACEHOLDERS = {"endpoint": "Users", "schema_id": "x", "type_id": "User", "_id": "x", "user_id": "u",
                "item_id": "1", "connector": "c", "run_id": "r", "hold_id": "h", "case": "c", "name": "n",
                "app": "a", "principal_type": "User", "principal_id": "p", "resource_id": "r", "export_id": "e",
                "job_id": "j", "role": "r", "partner": "p", "key_id": "k",
                "assignment_id": "a", "realm": "00000000-0000-0000-0000-000000000000", "user": "u",
                "server": "s", "gateway": "g", "target": "t", "identity": "i"}


def route_roles_table(app: FastAPI) -> list[tuple[str, str, list[str] | None]]:
    """(method, path, the roles the route names) for every admin route under ``/api/v1/tenants/{tenant_id}``."""
    from tenantry.core.access import route_roles

    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # pragma: no cover - older FastAPI flattens included routes into app.routes
        pairs: list[tuple[Any, str]] = [(r, getattr(r, "path", "")) for r in app.routes]
    else:
        pairs = [(c.original_route, c.path or "") for c in iter_route_contexts(app.routes)]
    out = {(method, path, tuple(route_roles(route.openapi_extra) or ()) or None)
           for route, path in pairs if isinstance(route, APIRoute) and path.startswith("/api/v1/tenants/{tenant_id}")
           for method in route.methods}
    return sorted(((m, p, list(r) if r else None) for m, p, r in out), key=lambda row: (row[1], row[0]))
