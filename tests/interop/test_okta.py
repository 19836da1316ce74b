"""Okta provisioning, replayed request by request against Tenantry.

The request bodies are copied from Okta's "SCIM 2.0 Protocol Reference" (okta/okta-developer-docs,
packages/@okta/vuepress-site/docs/reference/scim/scim-20/index.md), ids replaced by the ids our server
returned: Create Users (look-up with ``filter=userName eq ...&startIndex=1&count=100``, then POST), Retrieve
Users (pages of ``count=100``), Retrieve a specific User, Update a specific User (PUT), Update a specific User
(PATCH: ``{"op":"replace","value":{"active":false}}``), Create Groups (Group Push), Retrieve Groups,
Retrieve specific Groups, Update a specific Group name (PATCH for OIN integrations, PUT for AIW ones),
Update specific Group membership (PATCH remove + add, PATCH replace, PUT), Delete a specific Group.

Each test asserts the status, the ``application/scim+json`` media type of every body, and reads the stored
result back.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

from tests.interop.replay import expect, expect_200_or_204

SCIM_JSON = "application/scim+json"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"

# The documents' user is "test.user@okta.local". Only one create test sends it as is: a server that refuses
# the ".local" address would otherwise fail every test for that one reason. The others use this address.
DOC_USER_NAME = "test.user@okta.local"
USER_NAME = "test.user@example.com"


# -- helpers -----------------------------------------------------------------------------------------------








expect_patch = expect_200_or_204


def list_response(response: Any) -> dict[str, Any]:
    body = expect(response, 200)
    assert body["schemas"] == [LIST_RESPONSE], body
    # "The itemsPerPage, startIndex, and totalResults values need to be exchanged as integers".
    for key in ("totalResults", "startIndex", "itemsPerPage"):
        assert type(body[key]) is int, (key, body)
    return body


def lookup(scim: Any, user_name: str) -> dict[str, Any]:
    """Okta's look-up before a create: GET /Users?filter=userName eq "..."&startIndex=1&count=100."""
    filter_text = quote(f'userName eq "{user_name}"')
    return list_response(scim.get(f"/Users?filter={filter_text}&startIndex=1&count=100"))


def okta_user(user_name: str = USER_NAME, external_id: str = "00ujl29u0le5T6Aj10h7") -> dict[str, Any]:
    """The "Create the User" request (verbatim with ``user_name=DOC_USER_NAME``)."""
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name,
        "name": {
            "givenName": "Test",
            "familyName": "User"
        },
        "emails": [{
            "primary": True,
            "value": user_name,
            "type": "work"
        }],
        "displayName": "Test User",
        "locale": "en-US",
        "externalId": external_id,
        "groups": [],
        "password": "1mz050nq",
        "active": True
    }


def create_user(scim: Any, user_name: str | None = None) -> dict[str, Any]:
    name = user_name or f"user.{uuid.uuid4().hex[:12]}@example.com"
    body = expect(scim.post("/Users", json=okta_user(name, f"00u{uuid.uuid4().hex[:17]}")), 201)
    assert body["id"], body
    return body


def push_group(scim: Any, display_name: str = "Test SCIMv2") -> dict[str, Any]:
    """Group Push: the "Create Groups" request."""
    payload = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": display_name,
        "members": []
    }
    body = expect(scim.post("/Groups", json=payload), 201)
    assert body["id"], body
    return body


def member_ids(group: dict[str, Any]) -> list[str]:
    return [m["value"] for m in group.get("members") or []]


def add_member(scim: Any, group_id: str, user: dict[str, Any]) -> None:
    payload = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "add", "path": "members",
                        "value": [{"value": user["id"], "display": user["userName"]}]}],
    }
    expect_patch(scim.patch(f"/Groups/{group_id}", json=payload))


# -- users ---------------------------------------------------------------------------------------------------


