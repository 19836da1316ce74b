"""What console sign-in brings to the application (``core.registry``): the admin routes of single sign-on, the
browser pages (``/auth/…``, outside the admin API's guard), the operator's commands (``tenantry admin …``,
``tenantry sign-in …``) and an hourly sweep of ended sessions and stale pending sign-ins."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import typer
from fastapi import APIRouter

from tenantry.core.access import ORGANIZATION
from tenantry.core.clock import utcnow
from tenantry.core.registry import Periodic, Registry, RouteContext

# What an administrator running a command --as needs (docs/security.md, "Roles"); the routes name theirs.
COMMAND_ROLES: dict[str, tuple[str, ...]] = dict.fromkeys(
    ("sign-in oidc set", "sign-in oidc show", "sign-in oidc remove"), (ORGANIZATION,))


def register(registry: Registry) -> None:
    registry.add_cli(_commands, roles=COMMAND_ROLES)
    registry.add_router(_router)
    registry.add_pages(_pages)
    registry.add_task("signin.sweep", _sweep)
    registry.add_periodic(Periodic("signin.sweep", timedelta(hours=1), lambda _services: [("signin.sweep", {})]))


def _router(ctx: RouteContext) -> APIRouter:
    from tenantry.auth import api

    return api.build_router(ctx.services.signin, ctx.tenant_of)


def _pages(ctx: RouteContext) -> APIRouter:
    from tenantry.auth import pages

    return pages.build_pages(ctx.services.signin)


def _sweep(services: Any, _kwargs: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"signin-sweep-{utcnow().isoformat()}", "kind": "signin.sweep", **services.signin.sweep()}


def _commands(root: typer.Typer) -> None:
    from tenantry.auth import cli

    cli.register(root)
