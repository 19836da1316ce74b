"""The SCIM request log (issue #10 item 15, seed 003's "provisioning report in the app"): every inbound SCIM
write is one row — who (token id and name, address, User-Agent), what (method, resource, names, a PATCH's
operations), the result (status, scimType, detail) and how long it took — listed over the admin API and the
CLI, tenant by tenant, and kept ``TENANTRY_SCIM_LOG_DAYS`` days. On both backends.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tenantry.app import Services, build_services, create_app
from tenantry.core.clock import utcnow
from tenantry.core.settings import Settings
from tenantry.directory.scim_api import _GroupCommit
from tenantry.directory.scim_log import ScimLog, ScimLogEntry
from tenantry.jobs import InlineJobs, Scheduler
from tests.conftest import ScimClient, admin_secret, group_payload, periodic_work_due, user_payload
from tests.test_cli import cli, run  # noqa: F401 - the CLI fixture

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"


class Side:
    """One tenant with a named SCIM token (as an IdP holds it) and an admin token (to read the log)."""

    def __init__(self, client: TestClient, backend: Services, token_name: str = "Entra ID provisioning") -> None:
        self.tenant = f"l-{uuid.uuid4().hex[:10]}"
        backend.directory.create_tenant(self.tenant, "Log tenant")
        issued = backend.directory.issue_token(self.tenant, "scim", token_name)
        self.token_id, self.token_secret = issued.id, issued.secret
        self.scim = ScimClient(client, self.tenant, issued.secret)
        self.admin = {"Authorization": f"Bearer {admin_secret(backend, self.tenant, 'a')}"}
        self.client = client

    def log(self, **query: Any) -> list[dict[str, Any]]:
        r = self.client.get(f"/api/v1/tenants/{self.tenant}/scim-log", params=query, headers=self.admin)
        assert r.status_code == 200, r.text
        rows: list[dict[str, Any]] = r.json()
        return rows


@pytest.fixture()
def side(app_client: TestClient, backend: Services) -> Side:
    return Side(app_client, backend)


def test_created_user_logs_one_success_row_with_the_token_name(side: Side) -> None:
    created = side.scim.post("/Users", json=user_payload("kim.minji@contoso.com", externalId="e-1001"),
                             headers={"User-Agent": "Azure AD Provisioning"})
    assert created.status_code == 201, created.text
    rows = side.log()
    assert len(rows) == 1
    row = rows[0]
    assert row["method"] == "POST" and row["resource_type"] == "User"
    assert row["resource_id"] == created.json()["id"]
    assert row["user_name"] == "kim.minji@contoso.com" and row["external_id"] == "e-1001"
    assert row["status"] == 201 and row["outcome"] == "success" and row["scim_type"] is None
    assert row["token_id"] == side.token_id and row["token_name"] == "Entra ID provisioning"
    assert row["user_agent"] == "Azure AD Provisioning" and row["client_ip"]
    assert isinstance(row["duration_ms"], int) and row["duration_ms"] >= 0
    assert row["at"] and row["request_id"]
    # The credential is named, never shown.
    assert side.token_secret not in json.dumps(rows)


def test_duplicate_user_logs_a_failure_row_with_scim_type_uniqueness(side: Side) -> None:
    assert side.scim.post("/Users", json=user_payload("dup@contoso.com")).status_code == 201
    second = side.scim.post("/Users", json=user_payload("DUP@contoso.com"))
    assert second.status_code == 409
    newest = side.log()[0]
    assert newest["status"] == 409 and newest["outcome"] == "failure"
    assert newest["scim_type"] == "uniqueness" and "dup@contoso.com" in newest["detail"].lower()
    assert newest["user_name"] == "DUP@contoso.com" and newest["resource_id"] is None


def test_patch_is_summarised_by_operation_and_path_without_values(side: Side) -> None:
    users = [side.scim.post("/Users", json=user_payload()).json()["id"] for _ in range(4)]
    group = side.scim.post("/Groups", json=group_payload("Sales", members=[{"value": users[3]}])).json()["id"]
    r = side.scim.patch(f"/Groups/{group}", json={"schemas": [PATCH_OP], "Operations": [
        {"op": "Replace", "path": "displayName", "value": "Sales EMEA"},
        {"op": "Add", "path": "members", "value": [{"value": u} for u in users[:3]]},
        {"op": "Remove", "path": f'members[value eq "{users[3]}"]'},
    ]})
    assert r.status_code == 200, r.text
    row = side.log(method="PATCH")[0]
    assert row["operation"] == f'replace displayName, add members(3), remove members[value eq "{users[3]}"]'
    assert row["resource_id"] == group and row["display_name"] == "Sales EMEA" and row["status"] == 200

    user = users[0]
    r = side.scim.patch(f"/Users/{user}", json={"schemas": [PATCH_OP], "Operations": [
        {"op": "replace", "path": "active", "value": "False"},
        {"op": "replace", "value": {"password": "Hunter2-secret!", "name.givenName": "Minji",
                                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter": "C1"}},
    ]})
    assert r.status_code == 200, r.text
    row = side.log(resource_id=user)[0]
    assert row["operation"] == "replace active, replace (password, name.givenName, enterprise:costCenter)"
    assert "Hunter2" not in json.dumps(row) and "C1" not in row["operation"]


def test_reads_are_not_recorded_by_default(side: Side) -> None:
    uid = side.scim.post("/Users", json=user_payload()).json()["id"]
    side.scim.get("/Users", params={"filter": 'userName eq "nobody@contoso.com"'})
    side.scim.get(f"/Users/{uid}")
    side.scim.post("/Users/.search", json={"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]})
    assert [r["method"] for r in side.log()] == ["POST"]


def test_reads_are_recorded_when_the_setting_asks(backend: Services) -> None:
    settings = backend.settings.model_copy(update={"scim_log_reads": True})
    with TestClient(create_app(settings, backend)) as client:
        side = Side(client, backend)
        side.scim.get("/Users", params={"filter": 'userName eq "nobody@contoso.com"'})
        row = side.log()[0]
    assert row["method"] == "GET" and row["resource_type"] == "User" and row["status"] == 200
    assert row["operation"] == 'filter userName eq "nobody@contoso.com"'


def test_delete_logs_the_deleted_users_name(side: Side) -> None:
    uid = side.scim.post("/Users", json=user_payload("leaver@contoso.com")).json()["id"]
    assert side.scim.delete(f"/Users/{uid}").status_code == 204
    row = side.log(method="DELETE")[0]
    assert row["resource_id"] == uid and row["user_name"] == "leaver@contoso.com" and row["status"] == 204


def test_a_body_that_is_not_json_is_recorded_as_invalid_syntax(side: Side) -> None:
    r = side.scim.request("POST", "/Users", content=b"{not json")
    assert r.status_code == 400
    row = side.log()[0]
    assert row["status"] == 400 and row["scim_type"] == "invalidSyntax" and row["resource_type"] == "User"


def test_a_write_to_an_unknown_id_is_recorded_as_not_found(side: Side) -> None:
    missing = str(uuid.uuid4())
    r = side.scim.patch(f"/Users/{missing}", json={"schemas": [PATCH_OP], "Operations": [
        {"op": "replace", "path": "active", "value": False}]})
    assert r.status_code == 404
    row = side.log(resource_id=missing)[0]
    assert row["status"] == 404 and row["outcome"] == "failure" and row["operation"] == "replace active"


def test_a_server_error_is_recorded_as_500(backend: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("disk on fire")

    with TestClient(create_app(backend.settings, backend), raise_server_exceptions=False) as client:
        side = Side(client, backend)
        monkeypatch.setattr(backend.scim, "create", broken)
        assert side.scim.post("/Users", json=user_payload("boom@contoso.com")).status_code == 500
        monkeypatch.undo()
        row = side.log()[0]
    assert row["status"] == 500 and row["outcome"] == "failure" and row["user_name"] == "boom@contoso.com"
    assert "RuntimeError" in row["detail"] and "disk on fire" not in row["detail"]


def test_bulk_logs_one_row_per_operation_sharing_the_request_id(side: Side) -> None:
    missing = str(uuid.uuid4())
    r = side.scim.post("/Bulk", json={"schemas": [BULK], "Operations": [
        {"method": "POST", "path": "/Users", "bulkId": "u1", "data": user_payload("bulk@contoso.com")},
        {"method": "PATCH", "path": f"/Users/{missing}", "data": {"schemas": [PATCH_OP], "Operations": [
            {"op": "replace", "path": "active", "value": False}]}},
    ]})
    assert r.status_code == 200, r.text
    rows = sorted(side.log(), key=lambda row: row["bulk_index"])
    assert [(x["method"], x["status"], x["bulk_index"]) for x in rows] == [("POST", 201, 1), ("PATCH", 404, 2)]
    assert rows[0]["user_name"] == "bulk@contoso.com" and rows[1]["resource_id"] == missing
    assert rows[0]["request_id"] == rows[1]["request_id"]


def test_a_bulk_of_no_operations_is_answered_at_once_and_leaves_no_row(side: Side) -> None:
    """No operation ran, so there is nothing to log; the answer must not wait for a log write that never comes
    (the fuzz found this as a read timeout)."""
    r = side.scim.post("/Bulk", json={"schemas": [BULK], "Operations": []})
    assert r.status_code == 200, r.text
    assert r.json()["Operations"] == []
    assert side.log() == []


def test_a_bulk_refused_as_a_whole_is_one_failure_row(side: Side) -> None:
    r = side.scim.post("/Bulk", json={"schemas": [BULK], "Operations": "no"})
    assert r.status_code == 400
    rows = side.log()
    assert len(rows) == 1 and rows[0]["resource_type"] == "Bulk" and rows[0]["scim_type"] == "invalidSyntax"


def test_refused_credentials_are_not_recorded_but_logged(side: Side, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="tenantry.scim"):
        r = side.client.post(side.scim.base + "/Users", json=user_payload(),
                             headers={"Authorization": "Bearer not-a-token-of-anyone"})
    assert r.status_code == 401
    assert side.log() == []
    assert any(side.tenant in rec.getMessage() and "401" in rec.getMessage() for rec in caplog.records)


def test_another_tenants_admin_cannot_see_the_log(app_client: TestClient, backend: Services) -> None:
    a, b = Side(app_client, backend), Side(app_client, backend)
    a.scim.post("/Users", json=user_payload("a-only@contoso.com"))
    across = app_client.get(f"/api/v1/tenants/{a.tenant}/scim-log", headers=b.admin)
    assert across.status_code == 403
    assert b.log() == [] and "a-only" not in json.dumps(b.log(token=a.token_id))


def test_filters_failed_method_token_and_time_with_newest_first_paging(app_client: TestClient,
                                                                      backend: Services) -> None:
    side = Side(app_client, backend)
    other = backend.directory.issue_token(side.tenant, "scim", "Okta")
    okta = ScimClient(app_client, side.tenant, other.secret)
    uid = side.scim.post("/Users", json=user_payload("f@contoso.com")).json()["id"]
    side.scim.post("/Users", json=user_payload("f@contoso.com"))                  # 409
    okta.put(f"/Users/{uid}", json=user_payload("f@contoso.com", displayName="F"))  # 200
    side.scim.delete(f"/Users/{uuid.uuid4()}")                                    # 404

    failed = side.log(outcome="failure")
    assert [(r["method"], r["status"]) for r in failed] == [("DELETE", 404), ("POST", 409)]
    assert [r["status"] for r in side.log(outcome="success")] == [200, 201]
    assert [r["method"] for r in side.log(token="Okta")] == ["PUT"]
    assert [r["method"] for r in side.log(token=other.id)] == ["PUT"]
    assert [r["status"] for r in side.log(status=409)] == [409]
    assert [r["method"] for r in side.log(resource_type="User", method="put")] == ["PUT"]
    assert {r["resource_id"] for r in side.log(resource_id=uid)} == {uid}
    assert [r["user_name"] for r in side.log(name="f@contoso.com", limit=1)] == ["f@contoso.com"]
    everything = side.log()
    assert [r["method"] for r in everything] == ["DELETE", "PUT", "POST", "POST"]   # newest first
    assert side.log(offset=1, limit=2) == everything[1:3]
    now = utcnow()
    assert side.log(since=(now - timedelta(minutes=5)).isoformat()) == everything
    assert side.log(until=(now - timedelta(minutes=5)).isoformat()) == []


@pytest.mark.parametrize(("query", "status"), [
    ({"outcome": "maybe"}, 400), ({"method": "FETCH"}, 400), ({"since": "yesterday"}, 422),
    ({"offset": "-1"}, 422), ({"limit": str(2**40)}, 422), ({"status": "1000"}, 422),
    ({"resource_id": "x" * 1000}, 422),
])
def test_bad_filters_are_refused_with_a_message(side: Side, query: dict[str, str], status: int) -> None:
    r = side.client.get(f"/api/v1/tenants/{side.tenant}/scim-log", params=query, headers=side.admin)
    assert r.status_code == status, r.text
    assert r.json()["message"]


def _entry(tenant: str, user_name: str, days_ago: float) -> ScimLogEntry:
    return ScimLogEntry(tenant_id=tenant, at=utcnow() - timedelta(days=days_ago), request_id=str(uuid.uuid4()),
                        method="POST", resource_type="User", user_name=user_name, status=201, duration_ms=1)


def test_purge_removes_entries_older_than_the_kept_days_and_keeps_younger(backend: Services, tenant: str) -> None:
    days = backend.settings.scim_log_days
    backend.scim_log.record([_entry(tenant, "old@contoso.com", days + 1), _entry(tenant, "young@contoso.com",
                                                                                 days - 1)], purge=False)
    assert {r.user_name for r in backend.scim_log.entries(tenant)} == {"old@contoso.com", "young@contoso.com"}
    assert backend.scim_log.purge(tenant) == 1
    assert [r.user_name for r in backend.scim_log.entries(tenant)] == ["young@contoso.com"]
    assert backend.scim_log.purge(tenant) == 0   # idempotent


def test_a_tenants_first_write_purges_its_expired_entries(side: Side, backend: Services) -> None:
    backend.scim_log.record([_entry(side.tenant, "old@contoso.com", backend.settings.scim_log_days + 1)],
                            purge=False)
    side.scim.post("/Users", json=user_payload("new@contoso.com"))
    assert [r["user_name"] for r in side.log()] == ["new@contoso.com"]


def test_the_scheduler_sweeps_expired_entries_of_every_tenant(backend: Services, tenant: str) -> None:
    backend.scim_log.record([_entry(tenant, "old@contoso.com", backend.settings.scim_log_days + 1),
                             _entry(tenant, "young@contoso.com", 1)], purge=False)
    periodic_work_due(backend)
    jobs = InlineJobs(backend)
    submitted = Scheduler(backend, jobs, interval=1).tick()
    assert any(jobs.results[j].get("kind") == "scim_log.purge" for j in submitted)
    assert [r.user_name for r in backend.scim_log.entries(tenant)] == ["young@contoso.com"]


def test_logging_failure_does_not_fail_the_write(side: Side, backend: Services, monkeypatch: pytest.MonkeyPatch,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("the log table is gone")

    monkeypatch.setattr(backend.scim_log, "_write", broken)
    with caplog.at_level(logging.ERROR, logger="tenantry.directory.scim_log"):
        r = side.scim.post("/Users", json=user_payload("still@contoso.com"))
    assert r.status_code == 201, r.text
    assert side.scim.get(f"/Users/{r.json()['id']}").status_code == 200
    assert any("SCIM request log" in rec.getMessage() for rec in caplog.records)
    monkeypatch.undo()
    assert side.log() == []


@pytest.fixture()
def cli_services(cli: CliRunner) -> Iterator[Services]:  # noqa: F811 - the fixture imported above
    services = build_services(Settings())
    services.directory.ensure_tenant("default")
    yield services
    services.db.dispose()


def test_cli_scim_log_lists_failed_writes(cli: CliRunner, cli_services: Services,  # noqa: F811
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # one entry per line
    token = cli_services.directory.issue_token("default", "scim", "Entra ID").secret
    with TestClient(create_app(cli_services.settings, cli_services)) as client:
        scim = ScimClient(client, "default", token)
        scim.base = "/scim/v2"
        scim.post("/Users", json=user_payload("cli@contoso.com"))
        scim.post("/Users", json=user_payload("cli@contoso.com"))
    out = run(cli, "scim", "log", "--failed", "--json")
    rows = json.loads(out)
    assert [(r["status"], r["scim_type"], r["token_name"]) for r in rows] == [(409, "uniqueness", "Entra ID")]
    table = run(cli, "scim", "log", "--since", "1h")
    assert "cli@contoso.com" in table and "uniqueness" in table and "Entra ID" in table
    assert "--since" in run(cli, "scim", "log", "--since", "last week", ok=False)


def test_rows_of_writes_answered_during_a_log_write_go_together_in_the_next_one(backend: Services,
                                                                                   tenant: str) -> None:
    """Group commit: the first write's row is stored at once; rows arriving while it is being stored wait and
    are stored together, in one transaction; every row arrives and every waiter is released."""
    first_started, release = threading.Event(), threading.Event()
    batches: list[int] = []

    class HeldLog(ScimLog):
        def can_record_now(self, entries: Any) -> bool:
            return False   # every batch to a thread, as on PostgreSQL or with the write lock taken

        def record(self, entries: Any, *, purge: bool = True) -> None:
            batches.append(len(entries))
            if len(batches) == 1:
                first_started.set()
                release.wait(30)
            super().record(entries, purge=purge)

    group = _GroupCommit(HeldLog(backend.db))
    names = [f"group-commit-{i}@contoso.com" for i in range(5)]

    async def run() -> None:
        first = asyncio.create_task(group.add([_entry(tenant, names[0], 0)]))
        while not first_started.is_set():
            await asyncio.sleep(0.001)
        rest = [asyncio.create_task(group.add([_entry(tenant, name, 0)])) for name in names[1:]]
        await asyncio.sleep(0)
        release.set()
        await asyncio.gather(first, *rest)

    asyncio.run(run())
    assert batches == [1, 4]
    stored = {e.user_name for e in backend.scim_log.entries(tenant, limit=100)}
    assert set(names) <= stored


def test_a_request_with_no_rows_arriving_during_a_log_write_is_released_too(backend: Services, tenant: str) -> None:
    """Every waiter of the group commit is answered, also one whose request left no rows while a batch was
    being written."""
    first_started, release = threading.Event(), threading.Event()

    class HeldLog(ScimLog):
        def can_record_now(self, entries: Any) -> bool:
            return False

        def record(self, entries: Any, *, purge: bool = True) -> None:
            first_started.set()
            release.wait(30)
            super().record(entries, purge=purge)

    group = _GroupCommit(HeldLog(backend.db))

    async def run() -> None:
        first = asyncio.create_task(group.add([_entry(tenant, "held@contoso.com", 0)]))
        while not first_started.is_set():
            await asyncio.sleep(0.001)
        empty = asyncio.create_task(group.add([]))
        await asyncio.sleep(0)
        release.set()
        await asyncio.wait_for(asyncio.gather(first, empty), timeout=30)

    asyncio.run(run())
    assert "held@contoso.com" in {e.user_name for e in backend.scim_log.entries(tenant, limit=100)}


def test_log_rows_wait_on_a_thread_while_another_write_holds_the_lock_and_all_arrive(backend: Services,
                                                                                    tenant: str) -> None:
    """On SQLite a few rows are written on the event loop when the write lock is free; while another write holds
    it they go to a thread, which waits for it. Either way every row is stored and every waiter released."""
    scim_log = ScimLog(backend.db)
    scim_log.purge(tenant)   # no purge due: the rows alone
    group = _GroupCommit(scim_log)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with backend.db.writing():
            holding.set()
            release.wait(30)

    async def run() -> bool:
        await group.add([_entry(tenant, "free@contoso.com", 0)])
        holder = threading.Thread(target=hold)
        holder.start()
        assert holding.wait(10)
        waiting = asyncio.create_task(group.add([_entry(tenant, "taken@contoso.com", 0)]))
        await asyncio.sleep(0.2)
        still_waiting = not waiting.done()   # on a thread, waiting for the lock (the loop runs on)
        release.set()
        await asyncio.wait_for(waiting, timeout=30)
        holder.join()
        return still_waiting

    still_waiting = asyncio.run(run())
    stored = {e.user_name for e in scim_log.entries(tenant, limit=100)}
    assert {"free@contoso.com", "taken@contoso.com"} <= stored
    assert still_waiting == backend.db.is_sqlite   # PostgreSQL has no process-wide write lock to wait for
