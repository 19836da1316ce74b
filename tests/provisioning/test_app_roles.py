"""Issue #10 item 13: an app's roles (Entra's appRoles) — the implicit Default Access and User, roles an
administrator adds, changes, disables and (when unused) deletes — and assignments that must name one of them.
Groups assigned with Default Access only are skipped, as users are."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tenantry.app import create_app
from tenantry.core.errors import Conflict, Forbidden, Invalid, NotFound
from tenantry.provisioning.results import RoleInfo
from tenantry.provisioning.roles import DEFAULT_ACCESS_ID, USER_ROLE_ID
from tests.conftest import admin_secret
from tests.factories.provisioning import NOWHERE, assign, make_role
from tests.provisioning.conftest import Source

URL = NOWHERE     # never contacted: these tests change configuration only


def _roles(src: Source, app: str) -> dict[str, RoleInfo]:
    return {r.display_name: r for r in src.services.provisioning.list_roles(src.tenant, app)}


def test_every_app_has_the_implicit_default_access_and_user_roles(src: Source) -> None:
    app = src.app(URL, "t")
    roles = src.services.provisioning.list_roles(src.tenant, app)
    assert [(r.id, r.display_name, r.built_in, r.enabled) for r in roles] == [
        (DEFAULT_ACCESS_ID, "Default Access", True, True), (USER_ROLE_ID, "User", True, True)]
    assert all(r.allowed_member_types == ["User", "Group"] for r in roles)


def test_roles_are_added_changed_disabled_and_listed_with_how_many_assignments_use_them(src: Source) -> None:
    provisioning = src.services.provisioning
    app = src.app(URL, "t")
    admin = make_role(src.services, src.tenant, app, "Administrator", value="admin", description="Full access")
    assert admin.value == "admin" and admin.enabled is True and admin.built_in is False
    assign(src.services, src.tenant, app, src.user("ann"), role="admin")      # by value
    assign(src.services, src.tenant, app, src.user("ben"), role="Administrator")  # by display name
    assign(src.services, src.tenant, app, src.user("cat"), role=admin.id)   # by id
    changed = provisioning.update_role(src.tenant, app, "Administrator", description="Everything", enabled=False)
    assert (changed.description, changed.enabled) == ("Everything", False)
    listed = _roles(src, app)["Administrator"]
    assert listed.assignments == 3 and listed.enabled is False and listed.value == "admin"
    # A rename keeps the assignments: they hold the role's id.
    provisioning.update_role(src.tenant, app, "admin", display_name="Admins", value="administrators")
    assert _roles(src, app)["Admins"].assignments == 3


def test_assigning_a_role_the_app_does_not_have_is_refused_naming_it(src: Source) -> None:
    provisioning = src.services.provisioning
    app = src.app(URL, "t")
    ann = src.user("ann")
    provisioning.assign(src.tenant, app, "User", ann, role="User")
    with pytest.raises(Invalid, match="'Auditor'") as refused:
        provisioning.assign(src.tenant, app, "User", ann, role="Auditor")
    assert "Default Access" in str(refused.value)            # the roles it does have are named
    assert provisioning.scope(src.tenant, app).in_scope == [ann]     # the old assignment is kept
    assert _roles(src, app)["User"].assignments == 1


def test_a_disabled_role_is_not_assigned_again_but_its_assignments_keep_working(src: Source) -> None:
    provisioning = src.services.provisioning
    app = src.app(URL, "t")
    make_role(src.services, src.tenant, app, "Dispatcher")
    ann, ben = src.user("ann"), src.user("ben")
    provisioning.assign(src.tenant, app, "User", ann, role="Dispatcher")
    provisioning.update_role(src.tenant, app, "Dispatcher", enabled=False)
    with pytest.raises(Invalid, match="'Dispatcher' is disabled"):
        provisioning.assign(src.tenant, app, "User", ben, role="Dispatcher")
    assert provisioning.scope(src.tenant, app).in_scope == [ann]
    provisioning.update_role(src.tenant, app, "Dispatcher", enabled=True)
    provisioning.assign(src.tenant, app, "User", ben, role="Dispatcher")
    assert sorted(provisioning.scope(src.tenant, app).in_scope) == sorted([ann, ben])


def test_a_role_for_users_only_cannot_be_given_to_a_group(src: Source) -> None:
    provisioning = src.services.provisioning
    app = src.app(URL, "t")
    make_role(src.services, src.tenant, app, "Owner", allowed_member_types=["User"])
    team = src.group("team", [])
    with pytest.raises(Invalid, match="'Owner' can be assigned to users only"):
        provisioning.assign(src.tenant, app, "Group", team, role="Owner")
    provisioning.assign(src.tenant, app, "User", src.user("ann"), role="Owner")
    with pytest.raises(Invalid, match="assigned to users"):    # a group already holds no such role…
        provisioning.update_role(src.tenant, app, "Owner", allowed_member_types=["Group"])  # …but ann does


def test_a_role_in_use_is_not_deleted_and_an_unused_one_is(src: Source) -> None:
    provisioning = src.services.provisioning
    app = src.app(URL, "t")
    make_role(src.services, src.tenant, app, "Dispatcher")
    ann = src.user("ann")
    provisioning.assign(src.tenant, app, "User", ann, role="Dispatcher")
    with pytest.raises(Conflict, match="1 assignment") as refused:
        provisioning.delete_role(src.tenant, app, "Dispatcher")
    assert "disable" in str(refused.value) and ann in str(refused.value)
    assert "Dispatcher" in _roles(src, app)
    provisioning.assign(src.tenant, app, "User", ann, role="User")
    provisioning.delete_role(src.tenant, app, "Dispatcher")
    assert "Dispatcher" not in _roles(src, app)
    with pytest.raises(NotFound, match="Dispatcher"):
        provisioning.delete_role(src.tenant, app, "Dispatcher")


@pytest.mark.parametrize(("change", "why"), [
    ({"display_name": "dispatcher"}, "already"),                 # names are unique, whatever the case
    ({"display_name": "Night", "value": "DISPATCH"}, "already"),  # so are values
    ({"display_name": "Night", "value": "dispatcher"}, "already"),   # a value may not be another role's name
    ({"display_name": "user"}, "built in"),
    ({"display_name": "Default access"}, "built in"),
    ({"display_name": " "}, "display name"),
    ({"display_name": "x" * 129}, "128"),
    ({"display_name": "Night", "value": "night shift"}, "spaces"),
    ({"display_name": "Night\x00"}, "control characters"),        # also what PostgreSQL cannot store
    ({"display_name": "Night", "allowed_member_types": []}, "allowed member types"),
    ({"display_name": "Night", "allowed_member_types": ["Application"]}, "allowed member types"),
])
def test_bad_roles_are_refused_and_nothing_is_stored(src: Source, change: dict[str, object], why: str) -> None:
    provisioning = src.services.provisioning
    app = src.app(URL, "t")
    make_role(src.services, src.tenant, app, "Dispatcher", value="dispatch")
    before = provisioning.list_roles(src.tenant, app)
    with pytest.raises((Invalid, Conflict), match=why):
        provisioning.add_role(src.tenant, app, **change)  # type: ignore[arg-type]
    assert provisioning.list_roles(src.tenant, app) == before


def test_the_built_in_roles_cannot_be_changed_or_deleted(src: Source) -> None:
    provisioning = src.services.provisioning
    app = src.app(URL, "t")
    for role in ("User", "Default Access", DEFAULT_ACCESS_ID):
        with pytest.raises(Invalid, match="built in"):
            provisioning.update_role(src.tenant, app, role, enabled=False)
        with pytest.raises(Invalid, match="built in"):
            provisioning.delete_role(src.tenant, app, role)


def test_role_edits_need_the_application_administrator_role_and_are_logged(src: Source) -> None:
    provisioning = src.services.provisioning
    app = src.app(URL, "t")
    clerk = src.user("clerk")
    admin = src.user("admin")
    src.services.directory.add_role_group_member(src.tenant, "Application Management", admin)
    with pytest.raises(Forbidden, match="Application Administrator"):
        provisioning.add_role(src.tenant, app, display_name="Dispatcher", actor=clerk)
    assert "Dispatcher" not in _roles(src, app)
    provisioning.add_role(src.tenant, app, display_name="Dispatcher", actor=admin)
    with pytest.raises(Forbidden):
        provisioning.update_role(src.tenant, app, "Dispatcher", enabled=False, actor=clerk)
    with pytest.raises(Forbidden):
        provisioning.delete_role(src.tenant, app, "Dispatcher", actor=clerk)
    assert _roles(src, app)["Dispatcher"].enabled is True
    provisioning.update_role(src.tenant, app, "Dispatcher", enabled=False, actor=admin)
    provisioning.delete_role(src.tenant, app, "Dispatcher", actor=admin)
    entries = [(e.action, e.reason) for e in provisioning.logs(src.tenant, app) if e.object_type == "App"]
    by = f"(by {src.name('admin')})"
    assert entries == [("role_delete", f"role 'Dispatcher' deleted {by}"),
                       ("role_update", f"role 'Dispatcher' changed: enabled=False {by}"),
                       ("role_add", f"role 'Dispatcher' added {by}")]


def test_a_group_assigned_only_with_default_access_is_skipped_with_the_reason(src: Source) -> None:
    provisioning = src.services.provisioning
    app = src.app(URL, "t")
    ann, ben = src.user("ann"), src.user("ben")
    everyone = src.group("everyone", [ann, ben])
    team = src.group("team", [ben])
    provisioning.assign(src.tenant, app, "Group", everyone, role="Default Access")
    provisioning.assign(src.tenant, app, "Group", team)
    decision = provisioning.scope(src.tenant, app)
    assert decision.groups_skipped == {everyone: "not effectively entitled: the only role is Default Access"}
    assert decision.in_scope == [ben] and ann in decision.skipped
    # Entra configurations made after April 2020 (skip_default_access=false) provision them.
    provisioning.update_app(src.tenant, app, skip_default_access=False)
    assert provisioning.scope(src.tenant, app).groups_skipped == {}


def test_roles_reached_through_groups_count_and_the_user_gets_each(src: Source) -> None:
    provisioning = src.services.provisioning
    app = src.app(URL, "t")
    for name in ("Dispatcher", "Driver"):
        make_role(src.services, src.tenant, app, name, value=name.lower())
    ann = src.user("ann")
    provisioning.assign(src.tenant, app, "Group", src.group("drivers", [ann]), role="Driver")
    provisioning.assign(src.tenant, app, "User", ann, role="Dispatcher")
    grants = provisioning.scope(src.tenant, app).roles[ann]
    assert [(g["value"], g["direct"]) for g in grants] == [("dispatcher", True), ("driver", False)]


# -- the admin API and the CLI ------------------------------------------------------------------------------


def test_the_roles_api_adds_lists_changes_and_refuses_with_a_reason(src: Source) -> None:
    services = src.services
    app = src.app(URL, "t")
    token = admin_secret(services, src.tenant, "roles")
    base = f"/api/v1/tenants/{src.tenant}/provisioning/apps/{app}"
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(services.settings, services)) as client:
        r = client.post(base + "/roles", json={"display_name": "Dispatcher", "value": "dispatch",
                                               "allowed_member_types": ["User"]}, headers=headers)
        assert r.status_code == 201, r.text
        role_id = r.json()["id"]
        listed = client.get(base + "/roles", headers=headers).json()
        assert [x["display_name"] for x in listed] == ["Default Access", "User", "Dispatcher"]
        assert client.post(base + "/roles", json={"display_name": "dispatcher"}, headers=headers).status_code == 409
        assert client.post(base + "/roles", json={"displayName": "X"}, headers=headers).status_code == 422

        ann = src.user("ann")
        r = client.post(base + "/assignments", json={"principal_id": ann, "role": "Auditor"}, headers=headers)
        assert r.status_code == 400 and "'Auditor'" in r.json()["message"]
        r = client.post(base + "/assignments", json={"principal_id": ann, "role": "dispatch"}, headers=headers)
        assert r.status_code == 204, r.text

        r = client.patch(base + f"/roles/{role_id}", json={"enabled": False}, headers=headers)
        assert r.status_code == 200 and r.json()["enabled"] is False
        r = client.delete(base + "/roles/Dispatcher", headers=headers)
        assert r.status_code == 409 and "assignment" in r.json()["message"]
        assert client.delete(base + "/roles/User", headers=headers).status_code == 400
        assert client.patch(base + "/roles/Nope", json={"enabled": False}, headers=headers).status_code == 404
        r = client.get(base + "/scope", headers=headers)
        assert r.json()["in_scope"] == [ann] and r.json()["groups_skipped"] == {}


def test_the_roles_cli(src: Source, monkeypatch: pytest.MonkeyPatch) -> None:
    from tenantry.cli import app as cli

    app = src.app(URL, "t")
    clerk = src.user("clerk")
    monkeypatch.setenv("TENANTRY_DATA_DIR", str(src.services.settings.data_dir))
    monkeypatch.setenv("TENANTRY_DATABASE_URL", src.services.settings.resolved_database_url)
    runner = CliRunner()
    t = ["--tenant", src.tenant]
    added = runner.invoke(cli, ["provisioning", "role-add", app, "Dispatcher", "--value", "dispatch",
                                "--member-types", "users", *t])
    assert added.exit_code == 0, added.output
    listed = runner.invoke(cli, ["provisioning", "roles", app, "--json", *t])
    assert listed.exit_code == 0 and '"Dispatcher"' in listed.output and '"dispatch"' in listed.output
    assert runner.invoke(cli, ["provisioning", "assign", app, src.name("clerk"), "--role", "Dispatcher",
                               *t]).exit_code == 0
    refused = runner.invoke(cli, ["provisioning", "assign", app, src.name("clerk"), "--role", "Auditor", *t])
    assert refused.exit_code == 1 and "'Auditor'" in refused.output
    in_use = runner.invoke(cli, ["provisioning", "role-delete", app, "Dispatcher", *t])
    assert in_use.exit_code == 1 and "disable" in in_use.output
    disabled = runner.invoke(cli, ["provisioning", "role-update", app, "Dispatcher", "--disable", *t])
    assert disabled.exit_code == 0, disabled.output
    assert _roles(src, app)["Dispatcher"].enabled is False
    refused = runner.invoke(cli, ["provisioning", "role-update", app, "Dispatcher", "--enable", "--as",
                                  src.name("clerk"), *t])
    assert refused.exit_code == 1 and "Application Administrator" in refused.output and clerk
    group = src.group("everyone", [])
    src.services.provisioning.assign(src.tenant, app, "Group", group, role="Default Access")
    scope = runner.invoke(cli, ["provisioning", "scope", app, *t])
    assert scope.exit_code == 0 and f"skipped group {group}" in scope.output and "Default Access" in scope.output
