"""Hand-made routing snapshots for the routing and SIP tests: two sites, a site-less user, a restricted user."""

from __future__ import annotations

from tenantry.voice.snapshot import GatewayRoute, RoutingSnapshot, SiteRoute, Transport, VoiceUserRoute

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
