"""The configuration checks of ``tenantry voice check`` that need no network (seed 001): trunks, sites' edges,
federation, and each voice user's licence, number, site and policy. Pure: the service reads the database and hands
the configuration in; each check returns ``CheckLine``s, a passing one too, so the report shows what was checked.

The DNS and TLS checks (``voice.dnscheck``, ``voice.tlscheck``) come in through ``VoiceService.check``'s hooks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from tenantry.voice.results import HYBRID_VOICE, CheckLine, Gateway, MediationServer, VoiceConfiguration, VoiceUser

# A user may call out with E5 (Phone System included), or E3 with the Phone System add-on.
VOICE_LICENCES = (frozenset({"E5"}), frozenset({"E3", "PHONE_SYSTEM"}))


def _key(name: str | None) -> str:
    return (name or "").strip().lower().rstrip(".")


def _names(server: MediationServer) -> set[str]:
    return {_key(server.fqdn), *([_key(server.ip)] if server.ip else [])}


def _ok(check: str, subject: str, detail: str) -> CheckLine:
    return CheckLine(check, subject, True, detail, None)


def _bad(check: str, subject: str, detail: str, fix: str) -> CheckLine:
    return CheckLine(check, subject, False, detail, fix)


def check_configuration(config: VoiceConfiguration, users: Iterable[VoiceUser],
                        licences: Mapping[str, Iterable[str]]) -> list[CheckLine]:
    """Every configuration check, in the order of the seed's steps."""
    return [*check_trunks(config), *check_sites(config), *check_federation(config),
            *check_users(config, users, licences)]


def check_trunks(config: VoiceConfiguration) -> list[CheckLine]:
    """The seed's "Set up PSTN gateways": one trunk per mediation server FQDN or IP (never the pool FQDN, which is
    the same for every server of the pool), all at equal priority, and only to servers of the gateway's own site."""
    lines: list[CheckLine] = []
    for gateway in config.gateways:
        lines.extend(_gateway_lines(gateway, config.mediation_servers))
    return lines


def _gateway_lines(gateway: Gateway, servers: list[MediationServer]) -> list[CheckLine]:
    own = [s for s in servers if s.site == gateway.site]
    others = {name: s for s in servers if s.site != gateway.site for name in _names(s)}
    known = {name for s in servers for name in _names(s)}
    subject = f"gateway {gateway.name}"
    remove = f"tenantry voice trunk remove {gateway.name} {{target}}"
    lines: list[CheckLine] = []
    for trunk in gateway.trunks:
        if _key(trunk.target) in known:
            lines.append(_ok("trunk-target", subject, f"trunk to {trunk.target}, a mediation server"))
        else:
            lines.append(_bad(
                "trunk-target", subject, f"trunk to {trunk.target}, which is no mediation server's FQDN or IP "
                "(a pool FQDN is the same for every server of the pool: calls would not reach each server)",
                f"{remove.format(target=trunk.target)}; then one trunk per mediation server of site "
                f"{gateway.site}: tenantry voice trunk new {gateway.name} <server FQDN or IP>"))
    foreign = [f"{t.target} (site {others[_key(t.target)].site})" for t in gateway.trunks
               if _key(t.target) in others]
    if foreign:
        lines.append(_bad(
            "trunk-site", subject, f"trunked to another site's mediation server: {', '.join(foreign)}",
            f"a gateway of site {gateway.site} connects only to that site's mediation servers: "
            + "; ".join(remove.format(target=f.split(" ")[0]) for f in foreign)))
    else:
        lines.append(_ok("trunk-site", subject, f"trunked only to site {gateway.site}'s mediation servers"))
    priorities = sorted({t.priority for t in gateway.trunks})
    if len(priorities) > 1:
        lines.append(_bad(
            "trunk-priority", subject, f"trunks at different priorities {priorities}",
            f"set every trunk of {gateway.name} to one priority: tenantry voice trunk remove {gateway.name} TARGET, "
            f"then tenantry voice trunk new {gateway.name} TARGET --priority {priorities[0]}"))
    else:
        lines.append(_ok("trunk-priority", subject, "every trunk at the same priority"))
    trunked = {_key(t.target) for t in gateway.trunks}
    missing = [s.fqdn for s in own if not _names(s) & trunked]
    if missing or not gateway.trunks:
        what = ", ".join(missing) if missing else f"site {gateway.site} has no mediation server"
        fix = "; ".join(f"tenantry voice trunk new {gateway.name} {m}" for m in missing) if missing else \
            f"tenantry voice mediation-server new <FQDN> --site {gateway.site}"
        lines.append(_bad("trunk-coverage", subject, f"no trunk to {what}", fix))
    else:
        lines.append(_ok("trunk-coverage", subject, f"a trunk to each of site {gateway.site}'s "
                         f"{len(own)} mediation server(s)"))
    return lines


