"""Admin REST routes for compliance (``/api/v1/tenants/{tenant}/…``): holds, retention, cases, search, audit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import ConfigDict, Field

from tenantry.archive.compliance import ComplianceService
from tenantry.archive.ediscovery import EDiscoveryService
from tenantry.archive.ledger import Ledger
from tenantry.archive.results import (
    AuditEntry,
    CaseInfo,
    CaseSearchResult,
    ContentSearchResult,
    DeletionCounts,
    ExportAccepted,
    ExportInfo,
    HoldInfo,
    JobAccepted,
    PolicyInfo,
    VerifyReport,
)
from tenantry.core.access import COMPLIANCE, EDISCOVERY, ORGANIZATION, Body, needs, principal_in
from tenantry.core.bounds import INT32_MAX, MAX_DAYS, Count, Offset
from tenantry.core.streaming import ClosingStreamingResponse
from tenantry.jobstore import JobInfo, JobStore


class HoldIn(Body):
    name: str
    user_id: str | None = None
    case_id: str | None = None
    query: str | None = None
    duration_days: int | None = Field(default=None, ge=0, le=MAX_DAYS)


class PolicyIn(Body):
    name: str
    retain_days: int | None = Field(default=None, ge=0, le=MAX_DAYS)
    delete_after_days: int | None = Field(default=None, ge=0, le=MAX_DAYS)
    users: list[str] = Field(default_factory=list)
    folders: list[str] = Field(default_factory=list)
    kinds: list[str] = Field(default_factory=list)


class CaseIn(Body):
    name: str
    description: str = ""


class CustodiansIn(Body):
    users: list[str]


class SearchIn(Body):
    query: str
    include_purges: bool = True


class ExportIn(Body):
    """An export asked for over HTTP. There is no destination: the server writes the export under its data
    folder and it is downloaded; a field it does not know (``destination``) is refused, not ignored."""

    model_config = ConfigDict(extra="forbid")

    query: str
    include_purges: bool = True
    deduplicate: bool = False


class ContentSearchIn(Body):
    query: str
    include_purges: bool = False
    users: list[str] = Field(default_factory=list)
    start: int = Field(default=0, ge=0, le=INT32_MAX)
    count: int = Field(default=50, ge=0, le=INT32_MAX)


# Most ids one delete request names: below every backend's bind-parameter limit (PostgreSQL: 65,535), so a
# longer list is a 422 at the edge, not a database error; a client deletes more in several requests.
MAX_DELETE_IDS = 10_000


class DeleteIn(Body):
    item_ids: list[Annotated[int, Field(ge=1, le=INT32_MAX)]] = Field(max_length=MAX_DELETE_IDS)


# Long by design (issue #11): a router factory is its routes, each a few lines over the service; splitting it
# would only scatter one part's URL table.
def build_router(compliance: ComplianceService, ediscovery: EDiscoveryService, ledger: Ledger,
                 tenant_of: Any, *, jobs: JobStore, enqueue: Callable[[str], None]) -> APIRouter:
    """``enqueue(job_id)`` hands a row of the ``jobs`` table to the job engine (a thread, or a Celery worker)."""
    router = APIRouter()
    base = "/tenants/{tenant_id}"

    def accepted(tenant: str, job: JobInfo, response: Response) -> str:
        """Hand the job to the engine; the address to follow it, also the answer's Location."""
        enqueue(job.id)
        location = f"/api/v1/tenants/{tenant}/jobs/{job.id}"
        response.headers["Location"] = location
        return location

    @router.get(base + "/holds", openapi_extra=needs(COMPLIANCE, EDISCOVERY))
    def holds(tenant_id: str, request: Request, all: bool = False) -> list[HoldInfo]:  # noqa: A002
        return compliance.holds(tenant_of(tenant_id, request), active_only=not all)

    @router.post(base + "/holds", status_code=201, openapi_extra=needs(COMPLIANCE))
    def place_hold(tenant_id: str, body: HoldIn, request: Request) -> HoldInfo:
        return compliance.place_hold(tenant_of(tenant_id, request), actor=actor(request), **body.model_dump())

    @router.post(base + "/holds/{hold_id}/release", openapi_extra=needs(COMPLIANCE))
    def release_hold(tenant_id: str, hold_id: str, request: Request) -> HoldInfo:
        return compliance.release_hold(tenant_of(tenant_id, request), hold_id, actor(request))

    @router.get(base + "/retention-policies", openapi_extra=needs(COMPLIANCE))
    def policies(tenant_id: str, request: Request) -> list[PolicyInfo]:
        return compliance.policies(tenant_of(tenant_id, request))

    @router.post(base + "/retention-policies", status_code=201, openapi_extra=needs(COMPLIANCE))
    def create_policy(tenant_id: str, body: PolicyIn, request: Request) -> PolicyInfo:
        return compliance.create_policy(tenant_of(tenant_id, request), actor=actor(request), **body.model_dump())

    @router.post(base + "/retention/apply", status_code=202, openapi_extra=needs(COMPLIANCE))
    def apply_retention(tenant_id: str, request: Request, response: Response) -> JobAccepted:
        """Start the retention job now: 202 and a job id; GET …/jobs/{id} follows its progress and counts."""
        tenant = tenant_of(tenant_id, request)
        job = jobs.create(tenant, "retention.apply", {}, actor(request))
        return JobAccepted(job_id=job.id, state=job.state, job=accepted(tenant, job, response))

    @router.post(base + "/items/delete", openapi_extra=needs(COMPLIANCE))
    async def delete_items(tenant_id: str, body: DeleteIn, request: Request) -> DeletionCounts:
        return await run_in_threadpool(compliance.delete_items, tenant_of(tenant_id, request), body.item_ids,
                                       actor(request))

    @router.post(base + "/cases", status_code=201, openapi_extra=needs(COMPLIANCE, EDISCOVERY))
    def create_case(tenant_id: str, body: CaseIn, request: Request) -> CaseInfo:
        return ediscovery.create_case(tenant_of(tenant_id, request), body.name, actor(request), body.description)

    @router.post(base + "/cases/{case}/custodians", openapi_extra=needs(COMPLIANCE, EDISCOVERY))
    def custodians(tenant_id: str, case: str, body: CustodiansIn, request: Request) -> list[str]:
        tenant = tenant_of(tenant_id, request)
        return ediscovery.add_custodians(tenant, ediscovery.find_case(tenant, case), body.users, actor(request))

    @router.post(base + "/cases/{case}/search", openapi_extra=needs(COMPLIANCE, EDISCOVERY))
    async def search(tenant_id: str, case: str, body: SearchIn, request: Request) -> CaseSearchResult:
        tenant = tenant_of(tenant_id, request)
        return await run_in_threadpool(ediscovery.run_search, tenant, ediscovery.find_case(tenant, case), body.query,
                                       actor(request), include_purges=body.include_purges)

    @router.post(base + "/cases/{case}/export", status_code=202, openapi_extra=needs(COMPLIANCE, EDISCOVERY))
    def export(tenant_id: str, case: str, body: ExportIn, request: Request, response: Response) -> ExportAccepted:
        """Start an export: 202 with the export's id (also its job's id). It is written under the server's data
        folder and downloaded from …/exports/{export_id}/download once it succeeded."""
        tenant = tenant_of(tenant_id, request)
        case_id = ediscovery.find_case(tenant, case)
        job = ediscovery.start_export(tenant, case_id, body.query, actor(request), include_purges=body.include_purges,
                                      deduplicate=body.deduplicate)
        return ExportAccepted(job_id=job.id, state=job.state, job=accepted(tenant, job, response), export_id=job.id,
                              export=f"/api/v1/tenants/{tenant}/cases/{case_id}/exports/{job.id}")

    @router.get(base + "/cases/{case}/exports", openapi_extra=needs(COMPLIANCE, EDISCOVERY))
    def exports(tenant_id: str, case: str, request: Request) -> list[ExportInfo]:
        tenant = tenant_of(tenant_id, request)
        return ediscovery.exports(tenant, ediscovery.find_case(tenant, case))

    @router.get(base + "/cases/{case}/exports/{export_id}", openapi_extra=needs(COMPLIANCE, EDISCOVERY))
    def export_info(tenant_id: str, case: str, export_id: str, request: Request) -> ExportInfo:
        tenant = tenant_of(tenant_id, request)
        return ediscovery.export_info(tenant, ediscovery.find_case(tenant, case), export_id)

    @router.get(base + "/cases/{case}/exports/{export_id}/download", openapi_extra=needs(COMPLIANCE, EDISCOVERY))
    def export_download(tenant_id: str, case: str, export_id: str, request: Request) -> Response:
        """The export folder as a zip, streamed as it is read (409 while the export is not finished)."""
        tenant = tenant_of(tenant_id, request)
        name, chunks = ediscovery.export_download(tenant, ediscovery.find_case(tenant, case), export_id,
                                                  actor(request))
        return ClosingStreamingResponse(chunks, media_type="application/zip",
                                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @router.delete(base + "/cases/{case}/exports/{export_id}", status_code=204,
                   openapi_extra=needs(COMPLIANCE, EDISCOVERY))
    def delete_export(tenant_id: str, case: str, export_id: str, request: Request) -> None:
        """Remove the export's files from the server once downloaded (409 while it runs); audited."""
        tenant = tenant_of(tenant_id, request)
        ediscovery.delete_export(tenant, ediscovery.find_case(tenant, case), export_id, actor(request))

    @router.post(base + "/search", openapi_extra=needs(COMPLIANCE, EDISCOVERY))
    async def content_search(tenant_id: str, body: ContentSearchIn, request: Request) -> ContentSearchResult:
        return await run_in_threadpool(ediscovery.content_search, tenant_of(tenant_id, request), body.query,
                                       actor(request), users=body.users or None, include_purges=body.include_purges,
                                       start=body.start, count=body.count)

    @router.get(base + "/audit", openapi_extra=needs(COMPLIANCE, ORGANIZATION))
    def audit(tenant_id: str, request: Request, action: str | None = None, limit: Count = 100,
              offset: Offset = 0) -> list[AuditEntry]:
        return ledger.entries(tenant_of(tenant_id, request), action=action, limit=min(limit, 1000), offset=offset)

    @router.get(base + "/verify", openapi_extra=needs(COMPLIANCE, ORGANIZATION))
    async def verify(tenant_id: str, request: Request) -> VerifyReport:
        return await run_in_threadpool(ledger.verify, tenant_of(tenant_id, request))

    return router


def actor(request: Request) -> str:
    """How the audit trail names the caller: the authenticated principal, never a name the body gives."""
    return principal_in(request).actor
