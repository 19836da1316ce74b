"""Listing users: every filter operator, and/or/not, value paths, sorting, paging, /.search."""

from __future__ import annotations

import pytest

from tests.conftest import ScimClient, user_payload


@pytest.fixture()
def people(scim: ScimClient) -> dict[str, str]:
    rows = [
        ("alice@contoso.com", "Alice", "Ahn", True, "work", "alice@contoso.com", "Engineer"),
        ("bob@contoso.com", "Bob", "Baek", False, "home", "bob@home.example", None),
        ("carol@fabrikam.com", "Carol", "Choi", True, "work", "carol@fabrikam.com", "Manager"),
        ("dave@contoso.com", "Dave", "Do", True, "work", "dave@contoso.com", "engineer"),
    ]
    ids = {}
    for user_name, given, family, active, etype, email, title in rows:
        payload = user_payload(user_name, name={"givenName": given, "familyName": family}, active=active,
                               emails=[{"type": etype, "value": email}])
        if title:
            payload["title"] = title
        ids[given] = scim.post("/Users", json=payload).json()["id"]
    return ids


def names(scim: ScimClient, flt: str, **params: str) -> list[str]:
    r = scim.get("/Users", params={"filter": flt, **params})
    assert r.status_code == 200, (flt, r.text)
    return sorted(u["name"]["givenName"] for u in r.json()["Resources"])


@pytest.mark.parametrize(("flt", "expected"), [
    ('userName eq "alice@contoso.com"', ["Alice"]),
    ('userName ne "alice@contoso.com"', ["Bob", "Carol", "Dave"]),
    ('userName co "FABRIKAM"', ["Carol"]),
    ('userName sw "b"', ["Bob"]),
    ('userName ew "contoso.com"', ["Alice", "Bob", "Dave"]),
    ('userName gt "carol@fabrikam.com"', ["Dave"]),
    ('userName ge "carol@fabrikam.com"', ["Carol", "Dave"]),
    ('userName lt "bob@contoso.com"', ["Alice"]),
    ('userName le "bob@contoso.com"', ["Alice", "Bob"]),
    ("title pr", ["Alice", "Carol", "Dave"]),
    ('title eq "ENGINEER"', ["Alice", "Dave"]),
    ("active eq false", ["Bob"]),
    ('active eq true and emails[type eq "work"].value ew "contoso.com"', ["Alice", "Dave"]),
    ('name.givenName eq "Alice" or name.givenName eq "Bob"', ["Alice", "Bob"]),
    ('not (userName ew "contoso.com")', ["Carol"]),
    ('emails[type eq "home"]', ["Bob"]),
    ('emails co "fabrikam"', ["Carol"]),
    ('(title eq "manager" or active eq false) and not (name.familyName sw "B")', ["Carol"]),
    ('urn:ietf:params:scim:schemas:core:2.0:User:userName eq "dave@contoso.com"', ["Dave"]),
    ('meta.created gt "2000-01-01T00:00:00Z"', ["Alice", "Bob", "Carol", "Dave"]),
    # Parts SQL cannot answer are checked by scim2-models' evaluator: the answer is still exact.
    ('emails[type eq "work" and primary pr]', []),
    ('name.formatted pr or title eq "manager"', ["Carol"]),
])
def test_filter_operators(scim: ScimClient, people: dict[str, str], flt: str, expected: list[str]) -> None:
    assert names(scim, flt) == expected


def test_filter_keywords_are_case_insensitive(scim: ScimClient, people: dict[str, str]) -> None:
    assert names(scim, 'USERNAME EQ "alice@contoso.com" OR Active Eq False') == ["Alice", "Bob"]


def test_sort_by_and_sort_order(scim: ScimClient, people: dict[str, str]) -> None:
    r = scim.get("/Users", params={"sortBy": "name.givenName", "sortOrder": "descending"})
    assert [u["name"]["givenName"] for u in r.json()["Resources"]] == ["Dave", "Carol", "Bob", "Alice"]
    r = scim.get("/Users", params={"sortBy": "title"})  # no column: sorted in Python, absent last
    assert [u["name"]["givenName"] for u in r.json()["Resources"]][-1] == "Bob"


