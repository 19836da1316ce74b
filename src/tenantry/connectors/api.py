"""Admin REST routes for connectors and the archive (``/api/v1/tenants/{tenant}/…``): thin over the services."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from tenantry.archive.service import ArchiveService
from tenantry.connectors.service import ConnectorService
from tenantry.core.bounds import INT32_MAX, MAX_DAYS, Count, ItemId, Offset
from tenantry.core.errors import Invalid


class ConnectorIn(BaseModel):
    name: str
    kind: str
    created_by: str = Field(description="id of the user creating it; needs the Mailbox Import Export role")
    accept_terms: bool = False
    source: dict[str, Any] = Field(default_factory=dict)
    source_password: str | None = None
    target: dict[str, Any] = Field(default_factory=lambda: {"kind": "store"})
    target_secret: dict[str, Any] | None = None
    use_directory_mobiles: bool = True
    outsider_domain: str = "whatsapp.invalid"
    max_item_bytes: int = Field(default=10 * 1024 * 1024, ge=1, le=INT32_MAX)
    run_at: str = "02:00"
    backfill_days: int = Field(default=30, ge=0, le=MAX_DAYS)


class ConsentIn(BaseModel):
    admin_user: str


def build_router(connectors: ConnectorService, archive: ArchiveService, tenant_of: Any) -> APIRouter:
    router = APIRouter()

    @router.get("/tenants/{tenant_id}/connectors")
    def list_connectors(tenant_id: str, request: Request) -> list[dict[str, Any]]:
        return connectors.list_connectors(tenant_of(tenant_id, request))

    @router.post("/tenants/{tenant_id}/connectors", status_code=201)
    def create_connector(tenant_id: str, body: ConnectorIn, request: Request) -> dict[str, Any]:
        return connectors.create(tenant_of(tenant_id, request), **body.model_dump())

    @router.get("/tenants/{tenant_id}/connectors/{connector}")
    def get_connector(tenant_id: str, connector: str, request: Request) -> dict[str, Any]:
        tenant = tenant_of(tenant_id, request)
        return connectors.describe(tenant, connectors.find(tenant, connector))

    @router.put("/tenants/{tenant_id}/connectors/{connector}/mapping")
    async def put_mapping(tenant_id: str, connector: str, request: Request) -> dict[str, Any]:
        tenant = tenant_of(tenant_id, request)
        raw = await request.body()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Invalid("the mapping CSV must be UTF-8") from exc
        count = connectors.upload_mapping(tenant, connectors.find(tenant, connector), text)
        return {"entries": count}

    @router.post("/tenants/{tenant_id}/connectors/{connector}/consent")
    def consent(tenant_id: str, connector: str, body: ConsentIn, request: Request) -> dict[str, Any]:
        tenant = tenant_of(tenant_id, request)
        return connectors.consent(tenant, connectors.find(tenant, connector), body.admin_user)

    @router.get("/tenants/{tenant_id}/connectors/{connector}/review")
    def review(tenant_id: str, connector: str, request: Request) -> dict[str, Any]:
        tenant = tenant_of(tenant_id, request)
        return connectors.review(tenant, connectors.find(tenant, connector))

    @router.post("/tenants/{tenant_id}/connectors/{connector}/enable")
    def enable(tenant_id: str, connector: str, request: Request) -> dict[str, Any]:
        tenant = tenant_of(tenant_id, request)
        return connectors.enable(tenant, connectors.find(tenant, connector))

    @router.post("/tenants/{tenant_id}/connectors/{connector}/disable")
    def disable(tenant_id: str, connector: str, request: Request) -> dict[str, Any]:
        tenant = tenant_of(tenant_id, request)
        return connectors.disable(tenant, connectors.find(tenant, connector))

    @router.post("/tenants/{tenant_id}/connectors/{connector}/exports", status_code=201)
    async def upload_export(tenant_id: str, connector: str, request: Request, owner: str, filename: str,
                            chat_name: str | None = None) -> dict[str, Any]:
        tenant = tenant_of(tenant_id, request)
        data = await request.body()
        return connectors.add_export(tenant, connectors.find(tenant, connector), data, filename, owner, chat_name)

    @router.post("/tenants/{tenant_id}/connectors/{connector}/runs", status_code=201)
    def run_now(tenant_id: str, connector: str, request: Request) -> dict[str, Any]:
        tenant = tenant_of(tenant_id, request)
        return connectors.run(tenant, connectors.find(tenant, connector)).as_dict()

    @router.get("/tenants/{tenant_id}/connectors/{connector}/runs")
    def runs(tenant_id: str, connector: str, request: Request) -> list[dict[str, Any]]:
        tenant = tenant_of(tenant_id, request)
        return connectors.runs(tenant, connectors.find(tenant, connector))

    @router.get("/tenants/{tenant_id}/runs/{run_id}")
    def run_report(tenant_id: str, run_id: str, request: Request) -> dict[str, Any]:
        return connectors.report(tenant_of(tenant_id, request), run_id).as_dict()

    @router.get("/tenants/{tenant_id}/mailboxes")
    def mailboxes(tenant_id: str, request: Request) -> list[dict[str, Any]]:
        return archive.mailboxes(tenant_of(tenant_id, request))

    @router.get("/tenants/{tenant_id}/mailboxes/{user_id}/items")
    def items(tenant_id: str, user_id: str, request: Request, folder: str | None = None, start: Offset = 0,
              count: Count = 100) -> list[dict[str, Any]]:
        tenant = tenant_of(tenant_id, request)
        return [
            {**i.__dict__, "sent_at": i.sent_at.isoformat()}
            for i in archive.items(tenant, user_id, folder, start=start, count=min(count, 1000))
        ]

    @router.get("/tenants/{tenant_id}/items/{item_id}/raw")
    def raw_item(tenant_id: str, item_id: ItemId, request: Request) -> Response:
        return Response(archive.read(tenant_of(tenant_id, request), item_id), media_type="message/rfc822")

    @router.get("/tenants/{tenant_id}/mailboxes/{user_id}/export.mbox")
    def export_mbox(tenant_id: str, user_id: str, request: Request, folder: str | None = None) -> Response:
        import io

        from tenantry.archive.service import write_mboxrd

        tenant = tenant_of(tenant_id, request)
        out = io.BytesIO()
        for item, raw in archive.iter_messages(tenant, user_id, folder):
            write_mboxrd(out, raw, item.sent_at)
        return Response(out.getvalue(), media_type="application/mbox")

    return router
