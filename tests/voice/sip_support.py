"""Hand-made routing snapshots for the routing and SIP tests: two sites, a site-less user, a restricted user."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import TypeVar

from tenantry.voice.routing import HealthView
from tenantry.voice.sip_server import SipService, Timers, serve
from tenantry.voice.snapshot import GatewayRoute, RoutingSnapshot, SiteRoute, Transport, VoiceUserRoute

T = TypeVar("T")

GW1 = GatewayRoute("gw1.contoso.com", "gw1.contoso.com", 5068, Transport.TLS, "seattle")
GW2 = GatewayRoute("gw2.contoso.com", "gw2.contoso.com", 5068, Transport.TLS, "seattle")
GW3 = GatewayRoute("10.0.0.3", "10.0.0.3", 5060, Transport.TCP, "seattle")
GW_AMS = GatewayRoute("gw.ams.contoso.com", "gw.ams.contoso.com", 5061, Transport.TLS, "amsterdam")


def user(
    sip: str,
    line: str | None,
    *,
    voice: bool = True,
    international: bool = True,
    site: str | None = "seattle",
    region: str = "US",
) -> VoiceUserRoute:
    return VoiceUserRoute(
        user_id=sip.split("@")[0],
        sip_address=sip,
        line_uri=f"tel:{line}" if line else None,
        enterprise_voice=voice,
        international_allowed=international,
        site=site,
        region=region,
    )


def snapshot(peer: str | None = "peer.contoso.com") -> RoutingSnapshot:
    people = [
        user("alice@contoso.com", "+14255550100"),
        user("bob@contoso.com", "+14255550101", international=False),
        user("carol@contoso.com", "+14255550102", site=None),
        user("dave@contoso.com", None, voice=False),
        user("erik@contoso.com", "+31201234567", site="amsterdam", region="NL", international=False),
        user("fay@contoso.com", None, site="nowhere"),
        user("gus@contoso.com", None, site="empty"),
    ]
    users: dict[str, VoiceUserRoute] = {}
    for person in people:
        users[person.sip_address] = person
        if person.line_uri:
            users[person.line_uri[4:]] = person
    sites = {
        "seattle": SiteRoute("seattle", (GW1, GW2, GW3), ("ms1.contoso.com", "ms2.contoso.com")),
        "amsterdam": SiteRoute("amsterdam", (GW_AMS,), ("ms.ams.contoso.com",)),
        "empty": SiteRoute("empty", (), ()),
    }
    return RoutingSnapshot(
        tenant="contoso", users=users, sites=sites, peer_destination=peer, sip_domains=("contoso.com",)
    )


class ServerThread:
    """The redirect service on 127.0.0.1 (UDP and TCP, a free port) in a thread of its own, for sipp to call."""

    def __init__(self, source: Callable[[], RoutingSnapshot] | None = None, *, health: HealthView | None = None,
                 timers: Timers | None = None) -> None:
        self.source = source or _fixed(snapshot())
        self.health = health
        self.timers = timers
        self.port = 0
        self.service: SipService | None = None
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> ServerThread:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(
            serve("127.0.0.1", 0, self.source, health=self.health, timers=self.timers), self.loop
        )
        self.service = future.result(10)
        self.port = self.service.port
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.service is not None
        asyncio.run_coroutine_threadsafe(self.service.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the server's loop (to read its state without racing it)."""
        async def wrapped() -> T:
            return fn()
        return asyncio.run_coroutine_threadsafe(wrapped(), self.loop).result(10)


def _fixed(value: RoutingSnapshot) -> Callable[[], RoutingSnapshot]:
    return lambda: value
