"""What voice hands across its boundary (API and CLI): typed results (``core.results``)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from tenantry.voice.snapshot import Transport


@dataclass(frozen=True, slots=True)
class CheckLine:
    """One line of ``tenantry voice check``: what was checked, of what, whether it passed, and the fix."""

    check: str          # a stable name: "trunk-target", "trunk-priority", "dns-edge-a", "tls-gateway", …
    subject: str        # what it is about: a gateway, a site, a user, an FQDN
    ok: bool
    detail: str         # what was found
    fix: str | None     # what to do when not ok (None when ok)


class RoutingPolicy(StrEnum):
    """The voice routing policies of Grant-CsVoiceRoutingPolicy; every user holds the first until granted another."""

    ALLOWED = "InternationalCallsAllowed"
    DISALLOWED = "InternationalCallsDisallowed"


HYBRID_VOICE = "HybridVoice"                     # the VoicePolicy the seed's check expects of a hybrid user
MEDIATION_DEPARTMENT = "HybridMediationServer"   # Set-MsolUser -Department of a mediation server's account


@dataclass(frozen=True, slots=True)
class Site:
    id: str
    name: str
    edge_fqdn: str                    # the access edge's external FQDN (AccessProxyExternalFqdn of its servers)


@dataclass(frozen=True, slots=True)
class MediationServer:
    """A mediation server and its online account (Get-CsHybridMediationServer)."""

    id: str
    fqdn: str
    ip: str | None
    site: str
    account_id: str | None            # the directory user (hidden, Department HybridMediationServer)
    account_name: str | None          # its display name: the Identity of Set-CsHybridMediationServer
    account_user_name: str | None
    hybrid_fqdn: str | None           # -Fqdn
    access_proxy_external_fqdn: str | None


@dataclass(frozen=True, slots=True)
class Trunk:
    id: str
    gateway: str
    target: str                       # a mediation server's FQDN or IP
    priority: int


@dataclass(frozen=True, slots=True)
class Gateway:
    id: str
    name: str                         # FQDN or IP
    site: str
    transport: Transport
    port: int
    trunks: list[Trunk]


@dataclass(frozen=True, slots=True)
class HybridConfig:
    """Get-CsTenantHybridConfiguration."""

    peer_destination: str | None
    use_on_prem_dial_plan: bool


@dataclass(frozen=True, slots=True)
class FederationConfig:
    """Get-CsTenantFederationConfiguration (the part hybrid voice needs)."""

    shared_sip_address_space: bool


@dataclass(frozen=True, slots=True)
class VoiceUser:
    """What Get-CsOnlineUser and Get-CsUserPstnSettings show of a user for the seed's check."""

    user_id: str
    user_name: str                    # the UPN
    display_name: str | None
    sip_address: str                  # "alice@contoso.com"
    enterprise_voice_enabled: bool
    hosted_voicemail: bool
    voice_policy: str | None
    on_prem_line_uri: str | None
    voice_routing_policy: RoutingPolicy
    hybrid_pstn_site: str | None


@dataclass(frozen=True, slots=True)
class VoiceConfiguration:
    """The tenant's whole voice configuration, as the DNS and TLS checks read it (``VoiceService.check`` hooks)."""

    tenant: str
    sip_domains: list[str]            # the verified domains, the first SIP domain first
    sites: list[Site]
    mediation_servers: list[MediationServer]
    gateways: list[Gateway]
    hybrid: HybridConfig
    federation: FederationConfig


@dataclass(frozen=True, slots=True)
class VoiceCheck:
    """``tenantry voice check``: every line, and whether all passed."""

    ok: bool
    lines: list[CheckLine]


@dataclass(frozen=True, slots=True)
class RouteAnswer:
    """``voice route`` / ``GET …/voice/route``: the SIP answer a call would get (``voice.routing.Decision``)."""

    status: int
    reason_phrase: str
    outcome: str                      # voice.routing.Outcome
    contacts: list[str]
    reason: str
    number: str | None
