"""Admin REST routes for jobs (``/api/v1/tenants/{tenant}/jobs``): the state of what a 202 answer started.

A job shows what it works on (an export's query, a cycle's app), so an administrator sees the jobs of the parts
their roles open (``JOB_ROLES``): any administrator may ask, and is shown those.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from tenantry.core import access
from tenantry.core.access import (
    ADMIN_ROLES,
    APPLICATIONS,
    COMPLIANCE,
    EDISCOVERY,
    IMPORT,
    ORGANIZATION,
    needs,
    principal_in,
)
from tenantry.core.bounds import Count
from tenantry.core.principals import Principal
from tenantry.jobstore import JobInfo, JobStore

# A job kind's prefix → the roles that may see its jobs; another kind: Organization Management.
JOB_ROLES: dict[str, tuple[str, ...]] = {
    "ediscovery.": (COMPLIANCE, EDISCOVERY),
    "retention.": (COMPLIANCE,),
    "provisioning.": (APPLICATIONS, ORGANIZATION),
    "connector.": (IMPORT, ORGANIZATION, COMPLIANCE),
}


def roles_for(kind: str) -> tuple[str, ...]:
    return next((roles for prefix, roles in JOB_ROLES.items() if kind.startswith(prefix)), (ORGANIZATION,))


def build_router(store: JobStore, tenant_of: Any) -> APIRouter:
    router = APIRouter()

    def visible(principal: Principal, job: JobInfo) -> bool:
        return principal.holds_any(roles_for(job.kind))

    @router.get("/tenants/{tenant_id}/jobs", openapi_extra=needs(*ADMIN_ROLES))
    def jobs(tenant_id: str, request: Request, kind: str | None = None, limit: Count = 100) -> list[JobInfo]:
        """The tenant's jobs your roles open, newest first."""
        principal = principal_in(request)
        listed = store.list(tenant_of(tenant_id, request), kind=kind, limit=min(limit, 1000))
        return [job for job in listed if visible(principal, job)]

    @router.get("/tenants/{tenant_id}/jobs/{job_id}", openapi_extra=needs(*ADMIN_ROLES))
    def job(tenant_id: str, job_id: str, request: Request) -> JobInfo:
        """State (queued, running, succeeded, failed), progress (done/total), and the result or the error.
        The id is looked up inside the tenant: another tenant's job is 404; one of a part your roles do not
        open is 403."""
        found = store.get(tenant_of(tenant_id, request), job_id)
        access.require(principal_in(request), roles_for(found.kind), f"a {found.kind} job")
        return found

    return router