def test_okta_user_lookup_before_create_returns_an_empty_list_response_with_integer_paging(scim: Any) -> None:
    create_user(scim)  # someone else
    body = lookup(scim, USER_NAME)
    assert body["totalResults"] == 0, body
    assert body["startIndex"] == 1
    assert body.get("Resources", []) == []


def test_okta_create_user_with_the_documented_okta_local_address_is_accepted(scim: Any) -> None:
    # "Create the User" request, verbatim: userName and work e-mail "test.user@okta.local".
    created = expect(scim.post("/Users", json=okta_user(DOC_USER_NAME)), 201)
    user = expect(scim.get(f"/Users/{created['id']}"), 200)
    assert user["userName"] == "test.user@okta.local"
    assert user["emails"] == [{"primary": True, "value": "test.user@okta.local", "type": "work"}]
    assert [r["id"] for r in lookup(scim, DOC_USER_NAME)["Resources"]] == [created["id"]]


def test_okta_create_user_returns_201_with_the_user_and_never_the_password(scim: Any) -> None:
    created = expect(scim.post("/Users", json=okta_user()), 201)
    assert CORE_USER in created["schemas"]
    assert created["id"]
    assert created["userName"] == USER_NAME
    assert created["name"] == {"givenName": "Test", "familyName": "User"}
    assert created["emails"] == [{"primary": True, "value": USER_NAME, "type": "work"}]
    assert created["displayName"] == "Test User"
    assert created["locale"] == "en-US"
    assert created["externalId"] == "00ujl29u0le5T6Aj10h7"
    assert created["active"] is True
    assert created["meta"]["resourceType"] == "User"
    assert "password" not in created

    # Retrieve a specific User: GET /Users/{id}.
    user = expect(scim.get(f"/Users/{created['id']}"), 200)
    assert user["id"] == created["id"]
    assert user["userName"] == USER_NAME
    assert user["name"] == {"givenName": "Test", "familyName": "User"}
    assert user["emails"] == [{"primary": True, "value": USER_NAME, "type": "work"}]
    assert user["displayName"] == "Test User"
    assert user["locale"] == "en-US"
    assert user["externalId"] == "00ujl29u0le5T6Aj10h7"
    assert user["active"] is True
    assert "password" not in user


def test_okta_user_lookup_after_create_finds_the_user_so_okta_matches_instead_of_creating(scim: Any) -> None:
    created = expect(scim.post("/Users", json=okta_user()), 201)
    create_user(scim)

    body = lookup(scim, USER_NAME)
    assert body["totalResults"] == 1, body
    assert body["startIndex"] == 1
    assert body["itemsPerPage"] == 1
    assert [r["id"] for r in body["Resources"]] == [created["id"]]


def test_okta_create_existing_user_returns_409_with_error_schema_and_keeps_one_user(scim: Any) -> None:
    created = expect(scim.post("/Users", json=okta_user()), 201)
    # "If the User object that Okta tries to create already exists ... respond with an error schema".
    body = expect(scim.post("/Users", json=okta_user(external_id="00ujl29u0le5T6Aj10h8")), 409)
    assert ERROR in body["schemas"], body
    assert str(body["status"]) == "409", body

    found = lookup(scim, USER_NAME)
    assert [r["id"] for r in found["Resources"]] == [created["id"]]
    assert found["Resources"][0]["externalId"] == "00ujl29u0le5T6Aj10h7"


def test_okta_import_pages_users_by_start_index_and_count_100_without_gaps_or_repeats(scim: Any) -> None:
    ids = {create_user(scim)["id"] for _ in range(105)}

    # "GET /scim/v2/Users?startIndex=1&count=100", then startIndex+100 until totalResults is reached.
    seen: list[str] = []
    start = 1
    while True:
        page = list_response(scim.get(f"/Users?startIndex={start}&count=100"))
        assert page["totalResults"] == 105, page["totalResults"]
        assert page["startIndex"] == start
        assert page["itemsPerPage"] == len(page.get("Resources", []))
        assert page["itemsPerPage"] <= 100
        seen.extend(r["id"] for r in page.get("Resources", []))
        start += 100
        if start > page["totalResults"]:
            break
    assert len(seen) == len(set(seen)) == 105
    assert set(seen) == ids

    # "The SCIM server must consistently return the same ordering of results".
    again = list_response(scim.get("/Users?startIndex=1&count=100"))
    assert [r["id"] for r in again["Resources"]] == seen[:100]


