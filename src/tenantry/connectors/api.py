"""Admin REST routes for connectors and the archive (``/api/v1/tenants/{tenant}/…``): thin over the services."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from tenantry.archive.service import ArchiveService, MailboxInfo
from tenantry.connectors.models import BuiltinTarget
from tenantry.connectors.results import (
    ConnectorInfo,
    ConnectorReview,
    ExportAdded,
    MappingUpload,
    RunReport,
    RunSummary,
)
from tenantry.connectors.service import ConnectorService
from tenantry.connectors.wizard import DEFAULT_OVERLAP_HOURS, MAX_OVERLAP_HOURS
from tenantry.core.access import COMPLIANCE, EDISCOVERY, IMPORT, ORGANIZATION, Body, needs, principal_in
from tenantry.core.bounds import INT32_MAX, MAX_DAYS, Count, ItemId, Offset
from tenantry.core.errors import Invalid, PayloadTooLarge
from tenantry.core.streaming import bounded_chunks, read_bounded


class ConnectorIn(Body):
    name: str
    kind: str
    accept_terms: bool = False
    source: dict[str, Any] = Field(default_factory=dict)
    source_password: str | None = None
    target: dict[str, Any] = Field(default_factory=lambda: {"kind": BuiltinTarget.STORE})
    target_secret: dict[str, Any] | None = None
    use_directory_mobiles: bool = True
    outsider_domain: str = "whatsapp.invalid"
    max_item_bytes: int = Field(default=10 * 1024 * 1024, ge=1, le=INT32_MAX)
    run_at: str = "02:00"
    backfill_days: int = Field(default=30, ge=0, le=MAX_DAYS)
    overlap_hours: int = Field(default=DEFAULT_OVERLAP_HOURS, ge=DEFAULT_OVERLAP_HOURS, le=MAX_OVERLAP_HOURS)


class ConnectorSettingsIn(Body):
    run_at: str | None = None
    overlap_hours: int | None = Field(default=None, ge=DEFAULT_OVERLAP_HOURS, le=MAX_OVERLAP_HOURS)


def _too_large(setting: str) -> Callable[[str], Exception]:
    return lambda message: PayloadTooLarge(f"{message} ({setting})")


def build_router(connectors: ConnectorService, archive: ArchiveService, tenant_of: Any, *,
                 body_max_bytes: int = 16 * 1024 * 1024) -> APIRouter:
    router = APIRouter()
    _wizard_routes(router, connectors, tenant_of, body_max_bytes)
    _run_routes(router, connectors, tenant_of)
    _mailbox_routes(router, archive, tenant_of)
    return router


def _wizard_routes(router: APIRouter, connectors: ConnectorService, tenant_of: Any, body_max_bytes: int) -> None:
    """A connector's lifecycle: create, show, configure, mapping, consent, review, enable, disable."""

    @router.get("/tenants/{tenant_id}/connectors", openapi_extra=needs(IMPORT, ORGANIZATION, COMPLIANCE))
    def list_connectors(tenant_id: str, request: Request) -> list[ConnectorInfo]:
        return connectors.list_connectors(tenant_of(tenant_id, request))

    @router.post("/tenants/{tenant_id}/connectors", status_code=201, openapi_extra=needs(IMPORT))
    def create_connector(tenant_id: str, body: ConnectorIn, request: Request) -> ConnectorInfo:
        return connectors.create(tenant_of(tenant_id, request), by=principal_in(request), **body.model_dump())

    @router.get("/tenants/{tenant_id}/connectors/{connector}", openapi_extra=needs(IMPORT, ORGANIZATION, COMPLIANCE))
    def get_connector(tenant_id: str, connector: str, request: Request) -> ConnectorInfo:
        tenant = tenant_of(tenant_id, request)
        return connectors.describe(tenant, connectors.find(tenant, connector))

    @router.patch("/tenants/{tenant_id}/connectors/{connector}", openapi_extra=needs(IMPORT))
    def configure_connector(tenant_id: str, connector: str, body: ConnectorSettingsIn,
                            request: Request) -> ConnectorInfo:
        tenant = tenant_of(tenant_id, request)
        return connectors.configure(tenant, connectors.find(tenant, connector), **body.model_dump())

    @router.put("/tenants/{tenant_id}/connectors/{connector}/mapping", openapi_extra=needs(IMPORT))
    async def put_mapping(tenant_id: str, connector: str, request: Request) -> MappingUpload:
        tenant = tenant_of(tenant_id, request)
        raw = await read_bounded(request, body_max_bytes, _too_large("TENANTRY_ADMIN_BODY_MAX_BYTES"))
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Invalid("the mapping CSV must be UTF-8") from exc
        return connectors.upload_mapping(tenant, connectors.find(tenant, connector), text)

    @router.post("/tenants/{tenant_id}/connectors/{connector}/consent", openapi_extra=needs(ORGANIZATION))
    def consent(tenant_id: str, connector: str, request: Request) -> ConnectorInfo:
        """Admin consent, given by the administrator asking (Organization Management)."""
        tenant = tenant_of(tenant_id, request)
        return connectors.consent(tenant, connectors.find(tenant, connector), principal_in(request))

    @router.get("/tenants/{tenant_id}/connectors/{connector}/review",
                openapi_extra=needs(IMPORT, ORGANIZATION, COMPLIANCE))
    def review(tenant_id: str, connector: str, request: Request) -> ConnectorReview:
        tenant = tenant_of(tenant_id, request)
        return connectors.review(tenant, connectors.find(tenant, connector))

    @router.post("/tenants/{tenant_id}/connectors/{connector}/enable", openapi_extra=needs(IMPORT))
    def enable(tenant_id: str, connector: str, request: Request) -> ConnectorInfo:
        tenant = tenant_of(tenant_id, request)
        return connectors.enable(tenant, connectors.find(tenant, connector))

    @router.post("/tenants/{tenant_id}/connectors/{connector}/disable", openapi_extra=needs(IMPORT, ORGANIZATION))
    def disable(tenant_id: str, connector: str, request: Request) -> ConnectorInfo:
        tenant = tenant_of(tenant_id, request)
        return connectors.disable(tenant, connectors.find(tenant, connector))


