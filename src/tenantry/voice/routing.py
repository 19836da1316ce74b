"""Where a call goes: the pure routing decision for (caller, dialled number) over a ``RoutingSnapshot``.

No I/O and no database: the SIP redirect service calls ``route`` for every INVITE (thousands a second), and the
rules are tested on hand-made snapshots. The rules are the seed's hybrid voice (Cloud Connector Edition) read as
Teams Direct Routing reads them: the caller's site's gateways at equal priority, their order spread at random among
the healthy ones, unhealthy ones demoted to the end but not dropped (Direct Routing: "unhealthy gateways are tried
last"); callers with no PSTN site go to the tenant's PeerDestination; escalated PSTN conferences go to the site's
mediation servers.

Decisions taken here:
- "International" is a different *country calling code* from the caller's region's, so a US caller dialling Canada
  (+1, NANP) is domestic, as North American carriers bill it; a different region code under +1 is not refused.
- A number is invalid when phonenumbers does not call it valid (``is_valid_number``): not a number of any plan.
- Contacts carry the E.164 number as the user part with ``user=phone`` (RFC 3261 §19.1.1), also for the
  PeerDestination and the mediation servers: a redirect to a bare ``sip:<peer>`` would lose the number dialled.
- A site with no gateways, a site the snapshot does not know, or a site-less caller where the tenant has no
  PeerDestination is ``NO_ROUTE`` (the server answers 480): a configuration gap, not a policy refusal.
"""

from __future__ import annotations

import random
from collections.abc import MutableSequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any, Protocol

import phonenumbers

from tenantry.voice.snapshot import GatewayRoute, RoutingSnapshot, VoiceUserRoute

__all__ = ["Decision", "HealthView", "Outcome", "caller_key", "normalise", "route"]


class Outcome(StrEnum):
    REDIRECT = "redirect"          # 302 with the contacts in order
    FORBIDDEN = "forbidden"        # 403: policy (voice disabled, international disallowed)
    NOT_FOUND = "not_found"        # 404: the caller is not a voice user of this tenant
    INVALID = "invalid"            # 484: the dialled number is not a number
    NO_ROUTE = "no_route"          # 480: configuration gap (no gateways, no PeerDestination)


@dataclass(frozen=True, slots=True)
class Decision:
    """What to answer: the outcome, the contacts in the order to try them, why, and the number as E.164."""

    outcome: Outcome
    contacts: tuple[str, ...]
    reason: str
    number: str | None             # the dialled number as E.164, once it could be read


class HealthView(Protocol):
    """What routing asks of gateway health (``voice.health.Health`` is one)."""

    def healthy(self, gateway_name: str) -> bool: ...


class _Shuffler(Protocol):
    def shuffle(self, x: MutableSequence[Any]) -> None: ...


def caller_key(caller: str) -> str | None:
    """The snapshot key a caller is known by: "alice@contoso.com" or "+14255550100".

    Accepts what a From header carries: ``sip:alice@contoso.com``, ``<sip:alice@contoso.com>``,
    ``alice@contoso.com``, ``tel:+14255550100;phone-context=…``, ``sip:+14255550100@host;user=phone``.
    """
    text = caller.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1]
    lowered = text.lower()
    if lowered.startswith("tel:"):
        return _phone_key(text[4:].split(";", 1)[0])
    if lowered.startswith("sips:"):
        text = text[5:]
    elif lowered.startswith("sip:"):
        text = text[4:]
    text = text.split(";", 1)[0].split("?", 1)[0]
    if "@" not in text:
        return _phone_key(text)
    user, _, host = text.rpartition("@")
    host = host.split(":", 1)[0]   # a port is not part of the address
    if not user or not host:
        return None
    if user.startswith("+"):
        return _phone_key(user)
    return f"{user}@{host}".lower()


def _phone_key(text: str) -> str | None:
    # RFC 3966 visual separators ("-", ".", "(", ")") may appear in a tel URI or a user=phone user part.
    digits = "".join(c for c in text if c.isdigit())
    if not text.startswith("+") or not digits:
        return None
    return "+" + digits


