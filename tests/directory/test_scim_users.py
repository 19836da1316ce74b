"""Users over SCIM: the seed 003 attribute table round-trips, and every read agrees with what was written."""

from __future__ import annotations

from tests.conftest import SCIM_JSON, ScimClient, user_payload

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUPTALK = "urn:ietf:params:scim:schemas:extension:grouptalk:2.0:User"


def seed_user(user_name: str = "kim.minji@contoso.com") -> dict:
    """The seed's user attribute table (003): every attribute it maps."""
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE, GROUPTALK],
        "userName": user_name,
        "externalId": "e-1001",
        "active": True,
        "name": {"givenName": "Minji", "familyName": "Kim"},
        "emails": [{"type": "work", "value": user_name, "primary": True}],
        "phoneNumbers": [{"type": "mobile", "value": "+82 10-1234-5678"}],
        ENTERPRISE: {"costCenter": "CC-42", "organization": "Contoso Korea"},
        GROUPTALK: {f"label{i}": f"value {i}" for i in range(1, 6)},
    }


def test_create_returns_201_location_etag_and_the_resource_as_sent(scim: ScimClient) -> None:
    sent = seed_user()
    r = scim.post("/Users", json=sent)
    assert r.status_code == 201, r.text
    assert r.headers["content-type"].startswith(SCIM_JSON)
    body = r.json()
    assert r.headers["location"] == body["meta"]["location"]
    assert r.headers["etag"] == body["meta"]["version"] == 'W/"1"'
    assert body["meta"]["location"].endswith(f"/Users/{body['id']}")
    for key in ("userName", "externalId", "active", "name", "emails", "phoneNumbers", ENTERPRISE, GROUPTALK):
        assert body[key] == sent[key], key


def test_seed_attribute_table_round_trips_through_get(scim: ScimClient) -> None:
    sent = seed_user()
    created = scim.post("/Users", json=sent).json()
    got = scim.get(f"/Users/{created['id']}").json()
    assert got == created
    # Values are stored exactly as sent: the phone number keeps its own spelling.
    assert got["phoneNumbers"][0]["value"] == "+82 10-1234-5678"


def test_seed_filters_find_user_by_username_mobile_and_work_email(scim: ScimClient) -> None:
    created = scim.post("/Users", json=seed_user()).json()
    scim.post("/Users", json=user_payload("other@contoso.com"))
    for flt in (
        'userName eq "KIM.MINJI@contoso.com"',
        'phoneNumbers[type eq "mobile"].value eq "+82 10-1234-5678"',
        # The same mobile number written another way is the same number (E.164 look-up).
        'phoneNumbers[type eq "mobile"].value eq "+821012345678"',
        'emails[type eq "work"].value eq "kim.minji@contoso.com"',
        f'{ENTERPRISE}:costCenter eq "cc-42"',
        f'{GROUPTALK}:label3 eq "value 3"',
        'name.familyName eq "Kim" and active eq true',
        'externalId eq "e-1001"',
    ):
        r = scim.get("/Users", params={"filter": flt})
        assert r.status_code == 200, (flt, r.text)
        ids = [u["id"] for u in r.json()["Resources"]]
        assert ids == [created["id"]], flt


def test_put_replaces_the_whole_user_and_bumps_the_version(scim: ScimClient) -> None:
    created = scim.post("/Users", json=seed_user()).json()
    replacement = user_payload("kim.minji@contoso.com", displayName="Minji K.", active=False)
    r = scim.put(f"/Users/{created['id']}", json=replacement)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["displayName"] == "Minji K." and body["active"] is False
    assert "emails" not in body and ENTERPRISE not in body
    assert body["meta"]["version"] == 'W/"2"'
    assert body["meta"]["created"] == created["meta"]["created"]
    # The old values are gone from the index as well as from the resource.
    r = scim.get("/Users", params={"filter": 'emails.value eq "kim.minji@contoso.com"'})
    assert r.json()["totalResults"] == 0


def test_delete_answers_204_then_the_user_is_gone(scim: ScimClient) -> None:
    created = scim.post("/Users", json=seed_user()).json()
    r = scim.delete(f"/Users/{created['id']}")
    assert r.status_code == 204 and r.content == b""
    assert scim.get(f"/Users/{created['id']}").status_code == 404
    assert scim.delete(f"/Users/{created['id']}").status_code == 404


def test_password_is_accepted_but_never_returned_or_stored(scim: ScimClient, backend) -> None:
    created = scim.post("/Users", json=user_payload(password="s3cret-Pa55")).json()
    assert "password" not in created
    assert "password" not in scim.get(f"/Users/{created['id']}").json()
    from sqlalchemy import select

    from tenantry.directory.models import User

    with backend.db.session() as session:
        stored = session.scalar(select(User.resource).where(User.id == created["id"]))
    assert "s3cret" not in stored


def test_attributes_and_excluded_attributes_select_what_is_returned(scim: ScimClient) -> None:
    created = scim.post("/Users", json=seed_user()).json()
    only = scim.get(f"/Users/{created['id']}", params={"attributes": "userName,name.givenName"}).json()
    assert only["userName"] == "kim.minji@contoso.com"
    assert only["name"] == {"givenName": "Minji"}
    assert "emails" not in only and "id" in only  # id is returned always (RFC 7643 §3.1)
    without = scim.get(f"/Users/{created['id']}", params={"excludedAttributes": "emails,name"}).json()
    assert "emails" not in without and "name" not in without and without["userName"]


