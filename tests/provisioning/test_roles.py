"""Issue #10 item 14: configuring provisioning needs a named administrator role (seed 003's "administrator
roles": Entra's Application Administrator), checked wherever an acting administrator is named."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tenantry.core.errors import Forbidden
from tests.provisioning.conftest import Source

URL = "http://127.0.0.1:9/scim/v2"     # never contacted: these are configuration changes only


def _admin(src: Source, who: str, role_group: str | None) -> str:
    uid = src.user(who)
    if role_group:
        src.services.directory.add_role_group_member(src.tenant, role_group, uid)
    return uid


def test_every_new_tenant_has_an_application_management_role_group(src: Source) -> None:
    groups = {g.name: g.roles for g in src.services.directory.list_role_groups(src.tenant)}
    assert "Application Administrator" in groups["Application Management"]


def test_a_named_administrator_without_the_role_changes_nothing(src: Source) -> None:
    provisioning = src.services.provisioning
    app = src.app(URL, "t")
    clerk = _admin(src, "clerk", None)
    auditor = _admin(src, "auditor", "Compliance Management")       # another admin role is not enough
    ann = src.user("ann")
    for who in (clerk, auditor):
        with pytest.raises(Forbidden, match="Application Administrator"):
            provisioning.configure(src.tenant, app, {"concurrency": 9}, actor=who)
        with pytest.raises(Forbidden):
            provisioning.assign(src.tenant, app, "User", ann, actor=who)
        with pytest.raises(Forbidden):
            provisioning.update_app(src.tenant, app, notification_email="x@contoso.com", actor=who)
        with pytest.raises(Forbidden):
            provisioning.set_enabled(src.tenant, app, True, actor=who)
        with pytest.raises(Forbidden):
            provisioning.restart(src.tenant, app, actor=who)
        with pytest.raises(Forbidden):
            provisioning.create_app(src.tenant, name=f"other-{src.tag}", tenant_url=URL, token="t", actor=who)
    with pytest.raises(Forbidden, match="no user"):
        provisioning.configure(src.tenant, app, {"concurrency": 9}, actor="nobody")
    assert provisioning.config(src.tenant, app).concurrency == 4
    assert provisioning.scope(src.tenant, app).in_scope == []
    assert provisioning.status(src.tenant, app).enabled is False
    assert [a.name for a in provisioning.list_apps(src.tenant)] == [f"app-{src.tag}"]
    assert not [e for e in provisioning.logs(src.tenant, app) if e.object_type == "App"]


@pytest.mark.parametrize("role_group", ["Application Management", "Organization Management"])
def test_an_application_administrator_configures_and_is_named_in_the_apps_log(src: Source, role_group: str) -> None:
    provisioning = src.services.provisioning
    app = src.app(URL, "t")
    admin = _admin(src, "admin", role_group)
    provisioning.configure(src.tenant, app, {"concurrency": 9}, actor=admin)
    provisioning.assign(src.tenant, app, "User", src.user("ann"), actor=admin)
    assert provisioning.config(src.tenant, app).concurrency == 9
    entries = [e for e in provisioning.logs(src.tenant, app) if e.object_type == "App"]
    assert [e.action for e in entries] == ["assign", "configure"]
    assert all(e.reason.endswith(f"(by {src.name('admin')})") for e in entries)
    assert entries[1].steps[0].actor == src.name("admin")


def test_the_cli_acting_as_an_administrator_without_the_role_is_refused(src: Source, monkeypatch) -> None:
    from tenantry.cli import app as cli

    provisioning = src.services.provisioning
    app = src.app(URL, "t")
    _admin(src, "clerk", None)
    _admin(src, "admin", "Application Management")
    monkeypatch.setenv("TENANTRY_DATA_DIR", str(src.services.settings.data_dir))
    monkeypatch.setenv("TENANTRY_DATABASE_URL", src.services.settings.resolved_database_url)
    runner = CliRunner()
    refused = runner.invoke(cli, ["provisioning", "config", app, "--set", "concurrency=9", "--as",
                                  src.name("clerk"), "--tenant", src.tenant])
    assert refused.exit_code == 1 and "Application Administrator" in refused.output
    assert provisioning.config(src.tenant, app).concurrency == 4
    allowed = runner.invoke(cli, ["provisioning", "config", app, "--set", "concurrency=9", "--as",
                                  src.name("admin"), "--tenant", src.tenant])
    assert allowed.exit_code == 0, allowed.output
    assert provisioning.config(src.tenant, app).concurrency == 9
