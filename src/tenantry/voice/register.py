"""What voice brings to the application (``core.registry``): its routes and its commands."""

from __future__ import annotations

import typer
from fastapi import APIRouter

from tenantry.core.access import ORGANIZATION, VOICE
from tenantry.core.registry import Registry, RouteContext

# What an administrator running a command --as needs (docs/security.md, "Roles"); the routes name theirs.
COMMAND_ROLES: dict[str, tuple[str, ...]] = dict.fromkeys((
    "voice site new", "voice site list",
    "voice mediation-server new", "voice mediation-server list", "voice mediation-server set",
    "voice gateway new", "voice gateway list",
    "voice trunk new", "voice trunk list", "voice trunk remove",
    "voice hybrid-config set", "voice hybrid-config show", "voice federation set", "voice federation show",
    "voice user set", "voice user show", "voice user list", "voice user grant-policy",
    "voice user pstn-site set", "voice user pstn-site show", "voice check",
    "voice ca new", "voice ca import", "voice ca show", "voice ca issue", "voice gateway certificate",
    "voice route"),
    (VOICE, ORGANIZATION))


def register(registry: Registry) -> None:
    registry.add_cli(_commands, roles=COMMAND_ROLES)
    registry.add_router(_router)


def _router(ctx: RouteContext) -> APIRouter:
    from tenantry.voice import api

    return api.build_router(ctx.services.voice, ctx.services.voice_certificates, ctx.tenant_of,
                            ctx.services.settings)


def _commands(root: typer.Typer) -> None:
    from tenantry.voice import cli

    cli.register(root)
