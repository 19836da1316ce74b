"""Voice's configuration on both backends: sites, mediation servers and their online accounts, gateways and their
trunks, the tenant's hybrid and federation settings, users' voice settings named as the seed's cmdlets name them,
and the snapshot routing reads."""

from __future__ import annotations

import pytest

from tenantry.app import Services
from tenantry.core.errors import Conflict, Invalid, NotFound
from tenantry.voice.results import HYBRID_VOICE, RoutingPolicy
from tenantry.voice.service import UNSET
from tenantry.voice.snapshot import Transport
from tests.conftest import user_payload

DOMAIN = "contoso.example"


def _people(backend: Services, tenant: str) -> dict[str, str]:
    """A verified SIP domain and three users: Alice Jones, Bob Smith, Carol Smith."""
    backend.directory.add_domain(tenant, DOMAIN, verified=True)
    made = {}
    for user, display in (("alice", "Alice Jones"), ("bob", "Bob Smith"), ("carol", "Carol Smith")):
        address = f"{user}@{DOMAIN}"
        made[user] = backend.scim.create(tenant, "User", user_payload(
            address, displayName=display, emails=[{"type": "work", "value": address, "primary": True}]))["id"]
    return made


def _two_sites(backend: Services, tenant: str) -> None:
    voice = backend.voice
    voice.create_site(tenant, name="Seattle", edge_fqdn="ap.sea.contoso.example")
    voice.create_site(tenant, name="Berlin", edge_fqdn="ap.ber.contoso.example")
    voice.create_mediation_server(tenant, fqdn="ms1.sea.contoso.example", site="Seattle", ip="10.0.1.11")
    voice.create_mediation_server(tenant, fqdn="ms2.sea.contoso.example", site="Seattle", ip="10.0.1.12")
    voice.create_mediation_server(tenant, fqdn="ms1.ber.contoso.example", site="Berlin")


def test_a_mediation_server_gets_a_hidden_account_in_the_first_sip_domain(backend: Services, tenant: str) -> None:
    _people(backend, tenant)
    backend.directory.add_domain(tenant, "aaa-first-by-name.example", verified=True)   # not the default
    backend.voice.create_site(tenant, name="Seattle", edge_fqdn="AP.sea.contoso.example.")
    made = backend.voice.create_mediation_server(tenant, fqdn="MS1.sea.contoso.example", site="Seattle",
                                                 ip="10.0.1.11")
    assert made.fqdn == made.hybrid_fqdn == "ms1.sea.contoso.example" and made.ip == "10.0.1.11"
    assert made.access_proxy_external_fqdn == "ap.sea.contoso.example" and made.site == "Seattle"
    assert made.account_user_name == f"mediationserver-ms1@{DOMAIN}" and made.account_name == "MediationServer-ms1"
    account = backend.scim.get(tenant, "User", made.account_id or "")
    assert account["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"] == \
        "HybridMediationServer"
    hidden = backend.directory.users_by_id(tenant, [made.account_id or ""])[0]
    assert hidden.hidden
    assert made.account_id not in {u.user_id for u in backend.voice.users(tenant)}   # not a user to list
    with pytest.raises(Conflict, match="exists"):
        backend.voice.create_mediation_server(tenant, fqdn="ms1.sea.contoso.example", site="Seattle")
    with pytest.raises(NotFound, match="no PSTN site"):
        backend.voice.create_mediation_server(tenant, fqdn="ms9.sea.contoso.example", site="Nowhere")


def test_without_a_verified_domain_a_mediation_server_account_cannot_be_made(backend: Services, tenant: str) -> None:
    backend.directory.add_domain(tenant, "unverified.example")
    backend.voice.create_site(tenant, name="Seattle", edge_fqdn="ap.sea.contoso.example")
    with pytest.raises(Invalid, match="no verified domain"):
        backend.voice.create_mediation_server(tenant, fqdn="ms1.sea.contoso.example", site="Seattle")
    assert backend.voice.mediation_servers(tenant) == []


