"""Who did it (issue #12, item 4): every change made through the admin API or the CLI is an ``admin.change``
entry of the tenant's ledger whose actor is the authenticated principal and its credential — never a name the
client gave — and ``tenantry audit`` lists and filters them."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tenantry.app import Services, create_app
from tenantry.cli import app as cli_app
from tenantry.cli_kit import Cli
from tests.conftest import admin_secret, administrator, user_payload


def _changes(services: Services, tenant: str) -> list[Any]:
    return services.ledger.entries(tenant, action="admin.change")


def test_an_api_change_is_recorded_with_the_tokens_administrator_and_credential(
        app_client: TestClient, backend: Services, tenant: str) -> None:
    token = backend.directory.issue_token(tenant, "admin", "audit", user_id=administrator(backend, tenant))
    h = {"Authorization": f"Bearer {token.secret}"}
    r = app_client.post(f"/api/v1/tenants/{tenant}/domains", headers=h, json={"name": "fabrikam.com"})
    assert r.status_code == 201
    (entry,) = _changes(backend, tenant)
    admin_id = administrator(backend, tenant)
    assert entry.actor.startswith("admin-") and f"admin {admin_id}" in entry.actor
    assert f"token {token.id}" in entry.actor
    assert entry.detail["operation"] == "POST /api/v1/tenants/{tenant_id}/domains"
    assert entry.detail["via"] == "api" and entry.detail["status"] == 201


def test_a_refused_or_failed_request_changes_nothing_and_is_not_recorded_as_a_change(
        app_client: TestClient, backend: Services, tenant: str) -> None:
    h = {"Authorization": f"Bearer {admin_secret(backend, tenant, 'a')}"}
    weak = {"Authorization": f"Bearer {admin_secret(backend, tenant, 'w', roles=['Voice Administrator'])}"}
    assert app_client.post(f"/api/v1/tenants/{tenant}/domains", headers=weak,
                           json={"name": "fabrikam.com"}).status_code == 403
    assert app_client.post(f"/api/v1/tenants/{tenant}/domains", headers=h, json={"name": "not a domain"}
                           ).status_code == 400
    assert _changes(backend, tenant) == []


def test_a_body_that_names_an_actor_is_refused_and_the_ledger_names_the_caller(
        app_client: TestClient, backend: Services, tenant: str) -> None:
    h = {"Authorization": f"Bearer {admin_secret(backend, tenant, 'a')}"}
    base = f"/api/v1/tenants/{tenant}"
    r = app_client.post(f"{base}/cases", headers=h, json={"name": "M", "actor": "the-ceo"})
    assert r.status_code == 422 and "actor" in r.json()["message"]
    assert app_client.post(f"{base}/cases", headers=h, json={"name": "M"}).status_code == 201
    created = backend.ledger.entries(tenant, action="case.create")
    assert len(created) == 1 and "the-ceo" not in created[0].actor
    assert f"admin {administrator(backend, tenant)}" in created[0].actor


def test_an_answer_whose_audit_entry_cannot_be_written_is_a_500_saying_the_change_was_made(
        backend: Services, tenant: str) -> None:
    class BrokenLedger:
        def __getattr__(self, name: str) -> Any:
            return getattr(backend.ledger, name)

        def record(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("disk full")

    services = dataclasses.replace(backend, ledger=BrokenLedger())  # type: ignore[arg-type]
    h = {"Authorization": f"Bearer {admin_secret(backend, tenant, 'a')}"}
    with TestClient(create_app(backend.settings, services), raise_server_exceptions=False) as client:
        r = client.post(f"/api/v1/tenants/{tenant}/domains", headers=h, json={"name": "fabrikam.com"})
    assert r.status_code == 500 and r.json()["error"] == "audit_failed"
    assert "change was made" in r.json()["message"]
    assert [d.name for d in backend.directory.list_domains(tenant)] == ["fabrikam.com"]


def test_a_cli_change_is_recorded_as_the_operator_or_the_administrator_named_with_as(
        backend: Services, tenant: str) -> None:
    runner = CliRunner()
    ok = runner.invoke(cli_app, ["directory", "domain-add", "contoso.com", "--tenant", tenant], obj=Cli(backend))
    assert ok.exit_code == 0, ok.output
    (entry,) = _changes(backend, tenant)
    assert "(operator operator; cli)" in entry.actor and entry.detail["operation"] == "directory domain-add"
    user = backend.scim.create(tenant, "User", user_payload("ann@contoso.com"))["id"]
    # Without Organization Management, acting as Ann is refused; with it, the entry names her.
    refused = runner.invoke(cli_app, ["--as", "ann@contoso.com", "hold", "place", "h", "--user", "ann@contoso.com",
                                      "--tenant", tenant], obj=Cli(backend))
    assert refused.exit_code == 1 and "Compliance Administrator" in refused.output
    backend.directory.add_role_group_member(tenant, "Compliance Management", user)
    placed = runner.invoke(cli_app, ["--as", "ann@contoso.com", "hold", "place", "h", "--user", "ann@contoso.com",
                                     "--tenant", tenant], obj=Cli(backend))
    assert placed.exit_code == 0, placed.output
    latest = _changes(backend, tenant)[0]
    assert latest.actor.startswith("ann@contoso.com (admin ") and latest.detail["operation"] == "hold place"
    # Reads leave nothing.
    assert runner.invoke(cli_app, ["hold", "list", "--tenant", tenant], obj=Cli(backend)).exit_code == 0
    assert len(_changes(backend, tenant)) == 2


def test_tenantry_audit_filters_by_actor_action_and_time(backend: Services, tenant: str) -> None:
    runner = CliRunner()
    for name in ("a.example.com", "b.example.com"):
        assert runner.invoke(cli_app, ["directory", "domain-add", name, "--tenant", tenant],
                             obj=Cli(backend)).exit_code == 0
    listed = runner.invoke(cli_app, ["audit", "--tenant", tenant, "--action", "admin.change", "--actor", "operator",
                                     "--since", "1h", "--json"], obj=Cli(backend))
    assert listed.exit_code == 0, listed.output
    assert listed.output.count('"admin.change"') == 2
    none = runner.invoke(cli_app, ["audit", "--tenant", tenant, "--actor", "nobody-like-this", "--json"],
                         obj=Cli(backend))
    assert none.exit_code == 0 and none.output.strip() == "[]"
    future = runner.invoke(cli_app, ["audit", "--tenant", tenant, "--until", "2000-01-01", "--json"],
                           obj=Cli(backend))
    assert future.output.strip() == "[]"