def test_okta_put_user_replaces_the_profile_with_the_middle_name_added(scim: Any) -> None:
    created = expect(scim.post("/Users", json=okta_user()), 201)
    # "To update a user, Okta first makes a GET method request to /Users/${userID}".
    expect(scim.get(f"/Users/{created['id']}"), 200)
    # "Update the User" request, verbatim but for the id.
    payload = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": created["id"],
        "userName": USER_NAME,
        "name": {
            "givenName": "Another",
            "middleName": "Excited",
            "familyName": "User"
        },
        "emails": [{
            "primary": True,
            "value": USER_NAME,
            "type": "work",
            "display": USER_NAME
        }],
        "active": True,
        "groups": [],
        "meta": {
            "resourceType": "User"
        }
    }
    body = expect(scim.put(f"/Users/{created['id']}", json=payload), 200)
    assert body["id"] == created["id"]
    assert body["name"] == {"givenName": "Another", "middleName": "Excited", "familyName": "User"}

    user = expect(scim.get(f"/Users/{created['id']}"), 200)
    assert user["name"] == {"givenName": "Another", "middleName": "Excited", "familyName": "User"}
    assert user["emails"] == [{"primary": True, "value": USER_NAME, "type": "work",
                               "display": USER_NAME}]
    assert user["userName"] == USER_NAME
    assert user["active"] is True
    # PUT replaces: what the body left out is gone.
    assert "displayName" not in user and "locale" not in user and "externalId" not in user


def test_okta_deactivate_user_with_path_less_replace_returns_200_with_the_inactive_user(scim: Any) -> None:
    created = expect(scim.post("/Users", json=okta_user()), 201)
    # "Update a specific User (PATCH)": deactivation, verbatim. Okta expects the updated User object.
    payload = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{
            "op": "replace",
            "value": {
                "active": False
            }
        }]
    }
    body = expect(scim.patch(f"/Users/{created['id']}", json=payload), 200)
    assert body["id"] == created["id"]
    assert body["active"] is False
    assert body["userName"] == USER_NAME

    user = expect(scim.get(f"/Users/{created['id']}"), 200)
    assert user["active"] is False
    assert user["name"] == {"givenName": "Test", "familyName": "User"}
    # Okta never deletes users: the deactivated one stays findable for the next look-up.
    found = lookup(scim, USER_NAME)
    assert [r["id"] for r in found["Resources"]] == [created["id"]]
    assert found["Resources"][0]["active"] is False


def test_okta_reactivate_user_with_path_less_replace_returns_200_with_the_active_user(scim: Any) -> None:
    created = expect(scim.post("/Users", json=okta_user()), 201)
    patch = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
             "Operations": [{"op": "replace", "value": {"active": False}}]}
    expect(scim.patch(f"/Users/{created['id']}", json=patch), 200)
    # "Activating a user" is the same PATCH with active true.
    patch["Operations"][0]["value"] = {"active": True}
    body = expect(scim.patch(f"/Users/{created['id']}", json=patch), 200)
    assert body["active"] is True
    assert expect(scim.get(f"/Users/{created['id']}"), 200)["active"] is True


