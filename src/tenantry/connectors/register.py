"""What the connectors bring to the application (``core.registry``): their routes, their run job, and the
daily runs of enabled connectors as due work."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import typer
from fastapi import APIRouter

from tenantry.connectors.models import RunTrigger
from tenantry.core.access import COMPLIANCE, IMPORT, ORGANIZATION
from tenantry.core.registry import Registry, RouteContext
from tenantry.core.results import plain

# A claimed run is leased for an hour: a queued job is not queued again before it had its chance.
RUN_LEASE = timedelta(hours=1)


# What an administrator running a command --as needs (docs/security.md, "Roles"); the routes name theirs.
COMMAND_ROLES: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("connector list", "connector review", "connector report"), (IMPORT, ORGANIZATION, COMPLIANCE)),
    **dict.fromkeys(("connector create", "connector mapping", "connector set", "connector enable",
                     "connector upload", "connector run"), (IMPORT,)),
    "connector disable": (IMPORT, ORGANIZATION),
    "connector consent": (ORGANIZATION,),
}


def register(registry: Registry) -> None:
    registry.add_cli(_commands, roles=COMMAND_ROLES)
    registry.add_router(_router)
    registry.add_task("connector.run", _run)
    # The console's "run now" and its upload: a run in the background, followed through its row (and the run's).
    registry.add_tracked("connector.run", _tracked_run)
    registry.add_due(_due)


def _router(ctx: RouteContext) -> APIRouter:
    from tenantry.connectors import api

    services = ctx.services
    return api.build_router(services.connectors, services.archive, ctx.tenant_of,
                            body_max_bytes=services.settings.admin_body_max_bytes)


def _run(services: Any, kwargs: dict[str, Any]) -> dict[str, Any]:  # dict: a job's result, kept as JSON
    report = services.connectors.run(kwargs["tenant"], kwargs["connector_id"],
                                     trigger=RunTrigger(kwargs.get("trigger", RunTrigger.MANUAL)))
    result: dict[str, Any] = plain(report)
    return result


def _tracked_run(services: Any, _job_id: str, tenant: str, params: dict[str, Any],
                 progress: Any) -> dict[str, Any]:   # dict: a job's result (JSON), the run report's fields
    report: dict[str, Any] = plain(services.connectors.run(tenant, params["connector_id"], progress=progress))
    return report


def _due(services: Any, now: datetime) -> list[tuple[str, dict[str, Any]]]:
    return [("connector.run", {"tenant": tenant, "connector_id": cid, "trigger": RunTrigger.SCHEDULE.value})
            for tenant, cid in services.connectors.claim_due(now, RUN_LEASE)]


def _commands(root: typer.Typer) -> None:
    from tenantry.connectors import cli

    cli.register(root)
