"""The console's trust and voice pages through a TestClient: what they show (partners, certificates, the trust
check with what to do; sites, gateways, servers, users, the voice checks with fixes, the route tester), who may
open them (the admin API's roles), and tenant isolation (another tenant's configuration is never shown)."""

from __future__ import annotations

import uuid

from tenantry.core.access import COMPLIANCE, ORGANIZATION, VOICE
from tests.conftest import user_payload
from tests.console.conftest import Console, signed_in_as

APP_ID = "00000004-0000-0ff1-ce00-000000000000"


def _voice_admin(console: Console, user_name: str) -> str:
    """A Voice Administrator (no built-in role group holds the role: a group "Voice" made for it), signed in."""
    user_id = signed_in_as(console.services, console.client, console.tenant, user_name, [])
    console.services.directory.create_role_group(console.tenant, "Voice", [VOICE])
    console.services.directory.add_role_group_member(console.tenant, "Voice", user_id)
    return user_id


def _voice_seed(console: Console) -> str:
    """The seed's hybrid voice configuration in the console's tenant: one site, server, gateway, voice user."""
    services, tenant = console.services, console.tenant
    services.directory.add_domain(tenant, "contoso.com", verified=True)
    bob = console.user("bob.voice@contoso.com", displayName="Bob Kelly")
    services.directory.assign_licence(tenant, bob, "E5")
    voice = services.voice
    voice.create_site(tenant, name="Seattle", edge_fqdn="ap.sea.contoso.com")
    voice.create_mediation_server(tenant, fqdn="ms1.sea.contoso.com", site="Seattle")
    voice.create_gateway(tenant, name="gw1.sea.contoso.com", site="Seattle")
    voice.set_hybrid_config(tenant, peer_destination="ap.sea.contoso.com")
    voice.set_federation(tenant, shared_sip_address_space=True)
    voice.set_user(tenant, "bob.voice@contoso.com", enterprise_voice=True, hosted_voicemail=True,
                   line_uri="+14255550100", voice_policy="HybridVoice")
    voice.set_pstn_site(tenant, "bob.voice@contoso.com", "Seattle")
    return bob


def test_the_trust_page_shows_partners_certificates_and_the_check_with_what_to_do(console: Console) -> None:
    services, tenant = console.services, console.tenant
    services.trust.create_partner(tenant, name="Exchange Online", application_id=APP_ID,
                                  linked_account=console.admin)
    signed_in_as(services, console.client, tenant, "org@contoso.com", [ORGANIZATION])
    page = console.client.get("/console/trust")
    assert page.status_code == 200, page.text
    config = services.trust.auth_config(tenant)
    assert "Exchange Online" in page.text and APP_ID in page.text and f"/console/users/{console.admin}" in page.text
    assert config.current_certificate_thumbprint in page.text and "none published" in page.text
    assert 'class="bad"' in page.text and "holds no key with our current certificate" in page.text
    assert "tenantry auth-cert export OAuthCert.cer" in page.text     # the partner's "what to do" line
    assert 'href="/console/trust"' in page.text                       # in the navigation

    der = services.trust.export_certificate(tenant)
    partner = services.trust.find_partner(tenant, "Exchange Online")
    services.trust.add_service_principal_key(tenant, partner, der)
    services.trust.publish_next(tenant)
    page = console.client.get("/console/trust").text
    assert "Every partner holds our current certificate" in page and "What to do" not in page
    assert services.trust.auth_config(tenant).next_certificate_thumbprint in page


def test_trust_is_organization_management_only(console: Console) -> None:
    _voice_admin(console, "voice@contoso.com")
    r = console.client.get("/console/trust")
    assert r.status_code == 403 and "Organization Management" in r.text
    assert 'href="/console/trust"' not in console.client.get("/console/").text


def test_the_voice_page_shows_the_configuration_users_and_checks(console: Console) -> None:
    bob = _voice_seed(console)
    _voice_admin(console, "voice@contoso.com")
    page = console.client.get("/console/voice")
    assert page.status_code == 200, page.text
    text = page.text
    assert all(s in text for s in ("Seattle", "ap.sea.contoso.com", "gw1.sea.contoso.com", "ms1.sea.contoso.com",
                                   "tel:+14255550100", "HybridVoice", f"/console/users/{bob}"))
    assert "Every configuration check passes" in text
    assert 'href="/console/voice"' in text and 'href="/console/trust"' not in text

    console.services.voice.create_trunk(console.tenant, gateway="gw1.sea.contoso.com", target="pool.sea.contoso.com")
    text = console.client.get("/console/voice").text
    assert "checks fail" in text and "What to do:" in text and "pool.sea.contoso.com" in text

    narrowed = console.client.get("/console/voice", params={"identity": "*Kelly"}).text
    assert "bob.voice@contoso.com" in narrowed and ">voice@contoso.com</a>" not in narrowed
    nobody = console.client.get("/console/voice", params={"identity": "nobody@nowhere.example"})
    assert nobody.status_code == 400 and 'role="alert"' in nobody.text


def test_the_route_tester_answers_as_the_sip_service_would(console: Console) -> None:
    _voice_seed(console)
    signed_in_as(console.services, console.client, console.tenant, "org@contoso.com", [ORGANIZATION])
    r = console.client.get("/console/voice", params={"caller": "bob.voice@contoso.com", "number": "+14255550123"})
    assert r.status_code == 200, r.text
    assert "302 Moved Temporarily" in r.text and "gw1.sea.contoso.com" in r.text and "+14255550123" in r.text
    r = console.client.get("/console/voice", params={"caller": "nobody@contoso.com", "number": "+14255550123"})
    assert "404" in r.text and "route-answer" in r.text
    r = console.client.get("/console/voice", params={"caller": "bob.voice@contoso.com", "number": "+14255550123",
                                                     "conference": "true"})
    assert r.status_code == 200 and 'id="conference" name="conference" value="true" checked' in r.text


def test_voice_needs_voice_administrator_or_organization_management(console: Console) -> None:
    signed_in_as(console.services, console.client, console.tenant, "cara@contoso.com", [COMPLIANCE])
    r = console.client.get("/console/voice", params={"caller": "a@contoso.com", "number": "+1"})
    assert r.status_code == 403 and "Voice Administrator" in r.text


def test_another_tenants_session_sees_its_own_trust_and_voice_only(console: Console) -> None:
    _voice_seed(console)
    console.services.trust.create_partner(console.tenant, name="A partner", application_id=APP_ID)
    other = f"b-{uuid.uuid4().hex[:8]}"
    console.services.directory.create_tenant(other, "B")
    console.services.scim.create(other, "User", user_payload("bob@b.example"))
    signed_in_as(console.services, console.client, other, "bob@b.example", [ORGANIZATION])
    trust = console.client.get("/console/trust").text
    assert "A partner" not in trust and console.services.trust.auth_config(console.tenant)\
        .current_certificate_thumbprint not in trust
    voice = console.client.get("/console/voice", params={"caller": "bob.voice@contoso.com", "number": "+14255550123"})
    assert "gw1.sea.contoso.com" not in voice.text and "Seattle" not in voice.text
    assert "bob.voice@contoso.com</a>" not in voice.text and "302" not in voice.text