def test_okta_aiw_deactivate_user_with_put_active_false_keeps_the_user_as_inactive(scim: Any) -> None:
    # "For any custom app integrations created using the AIW, this request is sent through a PUT".
    created = expect(scim.post("/Users", json=okta_user()), 201)
    current = expect(scim.get(f"/Users/{created['id']}"), 200)
    payload = {k: v for k, v in current.items() if k not in ("meta",)}
    payload["active"] = False
    body = expect(scim.put(f"/Users/{created['id']}", json=payload), 200)
    assert body["active"] is False

    user = expect(scim.get(f"/Users/{created['id']}"), 200)
    assert user["active"] is False
    assert user["userName"] == USER_NAME
    assert user["externalId"] == "00ujl29u0le5T6Aj10h7"
    found = lookup(scim, USER_NAME)
    assert [r["id"] for r in found["Resources"]] == [created["id"]]


# -- groups ----------------------------------------------------------------------------------------


def test_okta_group_push_creates_the_group_with_no_members(scim: Any) -> None:
    created = push_group(scim)
    assert CORE_GROUP in created["schemas"]
    assert created["displayName"] == "Test SCIMv2"
    assert created.get("members") in (None, [])
    assert created["meta"]["resourceType"] == "Group"

    group = expect(scim.get(f"/Groups/{created['id']}"), 200)
    assert group["id"] == created["id"]
    assert group["displayName"] == "Test SCIMv2"
    assert group.get("members") in (None, [])


def test_okta_group_import_lists_groups_by_start_index_and_count(scim: Any) -> None:
    pushed = {push_group(scim, f"Test SCIMv2 {i}")["id"] for i in range(3)}
    # "GET /scim/v2/Groups?startIndex=1&count=100".
    body = list_response(scim.get("/Groups?startIndex=1&count=100"))
    assert body["totalResults"] == 3
    assert body["startIndex"] == 1
    assert body["itemsPerPage"] == 3
    assert {r["id"] for r in body["Resources"]} == pushed


def test_okta_retrieve_specific_group_returns_its_members(scim: Any) -> None:
    group = push_group(scim)
    user = create_user(scim)
    add_member(scim, group["id"], user)
    # "GET /scim/v2/Groups/{id}": the Group with its members (value, display).
    body = expect(scim.get(f"/Groups/{group['id']}"), 200)
    assert body["id"] == group["id"]
    assert body["displayName"] == "Test SCIMv2"
    assert member_ids(body) == [user["id"]]
    assert body["members"][0]["display"] == user["userName"]


def test_okta_rename_group_with_path_less_replace_carrying_the_id_renames_it(scim: Any) -> None:
    group = push_group(scim)
    user = create_user(scim)
    add_member(scim, group["id"], user)
    # "Update a specific Group name" (OIN integrations), verbatim but for the id and the new name.
    payload = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{
            "op": "replace",
            "value": {
                "id": group["id"],
                "displayName": "Test SCIMv20"
            }
        }]
    }
    body = expect_patch(scim.patch(f"/Groups/{group['id']}", json=payload))
    if body is not None:
        assert body["id"] == group["id"]
        assert body["displayName"] == "Test SCIMv20"

    stored = expect(scim.get(f"/Groups/{group['id']}"), 200)
    assert stored["id"] == group["id"]
    assert stored["displayName"] == "Test SCIMv20"
    assert member_ids(stored) == [user["id"]], "a rename must not touch the members"


def test_okta_rename_group_with_the_same_name_is_accepted_as_okta_repeats_it_on_membership_updates(
    scim: Any,
) -> None:
    # "The group name update operation is triggered each time there is a group membership update operation."
    group = push_group(scim)
    payload = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"id": group["id"], "displayName": "Test SCIMv2"}}],
    }
    expect_patch(scim.patch(f"/Groups/{group['id']}", json=payload))
    expect_patch(scim.patch(f"/Groups/{group['id']}", json=payload))
    assert expect(scim.get(f"/Groups/{group['id']}"), 200)["displayName"] == "Test SCIMv2"


