"""Bad input (issue #9, defect 7) gets a 4xx with an error body and changes nothing stored, on both backends.

SCIM routes answer with an RFC 7644 §3.12 Error; /api/v1 with {"error", "message"}. The limits are those of
``protocols.scim.limits`` and ``core.bounds`` (docs/scim.md "Limits", docs/security.md).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tenantry.app import Services
from tenantry.protocols.scim.limits import MAX_FILTER_LENGTH, MAX_FILTER_TERMS, MAX_JSON_DEPTH, MAX_START_INDEX
from tests.conftest import SCIM_JSON, ScimClient, admin_secret, group_payload, user_payload

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
HUGE = 99999999999999999999


def scim_error(r: Any, status: int, scim_type: str | None, *words: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(SCIM_JSON)
    body: dict[str, Any] = r.json()
    assert body["schemas"] == [ERROR] and body["status"] == str(status), body
    if scim_type:
        assert body.get("scimType") == scim_type, body
    for word in words:
        assert word in body["detail"], body
    return body


def admin_error(r: Any, *statuses: int) -> dict[str, Any]:
    assert r.status_code in statuses, r.text
    body: dict[str, Any] = r.json()
    assert set(body) >= {"error", "message"} and body["message"], body
    return body


@pytest.fixture()
def stored(scim: ScimClient) -> dict[str, Any]:
    return scim.post("/Users", json=user_payload("stays@contoso.com", displayName="Stays")).json()


def unchanged(scim: ScimClient, stored: dict[str, Any], groups: int = 0) -> None:
    assert scim.get(f"/Users/{stored['id']}").json() == stored
    assert scim.get("/Users").json()["totalResults"] == 1
    assert scim.get("/Groups").json()["totalResults"] == groups


def raw(scim: ScimClient, method: str, path: str, content: bytes | str) -> Any:
    return scim.request(method, path, content=content)


# -- SCIM: searches ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/.search", "/Users/.search"])
@pytest.mark.parametrize("name", ["startIndex", "count"])
@pytest.mark.parametrize("value", ["abc", [1], {"n": 1}, True, 1.5])
def test_search_paging_that_is_not_an_integer_is_invalid_value(scim: ScimClient, stored: dict[str, Any],
                                                              path: str, name: str, value: Any) -> None:
    r = scim.post(path, json={"schemas": [SEARCH], name: value})
    scim_error(r, 400, "invalidValue", name)
    unchanged(scim, stored)


def test_root_search_reads_negative_paging_as_rfc_7644_says(scim: ScimClient, stored: dict[str, Any]) -> None:
    # §3.4.2.4: startIndex below 1 is read as 1, a negative count as 0 — the same on every search route.
    body = scim.post("/.search", json={"schemas": [SEARCH], "startIndex": -5}).json()
    assert body["startIndex"] == 1 and [r["id"] for r in body["Resources"]] == [stored["id"]]
    body = scim.post("/.search", json={"schemas": [SEARCH], "count": -3}).json()
    assert body["totalResults"] == 1 and body["Resources"] == []


@pytest.mark.parametrize("path", ["/.search", "/Users/.search", "/Groups/.search"])
@pytest.mark.parametrize("value", [5, ["userName pr"], {"f": 1}, True])
def test_filter_that_is_not_a_string_is_invalid_filter(scim: ScimClient, stored: dict[str, Any], path: str,
                                                       value: Any) -> None:
    scim_error(scim.post(path, json={"schemas": [SEARCH], "filter": value}), 400, "invalidFilter", "string")
    unchanged(scim, stored)


@pytest.mark.parametrize("name", ["sortBy", "sortOrder", "attributes", "excludedAttributes"])
def test_search_strings_of_the_wrong_type_are_invalid_value(scim: ScimClient, stored: dict[str, Any],
                                                            name: str) -> None:
    scim_error(scim.post("/Users/.search", json={"schemas": [SEARCH], name: 7}), 400, "invalidValue", name)


def test_start_index_past_32_bits_is_invalid_value_in_query_and_body(scim: ScimClient,
                                                                     stored: dict[str, Any]) -> None:
    limit = str(MAX_START_INDEX)
    scim_error(scim.get("/Users", params={"startIndex": str(HUGE)}), 400, "invalidValue", "startIndex", limit)
    scim_error(scim.get("/Users", params={"startIndex": str(HUGE), "filter": 'userName eq "stays@contoso.com"'}),
               400, "invalidValue", "startIndex", limit)
    for path in ("/.search", "/Users/.search", "/Groups/.search"):
        r = raw(scim, "POST", path, f'{{"startIndex": {HUGE}}}')
        scim_error(r, 400, "invalidValue", "startIndex", limit)
    # The largest allowed startIndex is an empty page, not an error.
    body = scim.get("/Users", params={"startIndex": limit}).json()
    assert body["Resources"] == [] and body["totalResults"] == 1
    unchanged(scim, stored)


def test_filter_over_the_term_limit_is_invalid_filter(scim: ScimClient, stored: dict[str, Any]) -> None:
    at_limit = " or ".join(f'userName eq "u{i}"' for i in range(MAX_FILTER_TERMS - 1)) + ' or userName pr'
    assert scim.post("/Users/.search", json={"filter": at_limit}).json()["totalResults"] == 1
    over = " or ".join(f'userName eq "u{i}"' for i in range(MAX_FILTER_TERMS + 1))
    scim_error(scim.post("/Users/.search", json={"filter": over}), 400, "invalidFilter", str(MAX_FILTER_TERMS))
    scim_error(scim.get("/Groups", params={"filter": over.replace("userName", "displayName")}), 400,
               "invalidFilter", str(MAX_FILTER_TERMS))
    # Operators inside quoted values are values, not terms.
    quoted = 'userName eq "' + " eq ".join("x" for _ in range(MAX_FILTER_TERMS + 5)) + '"'
    assert scim.post("/Users/.search", json={"filter": quoted}).status_code == 200


def test_filter_of_5000_ors_is_invalid_filter_at_once(scim: ScimClient, stored: dict[str, Any]) -> None:
    # Today's failure: SQLite's expression tree overflowed (500); PostgreSQL planned for many minutes.
    for attr in ("userName", "emails.value", "title"):
        text = " or ".join(f'{attr} eq "u{i}"' for i in range(5000))
        scim_error(scim.post("/Users/.search", json={"filter": text}), 400, "invalidFilter", str(MAX_FILTER_LENGTH))
    ands = " and ".join(f'title eq "{i}"' for i in range(3000))
    scim_error(scim.post("/.search", json={"filter": ands}), 400, "invalidFilter")
    unchanged(scim, stored)


# -- SCIM: bulk and bodies -------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["x", [1], {"n": 1}, 0, -2, 1.5])
def test_bulk_fail_on_errors_of_the_wrong_type_is_refused_before_any_operation(
        scim: ScimClient, stored: dict[str, Any], value: Any) -> None:
    r = scim.post("/Bulk", json={"schemas": [BULK], "failOnErrors": value, "Operations": [
        {"method": "POST", "path": "/Users", "bulkId": "a", "data": user_payload()}]})
    scim_error(r, 400, "invalidValue", "failOnErrors")
    unchanged(scim, stored)


def test_bulk_fail_on_errors_true_stops_at_the_first_error(scim: ScimClient, stored: dict[str, Any]) -> None:
    bad = {"method": "POST", "path": "/Users", "bulkId": "bad", "data": user_payload("stays@contoso.com")}
    good = {"method": "POST", "path": "/Users", "bulkId": "good", "data": user_payload()}
    body = scim.post("/Bulk", json={"schemas": [BULK], "failOnErrors": True, "Operations": [bad, good]}).json()
    assert [op["status"] for op in body["Operations"]] == ["409"]
    unchanged(scim, stored)


def _nested(depth: int, leaf: str = "1") -> str:
    return '{"a":' * depth + leaf + "}" * depth


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 500, 5000])
def test_deeply_nested_json_is_invalid_syntax_in_every_body(scim: ScimClient, stored: dict[str, Any],
                                                            depth: int) -> None:
    deep = _nested(depth)
    user = '{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "deep", "displayName": %s}'
    scim_error(raw(scim, "POST", "/Users", user % deep), 400, "invalidSyntax")
    scim_error(raw(scim, "PUT", f"/Users/{stored['id']}", user % deep), 400, "invalidSyntax")
    patch = '{"schemas": ["' + PATCH_OP + '"], "Operations": [{"op": "add", "path": "title", "value": ' + deep + "}]}"
    scim_error(raw(scim, "PATCH", f"/Users/{stored['id']}", patch), 400, "invalidSyntax")
    scim_error(raw(scim, "POST", "/.search", deep), 400, "invalidSyntax")
    bulk = '{"schemas": ["%s"], "Operations": [{"method": "POST", "path": "/Users", "bulkId": "a", "data": %s}]}'
    scim_error(raw(scim, "POST", "/Bulk", bulk % (BULK, deep)), 400, "invalidSyntax")
    unchanged(scim, stored)


def test_json_at_the_depth_limit_is_read(scim: ScimClient, stored: dict[str, Any]) -> None:
    # A search request MAX_JSON_DEPTH levels deep is read and answered (it ignores what it does not use).
    r = raw(scim, "POST", "/Users/.search", '{"schemas": [' + _nested(MAX_JSON_DEPTH - 2) + "]}")
    assert r.status_code == 200, r.text


# -- SCIM: strings the database cannot hold ----------------------------------------------------------------

@pytest.mark.parametrize(("attr", "value", "limit"), [
    ("userName", "u" * 513, 512),
    ("displayName", "d" * 1_000_000, 512),
    ("externalId", "e" * 513, 512),
    ("name.givenName", "g" * 257, 256),
    ("title", "t" * 65_537, 65_536),
    ("emails.type", "w" * 65, 64),
])
def test_user_string_over_its_limit_is_invalid_value_naming_attribute_and_limit(
        scim: ScimClient, stored: dict[str, Any], attr: str, value: str, limit: int) -> None:
    fields: dict[str, Any] = {"userName": f"long-{uuid.uuid4().hex[:6]}"}
    if attr == "name.givenName":
        fields["name"] = {"givenName": value}
    elif attr == "emails.type":
        fields["emails"] = [{"value": "a@contoso.com", "type": value}]
    else:
        fields[attr] = value
    scim_error(scim.post("/Users", json=user_payload(**fields)), 400, "invalidValue", attr, str(limit))
    r = scim.patch(f"/Users/{stored['id']}", json={"schemas": [PATCH_OP], "Operations": [
        {"op": "replace", "value": {k: v for k, v in fields.items() if k != "userName"} or {"userName": value}}]})
    scim_error(r, 400, "invalidValue", attr, str(limit))
    unchanged(scim, stored)


def test_user_name_whose_lower_case_outgrows_the_column_is_invalid_value(scim: ScimClient,
                                                                         stored: dict[str, Any]) -> None:
    # "İ" lower-cases to two characters: 300 of them fit userName but not its 512-character look-up key.
    scim_error(scim.post("/Users", json=user_payload("İ" * 300)), 400, "invalidValue", "userName", "512")
    unchanged(scim, stored)


def test_strings_at_their_limit_are_stored(scim: ScimClient) -> None:
    r = scim.post("/Users", json=user_payload("u" * 512, displayName="d" * 512, name={"givenName": "g" * 256}))
    assert r.status_code == 201, r.text
    assert scim.get(f"/Users/{r.json()['id']}").json()["userName"] == "u" * 512
    assert scim.post("/Groups", json=group_payload("g" * 512)).status_code == 201


def test_group_strings_over_their_limits_are_invalid_value(scim: ScimClient, stored: dict[str, Any]) -> None:
    scim_error(scim.post("/Groups", json=group_payload("g" * 513)), 400, "invalidValue", "displayName", "512")
    r = scim.post("/Groups", json=group_payload(members=[{"value": "m" * 37}]))
    scim_error(r, 400, "invalidValue", "members.value", "36")
    r = scim.post("/Groups", json=group_payload(members=[{"value": stored["id"], "display": "d" * 513}]))
    scim_error(r, 400, "invalidValue", "members.display", "512")
    group = scim.post("/Groups", json=group_payload("kept")).json()
    r = scim.patch(f"/Groups/{group['id']}", json={"schemas": [PATCH_OP], "Operations": [
        {"op": "add", "path": "members", "value": [{"value": "m" * 37}]}]})
    scim_error(r, 400, "invalidValue", "members.value")
    assert scim.get(f"/Groups/{group['id']}").json() == group
    unchanged(scim, stored, groups=1)


@pytest.mark.parametrize("where", ["userName", "title", "emails", "extension", "key"])
def test_nul_in_any_string_is_invalid_value(scim: ScimClient, stored: dict[str, Any], where: str) -> None:
    fields: dict[str, Any] = {
        "userName": {"userName": "a\u0000b"},
        "title": {"title": "boss\u0000"},
        "emails": {"emails": [{"value": "a\u0000@contoso.com", "type": "work"}]},
        "extension": {"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "\u0000"}},
        "key": {"title\u0000": "x"},
    }[where]
    payload = {**user_payload(), **fields}
    scim_error(scim.post("/Users", json=payload), 400, "invalidValue", "NUL")
    r = scim.patch(f"/Users/{stored['id']}", json={"schemas": [PATCH_OP], "Operations": [
        {"op": "replace", "value": fields}]})
    scim_error(r, 400, "invalidValue", "NUL")
    scim_error(scim.post("/Bulk", json={"schemas": [BULK], "Operations": [
        {"method": "POST", "path": "/Users", "bulkId": "a", "data": payload}]}), 400, "invalidValue", "NUL")
    unchanged(scim, stored)


def test_nul_in_filters_and_ids_is_a_4xx(scim: ScimClient, stored: dict[str, Any]) -> None:
    scim_error(scim.get("/Users", params={"filter": 'userName eq "a\u0000"'}), 400, "invalidFilter", "NUL")
    scim_error(scim.get("/Users", params={"filter": 'title co "\u0000"'}), 400, "invalidFilter", "NUL")
    scim_error(scim.post("/Groups", json=group_payload("g\u0000")), 400, "invalidValue", "NUL")
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        r = scim.request(method, "/Users/a%00b", json=user_payload() if method == "PUT" else None)
        scim_error(r, 404, None)
    unchanged(scim, stored)


# -- admin API ---------------------------------------------------------------------------------------------

@pytest.fixture()
def admin(app_client: TestClient, backend: Services, tenant: str) -> tuple[TestClient, dict[str, str], str]:
    token = admin_secret(backend, tenant, "bad-input")
    return app_client, {"Authorization": f"Bearer {token}"}, f"/api/v1/tenants/{tenant}"


@pytest.mark.parametrize(("path", "params"), [
    ("/users", {"start": -1}), ("/users", {"start": 0}), ("/users", {"count": -1}), ("/users", {"start": HUGE}),
    ("/users", {"count": HUGE}), ("/groups", {"start": -5}), ("/groups", {"count": HUGE}),
    ("/audit", {"limit": -1}), ("/audit", {"offset": -1}), ("/audit", {"offset": HUGE}), ("/audit", {"limit": HUGE}),
    ("/mailboxes/nobody/items", {"start": -1}), ("/mailboxes/nobody/items", {"count": -1}),
    ("/mailboxes/nobody/items", {"start": HUGE}),
    ("/provisioning/apps/none/logs", {"limit": -1}), ("/provisioning/apps/none/logs", {"limit": HUGE}),
])
def test_admin_paging_out_of_range_is_422_with_error_body(admin: tuple[TestClient, dict[str, str], str],
                                                          path: str, params: dict[str, int]) -> None:
    client, headers, base = admin
    body = admin_error(client.get(base + path, headers=headers, params=params), 422)
    assert body["error"] == "invalid" and next(iter(params)) in body["message"]


@pytest.mark.parametrize("item_id", [HUGE, 2**63, 2**40, 2**31, 0, -1])
def test_item_id_outside_the_column_range_is_422(admin: tuple[TestClient, dict[str, str], str],
                                                 item_id: int) -> None:
    client, headers, base = admin
    body = admin_error(client.get(f"{base}/items/{item_id}/raw", headers=headers), 422)
    assert "item_id" in body["message"]


def test_item_id_at_the_column_limit_is_404(admin: tuple[TestClient, dict[str, str], str]) -> None:
    client, headers, base = admin
    admin_error(client.get(f"{base}/items/{2**31 - 1}/raw", headers=headers), 404)


@pytest.mark.parametrize(("path", "body"), [
    ("/items/delete", {"item_ids": [HUGE]}),
    ("/items/delete", {"item_ids": [2**31]}),
    ("/holds", {"name": "h", "duration_days": HUGE}),
    ("/holds", {"name": "h", "duration_days": -1}),
    ("/retention-policies", {"name": "p", "retain_days": HUGE}),
    ("/search", {"query": "x", "start": -1}),
    ("/search", {"query": "x", "count": HUGE}),
])
def test_admin_body_integers_out_of_range_are_422(admin: tuple[TestClient, dict[str, str], str], backend: Services,
                                                  tenant: str, path: str, body: dict[str, Any]) -> None:
    client, headers, base = admin
    before = backend.ledger.entries(tenant)
    admin_error(client.post(base + path, headers=headers, json=body), 422)
    assert backend.ledger.entries(tenant) == before


def test_admin_validation_errors_use_the_error_body(admin: tuple[TestClient, dict[str, str], str]) -> None:
    client, headers, base = admin
    body = admin_error(client.post(base + "/domains", headers=headers, json={"nam": "x"}), 422)
    assert body["error"] == "invalid" and "name" in body["message"]
    body = admin_error(client.post(base + "/domains", headers=headers, content=_nested(500)), 422)
    assert "detail" not in body


def test_value_the_database_refuses_is_400_not_500(admin: tuple[TestClient, dict[str, str], str],
                                                    backend: Services, tenant: str) -> None:
    # The safety net: a role group name longer than its column (256) reaches SQL. PostgreSQL refuses it —
    # a DataError, answered 400 with the error body; SQLite does not check lengths and stores it.
    client, headers, base = admin
    before = backend.directory.list_role_groups(tenant)
    r = client.post(base + "/role-groups", headers=headers, json={"name": "r" * 300})
    if backend.db.is_sqlite:
        assert r.status_code == 201, r.text
    else:
        assert admin_error(r, 400)["error"] == "invalid"
        assert backend.directory.list_role_groups(tenant) == before
    r = client.post(base + "/role-groups", headers=headers, json={"name": "nul\u0000"})
    if backend.db.is_sqlite:
        assert r.status_code == 201, r.text
    else:
        admin_error(r, 400)

