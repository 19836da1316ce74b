"""What trust brings to the application (``core.registry``): its routes and its commands."""

from __future__ import annotations

import typer
from fastapi import APIRouter

from tenantry.core.access import ORGANIZATION
from tenantry.core.registry import Registry, RouteContext

# What an administrator running a command --as needs (docs/security.md, "Roles"); the routes name theirs.
COMMAND_ROLES: dict[str, tuple[str, ...]] = dict.fromkeys((
    "partner-app new", "partner-app list", "partner-app enable", "partner-app disable", "auth-config show",
    "auth-cert export", "auth-cert rotate publish-next", "auth-cert rotate switch", "auth-cert rotate retire-previous",
    "service-principal credential add", "service-principal show", "trust check"), (ORGANIZATION,))


def register(registry: Registry) -> None:
    registry.add_cli(_commands, roles=COMMAND_ROLES)
    registry.add_router(_router)
    registry.add_pages(_partner_router)   # /trust/{realm}/…: a partner's token, not the admin guard


def _router(ctx: RouteContext) -> APIRouter:
    from tenantry.trust import api

    return api.build_router(ctx.services.trust, ctx.tenant_of)


def _commands(root: typer.Typer) -> None:
    from tenantry.trust import cli

    cli.register(root)


def _partner_router(ctx: RouteContext) -> APIRouter:
    from tenantry.trust import partner_api

    return partner_api.build_router(ctx.services.partner_gate, ctx.services.partner_actions)
