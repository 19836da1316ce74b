"""Every configuration check of ``voice check``, a passing and a failing configuration each, on hand-made
configurations (``voice.checks`` is pure); and ``VoiceService.check`` over the database with its DNS/TLS hooks."""

from __future__ import annotations

import dataclasses

from tenantry.app import Services
from tenantry.voice import checks
from tenantry.voice.results import (
    CheckLine,
    FederationConfig,
    Gateway,
    HybridConfig,
    MediationServer,
    RoutingPolicy,
    Site,
    Trunk,
    VoiceConfiguration,
    VoiceUser,
)
from tenantry.voice.snapshot import Transport
from tests.conftest import user_payload


def _server(fqdn: str, site: str, ip: str | None = None, edge: str | None = None) -> MediationServer:
    return MediationServer(f"id-{fqdn}", fqdn, ip, site, f"acct-{fqdn}", f"MediationServer-{fqdn}",
                           f"ms-{fqdn}@contoso.example", fqdn, edge)


def _gateway(name: str, site: str, *targets: tuple[str, int]) -> Gateway:
    return Gateway(f"id-{name}", name, site, Transport.TLS, 5061,
                   [Trunk(f"t-{t}", name, t, p) for t, p in targets])


def _config(gateways: list[Gateway], *, servers: list[MediationServer] | None = None, shared: bool = True,
            peer: str | None = None) -> VoiceConfiguration:
    sites = [Site("s1", "Seattle", "ap.sea.contoso.example"), Site("s2", "Berlin", "ap.ber.contoso.example")]
    if servers is None:
        servers = [_server("ms1.sea.contoso.example", "Seattle", "10.0.1.11", "ap.sea.contoso.example"),
                   _server("ms2.sea.contoso.example", "Seattle", "10.0.1.12", "ap.sea.contoso.example"),
                   _server("ms1.ber.contoso.example", "Berlin", None, "ap.ber.contoso.example")]
    return VoiceConfiguration("t", ["contoso.example"], sites, servers, gateways, HybridConfig(peer, False),
                              FederationConfig(shared))


def _lines(lines: list[CheckLine], check: str) -> list[CheckLine]:
    found = [line for line in lines if line.check == check]
    assert found, f"no {check} line"
    return found


GOOD_GW = _gateway("gw1.sea.contoso.example", "Seattle", ("ms1.sea.contoso.example", 0), ("10.0.1.12", 0))


def test_trunks_to_each_server_of_the_site_at_equal_priority_pass() -> None:
    lines = checks.check_trunks(_config([GOOD_GW]))
    assert lines and all(line.ok and line.fix is None for line in lines)
    assert {line.check for line in lines} == {"trunk-target", "trunk-site", "trunk-priority", "trunk-coverage"}


def test_a_trunk_to_a_pool_fqdn_fails_with_the_commands_that_fix_it() -> None:
    gw = _gateway("gw1.sea.contoso.example", "Seattle", ("pool.sea.contoso.example", 0),
                  ("ms1.sea.contoso.example", 0), ("ms2.sea.contoso.example", 0))
    bad = [line for line in _lines(checks.check_trunks(_config([gw])), "trunk-target") if not line.ok]
    assert len(bad) == 1 and "pool.sea.contoso.example" in bad[0].detail and "pool FQDN" in bad[0].detail
    assert bad[0].fix and "voice trunk remove gw1.sea.contoso.example pool.sea.contoso.example" in bad[0].fix


def test_unequal_trunk_priorities_fail() -> None:
    gw = _gateway("gw1.sea.contoso.example", "Seattle", ("ms1.sea.contoso.example", 0), ("ms2.sea.contoso.example", 1))
    [line] = _lines(checks.check_trunks(_config([gw])), "trunk-priority")
    assert not line.ok and "[0, 1]" in line.detail and line.fix and "--priority 0" in line.fix


def test_a_gateway_trunked_to_another_sites_server_fails() -> None:
    gw = _gateway("gw1.sea.contoso.example", "Seattle", ("ms1.sea.contoso.example", 0),
                  ("ms2.sea.contoso.example", 0), ("ms1.ber.contoso.example", 0))
    [line] = _lines(checks.check_trunks(_config([gw])), "trunk-site")
    assert not line.ok and "ms1.ber.contoso.example (site Berlin)" in line.detail
    assert line.fix and "voice trunk remove gw1.sea.contoso.example ms1.ber.contoso.example" in line.fix
    # Berlin's server is a mediation server: the trunk is not also reported as a pool.
    assert all(line.ok for line in _lines(checks.check_trunks(_config([gw])), "trunk-target"))


