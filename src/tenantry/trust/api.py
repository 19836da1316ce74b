"""Admin REST routes of trust (``/api/v1/tenants/{tenant_id}/trust/…``): thin over the service. ``{partner}`` is
a partner application's id, name or ApplicationIdentifier; every route needs Organization Management."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import Field

from tenantry.core.access import ORGANIZATION, Body, needs
from tenantry.trust.results import AuthConfigInfo, PartnerApp, ServicePrincipal, SpKey, TrustCheck
from tenantry.trust.service import MAX_VALUE_BYTES, TrustService

ORG = needs(ORGANIZATION)


class PartnerIn(Body):
    name: str = Field(max_length=256)
    application_id: str = Field(max_length=64, description="ApplicationIdentifier, a GUID.")
    realm: str | None = Field(default=None, max_length=256, description="Default: the tenant's realm.")
    enabled: bool = True
    linked_account: str | None = Field(default=None, max_length=64, description="The application account's id.")


class PublishNextIn(Body):
    effective_at: datetime | None = Field(default=None, description="Default: two days from now.")
    certificate_pem: str | None = Field(default=None, max_length=MAX_VALUE_BYTES,
                                        description="Import this certificate instead of generating one.")
    private_key_pem: str | None = Field(default=None, max_length=MAX_VALUE_BYTES, description=(
        "Write-only: the imported certificate's private key, stored sealed."))


class SwitchIn(Body):
    force: bool = Field(default=False, description="Switch before the next certificate's effective date.")


class KeyIn(Body):
    """``Add-MgServicePrincipalKey -Type asymmetric -Usage Verify -Value``."""

    value: str = Field(max_length=MAX_VALUE_BYTES * 2, description="The certificate, base64 DER (or PEM).")
    start_date: datetime | None = Field(default=None, description="Default: the certificate's notBefore.")
    end_date: datetime | None = Field(default=None, description="Default: the certificate's notAfter.")


def build_router(trust: TrustService, tenant_of: Any) -> APIRouter:
    router = APIRouter()
    base = "/tenants/{tenant_id}/trust"

    def resolve(tenant_id: str, partner: str, request: Request) -> tuple[str, str]:
        tenant = tenant_of(tenant_id, request)
        return tenant, trust.find_partner(tenant, partner)

    @router.get(base + "/partner-apps", openapi_extra=ORG)
    def list_partners(tenant_id: str, request: Request) -> list[PartnerApp]:
        return trust.partners(tenant_of(tenant_id, request))

    @router.post(base + "/partner-apps", status_code=201, openapi_extra=ORG)
    def create_partner(tenant_id: str, body: PartnerIn, request: Request) -> PartnerApp:
        return trust.create_partner(tenant_of(tenant_id, request), **body.model_dump())

    @router.get(base + "/partner-apps/{partner}", openapi_extra=ORG)
    def show_partner(tenant_id: str, partner: str, request: Request) -> PartnerApp:
        return trust.partner(*resolve(tenant_id, partner, request))

    @router.delete(base + "/partner-apps/{partner}", status_code=204, openapi_extra=ORG)
    def delete_partner(tenant_id: str, partner: str, request: Request) -> None:
        trust.delete_partner(*resolve(tenant_id, partner, request))

    @router.post(base + "/partner-apps/{partner}/enable", openapi_extra=ORG)
    def enable_partner(tenant_id: str, partner: str, request: Request) -> PartnerApp:
        return trust.set_enabled(*resolve(tenant_id, partner, request), True)

    @router.post(base + "/partner-apps/{partner}/disable", openapi_extra=ORG)
    def disable_partner(tenant_id: str, partner: str, request: Request) -> PartnerApp:
        return trust.set_enabled(*resolve(tenant_id, partner, request), False)

    @router.get(base + "/partner-apps/{partner}/service-principal", openapi_extra=ORG)
    def service_principal(tenant_id: str, partner: str, request: Request) -> ServicePrincipal:
        return trust.service_principal(*resolve(tenant_id, partner, request))

    @router.post(base + "/partner-apps/{partner}/service-principal/keys", status_code=201, openapi_extra=ORG)
    def add_key(tenant_id: str, partner: str, body: KeyIn, request: Request) -> SpKey:
        tenant, partner_id = resolve(tenant_id, partner, request)
        return trust.add_service_principal_key(tenant, partner_id, body.value.encode(), start=body.start_date,
                                               end=body.end_date)

    @router.delete(base + "/partner-apps/{partner}/service-principal/keys/{key_id}", status_code=204,
                   openapi_extra=ORG)
    def remove_key(tenant_id: str, partner: str, key_id: str, request: Request) -> None:
        trust.remove_service_principal_key(*resolve(tenant_id, partner, request), key_id)

    @router.get(base + "/auth-config", openapi_extra=ORG)
    def auth_config(tenant_id: str, request: Request) -> AuthConfigInfo:
        return trust.auth_config(tenant_of(tenant_id, request))

    @router.get(base + "/auth-config/certificate", openapi_extra=ORG, response_class=Response,
                responses={200: {"content": {"application/pkix-cert": {}}}})
    def export_certificate(tenant_id: str, request: Request) -> Response:
        der = trust.export_certificate(tenant_of(tenant_id, request))
        return Response(der, media_type="application/pkix-cert",
                        headers={"Content-Disposition": 'attachment; filename="OAuthCert.cer"'})

    @router.post(base + "/auth-config/publish-next", openapi_extra=ORG)
    def publish_next(tenant_id: str, body: PublishNextIn, request: Request) -> AuthConfigInfo:
        return trust.publish_next(tenant_of(tenant_id, request), **body.model_dump())

    @router.post(base + "/auth-config/switch", openapi_extra=ORG)
    def switch(tenant_id: str, body: SwitchIn, request: Request) -> AuthConfigInfo:
        return trust.switch(tenant_of(tenant_id, request), force=body.force)

    @router.post(base + "/auth-config/retire-previous", openapi_extra=ORG)
    def retire_previous(tenant_id: str, request: Request) -> AuthConfigInfo:
        return trust.retire_previous(tenant_of(tenant_id, request))

    @router.get(base + "/check", openapi_extra=ORG)
    def check(tenant_id: str, request: Request) -> TrustCheck:
        return trust.check(tenant_of(tenant_id, request))

    return router


