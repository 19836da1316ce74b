"""Issue #9 defect 2: tenants are listed and created by the operator credential only, on both backends.

The operator token (``tenantry token create --scope operator``, printed once on first run) is installation-wide
and is no tenant's admin; a tenant admin token sees its own tenant in ``GET /api/v1/tenants`` and nothing else.
Statuses: no or an unknown/revoked token 401; a valid token of another scope or tenant 403.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tenantry.app import Services, bootstrap, build_services, create_app
from tenantry.cli import app as cli_app
from tenantry.core.settings import Settings
from tests.conftest import administrator
from tests.security.conftest import Side


def operator_token(backend: Services) -> str:
    backend.directory.ensure_tenant(backend.settings.default_tenant)
    return backend.directory.issue_token(backend.settings.default_tenant, "operator", "test").secret


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_tenant_admin_cannot_create_tenants(app_client: TestClient, backend: Services, side_b: Side) -> None:
    new_id = f"evil-{uuid.uuid4().hex[:8]}"
    r = app_client.post("/api/v1/tenants", headers=side_b.admin, json={"id": new_id})
    assert r.status_code == 403, r.text
    assert r.json()["error"] == "forbidden" and "operator" in r.json()["message"]
    assert new_id not in {t.id for t in backend.directory.list_tenants()}


def test_tenant_admin_lists_only_its_own_tenant(app_client: TestClient, side_a: Side, side_b: Side) -> None:
    r = app_client.get("/api/v1/tenants", headers=side_b.admin)
    assert r.status_code == 200 and [t["id"] for t in r.json()] == [side_b.tenant]
    assert side_a.tenant not in r.text


def test_operator_token_lists_and_creates_tenants(app_client: TestClient, backend: Services, side_a: Side,
                                                  side_b: Side) -> None:
    h = bearer(operator_token(backend))
    listed = {t["id"] for t in app_client.get("/api/v1/tenants", headers=h).json()}
    assert {side_a.tenant, side_b.tenant, backend.settings.default_tenant} <= listed
    new_id = f"n-{uuid.uuid4().hex[:8]}"
    r = app_client.post("/api/v1/tenants", headers=h, json={"id": new_id, "name": "New"})
    assert r.status_code == 201 and r.json()["id"] == new_id
    assert app_client.post("/api/v1/tenants", headers=h, json={"id": new_id}).status_code == 409
    assert app_client.get("/api/v1/catalogue", headers=h).status_code == 200


def test_a_tenant_created_by_the_operator_comes_with_its_first_admin_and_scim_tokens(
        app_client: TestClient, backend: Services) -> None:
    new_id = f"n-{uuid.uuid4().hex[:8]}"
    r = app_client.post("/api/v1/tenants", headers=bearer(operator_token(backend)), json={"id": new_id})
    assert r.status_code == 201, r.text
    tokens = r.json()["tokens"]
    # Each opens its own door of the new tenant, and only that one.
    assert app_client.get(f"/api/v1/tenants/{new_id}/users", headers=bearer(tokens["admin"])).status_code == 200
    assert app_client.get(f"/tenants/{new_id}/scim/v2/Users", headers=bearer(tokens["scim"])).status_code == 200
    assert app_client.get(f"/tenants/{new_id}/scim/v2/Users", headers=bearer(tokens["admin"])).status_code == 401
    assert app_client.get(f"/api/v1/tenants/{new_id}/users", headers=bearer(tokens["scim"])).status_code == 403
    # Shown once: listing tenants never repeats a secret.
    listed = app_client.get("/api/v1/tenants", headers=bearer(operator_token(backend))).text
    assert tokens["admin"] not in listed and tokens["scim"] not in listed


def test_operator_token_is_not_a_tenant_admin_nor_a_scim_token(app_client: TestClient, backend: Services,
                                                                side_a: Side) -> None:
    h = bearer(operator_token(backend))
    for tenant in (side_a.tenant, backend.settings.default_tenant):
        r = app_client.get(f"/api/v1/tenants/{tenant}/users", headers=h)
        assert r.status_code == 403 and r.json()["error"] == "forbidden", r.text
    for path in (f"/tenants/{side_a.tenant}/scim/v2/Users", "/scim/v2/Users"):
        r = app_client.get(path, headers=h)
        assert r.status_code == 401 and r.json()["status"] == "401", r.text


def test_credentials_no_or_unknown_401_wrong_scope_or_tenant_403(app_client: TestClient, backend: Services,
                                                                 side_a: Side, side_b: Side) -> None:
    users_a = f"/api/v1/tenants/{side_a.tenant}/users"
    assert app_client.get(users_a).status_code == 401
    assert app_client.get(users_a, headers=bearer("tnt_admin_" + "x" * 40)).status_code == 401
    assert app_client.get("/api/v1/tenants", headers={"Authorization": "Basic abc"}).status_code == 401
    revoked = backend.directory.issue_token(side_a.tenant, "admin", "old",
                                            user_id=administrator(backend, side_a.tenant))
    backend.directory.revoke_token(revoked.id)
    assert app_client.get(users_a, headers=bearer(revoked.secret)).status_code == 401
    for headers in (side_b.admin, bearer(side_a.scim_token)):
        r = app_client.get(users_a, headers=headers)
        assert r.status_code == 403 and r.json()["error"] == "forbidden", r.text
    for path in ("/api/v1/tenants", "/api/v1/catalogue"):
        assert app_client.get(path, headers=bearer(side_a.scim_token)).status_code == 403
    # SCIM endpoints answer 401 to every credential that is not their tenant's SCIM token.
    for token in (side_a.admin_token, side_b.scim_token):
        r = app_client.get(f"/tenants/{side_a.tenant}/scim/v2/Users", headers=bearer(token))
        assert r.status_code == 401, r.text


def test_first_run_prints_an_operator_token_and_the_environment_can_set_one(tmp_path: Path) -> None:
    services = build_services(Settings(data_dir=tmp_path / "one", database_url=None))
    try:
        issued = bootstrap(services)
        assert set(issued) == {"scim", "admin", "operator"}
        assert bootstrap(services) == {}  # shown once
        with TestClient(create_app(services.settings, services)) as client:
            assert client.get("/api/v1/tenants", headers=bearer(issued["operator"])).status_code == 200
            assert client.post("/api/v1/tenants", headers=bearer(issued["admin"]),
                               json={"id": "x"}).status_code == 403
    finally:
        services.db.dispose()
    secret = "operator-secret-" + uuid.uuid4().hex
    services = build_services(Settings(data_dir=tmp_path / "two", database_url=None,
                                       bootstrap_operator_token=secret))
    try:
        assert "operator" not in bootstrap(services)
        assert services.directory.identify(secret) == ("default", "operator")
    finally:
        services.db.dispose()


def test_cli_creates_operator_tokens_for_the_installation_only(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENANTRY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("TENANTRY_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    cli = CliRunner()
    assert cli.invoke(cli_app, ["tenant", "create", "default"]).exit_code == 0
    assert cli.invoke(cli_app, ["tenant", "create", "acme"]).exit_code == 0
    result = cli.invoke(cli_app, ["token", "create", "--scope", "operator", "--name", "ops"])
    assert result.exit_code == 0, result.output
    secret = result.output.strip().splitlines()[-1]
    services = build_services(Settings())
    try:
        assert services.directory.identify(secret) == ("default", "operator")
    finally:
        services.db.dispose()
    refused = cli.invoke(cli_app, ["token", "create", "--scope", "operator", "--tenant", "acme"])
    assert refused.exit_code != 0 and "installation" in refused.output
