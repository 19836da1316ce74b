"""Application accounts (issue #13 item 1, seed 002 step 2): a mail user on a verified domain, hidden from
address lists — absent from listings and searches, found when asked for by id, userName or externalId — holding
UserApplication and ArchiveApplication directly, never an administrator role."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from tenantry.app import Services
from tenantry.auth.users import DirectoryUsers
from tenantry.cli import app as cli_app
from tenantry.cli_kit import Cli
from tenantry.core.errors import Conflict, Invalid, NotFound
from tests.conftest import ScimClient, admin_secret, user_payload

SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
ACCOUNT = "sfbonline-applicationaccount@contoso.example"


def _account(backend: Services, tenant: str, *, hidden: bool = True) -> str:
    backend.directory.add_domain(tenant, "contoso.example", verified=True)
    return backend.directory.create_mail_user(tenant, "SfBOnline-ApplicationAccount", ACCOUNT, hidden=hidden).id


def _ids(body: dict[str, Any]) -> list[str]:
    return [r["id"] for r in body.get("Resources", [])]


# -- hidden from address lists -----------------------------------------------------------------------------


def test_a_hidden_user_is_absent_from_scim_listings_and_total_results_agrees(
        backend: Services, tenant: str, scim: ScimClient) -> None:
    visible = backend.scim.create(tenant, "User", user_payload("visible@contoso.example"))["id"]
    hidden = _account(backend, tenant)
    listed = scim.get("/Users").json()
    assert _ids(listed) == [visible] and listed["totalResults"] == 1
    searched = scim.post("/Users/.search", json={"schemas": [SEARCH]}).json()
    assert _ids(searched) == [visible] and searched["totalResults"] == 1
    root = scim.post("/.search", json={"schemas": [SEARCH]}).json()
    assert hidden not in _ids(root)
    # A filter that does not name it is still a listing: the account is not in it.
    for text in ('userName sw "sfbonline"', 'displayName eq "SfBOnline-ApplicationAccount"',
                 f'emails.value eq "{ACCOUNT}"', 'active eq true', f'userName eq "{ACCOUNT}" or active eq false'):
        found = scim.get("/Users", params={"filter": text}).json()
        assert hidden not in _ids(found), text
        assert found["totalResults"] == len(_ids(found)), text
    counted = scim.get("/Users", params={"count": "0"}).json()
    assert counted["totalResults"] == 1


def test_a_hidden_user_is_found_by_id_and_by_a_filter_naming_it(
        backend: Services, tenant: str, scim: ScimClient) -> None:
    hidden = _account(backend, tenant)
    scim.patch(f"/Users/{hidden}", json={"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                                         "Operations": [{"op": "add", "path": "externalId", "value": "ext-app-1"}]})
    got = scim.get(f"/Users/{hidden}")
    assert got.status_code == 200 and got.json()["userName"] == ACCOUNT
    for text in (f'userName eq "{ACCOUNT}"', f'userName eq "{ACCOUNT.upper()}"', f'id eq "{hidden}"',
                 'externalId eq "ext-app-1"', f'userName eq "{ACCOUNT}" and active eq true'):
        found = scim.get("/Users", params={"filter": text}).json()
        assert _ids(found) == [hidden] and found["totalResults"] == 1, text
        posted = scim.post("/Users/.search", json={"schemas": [SEARCH], "filter": text}).json()
        assert _ids(posted) == [hidden] and posted["totalResults"] == 1, text
    # The sorted path (no quick look-up) agrees.
    sorted_ = scim.get("/Users", params={"filter": f'userName eq "{ACCOUNT}"', "sortBy": "userName"}).json()
    assert _ids(sorted_) == [hidden]
    assert [u.id for u in backend.directory.users_by_id(tenant, [hidden])] == [hidden]


def test_hiding_and_showing_a_user_changes_listings_but_not_its_etag(
        backend: Services, tenant: str, scim: ScimClient) -> None:
    user = backend.scim.create(tenant, "User", user_payload("bob@contoso.example"))
    backend.directory.set_hidden(tenant, user["id"], True)
    assert _ids(scim.get("/Users").json()) == []
    after = scim.get(f"/Users/{user['id']}").json()
    assert after["meta"]["version"] == user["meta"]["version"]
    # An identity provider's PUT replaces the resource, not the flag.
    assert scim.put(f"/Users/{user['id']}", json=user_payload("bob@contoso.example")).status_code == 200
    assert _ids(scim.get("/Users").json()) == []
    backend.directory.set_hidden(tenant, user["id"], False)
    assert _ids(scim.get("/Users").json()) == [user["id"]]
    with pytest.raises(NotFound):
        backend.directory.set_hidden(tenant, "no-such-user", True)


def test_the_admin_api_lists_hidden_users_only_with_include_hidden(
        app_client: TestClient, backend: Services, tenant: str) -> None:
    h = {"Authorization": f"Bearer {admin_secret(backend, tenant, 'a')}"}
    hidden = _account(backend, tenant)
    api = f"/api/v1/tenants/{tenant}"
    plain = app_client.get(api + "/users", headers=h).json()
    assert hidden not in [u["id"] for u in plain["users"]] and plain["total"] == len(plain["users"])
    every = app_client.get(api + "/users", headers=h, params={"include_hidden": "true"}).json()
    assert hidden in [u["id"] for u in every["users"]] and every["total"] == plain["total"] + 1
    detail = app_client.get(api + f"/users/{hidden}", headers=h).json()
    assert detail["hidden_from_address_lists"] is True and detail["direct_roles"] == []


def test_a_hidden_user_still_resolves_by_e_mail_for_sign_in_and_commands(backend: Services, tenant: str) -> None:
    hidden = _account(backend, tenant)
    users = DirectoryUsers(backend.directory, backend.scim)
    assert users.find(tenant, "emails", ACCOUNT) == hidden
    assert users.resolve(tenant, ACCOUNT) == hidden


# -- mail users ---------------------------------------------------------------------------------------------


def test_a_mail_user_is_a_well_formed_user_on_a_verified_domain(backend: Services, tenant: str) -> None:
    backend.directory.add_domain(tenant, "contoso.example", verified=True)
    made = backend.directory.create_mail_user(
        tenant, "SfBOnline-ApplicationAccount", "SfBOnline-ApplicationAccount@Contoso.Example", hidden=False)
    assert made.hidden_from_address_lists is False
    doc = backend.scim.get(tenant, "User", made.id)
    assert doc["userName"] == "SfBOnline-ApplicationAccount@contoso.example" == made.address
    assert doc["displayName"] == "SfBOnline-ApplicationAccount"
    assert doc["emails"] == [{"type": "work", "value": made.address, "primary": True}]


def test_a_mail_user_on_an_unverified_or_unknown_domain_is_refused_naming_the_fix(
        backend: Services, tenant: str) -> None:
    backend.directory.add_domain(tenant, "fabrikam.example")
    with pytest.raises(Invalid, match="not verified.*domain-verify fabrikam.example"):
        backend.directory.create_mail_user(tenant, "App", "app@fabrikam.example")
    with pytest.raises(Invalid, match="not a domain of the tenant.*domain-add elsewhere.example"):
        backend.directory.create_mail_user(tenant, "App", "app@elsewhere.example")
    with pytest.raises(Invalid, match="not an e-mail address"):
        backend.directory.create_mail_user(tenant, "App", "no address")
    assert backend.scim.search(tenant, "User", include_hidden=True).total == 0


def test_a_mail_user_whose_address_is_taken_is_a_conflict(backend: Services, tenant: str) -> None:
    _account(backend, tenant)
    with pytest.raises(Conflict):
        backend.directory.create_mail_user(tenant, "Again", ACCOUNT.upper())
    backend.scim.create(tenant, "User", user_payload(
        "carol", emails=[{"type": "work", "value": "carol@contoso.example"}]))
    with pytest.raises(Conflict):
        backend.directory.create_mail_user(tenant, "Carol's twin", "carol@contoso.example")


# -- roles assigned directly --------------------------------------------------------------------------------


def test_partner_roles_are_assigned_directly_and_read_back_as_direct_roles(backend: Services, tenant: str) -> None:
    d = backend.directory
    account = _account(backend, tenant)
    first = d.assign_role(tenant, account, "UserApplication")
    assert d.assign_role(tenant, account, "UserApplication") == first     # idempotent
    d.assign_role(tenant, account, "ArchiveApplication")
    assert d.direct_roles(tenant, account) == frozenset({"UserApplication", "ArchiveApplication"})
    assert [(a.user_name, a.role) for a in d.role_assignments(tenant)] == [
        (ACCOUNT, "ArchiveApplication"), (ACCOUNT, "UserApplication")]
    assert d.roles_of(tenant, account) == set()           # no administrator role came with them
    d.remove_role_assignment(tenant, account, "UserApplication")
    assert d.direct_roles(tenant, account) == frozenset({"ArchiveApplication"})
    with pytest.raises(NotFound):
        d.remove_role_assignment(tenant, account, "UserApplication")
    assert d.direct_roles(tenant, "no-such-user") == frozenset()


@pytest.mark.parametrize("role", ["Organization Management", "Mailbox Import Export", "Compliance Administrator"])
def test_an_administrator_role_assigned_directly_is_refused(backend: Services, tenant: str, role: str) -> None:
    account = _account(backend, tenant)
    with pytest.raises(Invalid, match="administrator roles come from role groups"):
        backend.directory.assign_role(tenant, account, role)
    with pytest.raises(Invalid, match="unknown role"):
        backend.directory.assign_role(tenant, account, "Global Admin")
    assert backend.directory.role_assignments(tenant) == []


def test_deleting_the_user_removes_its_role_assignments(backend: Services, tenant: str) -> None:
    account = _account(backend, tenant)
    backend.directory.assign_role(tenant, account, "ArchiveApplication")
    backend.scim.delete(tenant, "User", account)
    assert backend.directory.role_assignments(tenant) == []
    assert backend.directory.direct_roles(tenant, account) == frozenset()


def test_the_admin_api_creates_hides_and_assigns(app_client: TestClient, backend: Services, tenant: str) -> None:
    h = {"Authorization": f"Bearer {admin_secret(backend, tenant, 'a')}"}
    api = f"/api/v1/tenants/{tenant}"
    assert app_client.post(api + "/mail-users", headers=h, json={"name": "App", "address": ACCOUNT}).status_code == 400
    backend.directory.add_domain(tenant, "contoso.example", verified=True)
    r = app_client.post(api + "/mail-users", headers=h, json={"name": "App", "address": ACCOUNT, "hidden": False})
    assert r.status_code == 201 and r.json()["hidden_from_address_lists"] is False
    account = r.json()["id"]
    r = app_client.patch(api + f"/users/{account}/hidden", headers=h, json={"hidden": True})
    assert r.status_code == 200 and r.json()["hidden_from_address_lists"] is True
    assert account not in [u["id"] for u in app_client.get(api + "/users", headers=h).json()["users"]]
    r = app_client.post(api + "/role-assignments", headers=h, json={"user_id": account, "role": "UserApplication"})
    assert r.status_code == 201 and r.json()["role"] == "UserApplication"
    assignment = r.json()["id"]
    r = app_client.post(api + "/role-assignments", headers=h,
                        json={"user_id": account, "role": "Organization Management"})
    assert r.status_code == 400 and "role groups" in r.json()["message"]
    listed = app_client.get(api + "/role-assignments", headers=h, params={"user_id": account}).json()
    assert [a["id"] for a in listed] == [assignment]
    assert app_client.delete(api + f"/role-assignments/{assignment}", headers=h).status_code == 204
    assert app_client.delete(api + f"/role-assignments/{assignment}", headers=h).status_code == 404
    assert app_client.get(api + "/role-assignments", headers=h).json() == []


# -- the seed's step 2 from the command line ----------------------------------------------------------------


def _run(backend: Services, *args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(cli_app, list(args), obj=Cli(backend))
    assert result.exit_code == code, result.output
    return result


def _listed(backend: Services, *args: str) -> list[str]:
    """The userNames ``tenantry directory users … --json`` lists."""
    return [u["userName"] for u in json.loads(_run(backend, "directory", "users", *args, "--json").stdout)]


def test_the_seeds_step_2_from_the_cli(backend: Services, tenant: str) -> None:
    t = ("--tenant", tenant)
    refused = _run(backend, "directory", "mail-user", "new", "SfBOnline-ApplicationAccount", "--address", ACCOUNT,
                   *t, code=1)
    assert "domain-verify" in refused.output
    _run(backend, "directory", "domain-add", "contoso.example", "--verified", *t)
    made = json.loads(_run(backend, "directory", "mail-user", "new", "SfBOnline-ApplicationAccount",
                           "--address", ACCOUNT, "--json", *t).stdout)
    assert made["hidden_from_address_lists"] is False              # the seed hides it in a second step
    assert _listed(backend, *t) == [ACCOUNT]
    _run(backend, "directory", "mail-user", "set", ACCOUNT, "--hidden", *t)
    assert _listed(backend, *t) == []
    assert _listed(backend, "--include-hidden", *t) == [ACCOUNT]
    assert _listed(backend, "--filter", f'userName eq "{ACCOUNT}"', *t) == [ACCOUNT]
    assert "hidden" in _run(backend, "directory", "users", "--include-hidden", *t).stdout   # the table says so
    for role in ("UserApplication", "ArchiveApplication"):
        _run(backend, "directory", "role-assignment", "new", "--role", role, "--user", ACCOUNT, *t)
    refused = _run(backend, "directory", "role-assignment", "new", "--role", "Organization Management",
                   "--user", ACCOUNT, *t, code=1)
    assert "role groups" in refused.output
    listed = json.loads(_run(backend, "directory", "role-assignment", "list", "--user", ACCOUNT, "--json", *t).stdout)
    assert sorted(a["role"] for a in listed) == ["ArchiveApplication", "UserApplication"]
    assert backend.directory.direct_roles(tenant, made["id"]) == frozenset({"UserApplication", "ArchiveApplication"})
    _run(backend, "directory", "role-assignment", "remove", "--role", "UserApplication", "--user", made["id"], *t)
    assert backend.directory.direct_roles(tenant, made["id"]) == frozenset({"ArchiveApplication"})
    # Step 3 names the hidden account as the partner's linked account.
    partner = json.loads(_run(backend, "partner-app", "new", "SfBOnline", "--app-id",
                              "00000004-0000-0ff1-ce00-000000000000", "--linked-account", ACCOUNT, "--json",
                              *t).stdout)
    assert partner["linked_account"] == made["id"]
    _run(backend, "directory", "mail-user", "set", ACCOUNT, "--visible", *t)
    assert _listed(backend, *t) == [ACCOUNT]
