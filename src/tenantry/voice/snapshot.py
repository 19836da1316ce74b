"""What routing reads: an immutable picture of one tenant's voice configuration, built from the database by
``VoiceService.routing_snapshot`` and handed to the pure ``voice.routing.route`` and the SIP redirect service.

Plain frozen data, no SQL: routing a call must not touch the database (thousands of calls a second), and the
routing rules are tested on hand-made snapshots.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Transport(StrEnum):
    UDP = "udp"
    TCP = "tcp"
    TLS = "tls"


@dataclass(frozen=True, slots=True)
class GatewayRoute:
    """A PSTN gateway (or SBC) as a call is sent to it: ``sip:<host>:<port>;transport=<t>``."""

    name: str                 # the gateway's identity (its FQDN or IP)
    host: str                 # FQDN or IP
    port: int
    transport: Transport
    site: str


@dataclass(frozen=True, slots=True)
class SiteRoute:
    """A PSTN site: its gateways (equal priority) and its mediation servers (FQDNs, for escalated conferences)."""

    name: str
    gateways: tuple[GatewayRoute, ...]
    mediation_servers: tuple[str, ...]     # FQDNs, in a stable order


@dataclass(frozen=True, slots=True)
class VoiceUserRoute:
    """A user as routing sees them."""

    user_id: str
    sip_address: str                       # "alice@contoso.com" (lower case, no "sip:")
    line_uri: str | None                   # "tel:+14255550100"
    enterprise_voice: bool
    international_allowed: bool            # the voice routing policy (InternationalCallsAllowed by default)
    site: str | None                       # the user's PSTN site (Set-CsUserPstnSettings); None: PeerDestination
    region: str                            # ISO 3166 region to read numbers without a country code ("US")


@dataclass(frozen=True, slots=True)
class RoutingSnapshot:
    """One tenant's routing inputs. ``users`` is keyed by every name a caller's From URI may carry: the SIP
    address (lower case) and the line URI's E.164 number ("+14255550100")."""

    tenant: str
    users: Mapping[str, VoiceUserRoute]
    sites: Mapping[str, SiteRoute]
    peer_destination: str | None           # Set-CsTenantHybridConfiguration -PeerDestination (an FQDN)
    sip_domains: tuple[str, ...] = field(default=())
