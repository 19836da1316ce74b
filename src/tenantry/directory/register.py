"""What the directory brings to the application (``core.registry``): its admin routes, and the daily sweep of
every tenant's SCIM request log as periodic work. (The SCIM protocol mounts themselves are wired in
``tenantry.app``: they have their own prefixes and credential.)"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import typer
from fastapi import APIRouter

from tenantry.core.access import ADMIN_ROLES, APPLICATIONS, ORGANIZATION
from tenantry.core.clock import utcnow
from tenantry.core.registry import Periodic, Registry, RouteContext

# What an administrator running a command --as needs (docs/security.md, "Roles"); the routes name theirs.
_READ = ADMIN_ROLES
COMMAND_ROLES: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("directory users", "directory groups", "directory domains", "directory licences",
                     "directory role-groups"), _READ),
    **dict.fromkeys(("directory user-add", "directory domain-add", "directory domain-verify",
                     "directory domain-remove", "directory licence-assign", "directory licence-remove",
                     "directory role-group-add", "directory role-group-member"), (ORGANIZATION,)),
    # Seed 002 step 2: application accounts and their directly assigned roles.
    **dict.fromkeys(("directory mail-user new", "directory mail-user set", "directory role-assignment new",
                     "directory role-assignment list", "directory role-assignment remove"), (ORGANIZATION,)),
    "scim log": (ORGANIZATION, APPLICATIONS),
}


def register(registry: Registry) -> None:
    registry.add_cli(_commands, roles=COMMAND_ROLES)
    registry.add_router(_router)
    registry.add_task("scim_log.purge", _scim_log_purge)
    registry.add_periodic(Periodic("scim_log.purge", timedelta(days=1), lambda _services: [("scim_log.purge", {})]))


def _router(ctx: RouteContext) -> APIRouter:
    from tenantry.directory import api

    return api.build_router(ctx.services.scim, ctx.services.directory, ctx.services.scim_log)


def _scim_log_purge(services: Any, _kwargs: dict[str, Any]) -> dict[str, Any]:  # dict: a job result (JSON)
    # Every tenant's SCIM request log past TENANTRY_SCIM_LOG_DAYS: a tenant whose identity provider went quiet
    # is not purged by its own writes (directory.scim_log). Idempotent.
    return {"id": f"scim-log-purge-{utcnow().isoformat()}", "kind": "scim_log.purge",
            "deleted": services.scim_log.purge()}


def _commands(root: typer.Typer) -> None:
    from tenantry.directory import cli

    cli.register(root)
