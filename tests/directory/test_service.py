"""Tenants, tokens, domains, licences and role groups (DirectoryService) on both databases."""

from __future__ import annotations

import pytest

from tenantry.core.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized
from tests.conftest import administrator, user_payload


def test_new_tenant_has_the_built_in_role_groups(backend, tenant: str) -> None:
    groups = {g.name: g.roles for g in backend.directory.list_role_groups(tenant)}
    assert groups["Organization Management"] == ["Organization Management"]
    assert groups["Compliance Management"] == ["Compliance Administrator"]


def test_no_built_in_role_group_grants_mailbox_import_export(backend, tenant: str) -> None:
    """Seed 000: no role group has "Mailbox Import Export" by default; an administrator must add it."""
    assert all("Mailbox Import Export" not in g.roles for g in backend.directory.list_role_groups(tenant))
    user = backend.scim.create(tenant, "User", user_payload())["id"]
    backend.directory.add_role_group_member(tenant, "Organization Management", user)
    assert not backend.directory.has_role(tenant, user, "Mailbox Import Export")


def test_tenant_ids_are_validated_and_unique(backend, tenant: str) -> None:
    with pytest.raises(Conflict):
        backend.directory.create_tenant(tenant, "again")
    with pytest.raises(Invalid):
        backend.directory.create_tenant("Not A Slug!", "x")


def test_token_scope_and_tenant_are_enforced(backend, tenant: str) -> None:
    scim = backend.directory.issue_token(tenant, "scim", "s")
    admin = backend.directory.issue_token(tenant, "admin", "a", user_id=administrator(backend, tenant))
    assert backend.directory.authenticate(scim.secret, "scim", tenant) == tenant
    assert backend.directory.authenticate(admin.secret, "admin", None) == tenant
    # Each scope opens one door (docs/security.md): admin does not open SCIM, nor SCIM the admin API.
    with pytest.raises(Forbidden):
        backend.directory.authenticate(admin.secret, "scim", tenant)
    with pytest.raises(Forbidden):
        backend.directory.authenticate(scim.secret, "admin", None)
    with pytest.raises(Forbidden):
        backend.directory.authenticate(scim.secret, "scim", "some-other-tenant")
    with pytest.raises(Unauthorized):
        backend.directory.authenticate("tnt_scim_" + "x" * 40, "scim", tenant)
    with pytest.raises(Invalid):
        backend.directory.issue_token(tenant, "root")


def test_bootstrap_token_is_idempotent_and_never_moves_tenant(backend, tenant: str) -> None:
    backend.directory.ensure_token(tenant, "scim", "bootstrap-secret-" + tenant)
    backend.directory.ensure_token(tenant, "scim", "bootstrap-secret-" + tenant)
    assert len([t for t in backend.directory.list_tokens(tenant) if t.name == "bootstrap"]) == 1
    with pytest.raises(Conflict):
        backend.directory.ensure_token(tenant, "admin", "bootstrap-secret-" + tenant)


def test_domains_are_normalised_unique_and_verified_by_txt_record(backend, tenant: str) -> None:
    d = backend.directory.add_domain(tenant, "Contoso.COM.")
    assert d.name == "contoso.com" and d.default and not d.verified
    second = backend.directory.add_domain(tenant, "fabrikam.com")
    assert not second.default
    with pytest.raises(Conflict):
        backend.directory.add_domain(tenant, "contoso.com")
    with pytest.raises(Invalid):
        backend.directory.add_domain(tenant, "not a domain")
    with pytest.raises(Invalid):
        backend.directory.verify_domain(tenant, "contoso.com", ["v=spf1 -all"])
    verified = backend.directory.verify_domain(tenant, "contoso.com", ['"' + d.verification_txt + '"'])
    assert verified.verified


def test_licences_from_the_catalogue_only(backend, tenant: str) -> None:
    user = backend.scim.create(tenant, "User", user_payload())
    backend.directory.assign_licence(tenant, user["id"], "e3")
    backend.directory.assign_licence(tenant, user["id"], "PHONE_SYSTEM")
    backend.directory.assign_licence(tenant, user["id"], "E3")  # idempotent
    assert backend.directory.licences_of(tenant, user["id"]) == ["E3", "PHONE_SYSTEM"]
    with pytest.raises(Invalid):
        backend.directory.assign_licence(tenant, user["id"], "E7")
    with pytest.raises(NotFound):
        backend.directory.assign_licence(tenant, "no-such-user", "E5")
    backend.directory.remove_licence(tenant, user["id"], "e3")
    assert backend.directory.licences_of(tenant, user["id"]) == ["PHONE_SYSTEM"]


def test_roles_come_from_role_group_membership(backend, tenant: str) -> None:
    user = backend.scim.create(tenant, "User", user_payload())
    assert not backend.directory.has_role(tenant, user["id"], "Mailbox Import Export")
    backend.directory.create_role_group(tenant, "Partner apps", ["UserApplication", "ArchiveApplication"])
    backend.directory.add_role_group_member(tenant, "Partner apps", user["id"])
    backend.directory.create_role_group(tenant, "Importers", ["Mailbox Import Export"])
    backend.directory.add_role_group_member(tenant, "Importers", user["id"])
    assert backend.directory.roles_of(tenant, user["id"]) == {
        "UserApplication", "ArchiveApplication", "Mailbox Import Export"}
    backend.directory.remove_role_group_member(tenant, "Importers", user["id"])
    assert not backend.directory.has_role(tenant, user["id"], "Mailbox Import Export")
    with pytest.raises(Invalid):
        backend.directory.create_role_group(tenant, "Bad", ["Root"])
    with pytest.raises(Conflict):
        backend.directory.create_role_group(tenant, "Partner apps", [])


def test_deleting_a_user_over_scim_drops_its_licences_and_role_memberships(backend, tenant: str) -> None:
    user = backend.scim.create(tenant, "User", user_payload())
    backend.directory.assign_licence(tenant, user["id"], "E5")
    backend.directory.add_role_group_member(tenant, "Organization Management", user["id"])
    backend.scim.delete(tenant, "User", user["id"])
    groups = {g.name: g.members for g in backend.directory.list_role_groups(tenant)}
    assert groups["Organization Management"] == []