def check_sites(config: VoiceConfiguration) -> list[CheckLine]:
    """Each mediation server has its online account (Department HybridMediationServer) whose Fqdn is the server's
    and whose AccessProxyExternalFqdn is its own site's edge (the seed: "choose the edge FQDN assigned to the site
    where the mediation server is")."""
    edges = {s.name: s.edge_fqdn for s in config.sites}
    lines: list[CheckLine] = []
    for site in config.sites:
        count = sum(1 for m in config.mediation_servers if m.site == site.name)
        if count:
            lines.append(_ok("site-servers", f"site {site.name}", f"{count} mediation server(s)"))
        else:
            lines.append(_bad("site-servers", f"site {site.name}", "no mediation server",
                              f"tenantry voice mediation-server new <FQDN> --site {site.name}"))
    for server in config.mediation_servers:
        subject = f"mediation server {server.fqdn}"
        set_cmd = f"tenantry voice mediation-server set {server.fqdn}"
        if server.account_id is None:
            lines.append(_bad("mediation-account", subject, "no online hybrid mediation server account",
                              f"remove the server and add it again with an account: tenantry voice "
                              f"mediation-server new {server.fqdn} --site {server.site}"))
            continue
        lines.append(_ok("mediation-account", subject, f"account {server.account_user_name}"))
        if _key(server.hybrid_fqdn) == _key(server.fqdn):
            lines.append(_ok("mediation-fqdn", subject, f"Fqdn {server.hybrid_fqdn}"))
        else:
            lines.append(_bad("mediation-fqdn", subject, f"the account's Fqdn is {server.hybrid_fqdn or 'unset'}",
                              f"{set_cmd} --fqdn {server.fqdn}"))
        edge = edges.get(server.site, "")
        if _key(server.access_proxy_external_fqdn) == _key(edge):
            lines.append(_ok("site-edge", subject, f"AccessProxyExternalFqdn {edge} is site {server.site}'s edge"))
        else:
            lines.append(_bad(
                "site-edge", subject, f"AccessProxyExternalFqdn is {server.access_proxy_external_fqdn or 'unset'}, "
                f"not site {server.site}'s edge {edge}", f"{set_cmd} --access-proxy-fqdn {edge}"))
    return lines


def check_federation(config: VoiceConfiguration) -> list[CheckLine]:
    """Set-CsTenantFederationConfiguration -SharedSipAddressSpace $True: online and on-premises users share the
    tenant's SIP domains, which hybrid voice needs."""
    if config.federation.shared_sip_address_space:
        return [_ok("federation-shared-sip", config.tenant, "SharedSipAddressSpace True")]
    return [_bad("federation-shared-sip", config.tenant, "SharedSipAddressSpace False",
                 "tenantry voice federation set --shared-sip-address-space")]


def check_users(config: VoiceConfiguration, users: Iterable[VoiceUser],
                licences: Mapping[str, Iterable[str]]) -> list[CheckLine]:
    """Each enterprise-voice user: licensed (E5, or E3 + Phone System), a line URI, a site or the tenant's
    PeerDestination to fall back to, and the hybrid settings the seed's check reads (HostedVoiceMail True,
    VoicePolicy HybridVoice)."""
    lines: list[CheckLine] = []
    peer = config.hybrid.peer_destination
    for user in users:
        if not user.enterprise_voice_enabled:
            continue
        subject = f"user {user.sip_address}"
        held = {sku.upper() for sku in licences.get(user.user_id, ())}
        if any(need <= held for need in VOICE_LICENCES):
            lines.append(_ok("user-licence", subject, f"licences {', '.join(sorted(held))}"))
        else:
            lines.append(_bad("user-licence", subject, f"licences {', '.join(sorted(held)) or 'none'}: neither E5 "
                              "nor E3 with Phone System",
                              f"tenantry directory licence-assign {user.user_id} E5 (or E3 and PHONE_SYSTEM)"))
        if user.on_prem_line_uri:
            lines.append(_ok("user-line-uri", subject, f"OnPremLineURI {user.on_prem_line_uri}"))
        else:
            lines.append(_bad("user-line-uri", subject, "no OnPremLineURI: calls to the user cannot reach them",
                              f"tenantry voice user set {user.sip_address} --line-uri tel:+<E.164>"))
        if user.hybrid_pstn_site:
            lines.append(_ok("user-site", subject, f"HybridPstnSite {user.hybrid_pstn_site}"))
        elif peer:
            lines.append(_ok("user-site", subject, f"no site: calls go to the PeerDestination {peer}"))
        else:
            lines.append(_bad("user-site", subject, "no PSTN site and no tenant PeerDestination to fall back to",
                              f"tenantry voice user pstn-site set {user.sip_address} <SITE> (or tenantry voice "
                              "hybrid-config set --peer-destination <edge FQDN>)"))
        wrong = [w for w, bad in (("HostedVoiceMail False", not user.hosted_voicemail),
                                  (f"VoicePolicy {user.voice_policy or 'unset'}", user.voice_policy != HYBRID_VOICE))
                 if bad]
        if wrong:
            lines.append(_bad("user-hybrid", subject, ", ".join(wrong),
                              f"tenantry voice user set {user.sip_address} --hosted-voicemail "
                              f"--voice-policy {HYBRID_VOICE}"))
        else:
            lines.append(_ok("user-hybrid", subject, f"HostedVoiceMail True, VoicePolicy {HYBRID_VOICE}"))
    return lines