def test_a_gateway_missing_a_trunk_to_a_server_of_its_site_fails() -> None:
    gw = _gateway("gw1.sea.contoso.example", "Seattle", ("ms1.sea.contoso.example", 0))
    [line] = _lines(checks.check_trunks(_config([gw])), "trunk-coverage")
    assert not line.ok and "ms2.sea.contoso.example" in line.detail
    assert line.fix == "tenantry voice trunk new gw1.sea.contoso.example ms2.sea.contoso.example"
    [empty] = _lines(checks.check_trunks(_config([_gateway("gw2.ber.contoso.example", "Berlin")])), "trunk-coverage")
    assert not empty.ok


def test_each_servers_account_names_its_own_sites_edge() -> None:
    lines = checks.check_sites(_config([]))
    assert all(line.ok for line in lines)
    assert {line.check for line in lines} == {"site-servers", "mediation-account", "mediation-fqdn", "site-edge"}
    wrong = _config([], servers=[_server("ms1.sea.contoso.example", "Seattle", None, "ap.ber.contoso.example"),
                                 _server("ms1.ber.contoso.example", "Berlin", None, "ap.ber.contoso.example")])
    [bad] = [line for line in _lines(checks.check_sites(wrong), "site-edge") if not line.ok]
    assert bad.subject == "mediation server ms1.sea.contoso.example" and "ap.ber.contoso.example" in bad.detail
    assert bad.fix == ("tenantry voice mediation-server set ms1.sea.contoso.example "
                       "--access-proxy-fqdn ap.sea.contoso.example")


def test_a_server_without_an_account_or_with_another_fqdn_and_a_site_without_servers_fail() -> None:
    no_account = dataclasses.replace(_server("ms1.sea.contoso.example", "Seattle", None, "ap.sea.contoso.example"),
                                     account_id=None)
    other_fqdn = dataclasses.replace(_server("ms1.ber.contoso.example", "Berlin", None, "ap.ber.contoso.example"),
                                     hybrid_fqdn="ms9.ber.contoso.example")
    lines = checks.check_sites(_config([], servers=[no_account, other_fqdn]))
    assert [line.ok for line in _lines(lines, "mediation-account")] == [False, True]
    [fqdn] = _lines(lines, "mediation-fqdn")
    assert not fqdn.ok and fqdn.fix and "--fqdn ms1.ber.contoso.example" in fqdn.fix
    empty = _config([], servers=[_server("ms1.sea.contoso.example", "Seattle", None, "ap.sea.contoso.example")])
    assert [(line.subject, line.ok) for line in _lines(checks.check_sites(empty), "site-servers")] == [
        ("site Seattle", True), ("site Berlin", False)]


def test_federation_needs_a_shared_sip_address_space() -> None:
    [good] = checks.check_federation(_config([]))
    [bad] = checks.check_federation(_config([], shared=False))
    assert good.ok and not bad.ok and bad.fix == "tenantry voice federation set --shared-sip-address-space"


def _user(uid: str, *, voice: bool = True, uri: str | None = "tel:+14255550100", site: str | None = "Seattle",
          voicemail: bool = True, policy: str | None = "HybridVoice") -> VoiceUser:
    return VoiceUser(uid, f"{uid}@contoso.example", uid, f"{uid}@contoso.example", voice, voicemail, policy, uri,
                     RoutingPolicy.ALLOWED, site)


def test_a_voice_user_holds_e5_or_e3_with_phone_system() -> None:
    users = [_user("e5"), _user("e3ps"), _user("e3"), _user("none")]
    held = {"e5": ["E5"], "e3ps": ["E3", "PHONE_SYSTEM"], "e3": ["E3"], "none": []}
    lines = _lines(checks.check_users(_config([]), users, held), "user-licence")
    assert [line.ok for line in lines] == [True, True, False, False]
    assert lines[2].fix and "licence-assign e3 E5" in lines[2].fix and "licences none" in lines[3].detail


