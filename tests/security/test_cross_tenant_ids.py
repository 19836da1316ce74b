"""Issue #9 defect 1 (services): ids in a request are looked up inside the caller's tenant, on both backends.

Tenant B's admin names tenant A's users, groups, cases and items in bodies and paths of B's own routes. Each
is refused with 404 ``not_found`` (the same answer as for an id that exists nowhere), and nothing is stored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tenantry.app import Services
from tenantry.archive.service import WHATSAPP_FOLDER, Delivery
from tests.conftest import group_payload, user_payload
from tests.security.conftest import Side

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def _a_world(backend: Services, a: Side) -> dict[str, str]:
    user = backend.scim.create(a.tenant, "User", user_payload("carol@a.example", displayName="Carol A"))
    group = backend.scim.create(a.tenant, "Group", group_payload("A Legal", members=[{"value": user["id"]}]))
    backend.archive.deliver(a.tenant, [Delivery(user["id"], "carol@a.example", WHATSAPP_FOLDER,
                                                b"Message-ID: <a1@t>\r\nSubject: a secret\r\n\r\nmerger\r\n",
                                                "a1@t", "chat", "test", NOW)])
    case = backend.ediscovery.create_case(a.tenant, "A Matter", "counsel")
    item = backend.archive.items(a.tenant, user["id"])[0].id
    return {"user": user["id"], "group": group["id"], "case": case.id, "item": str(item)}


def _post(side: Side, path: str, body: dict[str, Any]) -> Any:
    return side.scim.client.post(f"/api/v1/tenants/{side.tenant}{path}", headers=side.admin, json=body)


def _get(side: Side, path: str) -> Any:
    return side.scim.client.get(f"/api/v1/tenants/{side.tenant}{path}", headers=side.admin)


def _refused(r: Any) -> None:
    assert r.status_code == 404, r.text
    assert r.json()["error"] == "not_found" and "carol" not in r.text.lower()


def test_hold_on_another_tenants_user_or_case_is_refused(backend: Services, side_a: Side, side_b: Side) -> None:
    a = _a_world(backend, side_a)
    _refused(_post(side_b, "/holds", {"name": "h", "user_id": a["user"]}))
    _refused(_post(side_b, "/holds", {"name": "h", "case_id": a["case"]}))
    assert _get(side_b, "/holds?all=true").json() == []
    # B's own directory user, without a mailbox yet, can be held: the rule is "of this tenant", not "has mail".
    b_user = backend.scim.create(side_b.tenant, "User", user_payload())["id"]
    assert _post(side_b, "/holds", {"name": "h", "user_id": b_user}).status_code == 201


def test_retention_policy_naming_another_tenants_user_is_refused(backend: Services, side_a: Side,
                                                                side_b: Side) -> None:
    a = _a_world(backend, side_a)
    _refused(_post(side_b, "/retention-policies", {"name": "p", "delete_after_days": 1,
                                                    "users": [a["user"]]}))
    assert _get(side_b, "/retention-policies").json() == []


def test_custodians_and_content_search_of_another_tenants_user_are_refused(backend: Services, side_a: Side,
                                                                          side_b: Side) -> None:
    a = _a_world(backend, side_a)
    case = _post(side_b, "/cases", {"name": "B Matter"}).json()
    _refused(_post(side_b, f"/cases/{case['id']}/custodians", {"users": [a["user"]]}))
    assert backend.ediscovery.custodians(side_b.tenant, case["id"]) == []
    _refused(_post(side_b, f"/cases/{a['case']}/custodians", {"users": [a["user"]]}))
    assert backend.ediscovery.custodians(side_a.tenant, a["case"]) == []
    _refused(_post(side_b, "/search", {"query": "merger", "users": [a["user"]]}))


def test_provisioning_assignments_and_on_demand_of_another_tenants_ids_are_refused(
        backend: Services, side_a: Side, side_b: Side) -> None:
    a = _a_world(backend, side_a)
    app = backend.provisioning.create_app(side_b.tenant, name="B app", tenant_url="https://b.example/scim/v2",
                                          token="t" * 20)
    base = f"/provisioning/apps/{app.id}"
    for kind, principal in (("User", a["user"]), ("Group", a["group"])):
        _refused(_post(side_b, f"{base}/assignments", {"principal_type": kind, "principal_id": principal}))
        r = side_b.scim.client.delete(f"/api/v1/tenants/{side_b.tenant}{base}/assignments/{kind}/{principal}",
                                      headers=side_b.admin)
        assert r.status_code == 404, r.text
    assert backend.provisioning.scope(side_b.tenant, app.id).in_scope == []
    assert backend.provisioning.scope(side_b.tenant, app.id).skipped == {}
    _refused(_post(side_b, f"{base}/provision-on-demand", {"user_id": a["user"]}))


def test_directory_and_mailbox_routes_refuse_another_tenants_ids(backend: Services, side_a: Side,
                                                                side_b: Side) -> None:
    a = _a_world(backend, side_a)
    _refused(_post(side_b, f"/users/{a['user']}/licences", {"sku": "E5"}))
    _refused(_get(side_b, f"/users/{a['user']}/licences"))
    _refused(_get(side_b, f"/users/{a['user']}"))
    _refused(_post(side_b, "/role-groups/Organization Management/members", {"user_id": a["user"]}))
    _refused(_get(side_b, f"/mailboxes/{a['user']}/items"))
    _refused(_get(side_b, f"/mailboxes/{a['user']}/export.mbox"))
    _refused(_get(side_b, f"/items/{a['item']}/raw"))
    _refused(_post(side_b, "/items/delete", {"item_ids": [int(a["item"])]}))
    assert backend.directory.licences_of(side_a.tenant, a["user"]) == []
    assert backend.archive.count(side_a.tenant, a["user"]) == 1
    assert all(a["user"] not in g.members for g in backend.directory.list_role_groups(side_b.tenant))
