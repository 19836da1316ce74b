"""Issue #9 defect 1: SCIM memberships stay inside their tenant, on both backends, through the HTTP API.

A member id is kept as the identity provider sent it (it may name a user not provisioned yet), but it never
resolves to another tenant's object: no display, no type, no back-reference in that object's ``groups``.
"""

from __future__ import annotations

from typing import Any

from tests.conftest import group_payload, user_payload
from tests.security.conftest import Side


def _user(side: Side, name: str, display: str) -> dict[str, Any]:
    r = side.scim.post("/Users", json=user_payload(name, displayName=display))
    assert r.status_code == 201, r.text
    return dict(r.json())


def _b_group_naming_a(side_a: Side, side_b: Side) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A's user and group; B's group whose members are A's ids (as an attacker or a confused IdP sends them)."""
    a_user = _user(side_a, "alice.secret@a.example", "Alice Secret")
    a_group = side_a.scim.post("/Groups", json=group_payload("A Board Of Directors")).json()
    r = side_b.scim.post("/Groups", json=group_payload(
        "B Probe", members=[{"value": a_user["id"]}, {"value": a_group["id"]}]))
    assert r.status_code == 201, r.text
    return a_user, a_group, r.json()


def _leaks_a(text: str) -> bool:
    return any(s in text for s in ("alice.secret", "Alice Secret", "A Board Of Directors"))


def test_cross_tenant_member_id_never_resolves_to_other_tenant_user(side_a: Side, side_b: Side) -> None:
    a_user, a_group, b_group = _b_group_naming_a(side_a, side_b)
    for r in (side_b.scim.get(f"/Groups/{b_group['id']}"), side_b.scim.get("/Groups"),
              side_b.scim.get("/Groups", params={"filter": 'displayName eq "B Probe"'}),
              side_b.scim.post("/Groups/.search", json={
                  "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                  "filter": f'members.value eq "{a_user["id"]}"'})):
        assert r.status_code == 200, r.text
        assert not _leaks_a(r.text), r.text
    for text in (str(b_group), side_b.scim.get(f"/Groups/{b_group['id']}").text):
        assert not _leaks_a(text), text
    members = {m["value"]: m for m in side_b.scim.get(f"/Groups/{b_group['id']}").json()["members"]}
    # Kept as sent, typed as the default ("User") — A's group is not recognised as a group from B.
    assert set(members) == {a_user["id"], a_group["id"]}
    assert all("display" not in m and m["type"] == "User" for m in members.values()), members


def test_user_never_lists_another_tenants_group(side_a: Side, side_b: Side) -> None:
    a_user, _, b_group = _b_group_naming_a(side_a, side_b)
    reads = [
        side_a.scim.get(f"/Users/{a_user['id']}"),
        side_a.scim.get("/Users"),
        # The one-statement look-up IdPs send before a create, and the general filter path.
        side_a.scim.get("/Users", params={"filter": f'userName eq "{a_user["userName"]}"'}),
        side_a.scim.get("/Users", params={"filter": 'displayName eq "Alice Secret"'}),
        side_a.scim.get("/Users", params={"filter": 'displayName eq "Alice Secret"', "sortBy": "title"}),
    ]
    for r in reads:
        assert r.status_code == 200, r.text
        assert b_group["id"] not in r.text and "B Probe" not in r.text, r.text
    admin = side_a.scim.client.get(f"/api/v1/tenants/{side_a.tenant}/users/{a_user['id']}", headers=side_a.admin)
    assert admin.status_code == 200 and b_group["id"] not in admin.text


def test_membership_filters_do_not_cross_tenants(side_a: Side, side_b: Side) -> None:
    a_user, a_group, b_group = _b_group_naming_a(side_a, side_b)
    a_own = side_a.scim.post("/Groups", json=group_payload("A Staff", members=[{"value": a_user["id"]}])).json()
    for flt in (f'groups.value eq "{b_group["id"]}"', f'groups[value eq "{b_group["id"]}"]',
                'groups.display eq "B Probe"'):
        r = side_a.scim.get("/Users", params={"filter": flt})
        assert r.status_code == 200 and r.json()["totalResults"] == 0, (flt, r.text)
    r = side_a.scim.get("/Users", params={"filter": "groups pr"})
    assert [u["id"] for u in r.json()["Resources"]] == [a_user["id"]]
    assert [g["value"] for g in r.json()["Resources"][0]["groups"]] == [a_own["id"]]
    r = side_a.scim.get("/Groups", params={"filter": f'members.value eq "{a_user["id"]}"'})
    assert [g["id"] for g in r.json()["Resources"]] == [a_own["id"]]
    # B filtering on A's ids finds only B's own group (the ids as B's IdP sent them), never A's objects.
    for flt in (f'members.value eq "{a_user["id"]}"', f'members.value eq "{a_group["id"]}"'):
        r = side_b.scim.get("/Groups", params={"filter": flt})
        assert [g["id"] for g in r.json()["Resources"]] == [b_group["id"]], (flt, r.text)
        assert not _leaks_a(r.text)
    r = side_b.scim.get("/Users", params={"filter": f'id eq "{a_user["id"]}"'})
    assert r.json()["totalResults"] == 0


def test_deleting_a_user_or_group_leaves_other_tenants_memberships_alone(side_a: Side, side_b: Side) -> None:
    a_user, a_group, b_group = _b_group_naming_a(side_a, side_b)
    # A's own group holding B's group id: deleting B's group must not reach into A's rows either.
    a_holds_b = side_a.scim.post("/Groups", json=group_payload("A Holds B", members=[{"value": b_group["id"]}]))
    assert a_holds_b.status_code == 201
    assert side_a.scim.delete(f"/Users/{a_user['id']}").status_code == 204
    assert side_a.scim.delete(f"/Groups/{a_group['id']}").status_code == 204
    members = side_b.scim.get(f"/Groups/{b_group['id']}").json()["members"]
    assert sorted(m["value"] for m in members) == sorted([a_user["id"], a_group["id"]])
    assert side_b.scim.delete(f"/Groups/{b_group['id']}").status_code == 204
    kept = side_a.scim.get(f"/Groups/{a_holds_b.json()['id']}").json()["members"]
    assert [m["value"] for m in kept] == [b_group["id"]]


def test_other_tenants_ids_are_not_found_on_scim_resources(side_a: Side, side_b: Side) -> None:
    a_user = _user(side_a, "bob@a.example", "Bob")
    before = side_a.scim.get(f"/Users/{a_user['id']}").json()
    patch = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
             "Operations": [{"op": "replace", "path": "displayName", "value": "Owned"}]}
    for r in (side_b.scim.get(f"/Users/{a_user['id']}"), side_b.scim.patch(f"/Users/{a_user['id']}", json=patch),
              side_b.scim.put(f"/Users/{a_user['id']}", json=user_payload("x@b.example")),
              side_b.scim.delete(f"/Users/{a_user['id']}")):
        assert r.status_code == 404, r.text
        assert r.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert side_a.scim.get(f"/Users/{a_user['id']}").json() == before
