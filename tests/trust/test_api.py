"""Trust's admin routes, on both backends: partner applications, the auth configuration and its certificate,
rotation, service-principal keys and the check, each needing Organization Management."""

from __future__ import annotations

import base64
from typing import Any

from cryptography import x509
from fastapi.testclient import TestClient

from tenantry.app import Services
from tenantry.core.access import COMPLIANCE, ORGANIZATION
from tests.conftest import admin_secret

SFB = "00000004-0000-0ff1-ce00-000000000000"


def _headers(backend: Services, tenant: str, role: str = ORGANIZATION) -> dict[str, str]:
    return {"Authorization": f"Bearer {admin_secret(backend, tenant, role, roles=[role])}"}


def test_the_seeds_steps_over_the_api(app_client: TestClient, backend: Services, tenant: str) -> None:
    h = _headers(backend, tenant)
    base = f"/api/v1/tenants/{tenant}/trust"
    r = app_client.post(base + "/partner-apps", json={"name": "SfBOnline", "application_id": SFB}, headers=h)
    assert r.status_code == 201, r.text
    partner = r.json()["id"]
    assert app_client.get(base + "/partner-apps", headers=h).json()[0]["name"] == "SfBOnline"
    config = app_client.get(base + "/auth-config", headers=h).json()
    r = app_client.get(base + "/auth-config/certificate", headers=h)
    assert r.status_code == 200 and r.headers["content-type"] == "application/pkix-cert"
    cert = x509.load_der_x509_certificate(r.content)
    r = app_client.post(f"{base}/partner-apps/{partner}/service-principal/keys",
                        json={"value": base64.b64encode(r.content).decode()}, headers=h)
    assert r.status_code == 201, r.text
    key: dict[str, Any] = r.json()
    assert key["thumbprint"] == config["current_certificate_thumbprint"]
    assert key["end_date"].startswith(cert.not_valid_after_utc.isoformat()[:19])
    sp = app_client.get(f"{base}/partner-apps/SfBOnline/service-principal", headers=h).json()
    assert [k["key_id"] for k in sp["keys"]] == [key["key_id"]]
    checked = app_client.get(base + "/check", headers=h).json()
    assert checked["ok"] is True and checked["partners"][0]["ok"] is True
    assert app_client.post(f"{base}/partner-apps/{partner}/disable", headers=h).json()["enabled"] is False
    assert app_client.post(f"{base}/partner-apps/{partner}/enable", headers=h).json()["enabled"] is True
    r = app_client.delete(f"{base}/partner-apps/{partner}/service-principal/keys/{key['key_id']}", headers=h)
    assert r.status_code == 204
    assert app_client.get(base + "/check", headers=h).json()["ok"] is False
    assert app_client.delete(f"{base}/partner-apps/{partner}", headers=h).status_code == 204
    assert app_client.get(f"{base}/partner-apps/{partner}", headers=h).status_code == 404


def test_rotation_over_the_api(app_client: TestClient, backend: Services, tenant: str) -> None:
    h = _headers(backend, tenant)
    base = f"/api/v1/tenants/{tenant}/trust/auth-config"
    first = app_client.get(base, headers=h).json()["current_certificate_thumbprint"]
    nxt = app_client.post(base + "/publish-next", json={}, headers=h).json()["next_certificate_thumbprint"]
    assert app_client.post(base + "/switch", json={}, headers=h).status_code == 409
    switched = app_client.post(base + "/switch", json={"force": True}, headers=h).json()
    assert (switched["current_certificate_thumbprint"], switched["previous_certificate_thumbprint"]) == (nxt, first)
    retired = app_client.post(base + "/retire-previous", headers=h).json()
    assert retired["previous_certificate_thumbprint"] is None
    assert app_client.post(base + "/retire-previous", headers=h).status_code == 404


def test_a_value_that_is_no_certificate_is_a_400(app_client: TestClient, backend: Services, tenant: str) -> None:
    h = _headers(backend, tenant)
    base = f"/api/v1/tenants/{tenant}/trust/partner-apps"
    partner = app_client.post(base, json={"name": "P", "application_id": SFB}, headers=h).json()["id"]
    r = app_client.post(f"{base}/{partner}/service-principal/keys",
                        json={"value": base64.b64encode(b"not a certificate").decode()}, headers=h)
    assert r.status_code == 400 and "certificate" in r.text
    assert app_client.get(f"{base}/{partner}/service-principal", headers=h).json()["keys"] == []


def test_a_body_naming_an_actor_is_refused(app_client: TestClient, backend: Services, tenant: str) -> None:
    r = app_client.post(f"/api/v1/tenants/{tenant}/trust/partner-apps", headers=_headers(backend, tenant),
                        json={"name": "P", "application_id": SFB, "created_by": "mallory"})
    assert r.status_code == 422 and "authenticated caller" in r.text


def test_trust_routes_need_organization_management(app_client: TestClient, backend: Services, tenant: str) -> None:
    r = app_client.get(f"/api/v1/tenants/{tenant}/trust/auth-config", headers=_headers(backend, tenant, COMPLIANCE))
    assert r.status_code == 403 and ORGANIZATION in r.text