def test_a_voice_user_needs_a_line_uri_and_a_site_or_peer_destination() -> None:
    users = [_user("ok"), _user("nouri", uri=None), _user("nosite", site=None)]
    licences = {u.user_id: ["E5"] for u in users}
    lines = checks.check_users(_config([]), users, licences)
    assert [line.ok for line in _lines(lines, "user-line-uri")] == [True, False, True]
    assert [line.ok for line in _lines(lines, "user-site")] == [True, True, False]
    with_peer = checks.check_users(_config([], peer="ap.sea.contoso.example"), users, licences)
    assert all(line.ok for line in _lines(with_peer, "user-site"))
    assert "PeerDestination ap.sea.contoso.example" in _lines(with_peer, "user-site")[2].detail


def test_a_voice_user_has_hosted_voicemail_and_the_hybrid_voice_policy() -> None:
    users = [_user("ok"), _user("novm", voicemail=False), _user("nopolicy", policy=None)]
    lines = _lines(checks.check_users(_config([]), users, {u.user_id: ["E5"] for u in users}), "user-hybrid")
    assert [line.ok for line in lines] == [True, False, False]
    assert "HostedVoiceMail False" in lines[1].detail and "VoicePolicy unset" in lines[2].detail


def test_users_without_enterprise_voice_are_not_checked() -> None:
    assert checks.check_users(_config([]), [_user("off", voice=False, uri=None, site=None)], {}) == []


def _seed_configuration(backend: Services, tenant: str) -> None:
    """The seed's steps, done right: one site, two mediation servers (HA), a gateway, one licensed voice user."""
    backend.directory.add_domain(tenant, "contoso.example", verified=True)
    user = backend.scim.create(tenant, "User", user_payload("alice@contoso.example", displayName="Alice"))["id"]
    backend.directory.assign_licence(tenant, user, "E5")
    voice = backend.voice
    voice.create_site(tenant, name="Seattle", edge_fqdn="ap.sea.contoso.example")
    voice.create_mediation_server(tenant, fqdn="ms1.sea.contoso.example", site="Seattle")
    voice.create_mediation_server(tenant, fqdn="ms2.sea.contoso.example", site="Seattle")
    voice.create_gateway(tenant, name="gw1.sea.contoso.example", site="Seattle")
    voice.set_hybrid_config(tenant, peer_destination="ap.sea.contoso.example", use_on_prem_dial_plan=False)
    voice.set_federation(tenant, shared_sip_address_space=True)
    voice.set_user(tenant, "alice@contoso.example", enterprise_voice=True, hosted_voicemail=True,
                   line_uri="tel:+14255550100", voice_policy="HybridVoice")
    voice.set_pstn_site(tenant, "alice@contoso.example", "Seattle")


def test_the_seeds_configuration_passes_every_check_and_the_hooks_add_their_lines(backend: Services,
                                                                                   tenant: str) -> None:
    _seed_configuration(backend, tenant)
    result = backend.voice.check(tenant)
    assert result.ok, [line for line in result.lines if not line.ok]
    assert {"trunk-target", "trunk-priority", "trunk-site", "trunk-coverage", "site-edge", "user-licence",
            "user-line-uri", "user-site", "federation-shared-sip"} <= {line.check for line in result.lines}
    seen: list[VoiceConfiguration] = []

    def dns(config: VoiceConfiguration) -> list[CheckLine]:
        seen.append(config)
        return [CheckLine("dns-edge-a", config.sites[0].edge_fqdn, False, "NXDOMAIN", "add an A record")]

    hooked = backend.voice.check(tenant, dns=dns)
    assert not hooked.ok and hooked.lines[-1].check == "dns-edge-a"
    assert seen[0].sip_domains == ["contoso.example"] and [g.name for g in seen[0].gateways] == [
        "gw1.sea.contoso.example"]


def test_a_bad_trunk_and_a_missing_licence_fail_the_check(backend: Services, tenant: str) -> None:
    _seed_configuration(backend, tenant)
    backend.voice.create_trunk(tenant, gateway="gw1.sea.contoso.example", target="pool.sea.contoso.example")
    alice = backend.voice.user(tenant, "alice@contoso.example").user_id
    backend.directory.remove_licence(tenant, alice, "E5")
    backend.directory.assign_licence(tenant, alice, "E3")
    result = backend.voice.check(tenant)
    assert not result.ok
    assert {line.check for line in result.lines if not line.ok} == {"trunk-target", "user-licence"}
