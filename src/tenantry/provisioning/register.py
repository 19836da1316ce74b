"""What provisioning brings to the application (``core.registry``): its routes, the cycle job, and the cycles
of enabled apps as due work."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import typer
from fastapi import APIRouter

from tenantry.core.access import APPLICATIONS, ORGANIZATION
from tenantry.core.clock import utcnow
from tenantry.core.errors import Conflict
from tenantry.core.registry import Registry, RouteContext
from tenantry.provisioning.results import CycleTrigger

# What an administrator running a command --as needs (docs/security.md, "Roles"); the routes name theirs.
COMMAND_ROLES: dict[str, tuple[str, ...]] = dict.fromkeys(
    (f"provisioning {name}" for name in (
        "apps", "app-add", "app-update", "status", "config", "assign", "unassign", "roles", "role-add",
        "role-update", "role-delete", "scope", "start", "stop", "restart", "run", "on-demand", "logs")),
    (APPLICATIONS, ORGANIZATION))


def register(registry: Registry) -> None:
    registry.add_cli(_commands, roles=COMMAND_ROLES)
    registry.add_router(_router)
    registry.add_task("provisioning.run", _run)
    registry.add_due(_due)


def _router(ctx: RouteContext) -> APIRouter:
    from tenantry.provisioning import api

    return api.build_router(ctx.services.provisioning, ctx.tenant_of, ctx.submit)


def _run(services: Any, kwargs: dict[str, Any]) -> dict[str, Any]:  # dict: a job's result (core.registry.Task)
    try:
        report = services.provisioning.run_cycle(kwargs["tenant"], kwargs["app_id"],
                                                 trigger=kwargs.get("trigger", CycleTrigger.MANUAL))
    except Conflict as exc:   # a cycle of this app is still running: this one is not needed
        return {"id": f"provisioning-{kwargs['app_id']}-{utcnow().isoformat()}", "status": "skipped",
                "reason": exc.message}
    return dict(report.as_dict())


def _due(services: Any, now: datetime) -> list[tuple[str, dict[str, Any]]]:  # dict: the job's keyword arguments
    return [("provisioning.run", {"tenant": tenant, "app_id": app_id, "trigger": CycleTrigger.SCHEDULE.value})
            for tenant, app_id in services.provisioning.claim_due(now)]


def _commands(root: typer.Typer) -> None:
    from tenantry.provisioning import cli

    cli.register(root)
