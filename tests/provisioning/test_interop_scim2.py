"""Provisioning into a second SCIM implementation (scim2-server from PyPI, a separate process): the same
cycle works against a server we did not write (PATCH answered 204, HTTP/1.0, its own ids)."""

from __future__ import annotations

from tests.factories.provisioning import make_app, make_role, mapping, user_mappings
from tests.provisioning.conftest import Peer, Source


def test_full_lifecycle_against_scim2_server(src: Source, scim2_server) -> None:
    peer = Peer(scim2_server.base_url, scim2_server.token)
    ann, ben, cat = src.user("ann"), src.user("ben"), src.user("cat")
    team = src.group("team", [ann, ben])
    app = src.app(scim2_server.base_url, scim2_server.token, delete_after_days=0, backoff_seconds=0.01)
    provisioning = src.services.provisioning
    assert provisioning.test_connection(src.tenant, app).ok
    provisioning.assign(src.tenant, app, "Group", team)
    provisioning.assign(src.tenant, app, "User", cat)

    report = src.run(app)
    assert report.status == "succeeded", report
    assert report.stats["users_created"] == 3 and report.stats["groups_created"] == 1
    created = peer.user(src.name("ann"))
    assert created is not None and created["active"] is True and created["externalId"] == ann
    assert created["emails"] == [{"type": "work", "value": src.name("ann"), "primary": True}]
    assert peer.member_ids(src.group_name("team")) == {created["id"], peer.user(src.name("ben"))["id"]}  # type: ignore[index]

    # Update one attribute: one PATCH (scim2-server answers 204).
    src.patch_user(ben, {"op": "replace", "path": "emails[type eq \"work\"].value",
                         "value": f"ben.new.{src.tag}@contoso.com"})
    report = src.run(app)
    assert report.stats["users_updated"] == 1 and report.stats["requests"] == 1
    assert peer.user(src.name("ben"))["emails"][0]["value"] == f"ben.new.{src.tag}@contoso.com"  # type: ignore[index]

    # Ann leaves the group: membership removed, and (delete after 0 days) she is deleted.
    src.patch_group(team, {"op": "remove", "path": f'members[value eq "{ann}"]'})
    report = src.run(app)
    assert report.stats["members_removed"] == 1 and report.stats["users_deleted"] == 1
    assert peer.user(src.name("ann")) is None
    assert peer.member_ids(src.group_name("team")) == {peer.user(src.name("ben"))["id"]}  # type: ignore[index]


def test_deactivation_on_leaving_scope_against_scim2_server(src: Source, scim2_server) -> None:
    peer = Peer(scim2_server.base_url, scim2_server.token)
    uid = src.user("ann")
    app = src.app(scim2_server.base_url, scim2_server.token, users=[uid])
    src.run(app)
    src.services.provisioning.unassign(src.tenant, app, "User", uid)
    assert src.run(app).stats["users_disabled"] == 1
    assert peer.user(src.name("ann"))["active"] is False  # type: ignore[index]


def test_an_existing_scim2_server_user_is_matched(src: Source, scim2_server) -> None:
    peer = Peer(scim2_server.base_url, scim2_server.token)
    existing = peer.create_user(src.name("ann"))
    uid = src.user("ann")
    app = src.app(scim2_server.base_url, scim2_server.token, users=[uid])
    report = src.run(app)
    assert report.stats["users_updated"] == 1 and report.stats.get("users_created") is None
    assert peer.user(src.name("ann"))["id"] == existing["id"]  # type: ignore[index]


def test_app_roles_reach_scim2_server_and_a_role_change_replaces_them(src: Source, scim2_server) -> None:
    """Issue #10 item 13: the roles mappings (one role, all roles) against a server we did not write."""
    peer = Peer(scim2_server.base_url, scim2_server.token)
    single = mapping('roles[primary eq "True"].value', "SingleAppRoleAssignment([appRoleAssignments])",
                     type="expression")
    every = mapping("roles", "AppRoleAssignmentsComplex([appRoleAssignments])", type="expression")
    provisioning = src.services.provisioning
    ann, ben = src.user("ann"), src.user("ben")
    one = src.app(scim2_server.base_url, scim2_server.token, provision_groups=False,
                  user_mappings=user_mappings(single))
    for role in ("admin", "driver"):
        make_role(src.services, src.tenant, one, role.title(), value=role)
    provisioning.assign(src.tenant, one, "User", ann, role="admin")
    assert src.run(one).status == "succeeded"
    assert [(r["value"], r.get("primary")) for r in peer.user(src.name("ann"))["roles"]] == [("admin", True)]  # type: ignore[index]
    provisioning.assign(src.tenant, one, "User", ann, role="driver")
    report = src.run(one)
    assert (report.status, report.stats["requests_patch"]) == ("succeeded", 1), report
    assert [r["value"] for r in peer.user(src.name("ann"))["roles"]] == ["driver"]  # type: ignore[index]

    every_id = make_app(src.services, src.tenant, scim2_server.base_url, scim2_server.token, name=f"all-{src.tag}",
                        provision_groups=False, user_mappings=user_mappings(every)).id
    for role in ("dispatch", "night"):
        make_role(src.services, src.tenant, every_id, role.title(), value=role)
    provisioning.assign(src.tenant, every_id, "Group", src.group("night", [ben]), role="night")
    provisioning.assign(src.tenant, every_id, "User", ben, role="dispatch")
    assert src.run(every_id).status == "succeeded"
    roles = peer.user(src.name("ben"))["roles"]  # type: ignore[index]
    assert sorted((r["value"], r["display"], r["type"], r["primary"]) for r in roles) == [
        ("dispatch", "Dispatch", "WindowsAzureActiveDirectoryRole", False),
        ("night", "Night", "WindowsAzureActiveDirectoryRole", False)]
