"""Groups over SCIM: members as rows, displayName unique, the GroupTalk description round-trips."""

from __future__ import annotations

from sqlalchemy import event, func, select

from tenantry.directory.models import GroupMember
from tests.conftest import ScimClient, group_payload, user_payload

GROUPTALK = "urn:ietf:params:scim:schemas:extension:grouptalk:2.0:Group"


def test_group_with_members_and_grouptalk_description_round_trips(scim: ScimClient) -> None:
    users = [scim.post("/Users", json=user_payload()).json() for _ in range(3)]
    sent = group_payload("Dispatch", externalId="g-7",
                         members=[{"value": u["id"], "display": f"U{i}"} for i, u in enumerate(users)])
    sent["schemas"].append(GROUPTALK)
    sent[GROUPTALK] = {"description": "Radio dispatch team"}
    r = scim.post("/Groups", json=sent)
    assert r.status_code == 201, r.text
    got = scim.get(f"/Groups/{r.json()['id']}").json()
    assert got["displayName"] == "Dispatch" and got["externalId"] == "g-7"
    assert got[GROUPTALK] == {"description": "Radio dispatch team"}
    assert sorted((m["value"], m["display"], m["type"]) for m in got["members"]) == sorted(
        (u["id"], f"U{i}", "User") for i, u in enumerate(users))
    assert all(m["$ref"].endswith(f"/Users/{m['value']}") for m in got["members"])


def test_group_display_name_is_unique_case_insensitively(scim: ScimClient) -> None:
    assert scim.post("/Groups", json=group_payload("Sales")).status_code == 201
    r = scim.post("/Groups", json=group_payload("SALES"))
    assert r.status_code == 409 and r.json()["scimType"] == "uniqueness"


def test_group_filter_on_display_name_and_member(scim: ScimClient) -> None:
    user = scim.post("/Users", json=user_payload()).json()
    group = scim.post("/Groups", json=group_payload("Night shift", members=[{"value": user["id"]}])).json()
    scim.post("/Groups", json=group_payload("Day shift"))
    for flt in ('displayName eq "night SHIFT"', f'members.value eq "{user["id"]}"',
                f'members[value eq "{user["id"]}"]', 'displayName sw "Night"'):
        r = scim.get("/Groups", params={"filter": flt})
        assert [g["id"] for g in r.json()["Resources"]] == [group["id"]], flt


def test_excluded_members_leaves_members_out_of_get_and_list(scim: ScimClient) -> None:
    user = scim.post("/Users", json=user_payload()).json()
    group = scim.post("/Groups", json=group_payload(members=[{"value": user["id"]}])).json()
    one = scim.get(f"/Groups/{group['id']}", params={"excludedAttributes": "members"}).json()
    assert "members" not in one and one["displayName"] == group["displayName"]
    listed = scim.get("/Groups", params={"excludedAttributes": "members",
                                         "filter": f'displayName eq "{group["displayName"]}"'}).json()
    assert listed["totalResults"] == 1 and "members" not in listed["Resources"][0]


def test_member_of_unknown_id_is_kept_not_dropped(scim: ScimClient) -> None:
    # An IdP may send a membership before the member; losing it would be silent data loss.
    group = scim.post("/Groups", json=group_payload(members=[{"value": "not-yet-provisioned"}])).json()
    assert [m["value"] for m in scim.get(f"/Groups/{group['id']}").json()["members"]] == ["not-yet-provisioned"]


def test_deleting_a_user_removes_its_memberships(scim: ScimClient) -> None:
    user = scim.post("/Users", json=user_payload()).json()
    group = scim.post("/Groups", json=group_payload(members=[{"value": user["id"]}])).json()
    assert scim.delete(f"/Users/{user['id']}").status_code == 204
    assert "members" not in scim.get(f"/Groups/{group['id']}").json()


def test_put_on_group_replaces_members(scim: ScimClient) -> None:
    a, b = (scim.post("/Users", json=user_payload()).json() for _ in range(2))
    group = scim.post("/Groups", json=group_payload("G", members=[{"value": a["id"]}])).json()
    r = scim.put(f"/Groups/{group['id']}", json=group_payload("G2", members=[{"value": b["id"]}]))
    assert r.status_code == 200
    assert r.json()["displayName"] == "G2"
    assert [m["value"] for m in r.json()["members"]] == [b["id"]]


def test_member_change_on_a_large_group_is_a_few_indexed_statements(scim: ScimClient, backend) -> None:
    """Adding or removing one member of a 50,000-member group does not rewrite the member list."""
    group = scim.post("/Groups", json=group_payload("Everyone")).json()
    gid = group["id"]
    with backend.db.session() as session:
        session.execute(GroupMember.__table__.insert(), [
            {"group_id": gid, "member_id": f"m-{i:05d}", "member_type": "User", "tenant_id": scim.tenant}
            for i in range(50_000)
        ])
    newcomer = scim.post("/Users", json=user_payload()).json()
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        statements.append(statement)

    event.listen(backend.db.engine, "before_cursor_execute", record)
    try:
        add = scim.patch(f"/Groups/{gid}", json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": newcomer["id"]}]}]},
            params={"excludedAttributes": "members"})
        remove = scim.patch(f"/Groups/{gid}", json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "remove", "path": 'members[value eq "m-00042"]'}]},
            params={"excludedAttributes": "members"})
    finally:
        event.remove(backend.db.engine, "before_cursor_execute", record)
    assert add.status_code == 200 and remove.status_code == 200
    assert "members" not in add.json()
    # The SCIM request log's own row of each PATCH (written after the answer) is not the group's write.
    writes = [s for s in statements if s.lstrip().upper().startswith(("INSERT", "DELETE", "UPDATE"))
              and "scim_request_log" not in s]
    # One INSERT of the newcomer, one DELETE of the leaver, one version bump each: no rewrite.
    member_writes = [s for s in writes if "group_members" in s]
    assert len(member_writes) == 2, member_writes
    assert len(writes) <= 4, writes
    with backend.db.session() as session:
        count = session.scalar(select(func.count()).select_from(GroupMember).where(GroupMember.group_id == gid))
    assert count == 50_000
