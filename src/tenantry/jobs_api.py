"""Admin REST routes for jobs (``/api/v1/tenants/{tenant}/jobs``): the state of what a 202 answer started."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from tenantry.core.bounds import Count
from tenantry.jobstore import JobInfo, JobStore


def build_router(store: JobStore, tenant_of: Any) -> APIRouter:
    router = APIRouter()

    @router.get("/tenants/{tenant_id}/jobs")
    def jobs(tenant_id: str, request: Request, kind: str | None = None, limit: Count = 100) -> list[JobInfo]:
        """The tenant's jobs, newest first."""
        return store.list(tenant_of(tenant_id, request), kind=kind, limit=min(limit, 1000))

    @router.get("/tenants/{tenant_id}/jobs/{job_id}")
    def job(tenant_id: str, job_id: str, request: Request) -> JobInfo:
        """State (queued, running, succeeded, failed), progress (done/total), and the result or the error.
        The id is looked up inside the tenant: another tenant's job is 404."""
        return store.get(tenant_of(tenant_id, request), job_id)

    return router