def test_paging_with_start_index_and_count(scim: ScimClient, people: dict[str, str]) -> None:
    seen = []
    for start in (1, 3):
        body = scim.get("/Users", params={"sortBy": "userName", "startIndex": start, "count": 2}).json()
        assert body["totalResults"] == 4 and body["startIndex"] == start and body["itemsPerPage"] == 2
        seen += [u["userName"] for u in body["Resources"]]
    assert seen == sorted(seen) and len(set(seen)) == 4
    zero = scim.get("/Users", params={"count": 0}).json()
    assert zero["totalResults"] == 4 and zero["Resources"] == []


def test_post_search_takes_the_same_parameters(scim: ScimClient, people: dict[str, str]) -> None:
    r = scim.post("/Users/.search", json={
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": 'userName ew "contoso.com"', "attributes": ["userName"], "sortBy": "userName", "count": 2})
    assert r.status_code == 200
    body = r.json()
    assert body["totalResults"] == 3
    assert [u["userName"] for u in body["Resources"]] == ["alice@contoso.com", "bob@contoso.com"]
    assert "name" not in body["Resources"][0]


def test_root_search_spans_users_and_groups(scim: ScimClient, people: dict[str, str]) -> None:
    scim.post("/Groups", json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "All"})
    r = scim.post("/.search", json={"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]})
    assert r.status_code == 200
    types = sorted({res["meta"]["resourceType"] for res in r.json()["Resources"]})
    assert types == ["Group", "User"] and r.json()["totalResults"] == 5


def test_test_connection_filter_on_random_guid_is_an_empty_list(scim: ScimClient, people: dict[str, str]) -> None:
    r = scim.get("/Users", params={"filter": 'userName eq "5c1fd2c5-5a04-4a7e-9d3b-0f8e4f3a9b11"'})
    assert r.status_code == 200
    assert r.json() == {"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": 0,
                        "itemsPerPage": 0, "startIndex": 1, "Resources": []}


def test_tenants_never_see_each_others_users(scim: ScimClient, people: dict[str, str], backend) -> None:
    other = backend.directory
    other.create_tenant(scim.tenant + "-b", "B")
    token = other.issue_token(scim.tenant + "-b", "scim").secret
    r = scim.client.get(f"/tenants/{scim.tenant}-b/scim/v2/Users", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.json()["totalResults"] == 0
    # …and a token of one tenant opens nothing of another.
    r = scim.client.get(f"/tenants/{scim.tenant}/scim/v2/Users", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401


def test_a_username_look_up_answers_the_same_document_as_a_read_by_id(scim: ScimClient,
                                                                      people: dict[str, str]) -> None:
    # The look-up reads SQLite through the driver (Database.read_rows): its times, version and groups must be
    # what the general path renders from the same row.
    group = scim.post("/Groups", json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                                       "displayName": "Engineers", "members": [{"value": people["Alice"]}]})
    assert group.status_code == 201, group.text
    patched = scim.patch(f"/Users/{people['Alice']}", json={
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "title", "value": "Lead"}]})
    assert patched.status_code == 200, patched.text
    by_id = scim.get(f"/Users/{people['Alice']}").json()
    found = scim.get("/Users", params={"filter": 'userName eq "ALICE@contoso.com"'}).json()
    assert found["totalResults"] == 1
    assert found["Resources"] == [by_id]
    assert by_id["groups"][0]["display"] == "Engineers" and by_id["meta"]["version"] == 'W/"2"'
    assert by_id["meta"]["lastModified"].endswith("Z") and by_id["meta"]["created"].endswith("Z")
    # Paged past the one match: the count comes from its own statement.
    page = scim.get("/Users", params={"filter": 'userName eq "alice@contoso.com"', "startIndex": "2"}).json()
    assert page["totalResults"] == 1 and page["Resources"] == []
