"""Regressions found by the independent probe of issue #9 against a real server, kept here so they stay fixed.

Each test names the behaviour the probe broke; the rules are those of docs/security.md ("Bounded input",
"Tenant isolation") and the test brief: bad input is a 4xx with an error body, never a 500, and changes nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import SCIM_JSON, ScimClient, user_payload

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


def scim_400(r: Any) -> None:
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith(SCIM_JSON)
    body = r.json()
    assert body["schemas"] == [ERROR] and body["scimType"] == "invalidValue", body


# Strings str.isdigit() accepts after stripping signs but int() refuses (doubled signs, superscripts), and
# digits of other scripts: RFC 7644 §3.4.2.4 paging is an ASCII integer.
ODD_INTEGERS = ["+-5", "--1", "-+1", "²", "1²", "١٢"]


@pytest.mark.parametrize("value", ODD_INTEGERS)
@pytest.mark.parametrize("param", ["startIndex", "count"])
def test_scim_paging_that_looks_numeric_but_is_not_an_ascii_integer_is_400(scim: ScimClient, param: str,
                                                                            value: str) -> None:
    stored = scim.post("/Users", json=user_payload()).json()
    scim_400(scim.get("/Users", params={param: value}))
    scim_400(scim.post("/Users/.search", json={"schemas": [SEARCH], param: value}))
    assert scim.get(f"/Users/{stored['id']}").json() == stored


# -- outbound URLs: a value httpx or the resolver cannot use is refused when saved, and nothing is stored ----

UNUSABLE_URLS = [
    "http://192.0.2.1\t/scim",          # urlsplit drops the tab; httpx refuses it at every connection
    "http://192.0.2.1/scim\x00x",       # NUL
    "http://192.0.2.1/sc\x7fim",        # DEL
    "http://" + "a" * 64 + ".example.com/scim",    # a DNS label over 63 characters: the idna codec raises
    "http://" + "a" * 300 + "/scim",
]


@pytest.mark.parametrize("url", UNUSABLE_URLS)
def test_provisioning_app_url_that_cannot_be_used_is_400_and_no_app_is_stored(app_client: Any, side_b: Any,
                                                                           url: str) -> None:
    base = f"/api/v1/tenants/{side_b.tenant}/provisioning/apps"
    r = app_client.post(base, json={"name": "odd", "tenant_url": url, "token": "a-token-for-the-app"},
                        headers=side_b.admin)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid" and url not in r.json()["message"]
    assert app_client.get(base, headers=side_b.admin).json() == []


@pytest.mark.parametrize("url", UNUSABLE_URLS)
def test_provisioning_app_moved_to_a_url_that_cannot_be_used_is_400_and_unchanged(app_client: Any, side_b: Any,
                                                                               url: str) -> None:
    base = f"/api/v1/tenants/{side_b.tenant}/provisioning/apps"
    created = app_client.post(base, json={"name": "app", "tenant_url": "https://192.0.2.1/scim",
                                          "token": "a-token-for-the-app"}, headers=side_b.admin).json()
    r = app_client.patch(f"{base}/{created['id']}", json={"tenant_url": url, "token": "another-token-value"},
                         headers=side_b.admin)
    assert r.status_code == 400, r.text
    assert app_client.get(f"{base}/{created['id']}", headers=side_b.admin).json()["tenant_url"] == \
        "https://192.0.2.1/scim"


# -- what answers without a token: exactly the list of docs/security.md ------------------------------------


@pytest.mark.parametrize("path", ["/redoc", "/docs/oauth2-redirect"])
def test_pages_outside_the_documented_open_list_are_not_served(app_client: Any, path: str) -> None:
    """docs/security.md: only /healthz, the SCIM discovery documents, /api/openapi.json and /api/docs answer
    without a token. FastAPI's defaults also served ReDoc and Swagger's OAuth2 redirect page (no OAuth2 here)."""
    assert app_client.get(path).status_code == 404
    assert app_client.get("/api/docs").status_code == 200


# -- POST /items/delete: a list bounded before the database, each id counted once -------------------------


def test_item_delete_with_more_ids_than_a_statement_can_bind_is_4xx_on_both_backends(app_client: Any,
                                                                                    side_b: Any) -> None:
    """70,000 ids (past PostgreSQL's 65,535 bind parameters) were a 500 on PostgreSQL, a 404 on SQLite."""
    r = app_client.post(f"/api/v1/tenants/{side_b.tenant}/items/delete", headers=side_b.admin,
                        json={"item_ids": list(range(1, 70_001))})
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "invalid" and "item_ids" in r.json()["message"]


def test_item_delete_counts_an_id_sent_twice_once(app_client: Any, backend: Any, side_b: Any) -> None:
    from tests.archive.test_compliance import deliver

    item = deliver(backend, side_b.tenant, "u1", 1)
    backend.compliance.place_hold(side_b.tenant, name="keep", actor="admin", user_id="u1")
    r = app_client.post(f"/api/v1/tenants/{side_b.tenant}/items/delete", headers=side_b.admin,
                        json={"item_ids": [item] * 2000})
    assert r.status_code == 200, r.text
    assert r.json() == {"moved_to_purges": 1, "deleted": 0}
    entry = app_client.get(f"/api/v1/tenants/{side_b.tenant}/audit", headers=side_b.admin,
                           params={"action": "delete.to_purges"}).json()[0]
    assert entry["detail"]["items"] == [item]


# -- user lists of holds, custodians, policies and searches: looked up in chunks, never one huge statement ----


@pytest.mark.parametrize("route", ["search", "custodians", "retention-policies"])
def test_user_lists_longer_than_a_statement_can_bind_are_404_not_500(app_client: Any, side_b: Any,
                                                                     route: str) -> None:
    """70,000 unknown user ids were a 500 on PostgreSQL (65,535 bind parameters) and a 404 on SQLite."""
    import uuid

    base = f"/api/v1/tenants/{side_b.tenant}"
    users = [str(uuid.uuid4()) for _ in range(70_000)]
    if route == "search":
        r = app_client.post(f"{base}/search", headers=side_b.admin, json={"query": "x", "users": users})
    elif route == "custodians":
        case = app_client.post(f"{base}/cases", headers=side_b.admin, json={"name": "c"}).json()
        r = app_client.post(f"{base}/cases/{case['id']}/custodians", headers=side_b.admin,
                            json={"users": users})
    else:
        r = app_client.post(f"{base}/retention-policies", headers=side_b.admin,
                            json={"name": "p", "retain_days": 1, "users": users})
    assert r.status_code == 404, r.text
    assert r.json()["error"] == "not_found"
    assert app_client.get(f"{base}/retention-policies", headers=side_b.admin).json() == []


class _ManyHits:
    """The index's side of a search that finds more items than one SQL statement can bind (65,535 on
    PostgreSQL); filling a real index with 70,000 items would take minutes for the same statement."""

    def __init__(self, ids: set[int]) -> None:
        self.ids = ids

    def item_ids(self, tenant: str, node: Any, users: Any = None) -> set[int]:
        return set(self.ids)

    def count_by_user(self, tenant: str, node: Any, users: Any = None) -> dict[str, int]:
        return {}


def test_a_search_finding_more_items_than_a_statement_can_bind_leaves_out_purged_ones(
        backend: Any, tenant: str) -> None:
    from tenantry.app import parse_query
    from tenantry.archive.ediscovery import EDiscoveryService
    from tests.archive.test_compliance import deliver

    delivered = [deliver(backend, tenant, "u1", 1), deliver(backend, tenant, "u1", 2)]
    backend.compliance.place_hold(tenant, name="keep", actor="counsel", user_id="u1")
    assert backend.compliance.delete_items(tenant, [delivered[0]], "counsel").moved_to_purges == 1
    hits = set(range(10_000_000, 10_070_000)) | set(delivered)
    service = EDiscoveryService(backend.db, backend.archive, backend.compliance, _ManyHits(hits), parse_query)
    found = service._hits(tenant, parse_query("x"), None, include_purges=False)
    assert delivered[0] not in found and delivered[1] in found and len(found) == len(hits) - 1
