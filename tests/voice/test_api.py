"""Voice's admin REST routes, on both backends: the seed's configuration made over HTTP by a Voice Administrator,
PATCH semantics (a field left out stays, null clears), refusals as 4xx, and the role check."""

from __future__ import annotations

from urllib.parse import quote

from fastapi.testclient import TestClient

from tenantry.app import Services
from tests.conftest import admin_secret, user_payload


def test_a_voice_administrator_configures_the_seed_over_the_api(app_client: TestClient, backend: Services,
                                                                 tenant: str) -> None:
    backend.directory.add_domain(tenant, "contoso.example", verified=True)
    bob = backend.scim.create(tenant, "User", user_payload("bob@contoso.example", displayName="Bob Kelly"))["id"]
    backend.directory.assign_licence(tenant, bob, "E5")
    h = {"Authorization": f"Bearer {admin_secret(backend, tenant, 'voice', ['Voice Administrator'])}"}
    api = f"/api/v1/tenants/{tenant}/voice"

    def ok(method: str, path: str, status: int = 200, **kw: object) -> dict:   # type: ignore[type-arg]
        r = app_client.request(method, api + path, headers=h, **kw)   # type: ignore[arg-type]
        assert r.status_code == status, r.text
        return r.json() if r.content else {}

    ok("POST", "/sites", 201, json={"name": "Seattle", "edge_fqdn": "ap.sea.contoso.example"})
    server = ok("POST", "/mediation-servers", 201, json={"fqdn": "ms1.sea.contoso.example", "site": "Seattle"})
    assert server["access_proxy_external_fqdn"] == "ap.sea.contoso.example"
    gw = ok("POST", "/gateways", 201, json={"name": "gw1.sea.contoso.example", "site": "Seattle"})
    assert [t["target"] for t in gw["trunks"]] == ["ms1.sea.contoso.example"]
    ok("PATCH", f"/mediation-servers/{server['account_name']}", json={"fqdn": "ms1.sea.contoso.example"})
    ok("PUT", "/hybrid-config", json={"peer_destination": "ap.sea.contoso.example", "use_on_prem_dial_plan": False})
    assert ok("PUT", "/hybrid-config", json={"use_on_prem_dial_plan": True})["peer_destination"] == \
        "ap.sea.contoso.example"
    ok("PUT", "/federation", json={"shared_sip_address_space": True})
    user = ok("PATCH", "/users/" + quote("Bob Kelly"), json={
        "enterprise_voice_enabled": True, "hosted_voicemail": True, "on_prem_line_uri": "+14255550100",
        "voice_policy": "HybridVoice"})
    assert user["on_prem_line_uri"] == "tel:+14255550100" and user["user_id"] == bob
    assert ok("PATCH", "/users/bob@contoso.example", json={"hosted_voicemail": True})["on_prem_line_uri"] == \
        "tel:+14255550100"
    assert ok("PUT", "/users/sip:bob@contoso.example/routing-policy",
              json={"policy_name": "InternationalCallsDisallowed"})["voice_routing_policy"] == \
        "InternationalCallsDisallowed"
    assert ok("PUT", "/users/bob@contoso.example/pstn-site", json={"hybrid_pstn_site": "Seattle"})[
        "hybrid_pstn_site"] == "Seattle"
    assert [u["sip_address"] for u in ok("GET", "/users", params={"identity": "*Kelly"})] == ["bob@contoso.example"]
    checked = ok("GET", "/check")
    assert checked["ok"] is True and checked["lines"]
    # Refusals: 400 for a bad value, 404 for an unknown site, 409 for a duplicate.
    ok("POST", "/trunks", 400, json={"gateway": "gw1.sea.contoso.example", "target": "not a host"})
    ok("POST", "/gateways", 404, json={"name": "gw2.sea.contoso.example", "site": "Nowhere"})
    ok("POST", "/sites", 409, json={"name": "Seattle", "edge_fqdn": "ap.sea.contoso.example"})
    ok("POST", "/trunks", 201, json={"gateway": "gw1.sea.contoso.example", "target": "pool.sea.contoso.example"})
    assert ok("GET", "/check")["ok"] is False
    ok("DELETE", "/gateways/gw1.sea.contoso.example/trunks/pool.sea.contoso.example", 204)
    assert ok("GET", "/check")["ok"] is True


def test_an_administrator_without_voice_or_organization_is_refused(app_client: TestClient, backend: Services,
                                                                   tenant: str) -> None:
    h = {"Authorization": f"Bearer {admin_secret(backend, tenant, 'comp', ['Compliance Administrator'])}"}
    r = app_client.post(f"/api/v1/tenants/{tenant}/voice/sites", headers=h,
                        json={"name": "Seattle", "edge_fqdn": "ap.sea.contoso.example"})
    assert r.status_code == 403 and "Voice Administrator" in r.text
    assert backend.voice.sites(tenant) == []