def test_set_hybrid_mediation_server_finds_the_account_by_display_name(backend: Services, tenant: str) -> None:
    _people(backend, tenant)
    _two_sites(backend, tenant)
    made = backend.voice.set_hybrid_mediation_server(tenant, "MediationServer-ms1", fqdn="ms1.sea.contoso.example",
                                                     access_proxy_fqdn="ap.other.contoso.example")
    # Two servers are named ms1: the second (Berlin's) got MediationServer-ms1-ber.
    assert made.access_proxy_external_fqdn == "ap.other.contoso.example"
    by_fqdn = backend.voice.set_hybrid_mediation_server(tenant, "ms1.ber.contoso.example",
                                                        access_proxy_fqdn="ap.ber.contoso.example")
    assert by_fqdn.site == "Berlin" and by_fqdn.account_name == "MediationServer-ms1-ber"
    with pytest.raises(NotFound):
        backend.voice.set_hybrid_mediation_server(tenant, "MediationServer-nobody", fqdn="x.contoso.example")


def test_a_gateway_gets_one_trunk_per_mediation_server_of_its_own_site_at_equal_priority(
        backend: Services, tenant: str) -> None:
    _people(backend, tenant)
    _two_sites(backend, tenant)
    voice = backend.voice
    gw = voice.create_gateway(tenant, name="gw1.sea.contoso.example", site="Seattle")
    assert (gw.transport, gw.port) == (Transport.TLS, 5061)
    assert [(t.target, t.priority) for t in gw.trunks] == [("ms1.sea.contoso.example", 0),
                                                           ("ms2.sea.contoso.example", 0)]
    by_ip = voice.create_gateway(tenant, name="10.0.1.50", site="Seattle", transport="tcp", trunk_to="ip")
    assert by_ip.port == 5060 and [t.target for t in by_ip.trunks] == ["10.0.1.11", "10.0.1.12"]
    # A server added to the site later is trunked from the site's gateways too.
    voice.create_mediation_server(tenant, fqdn="ms3.sea.contoso.example", site="Seattle")
    assert [t.target for t in voice.gateways(tenant, site="Seattle")[1].trunks] == [
        "ms1.sea.contoso.example", "ms2.sea.contoso.example", "ms3.sea.contoso.example"]
    assert voice.gateways(tenant, site="Berlin") == []
    with pytest.raises(Conflict, match="gateway"):
        voice.create_gateway(tenant, name="GW1.sea.contoso.example", site="Berlin")
    with pytest.raises(Invalid, match="FQDN or IP"):
        voice.create_gateway(tenant, name="not a host", site="Seattle")
    with pytest.raises(Invalid, match="transport"):
        voice.create_gateway(tenant, name="gw9.sea.contoso.example", site="Seattle", transport="sctp")


def test_a_trunk_is_stored_as_given_and_removed_by_its_target(backend: Services, tenant: str) -> None:
    _people(backend, tenant)
    _two_sites(backend, tenant)
    voice = backend.voice
    voice.create_gateway(tenant, name="gw1.sea.contoso.example", site="Seattle", trunk_to="none")
    pool = voice.create_trunk(tenant, gateway="gw1.sea.contoso.example", target="pool.sea.contoso.example",
                              priority=5)
    assert (pool.target, pool.priority) == ("pool.sea.contoso.example", 5)
    with pytest.raises(Conflict):
        voice.create_trunk(tenant, gateway="gw1.sea.contoso.example", target="pool.sea.contoso.example")
    assert [t.target for t in voice.trunks(tenant, gateway="gw1.sea.contoso.example")] == ["pool.sea.contoso.example"]
    voice.remove_trunk(tenant, gateway="gw1.sea.contoso.example", target="POOL.sea.contoso.example")
    assert voice.trunks(tenant) == []
    with pytest.raises(NotFound):
        voice.remove_trunk(tenant, gateway="gw1.sea.contoso.example", target="pool.sea.contoso.example")


def test_hybrid_and_federation_configuration_start_unset_and_are_set(backend: Services, tenant: str) -> None:
    voice = backend.voice
    assert voice.hybrid_config(tenant).peer_destination is None
    assert not voice.federation(tenant).shared_sip_address_space
    made = voice.set_hybrid_config(tenant, peer_destination="AP.contoso.example", use_on_prem_dial_plan=False)
    assert (made.peer_destination, made.use_on_prem_dial_plan) == ("ap.contoso.example", False)
    assert voice.set_hybrid_config(tenant, use_on_prem_dial_plan=True).peer_destination == "ap.contoso.example"
    assert voice.set_hybrid_config(tenant, peer_destination=None).peer_destination is None
    assert voice.set_hybrid_config(tenant, peer_destination=UNSET).use_on_prem_dial_plan
    assert voice.set_federation(tenant, shared_sip_address_space=True).shared_sip_address_space
    assert voice.federation(tenant).shared_sip_address_space
    with pytest.raises(Invalid):
        voice.set_hybrid_config(tenant, peer_destination="not a host")