def test_okta_group_membership_patch_removes_one_member_and_adds_another_in_one_request(scim: Any) -> None:
    group = push_group(scim)
    leaving, joining, staying = create_user(scim), create_user(scim), create_user(scim)
    add_member(scim, group["id"], leaving)
    add_member(scim, group["id"], staying)
    # "Update specific Group membership" (OIN integrations), verbatim but for the ids.
    payload = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{
              "op": "remove",
              "path": f"members[value eq \"{leaving['id']}\"]"
            },
            {
              "op": "add",
              "path": "members",
              "value": [{
                  "value": joining["id"],
                  "display": joining["userName"]
            }]
        }]
    }
    body = expect_patch(scim.patch(f"/Groups/{group['id']}", json=payload))
    if body is not None:
        assert body["id"] == group["id"] and body["displayName"] == "Test SCIMv2"

    stored = expect(scim.get(f"/Groups/{group['id']}"), 200)
    assert sorted(member_ids(stored)) == sorted([joining["id"], staying["id"]])


def test_okta_group_membership_full_push_with_replace_members_sets_exactly_those_members(scim: Any) -> None:
    group = push_group(scim)
    dropped, kept, added = create_user(scim), create_user(scim), create_user(scim)
    add_member(scim, group["id"], dropped)
    add_member(scim, group["id"], kept)
    # "a full push of the membership to the SCIM server using the replace operation", verbatim but the ids.
    payload = {
      "schemas": [
        "urn:ietf:params:scim:api:messages:2.0:PatchOp"
      ],
      "Operations": [
        {
          "op": "replace",
          "path": "members",
          "value": [
            {
              "value": kept["id"],
              "display": kept["userName"]
            },
            {
              "value": added["id"],
              "display": added["userName"]
            }
          ]
        }
      ]
    }
    expect_patch(scim.patch(f"/Groups/{group['id']}", json=payload))

    stored = expect(scim.get(f"/Groups/{group['id']}"), 200)
    assert sorted(member_ids(stored)) == sorted([kept["id"], added["id"]])
    assert stored["displayName"] == "Test SCIMv2"


def test_okta_aiw_put_group_changes_the_display_name_and_sets_the_members(scim: Any) -> None:
    group = push_group(scim)
    old, new = create_user(scim), create_user(scim)
    add_member(scim, group["id"], old)
    # AIW integrations update a pushed group with PUT (name and membership), verbatim but the id and name.
    payload = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "Test SCIMv20",
        "members": [
                {
                "value": new["id"],
                "display": new["userName"]
                }
        ]
    }
    body = expect(scim.put(f"/Groups/{group['id']}", json=payload), 200)
    assert body["id"] == group["id"]
    assert body["displayName"] == "Test SCIMv20"

    stored = expect(scim.get(f"/Groups/{group['id']}"), 200)
    assert stored["displayName"] == "Test SCIMv20"
    assert member_ids(stored) == [new["id"]]
    filter_text = quote('displayName eq "Test SCIMv20"')
    by_name = list_response(scim.get(f"/Groups?filter={filter_text}"))
    assert [r["id"] for r in by_name["Resources"]] == [group["id"]]


def test_okta_unlink_pushed_group_with_delete_returns_204_and_the_group_is_gone(scim: Any) -> None:
    group = push_group(scim)
    user = create_user(scim)
    add_member(scim, group["id"], user)
    # "Delete the group in the target app": DELETE /Groups/{id} -> 204 No Content.
    expect(scim.delete(f"/Groups/{group['id']}"), 204)
    body = expect(scim.get(f"/Groups/{group['id']}"), 404)
    assert ERROR in body["schemas"] and str(body["status"]) == "404", body
    listed = list_response(scim.get("/Groups?startIndex=1&count=100"))
    assert group["id"] not in [r["id"] for r in listed.get("Resources", [])]
    # The user stays (Okta does not delete users), no longer in the group.
    stored = expect(scim.get(f"/Users/{user['id']}"), 200)
    assert not stored.get("groups"), stored
