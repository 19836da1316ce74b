"""Auth, ETags and If-Match, Bulk, and discovery documents."""

from __future__ import annotations

from tests.conftest import ScimClient, user_payload

PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def test_missing_or_wrong_token_is_401_with_scim_error(scim: ScimClient) -> None:
    r = scim.client.get(f"{scim.base}/Users")
    assert r.status_code == 401 and r.json()["status"] == "401"
    assert r.headers["www-authenticate"].startswith("Bearer")
    r = scim.client.get(f"{scim.base}/Users", headers={"Authorization": "Bearer wrong-token-000000000"})
    assert r.status_code == 401


def test_revoked_and_rotated_tokens_stop_working(scim: ScimClient, backend) -> None:
    issued = backend.directory.issue_token(scim.tenant, "scim", "rotating")
    ok = {"Authorization": f"Bearer {issued.secret}"}
    assert scim.client.get(f"{scim.base}/Users", headers=ok).status_code == 200
    successor = backend.directory.rotate_token(issued.id)
    assert scim.client.get(f"{scim.base}/Users", headers=ok).status_code == 401
    new = {"Authorization": f"Bearer {successor.secret}"}
    assert scim.client.get(f"{scim.base}/Users", headers=new).status_code == 200
    backend.directory.revoke_token(successor.id)
    assert scim.client.get(f"{scim.base}/Users", headers=new).status_code == 401


def test_tokens_are_stored_hashed(scim: ScimClient, backend) -> None:
    from sqlalchemy import select

    from tenantry.directory.models import ApiToken

    issued = backend.directory.issue_token(scim.tenant, "scim", "hashed")
    with backend.db.session() as session:
        stored = session.scalar(select(ApiToken.token_hash).where(ApiToken.id == issued.id))
    assert stored != issued.secret and issued.secret not in stored and len(stored) == 64


def test_if_match_with_stale_version_is_412_and_changes_nothing(scim: ScimClient) -> None:
    user = scim.post("/Users", json=user_payload()).json()
    v1 = user["meta"]["version"]
    op = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "displayName", "value": "One"}]}
    r = scim.patch(f"/Users/{user['id']}", json=op, headers={"If-Match": v1})
    assert r.status_code == 200 and r.headers["etag"] == 'W/"2"'
    op2 = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "displayName", "value": "Two"}]}
    r = scim.patch(f"/Users/{user['id']}", json=op2, headers={"If-Match": v1})
    assert r.status_code == 412 and r.json()["status"] == "412"
    assert scim.delete(f"/Users/{user['id']}", headers={"If-Match": v1}).status_code == 412
    assert scim.get(f"/Users/{user['id']}").json()["displayName"] == "One"
    assert scim.get(f"/Users/{user['id']}", headers={"If-None-Match": 'W/"2"'}).status_code == 304


def test_bulk_creates_with_bulk_id_references_and_reports_each_outcome(scim: ScimClient) -> None:
    r = scim.post("/Bulk", json={
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "u1", "data": user_payload("bulk1@contoso.com")},
            {"method": "POST", "path": "/Groups", "bulkId": "g1", "data": {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Bulk group",
                "members": [{"type": "User", "value": "bulkId:u1"}]}},
            {"method": "POST", "path": "/Users", "bulkId": "dup", "data": user_payload("bulk1@contoso.com")},
            {"method": "PATCH", "path": "/Users/bulkId:u1", "data": {
                "schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": False}]}},
        ]})
    assert r.status_code == 200, r.text
    ops = r.json()["Operations"]
    assert [o["status"] for o in ops] == ["201", "201", "409", "200"]
    assert ops[2]["response"]["scimType"] == "uniqueness"
    user_id = ops[0]["location"].rsplit("/", 1)[1]
    group_id = ops[1]["location"].rsplit("/", 1)[1]
    group = scim.get(f"/Groups/{group_id}").json()
    assert [m["value"] for m in group["members"]] == [user_id]
    assert scim.get(f"/Users/{user_id}").json()["active"] is False


def test_bulk_fail_on_errors_stops_after_that_many_errors(scim: ScimClient) -> None:
    r = scim.post("/Bulk", json={
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "failOnErrors": 1,
        "Operations": [
            {"method": "DELETE", "path": "/Users/nope"},
            {"method": "POST", "path": "/Users", "bulkId": "x", "data": user_payload()},
        ]})
    ops = r.json()["Operations"]
    assert [o["status"] for o in ops] == ["404"]
    assert scim.get("/Users").json()["totalResults"] == 0


def test_bulk_over_max_operations_is_413(scim: ScimClient, backend) -> None:
    limit = backend.settings.bulk_max_operations
    r = scim.post("/Bulk", json={"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                                 "Operations": [{"method": "DELETE", "path": "/Users/x"}] * (limit + 1)})
    assert r.status_code == 413


def test_discovery_documents_describe_the_grouptalk_extensions(scim: ScimClient) -> None:
    spc = scim.get("/ServiceProviderConfig").json()
    assert spc["patch"]["supported"] and spc["bulk"]["supported"] and spc["filter"]["supported"]
    assert spc["etag"]["supported"] and spc["sort"]["supported"]
    types = {rt["id"]: rt for rt in scim.get("/ResourceTypes").json()["Resources"]}
    assert {e["schema"] for e in types["User"]["schemaExtensions"]} == {
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        "urn:ietf:params:scim:schemas:extension:grouptalk:2.0:User"}
    schema = scim.get("/Schemas/urn:ietf:params:scim:schemas:extension:grouptalk:2.0:User").json()
    assert [a["name"] for a in schema["attributes"]] == [f"label{i}" for i in range(1, 6)]
    group_ext = scim.get("/Schemas/urn:ietf:params:scim:schemas:extension:grouptalk:2.0:Group").json()
    assert [a["name"] for a in group_ext["attributes"]] == ["description"]