def test_user_lists_the_groups_it_belongs_to(scim: ScimClient) -> None:
    user = scim.post("/Users", json=user_payload()).json()
    group = scim.post("/Groups", json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                                       "displayName": "Sales", "members": [{"value": user["id"]}]}).json()
    got = scim.get(f"/Users/{user['id']}").json()
    assert [g["value"] for g in got["groups"]] == [group["id"]]
    assert got["groups"][0]["display"] == "Sales"
    r = scim.get("/Users", params={"filter": f'groups.value eq "{group["id"]}"'})
    assert [u["id"] for u in r.json()["Resources"]] == [user["id"]]


def test_phone_numbers_are_indexed_in_e164_with_the_original_kept(scim: ScimClient, backend) -> None:
    created = scim.post("/Users", json=user_payload(
        phoneNumbers=[{"type": "mobile", "value": "0049 (170) 123-4567"}])).json()
    from sqlalchemy import select

    from tenantry.directory.models import UserValue

    with backend.db.session() as session:
        e164 = session.scalar(select(UserValue.e164).where(
            UserValue.user_id == created["id"], UserValue.attr == "phonenumbers.value"))
    assert e164 == "+491701234567"
    assert created["phoneNumbers"][0]["value"] == "0049 (170) 123-4567"


PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def _patch(scim: ScimClient, user_id: str, *ops: dict, **kw: object):  # type: ignore[no-untyped-def]
    return scim.patch(f"/Users/{user_id}", json={"schemas": [PATCH_OP], "Operations": list(ops)}, **kw)


def _found(scim: ScimClient, filter_text: str) -> int:
    r = scim.get("/Users", params={"filter": filter_text})
    assert r.status_code == 200, r.text
    return int(r.json()["totalResults"])


def test_simple_patch_reindexes_the_changed_value_and_keeps_the_others(scim: ScimClient) -> None:
    created = scim.post("/Users", json=seed_user()).json()
    r = _patch(scim, created["id"], {"op": "replace", "path": "name.givenName", "value": "Jiwoo"},
               {"op": "replace", "path": f"{ENTERPRISE}:costCenter", "value": "CC-7"})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == {"givenName": "Jiwoo", "familyName": "Kim"}
    assert r.headers["etag"] == r.json()["meta"]["version"] == 'W/"2"'
    assert _found(scim, 'name.givenName eq "Jiwoo"') == 1
    assert _found(scim, 'name.givenName eq "Minji"') == 0
    assert _found(scim, f'{ENTERPRISE}:costCenter eq "CC-7"') == 1
    # Values the PATCH did not touch are still found.
    assert _found(scim, 'name.familyName eq "Kim"') == 1
    assert _found(scim, 'phoneNumbers[type eq "mobile"].value eq "+82 10-1234-5678"') == 1
    assert scim.get(f"/Users/{created['id']}").json() == {**r.json(), "meta": {**r.json()["meta"]}}


def test_simple_patch_to_the_value_held_keeps_the_version(scim: ScimClient) -> None:
    created = scim.post("/Users", json=seed_user()).json()
    r = _patch(scim, created["id"], {"op": "replace", "path": "active", "value": True})
    assert r.status_code == 200, r.text
    assert r.json()["meta"]["version"] == 'W/"1"'
    assert r.json()["meta"]["lastModified"] == created["meta"]["lastModified"]


def test_simple_patch_to_another_users_name_is_409_and_changes_nothing(scim: ScimClient) -> None:
    scim.post("/Users", json=seed_user("taken@contoso.com"))
    created = scim.post("/Users", json=seed_user()).json()
    r = _patch(scim, created["id"], {"op": "replace", "path": "name.givenName", "value": "Other"},
               {"op": "replace", "path": "userName", "value": "TAKEN@contoso.com"})
    assert r.status_code == 409, r.text
    assert r.json()["scimType"] == "uniqueness"
    assert scim.get(f"/Users/{created['id']}").json() == created | {"meta": created["meta"]}
    assert _found(scim, 'name.givenName eq "Other"') == 0


def test_simple_patch_with_a_stale_if_match_is_412_and_a_current_one_applies(scim: ScimClient) -> None:
    created = scim.post("/Users", json=seed_user()).json()
    stale = _patch(scim, created["id"], {"op": "replace", "path": "title", "value": "x"},
                   headers={"If-Match": 'W/"7"'})
    assert stale.status_code == 412, stale.text
    current = _patch(scim, created["id"], {"op": "replace", "path": "active", "value": False},
                     headers={"If-Match": 'W/"1"'})
    assert current.status_code == 200, current.text
    assert current.json()["active"] is False


def test_patch_of_an_attribute_the_user_lacks_takes_the_general_path(scim: ScimClient) -> None:
    created = scim.post("/Users", json=seed_user()).json()
    assert "title" not in created
    r = _patch(scim, created["id"], {"op": "replace", "path": "active", "value": False},
               {"op": "add", "path": "title", "value": "Engineer"})
    assert r.status_code == 200, r.text
    assert (r.json()["title"], r.json()["active"], r.json()["meta"]["version"]) == ("Engineer", False, 'W/"2"')
    assert _found(scim, 'title eq "Engineer"') == 1


def test_simple_patch_of_another_tenants_user_is_404(scim: ScimClient, app_client, backend) -> None:  # type: ignore[no-untyped-def]
    created = scim.post("/Users", json=seed_user()).json()
    other = f"o-{created['id'][:8]}"
    backend.directory.create_tenant(other, "Other")
    token = backend.directory.issue_token(other, "scim", "idp").secret
    r = _patch(ScimClient(app_client, other, token), created["id"],
               {"op": "replace", "path": "active", "value": False})
    assert r.status_code == 404, r.text
    assert scim.get(f"/Users/{created['id']}").json()["active"] is True