def _run_routes(router: APIRouter, connectors: ConnectorService, tenant_of: Any) -> None:
    """What a run reads (export files handed in), runs now, and their reports."""

    @router.post("/tenants/{tenant_id}/connectors/{connector}/exports", status_code=201, openapi_extra=needs(IMPORT))
    async def upload_export(tenant_id: str, connector: str, request: Request, owner: str, filename: str,
                            chat_name: str | None = None) -> ExportAdded:
        """The body is the export file; it streams to the upload folder (never memory), 413 past the limit."""
        tenant = tenant_of(tenant_id, request)
        connector_id = connectors.find(tenant, connector)
        path = connectors.incoming_file()
        try:
            with path.open("wb") as out:
                async for chunk in bounded_chunks(request, connectors.upload_max_bytes,
                                                  _too_large("TENANTRY_UPLOAD_MAX_BYTES"), "the upload"):
                    out.write(chunk)
            result: ExportAdded = await run_in_threadpool(
                connectors.add_export, tenant, connector_id, path, filename, owner, chat_name, move=True)
            return result
        finally:
            path.unlink(missing_ok=True)  # nothing partial is kept; add_export moved a complete file away

    @router.post("/tenants/{tenant_id}/connectors/{connector}/runs", status_code=201, openapi_extra=needs(IMPORT))
    def run_now(tenant_id: str, connector: str, request: Request) -> RunReport:
        tenant = tenant_of(tenant_id, request)
        return connectors.run(tenant, connectors.find(tenant, connector))

    @router.get("/tenants/{tenant_id}/connectors/{connector}/runs",
                openapi_extra=needs(IMPORT, ORGANIZATION, COMPLIANCE))
    def runs(tenant_id: str, connector: str, request: Request) -> list[RunSummary]:
        tenant = tenant_of(tenant_id, request)
        return connectors.runs(tenant, connectors.find(tenant, connector))

    @router.get("/tenants/{tenant_id}/runs/{run_id}", openapi_extra=needs(IMPORT, ORGANIZATION, COMPLIANCE))
    def run_report(tenant_id: str, run_id: str, request: Request) -> RunReport:
        return connectors.report(tenant_of(tenant_id, request), run_id)


def _mailbox_routes(router: APIRouter, archive: ArchiveService, tenant_of: Any) -> None:
    """Reading what the connectors delivered: mailboxes, their items, an item's bytes, a mailbox as mbox."""

    @router.get("/tenants/{tenant_id}/mailboxes", openapi_extra=needs(COMPLIANCE, EDISCOVERY, IMPORT))
    def mailboxes(tenant_id: str, request: Request) -> list[MailboxInfo]:
        return archive.mailboxes(tenant_of(tenant_id, request))

    @router.get("/tenants/{tenant_id}/mailboxes/{user_id}/items", openapi_extra=needs(COMPLIANCE, EDISCOVERY))
    def items(tenant_id: str, user_id: str, request: Request, folder: str | None = None, start: Offset = 0,
              count: Count = 100) -> list[dict[str, Any]]:
        tenant = tenant_of(tenant_id, request)
        return [
            {**i.__dict__, "sent_at": i.sent_at.isoformat()}
            for i in archive.items(tenant, user_id, folder, start=start, count=min(count, 1000))
        ]

    @router.get("/tenants/{tenant_id}/items/{item_id}/raw", openapi_extra=needs(COMPLIANCE, EDISCOVERY))
    def raw_item(tenant_id: str, item_id: ItemId, request: Request) -> Response:
        # One item is bounded by the connector's item-size rule; it is read and verified whole (a digest
        # mismatch is an error before the first byte), then sent in pieces through a response that stops
        # when the client goes.
        from tenantry.core.streaming import ClosingStreamingResponse, in_chunks

        raw = archive.read(tenant_of(tenant_id, request), item_id)
        return ClosingStreamingResponse(in_chunks(raw), media_type="message/rfc822",
                                        headers={"Content-Length": str(len(raw))})

    @router.get("/tenants/{tenant_id}/mailboxes/{user_id}/export.mbox", openapi_extra=needs(COMPLIANCE, EDISCOVERY))
    def export_mbox(tenant_id: str, user_id: str, request: Request, folder: str | None = None) -> Response:
        """The mailbox (or one folder) as mboxrd, streamed from the first message: read in batches as the
        client takes them, and stopped — its database work too — when the client disconnects."""
        from tenantry.core.streaming import ClosingStreamingResponse

        chunks = archive.mbox_stream(tenant_of(tenant_id, request), user_id, folder)
        name = "".join(c if c.isascii() and (c.isalnum() or c in "@.-_") else "_" for c in user_id)
        return ClosingStreamingResponse(chunks, media_type="application/mbox",
                                        headers={"Content-Disposition": f'attachment; filename="{name}.mbox"'})
