"""What the archive brings to the application (``core.registry``): its routes (compliance, eDiscovery, ledger),
the retention and export jobs, and the daily retention of every tenant as periodic work."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import typer
from fastapi import APIRouter

from tenantry.core.access import COMPLIANCE, EDISCOVERY, IMPORT, ORGANIZATION
from tenantry.core.clock import utcnow
from tenantry.core.registry import Periodic, Registry, RouteContext
from tenantry.core.results import plain

RETENTION_EVERY = timedelta(days=1)


# What an administrator running a command --as needs (docs/security.md, "Roles"); the routes name theirs.
_CASES = (COMPLIANCE, EDISCOVERY)
COMMAND_ROLES: dict[str, tuple[str, ...]] = {
    "archive mailboxes": (COMPLIANCE, EDISCOVERY, IMPORT),
    **dict.fromkeys(("archive items", "archive show", "archive export", "search", "hold list", "case create",
                     "case custodian", "case hold", "case search", "case close", "case export",
                     "case verify-export"), _CASES),
    **dict.fromkeys(("archive delete", "archive remove-mailbox", "hold place", "hold release", "retention list",
                     "retention create", "retention disable", "retention apply"), (COMPLIANCE,)),
    **dict.fromkeys(("archive audit", "audit", "archive verify", "archive reindex"), (COMPLIANCE, ORGANIZATION)),
}


def register(registry: Registry) -> None:
    registry.add_cli(_commands, roles=COMMAND_ROLES)
    registry.add_router(_router)
    registry.add_task("retention.apply", _retention)
    registry.add_tracked("retention.apply", _tracked_retention)
    registry.add_tracked("ediscovery.export", _tracked_export)
    # Daily, for every tenant (idempotent: an item past its retention is removed once).
    registry.add_periodic(Periodic("retention.daily", RETENTION_EVERY, lambda services: [
        ("retention.apply", {"tenant": row.id}) for row in services.directory.list_tenants()]))


def _router(ctx: RouteContext) -> APIRouter:
    from tenantry.archive import api

    s = ctx.services
    return api.build_router(s.compliance, s.ediscovery, s.ledger, ctx.tenant_of, jobs=s.jobstore, enqueue=ctx.enqueue)


# Jobs answer JSON-ready dicts (core.registry's Task and Tracked): the job engine keeps a result as JSON.


def _retention(services: Any, kwargs: dict[str, Any]) -> dict[str, Any]:   # dict: a job's result (JSON)
    counts = services.compliance.apply_retention(kwargs["tenant"])
    return {"id": f"retention-{kwargs['tenant']}-{utcnow().isoformat()}", "tenant": kwargs["tenant"], **plain(counts)}


def _tracked_retention(services: Any, _job_id: str, tenant: str, _params: dict[str, Any],
                       progress: Any) -> dict[str, Any]:   # dict: a job's result (JSON)
    return {"tenant": tenant, **plain(services.compliance.apply_retention(tenant, progress=progress))}


def _tracked_export(services: Any, job_id: str, tenant: str, params: dict[str, Any],
                    progress: Any) -> dict[str, Any]:   # dict: a job's result (JSON), an ExportReport's fields
    report: dict[str, Any] = plain(services.ediscovery.run_export_job(job_id, tenant, params, progress))
    return report


def _commands(root: typer.Typer) -> None:
    from tenantry.archive import cli

    cli.register(root)
