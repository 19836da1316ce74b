"""Bad input gets the RFC 7644 §3.12 error it deserves, and nothing stored changes."""

from __future__ import annotations

import pytest

from tests.conftest import SCIM_JSON, ScimClient, user_payload

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def assert_error(r, status: int, scim_type: str | None) -> dict:  # noqa: ANN001
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(SCIM_JSON)
    body = r.json()
    assert body["schemas"] == [ERROR] and body["status"] == str(status)
    if scim_type:
        assert body.get("scimType") == scim_type, body
    assert body.get("detail")
    return body


@pytest.fixture()
def stored(scim: ScimClient) -> dict:
    return scim.post("/Users", json=user_payload("stays@contoso.com", displayName="Stays")).json()


def unchanged(scim: ScimClient, stored: dict) -> None:
    assert scim.get(f"/Users/{stored['id']}").json() == stored
    assert scim.get("/Users").json()["totalResults"] == 1


def test_malformed_json_is_invalid_syntax(scim: ScimClient, stored: dict) -> None:
    r = scim.request("POST", "/Users", content=b'{"userName": "x",')
    assert_error(r, 400, "invalidSyntax")
    r = scim.request("PATCH", f"/Users/{stored['id']}", content=b"[not json")
    assert_error(r, 400, "invalidSyntax")
    unchanged(scim, stored)


def test_unknown_attribute_is_refused_not_dropped(scim: ScimClient, stored: dict) -> None:
    body = assert_error(scim.post("/Users", json=user_payload(favouriteColour="teal")), 400, "invalidSyntax")
    assert "favouriteColour" in body["detail"]
    r = scim.put(f"/Users/{stored['id']}", json=user_payload("stays@contoso.com", shoeSize=44))
    assert_error(r, 400, "invalidSyntax")
    unchanged(scim, stored)


def test_unknown_extension_carrying_attributes_is_refused(scim: ScimClient, stored: dict) -> None:
    ext = "urn:example:params:scim:schemas:extension:unknown:2.0:User"
    payload = user_payload(**{ext: {"x": 1}})
    payload["schemas"].append(ext)
    assert_error(scim.post("/Users", json=payload), 400, "invalidSyntax")
    unchanged(scim, stored)


def test_bad_filter_is_invalid_filter_with_position(scim: ScimClient, stored: dict) -> None:
    body = assert_error(scim.get("/Users", params={"filter": 'userName eq'}), 400, "invalidFilter")
    assert "column" in body["detail"]
    assert_error(scim.get("/Users", params={"filter": 'userName zz "x"'}), 400, "invalidFilter")
    # An attribute no schema defines would match nothing and make an IdP create a duplicate: refused.
    assert_error(scim.get("/Users", params={"filter": 'shoeSize eq "44"'}), 400, "invalidFilter")


def test_wrong_type_is_invalid_value(scim: ScimClient, stored: dict) -> None:
    assert_error(scim.post("/Users", json=user_payload(active="maybe")), 400, "invalidValue")
    assert_error(scim.post("/Users", json=user_payload(emails="a@b.c")), 400, None)
    r = scim.patch(f"/Users/{stored['id']}", json={
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": "perhaps"}]})
    assert_error(r, 400, "invalidValue")
    unchanged(scim, stored)


def test_missing_username_is_invalid_value(scim: ScimClient, stored: dict) -> None:
    r = scim.post("/Users", json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "displayName": "x"})
    assert r.status_code == 400 and r.json()["scimType"] in ("invalidValue", "invalidSyntax")
    unchanged(scim, stored)


def test_duplicate_username_is_409_uniqueness_case_insensitively(scim: ScimClient, stored: dict) -> None:
    assert_error(scim.post("/Users", json=user_payload("STAYS@contoso.com")), 409, "uniqueness")
    other = scim.post("/Users", json=user_payload("other@contoso.com")).json()
    r = scim.patch(f"/Users/{other['id']}", json={
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "userName", "value": "Stays@Contoso.com"}]})
    assert_error(r, 409, "uniqueness")
    assert scim.get(f"/Users/{other['id']}").json()["userName"] == "other@contoso.com"
    assert scim.get(f"/Users/{stored['id']}").json() == stored


def test_patch_of_read_only_id_is_refused(scim: ScimClient, stored: dict) -> None:
    r = scim.patch(f"/Users/{stored['id']}", json={
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "id", "value": "other"}]})
    assert r.status_code == 400 and r.json()["scimType"] in ("mutability", "invalidPath", "invalidValue")
    unchanged(scim, stored)


