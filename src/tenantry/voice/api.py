"""Admin REST routes of voice (``/api/v1/tenants/{tenant_id}/voice/…``): thin over the service. ``{identity}``
names users as the seed's cmdlets do (SIP address, UPN, display name, ``*wildcard``; ``voice.identities``); every
route needs Voice Administrator or Organization Management."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from tenantry.core.access import ORGANIZATION, VOICE, Body, needs
from tenantry.core.egress import EgressPolicy
from tenantry.core.settings import Settings
from tenantry.voice.certificates import (
    GATEWAY_CERTIFICATE_DAYS,
    MAX_PEM_BYTES,
    ROOT_CA_DAYS,
    IssuedCertificate,
    RootCaInfo,
    VoiceCertificates,
    run_checks,
)
from tenantry.voice.identities import MAX_IDENTITY
from tenantry.voice.results import (
    FederationConfig,
    Gateway,
    HybridConfig,
    MediationServer,
    RouteAnswer,
    RoutingPolicy,
    Site,
    Trunk,
    VoiceCheck,
    VoiceUser,
)
from tenantry.voice.routing import route
from tenantry.voice.service import UNSET, VoiceService
from tenantry.voice.sip_server import status_of
from tenantry.voice.snapshot import Transport
from tenantry.voice.tlscheck import KeyType

ROLES = needs(VOICE, ORGANIZATION)


class SiteIn(Body):
    name: str = Field(max_length=128)
    edge_fqdn: str = Field(max_length=253, description="The site's access edge external FQDN.")


class MediationServerIn(Body):
    fqdn: str = Field(max_length=253)
    site: str = Field(max_length=128, description="The PSTN site's name or id.")
    ip: str | None = Field(default=None, max_length=45)
    account_name: str | None = Field(default=None, max_length=128, description=(
        "The online account's display name (default MediationServer-<first label of the FQDN>)."))


class HybridMediationServerIn(Body):
    """Set-CsHybridMediationServer."""

    fqdn: str | None = Field(default=None, max_length=253)
    access_proxy_external_fqdn: str | None = Field(default=None, max_length=253)


class GatewayIn(Body):
    name: str = Field(max_length=253, description="The gateway's FQDN or IP address.")
    site: str = Field(max_length=128)
    transport: Transport = Transport.TLS
    port: int | None = Field(default=None, ge=1, le=65535, description="Default 5061 for TLS, 5060 otherwise.")
    trunk_to: Literal["fqdn", "ip", "none"] = Field(default="fqdn", description=(
        "One trunk per mediation server of the site, to its FQDN or its IP (or none)."))


class TrunkIn(Body):
    gateway: str = Field(max_length=253, description="The gateway's name or id.")
    target: str = Field(max_length=253, description="A mediation server's FQDN or IP.")
    priority: int = Field(default=0, ge=0, le=65535)


class HybridConfigIn(Body):
    """Set-CsTenantHybridConfiguration; a field left out stays as it is (peer_destination null clears it)."""

    peer_destination: str | None = Field(default=None, max_length=253)
    use_on_prem_dial_plan: bool | None = None


class FederationIn(Body):
    shared_sip_address_space: bool


class VoiceUserIn(Body):
    """Set-CsUser; a field left out stays as it is (on_prem_line_uri or voice_policy null clears it)."""

    enterprise_voice_enabled: bool | None = None
    hosted_voicemail: bool | None = None
    on_prem_line_uri: str | None = Field(default=None, max_length=40, description="tel:+<E.164>")
    voice_policy: str | None = Field(default=None, max_length=64, description="HybridVoice")


class RoutingPolicyIn(Body):
    policy_name: RoutingPolicy


class PstnSiteIn(Body):
    hybrid_pstn_site: str | None = Field(max_length=128, description="The site's name or id; null: none.")


class RootCaIn(Body):
    common_name: str | None = Field(default=None, max_length=200, description="Default: Tenantry Voice Root CA …")
    days: int = Field(default=ROOT_CA_DAYS, ge=1, le=36500)
    key_type: KeyType = KeyType.RSA2048
    replace: bool = Field(default=False, description="Replace the existing root CA (its gateway certificates stop "
                          "chaining).")


class IssueIn(Body):
    days: int = Field(default=GATEWAY_CERTIFICATE_DAYS, ge=1, le=3650)
    ip: str | None = Field(default=None, max_length=45, description="Also name this IP address.")
    key_type: KeyType = KeyType.RSA2048


class CertificateIn(Body):
    certificate_pem: str = Field(max_length=MAX_PEM_BYTES, description="What the gateway presents (PEM; "
                                 "intermediates after it).")


class RecordedCertificate(BaseModel):
    gateway: str



# Long by design (issue #11): a router factory is its routes, each a few lines over the service.
def build_router(voice: VoiceService, certificates: VoiceCertificates, tenant_of: Any,
                 settings: Settings) -> APIRouter:
    router = APIRouter()
    base = "/tenants/{tenant_id}/voice"

    @router.get(base + "/sites", openapi_extra=ROLES)
    def list_sites(tenant_id: str, request: Request) -> list[Site]:
        return voice.sites(tenant_of(tenant_id, request))

    @router.post(base + "/sites", status_code=201, openapi_extra=ROLES)
    def create_site(tenant_id: str, body: SiteIn, request: Request) -> Site:
        return voice.create_site(tenant_of(tenant_id, request), **body.model_dump())

    @router.get(base + "/mediation-servers", openapi_extra=ROLES)
    def list_mediation_servers(tenant_id: str, request: Request,
                               site: str | None = None) -> list[MediationServer]:
        return voice.mediation_servers(tenant_of(tenant_id, request), site=site)

    @router.post(base + "/mediation-servers", status_code=201, openapi_extra=ROLES)
    def create_mediation_server(tenant_id: str, body: MediationServerIn, request: Request) -> MediationServer:
        return voice.create_mediation_server(tenant_of(tenant_id, request), **body.model_dump())

    @router.patch(base + "/mediation-servers/{server}", openapi_extra=ROLES)
    def set_mediation_server(tenant_id: str, server: str, body: HybridMediationServerIn,
                             request: Request) -> MediationServer:
        return voice.set_hybrid_mediation_server(tenant_of(tenant_id, request), server, fqdn=body.fqdn,
                                                 access_proxy_fqdn=body.access_proxy_external_fqdn)

    @router.get(base + "/gateways", openapi_extra=ROLES)
    def list_gateways(tenant_id: str, request: Request, site: str | None = None) -> list[Gateway]:
        return voice.gateways(tenant_of(tenant_id, request), site=site)

    @router.post(base + "/gateways", status_code=201, openapi_extra=ROLES)
    def create_gateway(tenant_id: str, body: GatewayIn, request: Request) -> Gateway:
        return voice.create_gateway(tenant_of(tenant_id, request), **body.model_dump())

    @router.get(base + "/trunks", openapi_extra=ROLES)
    def list_trunks(tenant_id: str, request: Request, gateway: str | None = None) -> list[Trunk]:
        return voice.trunks(tenant_of(tenant_id, request), gateway=gateway)

    @router.post(base + "/trunks", status_code=201, openapi_extra=ROLES)
    def create_trunk(tenant_id: str, body: TrunkIn, request: Request) -> Trunk:
        return voice.create_trunk(tenant_of(tenant_id, request), **body.model_dump())

    @router.delete(base + "/gateways/{gateway}/trunks/{target}", status_code=204, openapi_extra=ROLES)
    def remove_trunk(tenant_id: str, gateway: str, target: str, request: Request) -> None:
        voice.remove_trunk(tenant_of(tenant_id, request), gateway=gateway, target=target)

    @router.get(base + "/hybrid-config", openapi_extra=ROLES)
    def hybrid_config(tenant_id: str, request: Request) -> HybridConfig:
        return voice.hybrid_config(tenant_of(tenant_id, request))

    @router.put(base + "/hybrid-config", openapi_extra=ROLES)
    def set_hybrid_config(tenant_id: str, body: HybridConfigIn, request: Request) -> HybridConfig:
        given = body.model_fields_set
        return voice.set_hybrid_config(
            tenant_of(tenant_id, request),
            peer_destination=body.peer_destination if "peer_destination" in given else UNSET,
            use_on_prem_dial_plan=body.use_on_prem_dial_plan)

    @router.get(base + "/federation", openapi_extra=ROLES)
    def federation(tenant_id: str, request: Request) -> FederationConfig:
        return voice.federation(tenant_of(tenant_id, request))

    @router.put(base + "/federation", openapi_extra=ROLES)
    def set_federation(tenant_id: str, body: FederationIn, request: Request) -> FederationConfig:
        return voice.set_federation(tenant_of(tenant_id, request),
                                    shared_sip_address_space=body.shared_sip_address_space)

    @router.get(base + "/users", openapi_extra=ROLES)
    def list_users(tenant_id: str, request: Request,
                   identity: str | None = Query(default=None, max_length=MAX_IDENTITY)) -> list[VoiceUser]:
        return voice.users(tenant_of(tenant_id, request), identity)

    @router.get(base + "/users/{identity}", openapi_extra=ROLES)
    def show_user(tenant_id: str, identity: str, request: Request) -> VoiceUser:
        return voice.user(tenant_of(tenant_id, request), identity)

    @router.patch(base + "/users/{identity}", openapi_extra=ROLES)
    def set_user(tenant_id: str, identity: str, body: VoiceUserIn, request: Request) -> VoiceUser:
        given = body.model_fields_set
        return voice.set_user(
            tenant_of(tenant_id, request), identity, enterprise_voice=body.enterprise_voice_enabled,
            hosted_voicemail=body.hosted_voicemail,
            line_uri=body.on_prem_line_uri if "on_prem_line_uri" in given else UNSET,
            voice_policy=body.voice_policy if "voice_policy" in given else UNSET)

    @router.put(base + "/users/{identity}/routing-policy", openapi_extra=ROLES)
    def grant_policy(tenant_id: str, identity: str, body: RoutingPolicyIn, request: Request) -> VoiceUser:
        return voice.grant_routing_policy(tenant_of(tenant_id, request), identity, body.policy_name)

    @router.put(base + "/users/{identity}/pstn-site", openapi_extra=ROLES)
    def set_pstn_site(tenant_id: str, identity: str, body: PstnSiteIn, request: Request) -> VoiceUser:
        return voice.set_pstn_site(tenant_of(tenant_id, request), identity, body.hybrid_pstn_site)

    @router.get(base + "/check", openapi_extra=ROLES)
    def check(tenant_id: str, request: Request,
              dns: Annotated[bool, Query(description="Check the edge's DNS records (TENANTRY_VOICE_DNS_SERVER, else "
                                         "the system's resolver).")] = False,
              tls: Annotated[bool, Query(description="Check TLS gateways' recorded certificates.")] = False,
              tls_live: Annotated[bool, Query(description="Check what each TLS gateway presents now.")] = False,
              ) -> VoiceCheck:
        return run_checks(voice, certificates, tenant_of(tenant_id, request), dns=dns,
                          dns_server=settings.voice_dns_server, tls=tls, tls_live=tls_live,
                          egress=EgressPolicy.from_settings(settings))

    @router.get(base + "/route", openapi_extra=ROLES)
    def route_call(tenant_id: str, request: Request,
                   caller: Annotated[str, Query(max_length=MAX_IDENTITY, description="SIP address, UPN or tel: "
                                                "number of the caller.")],
                   number: Annotated[str, Query(max_length=64, description="The number dialled.")],
                   conference: bool = False) -> RouteAnswer:
        """Where this call goes, as the SIP redirect service would answer it (every gateway taken as healthy)."""
        decision = route(voice.routing_snapshot(tenant_of(tenant_id, request)), caller, number, conference=conference)
        status, reason_phrase = status_of(decision.outcome)
        return RouteAnswer(status, reason_phrase, decision.outcome, list(decision.contacts), decision.reason,
                           decision.number)

    @router.get(base + "/root-ca", openapi_extra=ROLES)
    def root_ca(tenant_id: str, request: Request) -> RootCaInfo:
        return certificates.root_ca(tenant_of(tenant_id, request))

    @router.post(base + "/root-ca", status_code=201, openapi_extra=ROLES)
    def new_root_ca(tenant_id: str, body: RootCaIn, request: Request) -> RootCaInfo:
        return certificates.new_root_ca(tenant_of(tenant_id, request), common_name=body.common_name,
                                        days=body.days, key_type=body.key_type, replace=body.replace)

    @router.post(base + "/gateways/{gateway}/certificate", status_code=201, openapi_extra=ROLES)
    def issue_certificate(tenant_id: str, gateway: str, body: IssueIn, request: Request) -> IssuedCertificate:
        """A certificate from the tenant root CA, recorded on the gateway; its private key is in this answer only."""
        return certificates.issue(tenant_of(tenant_id, request), gateway, days=body.days, ip=body.ip,
                                  key_type=body.key_type)

    @router.put(base + "/gateways/{gateway}/certificate", openapi_extra=ROLES)
    def record_certificate(tenant_id: str, gateway: str, body: CertificateIn, request: Request
                           ) -> RecordedCertificate:
        recorded = certificates.record(tenant_of(tenant_id, request), gateway, body.certificate_pem.encode())
        return RecordedCertificate(gateway=recorded)

    return router