@lru_cache(maxsize=65536)
def normalise(dialled: str, region: str) -> tuple[str, int] | None:
    """The dialled number as (E.164, country calling code), read with the caller's region; None when invalid.

    Cached (bounded): parsing and validating costs ~60 µs, and a gateway sees the same numbers again and again.
    """
    text = dialled.strip()
    lowered = text.lower()
    if lowered.startswith("tel:"):
        text = text[4:].split(";", 1)[0]
    elif lowered.startswith(("sip:", "sips:")):
        text = text.split(":", 1)[1].split("@", 1)[0].split(";", 1)[0]
    if not text or len(text) > 40:
        return None
    try:
        number = phonenumbers.parse(text, None if text.startswith("+") else region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    e164 = str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
    return e164, int(number.country_code or 0)


@lru_cache(maxsize=1024)
def _region_code(region: str) -> int:
    return int(phonenumbers.country_code_for_region(region))


def route(
    snapshot: RoutingSnapshot,
    caller: str,
    dialled: str,
    *,
    health: HealthView | None = None,
    conference: bool = False,
    rng: _Shuffler | None = None,
) -> Decision:
    """Decide where ``caller``'s call to ``dialled`` goes.

    ``health`` says which gateways answer OPTIONS (None: all healthy); ``conference`` marks a call escalated to a
    PSTN conference (it goes to the site's mediation servers); ``rng`` orders equal-priority gateways (tests pass a
    seeded ``random.Random``).
    """
    key = caller_key(caller)
    user = snapshot.users.get(key) if key is not None else None
    if user is None:
        return Decision(Outcome.NOT_FOUND, (), f"caller {caller!r} is not a voice user of this tenant", None)
    if not user.enterprise_voice:
        return Decision(Outcome.FORBIDDEN, (), f"{user.sip_address} is not enabled for enterprise voice", None)
    normal = normalise(dialled, user.region)
    if normal is None:
        return Decision(Outcome.INVALID, (), f"{dialled!r} is not a valid number (read in {user.region})", None)
    e164, country = normal
    if not user.international_allowed and country != _region_code(user.region):
        return Decision(
            Outcome.FORBIDDEN, (), f"{e164} is international and {user.sip_address}'s policy disallows it", e164
        )
    return _destinations(snapshot, user, e164, health, conference, rng)


def _destinations(
    snapshot: RoutingSnapshot,
    user: VoiceUserRoute,
    e164: str,
    health: HealthView | None,
    conference: bool,
    rng: _Shuffler | None,
) -> Decision:
    if user.site is None:
        if snapshot.peer_destination is None:
            return Decision(Outcome.NO_ROUTE, (), "caller has no PSTN site and the tenant no PeerDestination", e164)
        return Decision(
            Outcome.REDIRECT, (f"sip:{e164}@{snapshot.peer_destination};user=phone",), "PeerDestination", e164
        )
    site = snapshot.sites.get(user.site)
    if site is None:
        return Decision(Outcome.NO_ROUTE, (), f"site {user.site!r} is not configured", e164)
    if conference:
        if not site.mediation_servers:
            return Decision(Outcome.NO_ROUTE, (), f"site {site.name!r} has no mediation server", e164)
        contacts = tuple(f"sip:{e164}@{fqdn};user=phone" for fqdn in site.mediation_servers)
        return Decision(Outcome.REDIRECT, contacts, f"conference via site {site.name}'s mediation servers", e164)
    if not site.gateways:
        return Decision(Outcome.NO_ROUTE, (), f"site {site.name!r} has no gateway", e164)
    # Not a security use: spreading calls over equal gateways needs no unpredictability, only speed.
    shuffle = rng.shuffle if rng is not None else random.shuffle
    healthy: list[GatewayRoute] = []
    demoted: list[GatewayRoute] = []
    if health is None:
        healthy.extend(site.gateways)
    else:
        for gateway in site.gateways:
            (healthy if health.healthy(gateway.name) else demoted).append(gateway)
    shuffle(healthy)
    shuffle(demoted)
    contacts = tuple(_contact(e164, g) for g in (*healthy, *demoted))
    reason = f"site {site.name}: {len(healthy)} healthy, {len(demoted)} demoted"
    return Decision(Outcome.REDIRECT, contacts, reason, e164)


def _contact(e164: str, gateway: GatewayRoute) -> str:
    return f"sip:{e164}@{gateway.host}:{gateway.port};transport={gateway.transport.value};user=phone"

