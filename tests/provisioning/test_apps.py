"""Provisioning apps: Test Connection against a real SCIM server process, assignments and who is in scope."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import group_payload, user_payload
from tests.factories.provisioning import assign, make_app
from tests.interop.conftest import free_port


def test_test_connection_sends_entras_probe_and_reports_success(backend, tenant, target) -> None:
    app = make_app(backend, tenant, target.base_url, target.token, name="GroupTalk")
    result = backend.provisioning.test_connection(tenant, app.id)
    assert result.ok and result.status == 200, result.message


@pytest.mark.parametrize(("url_suffix", "token", "expected"), [
    ("", "wrong-token-0000000000", "refused the secret token"),
    ("/nothing-here", None, "HTTP 404"),
])
def test_test_connection_explains_what_is_wrong(backend, tenant, target, url_suffix, token, expected) -> None:
    url = target.base_url.replace("/scim/v2", "") + url_suffix if url_suffix else target.base_url
    app = make_app(backend, tenant, url, token or target.token, name="App")
    result = backend.provisioning.test_connection(tenant, app.id)
    assert not result.ok and expected in result.message


def test_test_connection_to_nothing_says_the_target_could_not_be_reached(backend, tenant, tmp_path: Path) -> None:
    app = make_app(backend, tenant, f"http://127.0.0.1:{free_port()}/scim/v2", name="Down")
    result = backend.provisioning.test_connection(tenant, app.id)
    assert not result.ok and "could not reach the target" in result.message


def test_the_token_is_stored_sealed(backend, tenant) -> None:
    from tenantry.provisioning.models import ProvisioningApp

    app = make_app(backend, tenant, "https://app.example/scim/v2", "very-secret-token-value", name="Sealed")
    with backend.db.session() as session:
        assert "very-secret-token-value" not in session.get(ProvisioningApp, app.id).token_secret


def test_scope_assigned_users_and_direct_group_members_without_default_access_only(backend, tenant) -> None:
    users = {n: backend.scim.create(tenant, "User", user_payload(f"{n}@contoso.com"))["id"]
             for n in ("ann", "ben", "cat", "dan", "eve")}
    inner = backend.scim.create(tenant, "Group", group_payload("Inner", members=[{"value": users["eve"]}]))
    team = backend.scim.create(tenant, "Group", group_payload("Team", members=[
        {"value": users["ben"]}, {"value": users["cat"]}, {"value": inner["id"], "type": "Group"}]))
    app = make_app(backend, tenant, "https://app.example/scim/v2", name="Scoped", users=[users["ann"]],
                   groups=[team["id"]], role="User")
    assign(backend, tenant, app.id, users["dan"], role="Default Access")
    decision = backend.provisioning.scope(tenant, app.id)
    # Eve is only in a nested group: not in scope. Dan's only role is Default Access: skipped, and said so.
    assert sorted(decision.in_scope) == sorted([users["ann"], users["ben"], users["cat"]])
    assert decision.skipped == {users["dan"]: "not effectively entitled: the only role is Default Access"}


def test_scope_all_and_the_post_2020_rule(backend, tenant) -> None:
    uid = backend.scim.create(tenant, "User", user_payload())["id"]
    everyone = make_app(backend, tenant, "https://a.example/scim/v2", name="All", scope="all")
    assert backend.provisioning.scope(tenant, everyone.id).in_scope == [uid]
    modern = make_app(backend, tenant, "https://b.example/scim/v2", name="Modern", skip_default_access=False,
                      users=[uid], role="Default Access")
    assert backend.provisioning.scope(tenant, modern.id).in_scope == [uid]


def test_cli_adds_an_app_tests_it_and_shows_scope(target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from tenantry.cli import app as cli

    monkeypatch.setenv("TENANTRY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("TENANTRY_DATABASE_URL", raising=False)
    runner = CliRunner()
    assert runner.invoke(cli, ["tenant", "create", "default"]).exit_code == 0
    assert runner.invoke(cli, ["directory", "user-add", "ann@contoso.com"]).exit_code == 0
    ok = runner.invoke(cli, ["provisioning", "app-add", "GroupTalk", target.base_url, "--token-stdin"],
                       input=target.token + "\n")
    assert ok.exit_code == 0 and "connected" in ok.output, ok.output
    app_id = ok.output.split("(")[1].split(")")[0]
    assert runner.invoke(cli, ["provisioning", "assign", app_id, "ann@contoso.com", "--role", "Default Access"]
                         ).exit_code == 0
    scope = runner.invoke(cli, ["provisioning", "scope", app_id])
    assert "0 users in scope" in scope.output and "Default Access" in scope.output
    bad = runner.invoke(cli, ["provisioning", "app-add", "Bad", target.base_url, "--token-stdin"],
                        input="wrong-token-000000000\n")
    assert bad.exit_code == 1 and "refused the secret token" in bad.output