def test_set_user_enables_voice_with_a_normalised_line_uri_unique_in_the_tenant(backend: Services,
                                                                                tenant: str) -> None:
    people = _people(backend, tenant)
    voice = backend.voice
    made = voice.set_user(tenant, "sip:alice@contoso.example", enterprise_voice=True, hosted_voicemail=True,
                          line_uri="tel:+1 (425) 555-0100", voice_policy="hybridvoice")
    assert (made.user_id, made.enterprise_voice_enabled, made.hosted_voicemail, made.voice_policy) == (
        people["alice"], True, True, HYBRID_VOICE)
    assert made.on_prem_line_uri == "tel:+14255550100"
    assert made.voice_routing_policy is RoutingPolicy.ALLOWED and made.hybrid_pstn_site is None
    with pytest.raises(Conflict, match="alice@contoso.example"):
        voice.set_user(tenant, "bob@contoso.example", line_uri="+14255550100")
    # A national number is read in the installation's region (US here).
    assert voice.set_user(tenant, "bob@contoso.example", line_uri="(425) 555-0101").on_prem_line_uri == \
        "tel:+14255550101"
    for bad in ("tel:+1425", "call me", "tel:+14255550102;ext=12"):
        with pytest.raises(Invalid):
            voice.set_user(tenant, "Carol Smith", line_uri=bad)
    # What is not given stays; None clears.
    kept = voice.set_user(tenant, "alice@contoso.example", hosted_voicemail=False)
    assert kept.enterprise_voice_enabled and kept.on_prem_line_uri == "tel:+14255550100" and not kept.hosted_voicemail
    assert voice.set_user(tenant, "Alice Jones", line_uri=None).on_prem_line_uri is None
    other = f"{tenant}-o"
    backend.directory.create_tenant(other, "Other")
    with pytest.raises(NotFound):
        voice.set_user(other, "alice@contoso.example", enterprise_voice=True)
    with pytest.raises(NotFound):
        voice.set_user(other, people["alice"], enterprise_voice=True)


def test_identities_resolve_as_the_cmdlets_do_and_a_wildcard_changes_no_one(backend: Services, tenant: str) -> None:
    people = _people(backend, tenant)
    voice = backend.voice
    for name in ("sip:bob@contoso.example", "BOB@contoso.example", "Bob Smith", "bob smith", people["bob"]):
        assert voice.user(tenant, name).user_id == people["bob"], name
    assert [u.user_id for u in voice.users(tenant, "*Smith")] == [people["bob"], people["carol"]]
    assert [u.user_id for u in voice.users(tenant, "Al*")] == [people["alice"]]
    with pytest.raises(Invalid, match=r"names 2 users \(bob@contoso.example, carol@contoso.example\)"):
        voice.set_user(tenant, "*Smith", enterprise_voice=True)
    with pytest.raises(Invalid, match="names 2 users"):
        voice.user(tenant, "*smith")
    assert not any(u.enterprise_voice_enabled for u in voice.users(tenant))
    with pytest.raises(NotFound):
        voice.users(tenant, "*Nobody")
    with pytest.raises(Invalid):
        voice.user(tenant, " ")


def test_routing_policy_and_pstn_site_are_set_per_user_and_shown_over_all(backend: Services, tenant: str) -> None:
    people = _people(backend, tenant)
    _two_sites(backend, tenant)
    voice = backend.voice
    assert voice.grant_routing_policy(tenant, "Bob Smith", "InternationalCallsDisallowed").voice_routing_policy is \
        RoutingPolicy.DISALLOWED
    with pytest.raises(Invalid, match="InternationalCallsAllowed"):
        voice.grant_routing_policy(tenant, "Bob Smith", "NoCalls")
    assert voice.set_pstn_site(tenant, "bob@contoso.example", "Berlin").hybrid_pstn_site == "Berlin"
    assert voice.set_pstn_site(tenant, "alice@contoso.example", "Seattle").hybrid_pstn_site == "Seattle"
    with pytest.raises(NotFound, match="no PSTN site"):
        voice.set_pstn_site(tenant, "alice@contoso.example", "Nowhere")
    everyone = {u.user_id: u.hybrid_pstn_site for u in voice.users(tenant)}
    assert everyone == {people["alice"]: "Seattle", people["bob"]: "Berlin", people["carol"]: None}
    assert voice.set_pstn_site(tenant, "bob@contoso.example", None).hybrid_pstn_site is None
    assert voice.user(tenant, "Bob Smith").voice_routing_policy is RoutingPolicy.DISALLOWED