def test_patch_with_one_bad_operation_applies_none(scim: ScimClient, stored: dict) -> None:
    r = scim.patch(f"/Users/{stored['id']}", json={
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "displayName", "value": "Changed"},
                       {"op": "replace", "path": "nosuchattr", "value": "x"}]})
    assert r.status_code == 400
    unchanged(scim, stored)


def test_patch_without_operations_is_invalid_syntax(scim: ScimClient, stored: dict) -> None:
    assert_error(scim.patch(f"/Users/{stored['id']}", json={"schemas": []}), 400, "invalidSyntax")
    patch_op = ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]
    assert_error(scim.patch(f"/Users/{stored['id']}", json={"schemas": patch_op, "Operations": []}),
                 400, "invalidSyntax")
    assert_error(scim.patch(f"/Users/{stored['id']}", json={"schemas": patch_op,
                                                            "Operations": [{"op": "jump", "path": "x"}]}),
                 400, "invalidValue")
    unchanged(scim, stored)


@pytest.mark.parametrize("schemas", [
    None, [], ["urn:ietf:params:scim:schemas:core:2.0:User"], "urn:ietf:params:scim:api:messages:2.0:PatchOp",
    [None], [{"urn": "urn:ietf:params:scim:api:messages:2.0:PatchOp"}]])
def test_patch_without_the_patchop_schema_is_invalid_syntax_and_changes_nothing(
    scim: ScimClient, stored: dict, schemas: object
) -> None:
    # RFC 7644 §3.5.2: the body MUST carry "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"].
    body: dict = {"Operations": [{"op": "replace", "path": "displayName", "value": "Changed"}]}
    if schemas is not None:
        body["schemas"] = schemas
    detail = assert_error(scim.patch(f"/Users/{stored['id']}", json=body), 400, "invalidSyntax")["detail"]
    assert "PatchOp" in detail
    unchanged(scim, stored)


def test_bulk_patch_without_the_patchop_schema_fails_that_operation_only(scim: ScimClient, stored: dict) -> None:
    ops = [{"op": "replace", "path": "displayName", "value": "Changed"}]
    r = scim.post("/Bulk", json={
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [
            {"method": "PATCH", "path": f"/Users/{stored['id']}", "data": {"Operations": ops}},
            {"method": "PATCH", "path": f"/Users/{stored['id']}",
             "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops}},
        ]})
    assert r.status_code == 200, r.text
    first, second = r.json()["Operations"]
    assert first["status"] == "400" and first["response"]["scimType"] == "invalidSyntax", first
    assert second["status"] == "200", second
    assert scim.get(f"/Users/{stored['id']}").json()["displayName"] == "Changed"


def test_patch_with_patchop_schema_in_other_case_and_beside_another_uri_is_accepted(
    scim: ScimClient, stored: dict
) -> None:
    body = {"schemas": ["urn:example:x", "URN:IETF:PARAMS:SCIM:API:MESSAGES:2.0:PATCHOP"],
            "Operations": [{"op": "replace", "path": "displayName", "value": "Changed"}]}
    r = scim.patch(f"/Users/{stored['id']}", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["displayName"] == "Changed"


def test_unknown_resource_and_endpoint_are_404_scim_errors(scim: ScimClient) -> None:
    assert_error(scim.get("/Users/does-not-exist"), 404, None)
    assert_error(scim.get("/Widgets"), 404, None)
    assert_error(scim.patch("/Users/does-not-exist", json={
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": False}]}), 404, None)


def test_discovery_endpoints_refuse_writes_with_405(scim: ScimClient) -> None:
    for path in ("/ServiceProviderConfig", "/Schemas", "/ResourceTypes"):
        assert_error(scim.post(path, json={}), 405, None)


def test_wrong_content_type_is_refused(scim: ScimClient) -> None:
    r = scim.request("POST", "/Users", content=b"userName=x", headers={"Content-Type": "text/plain"})
    assert_error(r, 400, "invalidSyntax")


def test_bad_paging_and_sort_parameters(scim: ScimClient, stored: dict) -> None:
    assert_error(scim.get("/Users", params={"count": "ten"}), 400, "invalidValue")
    assert_error(scim.get("/Users", params={"sortOrder": "sideways"}), 400, "invalidValue")
    # Out-of-range values are clamped, as RFC 7644 §3.4.2.4 says.
    body = scim.get("/Users", params={"startIndex": "-5", "count": "100000"}).json()
    assert body["startIndex"] == 1 and body["totalResults"] == 1
