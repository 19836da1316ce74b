"""Every route of ``create_app`` refuses the wrong credential — a suite generated from the route table.

For each APIRoute (the admin API under /api/v1 and both SCIM prefixes), on both backends:
- no token, an unknown token, a revoked token → 401 (except the public routes of ``routes.is_public``:
  /healthz and SCIM discovery, which carry no tenant's data);
- on admin routes: the tenant's own SCIM token → 403, the operator token → 403 on /tenants/{id}/…;
- on operator routes (OPERATOR_ONLY): the tenant's own admin token → 403;
- on SCIM routes: the tenant's own admin token and the operator token → 401 (a SCIM endpoint answers 401 to
  everything but its tenant's SCIM token);
- on the browser's pages (sign-in /auth/…, the console / and /console/…, whose credential is the session cookie):
  no bearer token of any scope changes the answer, and none is a session.
The credential is always of the tenant named in the path, so the scope alone is what refuses it. A route
that fits none of the kinds below fails ``test_every_route_has_a_credential_kind``: say what it needs here.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tenantry.app import Services, create_app
from tests.conftest import admin_secret, administrator
from tests.security.routes import api_routes, fill, is_browser, is_partner, is_public, scim_suffix

# Routes only the operator may call (a tenant admin gets 403). GET /api/v1/tenants is shared: the operator
# sees every tenant, a tenant admin its own.
OPERATOR_ONLY = {("POST", "/api/v1/tenants")}
# Routes of the admin API that are not under /tenants/{tenant_id}: any admin token or the operator token.
INSTALLATION = {("GET", "/api/v1/tenants"), ("GET", "/api/v1/catalogue")} | OPERATOR_ONLY


def kind(method: str, path: str) -> str | None:
    if is_public(method, path):
        return "public"
    if is_browser(path):
        return "browser"
    if is_partner(path):
        return "partner"
    if (method, path) in OPERATOR_ONLY:
        return "operator"
    if (method, path) in INSTALLATION:
        return "installation"
    if path.startswith("/api/v1/tenants/{tenant_id}/"):
        return "admin"
    if scim_suffix(path) is not None:
        return "scim"
    return None


@pytest.fixture(scope="module")
def creds(backend: Services) -> dict[str, Any]:
    tenant = f"s-{uuid.uuid4().hex[:10]}"
    backend.directory.create_tenant(tenant, "Scopes")
    backend.directory.ensure_tenant(backend.settings.default_tenant)
    issue = backend.directory.issue_token
    default = backend.settings.default_tenant
    revoked = issue(tenant, "admin", "revoked", user_id=administrator(backend, tenant))
    backend.directory.revoke_token(revoked.id)
    return {
        "tenant": tenant, "default": default,
        "scim": issue(tenant, "scim", "s").secret, "admin": admin_secret(backend, tenant, "a"),
        "default_scim": issue(default, "scim", "s").secret, "default_admin": admin_secret(backend, default, "a"),
        "operator": issue(default, "operator", "o").secret, "revoked": revoked.secret,
        "realm": backend.trust.auth_config(tenant).realm,
    }


@pytest.fixture(scope="module")
def client(backend: Services) -> Any:
    with TestClient(create_app(backend.settings, backend)) as c:
        yield c


def _call(client: TestClient, method: str, path: str, token: str | None, tenant: str, realm: str = "") -> Any:
    url = fill(path, {"tenant_id": tenant, "realm": realm, "user": "u",
                      "endpoint": "Users", "schema_id": "x", "type_id": "User", "_id": "x",
                      "user_id": "u", "item_id": "1", "connector": "c", "run_id": "r", "hold_id": "h",
                      "case": "c", "name": "n", "app": "a", "principal_type": "User", "principal_id": "p",
                      "resource_id": "r", "export_id": "e", "job_id": "j",
                      "role": "r", "partner": "p", "key_id": "k", "assignment_id": "a",
                      "server": "s", "gateway": "g", "target": "t", "identity": "i"})
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {} if method in ("POST", "PUT", "PATCH") else None
    return client.request(method, url, headers=headers, json=body)


def test_every_route_has_a_credential_kind(client: TestClient) -> None:
    unknown = [f"{m} {p}" for m, p in api_routes(client.app) if kind(m, p) is None]  # type: ignore[arg-type]
    assert not unknown, "say which credential these routes need (tests/security/test_scopes.py): " + ", ".join(
        unknown)


def test_no_unknown_or_revoked_token_is_401_except_public_routes(client: TestClient, creds: dict[str, Any]) -> None:
    wrong = []
    for method, path in api_routes(client.app):  # type: ignore[arg-type]
        if kind(method, path) in ("public", "browser") or (method, path) == ("POST", "/trust/{realm}/token"):
            continue   # the token endpoint's credential is its body (test_no_admin_scim_or_operator_token_is_…)
        tenant = creds["tenant"] if "{tenant_id}" in path else creds["default"]
        for label, token in (("none", None), ("unknown", "tnt_admin_" + "z" * 40), ("revoked", creds["revoked"])):
            r = _call(client, method, path, token, tenant, creds["realm"])
            if r.status_code != 401:
                wrong.append(f"{method} {path} with {label} token: {r.status_code} {r.text[:120]}")
    assert not wrong, "\n".join(wrong)


def test_scim_token_on_admin_routes_is_403(client: TestClient, creds: dict[str, Any]) -> None:
    wrong = []
    for method, path in api_routes(client.app):  # type: ignore[arg-type]
        if kind(method, path) in ("admin", "installation", "operator"):
            r = _call(client, method, path, creds["scim"], creds["tenant"])
            if r.status_code != 403 or r.json().get("error") != "forbidden":
                wrong.append(f"{method} {path}: {r.status_code} {r.text[:120]}")
    assert not wrong, "\n".join(wrong)


def test_admin_token_on_operator_routes_and_operator_token_on_tenant_routes_are_403(
        client: TestClient, creds: dict[str, Any]) -> None:
    wrong = []
    for method, path in api_routes(client.app):  # type: ignore[arg-type]
        k = kind(method, path)
        checks = []
        if k == "operator":
            checks = [("admin", creds["admin"]), ("default admin", creds["default_admin"])]
        elif k == "admin":
            checks = [("operator", creds["operator"])]
        for label, token in checks:
            for tenant in (creds["tenant"], creds["default"]):
                r = _call(client, method, path, token, tenant)
                if r.status_code != 403:
                    wrong.append(f"{method} {path} ({label} token, tenant {tenant}): {r.status_code} {r.text[:120]}")
    assert not wrong, "\n".join(wrong)


def test_admin_and_operator_tokens_on_scim_routes_are_401(client: TestClient, creds: dict[str, Any]) -> None:
    wrong = []
    for method, path in api_routes(client.app):  # type: ignore[arg-type]
        if kind(method, path) != "scim":
            continue
        own_admin = creds["admin"] if "{tenant_id}" in path else creds["default_admin"]
        for label, token in (("admin", own_admin), ("operator", creds["operator"])):
            r = _call(client, method, path, token, creds["tenant"])
            if r.status_code != 401 or r.json().get("status") != "401":
                wrong.append(f"{method} {path} ({label} token): {r.status_code} {r.text[:120]}")
    assert not wrong, "\n".join(wrong)


def test_bearer_tokens_change_nothing_on_the_browser_pages(client: TestClient, creds: dict[str, Any]) -> None:
    wrong = []
    for method, path in api_routes(client.app):  # type: ignore[arg-type]
        if kind(method, path) != "browser":
            continue
        anonymous = _call(client, method, path, None, creds["tenant"]).status_code
        for label in ("admin", "operator", "scim", "default_admin"):
            r = _call(client, method, path, creds[label], creds["tenant"])
            if r.status_code != anonymous:
                wrong.append(f"{method} {path} ({label} token): {r.status_code}, without a token {anonymous}")
    assert not wrong, "\n".join(wrong)
    for label in ("admin", "operator", "scim"):
        r = client.get("/auth/session", headers={"Authorization": f"Bearer {creds[label]}"})
        assert r.status_code == 401, (label, r.text)
        r = client.get("/console/", headers={"Authorization": f"Bearer {creds[label]}"}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/auth/login?"), (label, r.text)


def test_no_admin_scim_or_operator_token_is_a_partners_token(client: TestClient, creds: dict[str, Any]) -> None:
    """The partner routes answer to a partner's token: every other credential of the installation is refused,
    401 with a Bearer challenge at a resource, invalid_client at the token endpoint (its credential is the body)."""
    wrong = []
    for method, path in api_routes(client.app):  # type: ignore[arg-type]
        if kind(method, path) != "partner":
            continue
        for label in ("admin", "scim", "operator", "default_admin"):
            r = _call(client, method, path, creds[label], creds["tenant"], creds["realm"])
            refused = r.status_code == 401 and "Bearer" in r.headers.get("www-authenticate", "")
            if path.endswith("/token"):
                refused = r.status_code in (400, 401) and r.json().get("error") in ("invalid_request",
                                                                                  "invalid_client")
            if not refused:
                wrong.append(f"{method} {path} ({label} token): {r.status_code} {r.text[:120]}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.filterwarnings("ignore::UserWarning")  # duplicate operation ids: the OpenAPI document's own issue
def test_public_routes_answer_without_a_token(client: TestClient, creds: dict[str, Any]) -> None:
    for method, path in api_routes(client.app):  # type: ignore[arg-type]
        if kind(method, path) == "public":
            r = _call(client, method, path, None, creds["tenant"], creds["realm"])
            # Discovery reads answer; writes to discovery are 405 for everyone; schema ids that exist nowhere 404.
            assert r.status_code in ((200, 404) if method == "GET" else (405,)), (method, path, r.text)
    for path in ("/api/openapi.json", "/api/docs"):
        assert client.get(path).status_code == 200