def test_the_routing_snapshot_keys_users_by_sip_address_and_number(backend: Services, tenant: str) -> None:
    people = _people(backend, tenant)
    _two_sites(backend, tenant)
    voice = backend.voice
    voice.create_gateway(tenant, name="gw1.sea.contoso.example", site="Seattle")
    voice.create_gateway(tenant, name="10.0.2.50", site="Berlin", transport="udp", port=5080)
    voice.set_hybrid_config(tenant, peer_destination="ap.sea.contoso.example")
    voice.set_user(tenant, "alice@contoso.example", enterprise_voice=True, line_uri="tel:+14255550100")
    voice.set_pstn_site(tenant, "alice@contoso.example", "Seattle")
    voice.set_user(tenant, "bob@contoso.example", enterprise_voice=True, line_uri="tel:+4930901820")
    voice.grant_routing_policy(tenant, "bob@contoso.example", "InternationalCallsDisallowed")
    snap = voice.routing_snapshot(tenant)
    assert snap.tenant == tenant and snap.peer_destination == "ap.sea.contoso.example"
    assert snap.sip_domains == (DOMAIN,)
    alice = snap.users["alice@contoso.example"]
    assert snap.users["+14255550100"] is alice
    assert (alice.user_id, alice.site, alice.region, alice.enterprise_voice, alice.international_allowed) == (
        people["alice"], "Seattle", "US", True, True)
    bob = snap.users["+4930901820"]
    assert (bob.site, bob.region, bob.international_allowed) == (None, "DE", False)
    carol = snap.users["carol@contoso.example"]
    assert not carol.enterprise_voice and carol.line_uri is None      # there, so routing can say "not enabled"
    assert not any(u.sip_address.startswith("mediationserver") for u in snap.users.values())
    seattle, berlin = snap.sites["Seattle"], snap.sites["Berlin"]
    assert seattle.mediation_servers == ("ms1.sea.contoso.example", "ms2.sea.contoso.example")
    assert [(g.host, g.port, g.transport) for g in seattle.gateways] == [
        ("gw1.sea.contoso.example", 5061, Transport.TLS)]
    assert [(g.host, g.port, g.transport, g.site) for g in berlin.gateways] == [
        ("10.0.2.50", 5080, Transport.UDP, "Berlin")]


def test_a_deactivated_user_is_in_the_snapshot_without_voice(backend: Services, tenant: str) -> None:
    people = _people(backend, tenant)
    backend.voice.set_user(tenant, "alice@contoso.example", enterprise_voice=True, line_uri="tel:+14255550100")
    backend.scim.patch(tenant, "User", people["alice"], {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": False}]})
    assert not backend.voice.routing_snapshot(tenant).users["+14255550100"].enterprise_voice


def test_another_tenant_sees_none_of_the_configuration(backend: Services, tenant: str) -> None:
    _people(backend, tenant)
    _two_sites(backend, tenant)
    backend.voice.create_gateway(tenant, name="gw1.sea.contoso.example", site="Seattle")
    other = f"{tenant}-o"
    backend.directory.create_tenant(other, "Other")
    voice = backend.voice
    assert voice.sites(other) == voice.mediation_servers(other) == voice.gateways(other) == voice.trunks(other) == []
    with pytest.raises(NotFound):
        voice.site(other, "Seattle")
    with pytest.raises(NotFound):
        voice.create_trunk(other, gateway="gw1.sea.contoso.example", target="ms1.sea.contoso.example")
    with pytest.raises(NotFound):
        voice.set_hybrid_mediation_server(other, "ms1.sea.contoso.example", fqdn="x.contoso.example")
    with pytest.raises(NotFound):
        voice.create_gateway(other, name="gw2.sea.contoso.example", site="Seattle")
    assert voice.routing_snapshot(other).sites == {}
