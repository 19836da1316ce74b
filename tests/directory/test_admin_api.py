"""The admin REST API (/api/v1): admin tokens only, one tenant per token, clear JSON errors.

No or an unknown token is 401; a valid token of another scope or tenant is 403 (docs/security.md).
"""

from __future__ import annotations

from tests.conftest import admin_secret, user_payload


def test_admin_api_lists_users_and_assigns_licences(app_client, backend, tenant: str) -> None:
    token = admin_secret(backend, tenant, "a")
    h = {"Authorization": f"Bearer {token}"}
    user = backend.scim.create(tenant, "User", user_payload("ops@contoso.com"))
    r = app_client.get(f"/api/v1/tenants/{tenant}/users", headers=h, params={"filter": 'userName sw "ops"'})
    assert r.status_code == 200 and [u["id"] for u in r.json()["users"]] == [user["id"]]
    r = app_client.post(f"/api/v1/tenants/{tenant}/users/{user['id']}/licences", headers=h, json={"sku": "E5"})
    assert r.status_code == 201 and r.json() == ["E5"]
    detail = app_client.get(f"/api/v1/tenants/{tenant}/users/{user['id']}", headers=h).json()
    assert detail["licences"] == ["E5"] and detail["roles"] == []
    r = app_client.post(f"/api/v1/tenants/{tenant}/users/{user['id']}/licences", headers=h, json={"sku": "E9"})
    assert r.status_code == 400 and "unknown licence" in r.json()["message"]


def test_admin_api_refuses_scim_tokens_and_other_tenants(app_client, backend, tenant: str) -> None:
    scim_token = backend.directory.issue_token(tenant, "scim", "s").secret
    r = app_client.get(f"/api/v1/tenants/{tenant}/users", headers={"Authorization": f"Bearer {scim_token}"})
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    admin = admin_secret(backend, tenant, "a")
    r = app_client.get("/api/v1/tenants/default-other/users", headers={"Authorization": f"Bearer {admin}"})
    assert r.status_code == 403
    assert app_client.get(f"/api/v1/tenants/{tenant}/domains").status_code == 401


def test_admin_api_domains_and_role_groups(app_client, backend, tenant: str) -> None:
    h = {"Authorization": f"Bearer {admin_secret(backend, tenant, 'a')}"}
    r = app_client.post(f"/api/v1/tenants/{tenant}/domains", headers=h, json={"name": "contoso.com"})
    assert r.status_code == 201
    assert app_client.post(f"/api/v1/tenants/{tenant}/domains", headers=h,
                           json={"name": "contoso.com"}).status_code == 409
    user = backend.scim.create(tenant, "User", user_payload())
    r = app_client.post(f"/api/v1/tenants/{tenant}/role-groups", headers=h,
                        json={"name": "Importers", "roles": ["Mailbox Import Export"]})
    assert r.status_code == 201
    r = app_client.post(f"/api/v1/tenants/{tenant}/role-groups/Importers/members", headers=h,
                        json={"user_id": user["id"]})
    assert r.status_code == 204
    assert backend.directory.has_role(tenant, user["id"], "Mailbox Import Export")
