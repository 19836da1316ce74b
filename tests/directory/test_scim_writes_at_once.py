"""Where a SCIM write runs (issue #16): on SQLite a write of one user, and its request-log row, run on the event
loop when the write lock is free — a hop to a worker thread and back cost more CPU than the write's SQL — and on
a worker thread, which may wait, when the lock is taken; the event loop keeps answering meanwhile. Groups, Bulk
requests and every write on PostgreSQL always go to a thread.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from typing import Any

import httpx
import pytest

from tenantry.app import Services, create_app
from tenantry.directory import scim_api
from tenantry.directory.scim_repositories import INLINE_WRITE_MAX_BYTES
from tests.conftest import SCIM_JSON, ScimClient, group_payload, user_payload

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def replace(path: str, value: Any) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": path, "value": value}]}


@pytest.fixture()
def hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of what the SCIM routes and the request log hand to a worker thread."""
    handed: list[str] = []
    real = scim_api.run_in_threadpool

    async def counted(fn: Any, *args: Any, **kwargs: Any) -> Any:
        handed.append(getattr(fn, "__name__", repr(fn)))
        return await real(fn, *args, **kwargs)

    monkeypatch.setattr(scim_api, "run_in_threadpool", counted)
    return handed


def test_user_writes_and_their_log_rows_take_no_thread_hop_on_sqlite_when_the_lock_is_free(
        scim: ScimClient, backend: Services, hops: list[str]) -> None:
    created = scim.post("/Users", json=user_payload("inline.kim@contoso.com", title="Engineer"))
    assert created.status_code == 201, created.text
    uid = created.json()["id"]
    patched = scim.patch(f"/Users/{uid}", json=replace("title", "Lead"))
    assert patched.status_code == 200 and patched.json()["title"] == "Lead"
    put = scim.put(f"/Users/{uid}", json=user_payload("inline.kim@contoso.com", id=uid, title="Director"))
    assert put.status_code == 200 and put.json()["title"] == "Director"
    assert scim.delete(f"/Users/{uid}").status_code == 204
    assert scim.get(f"/Users/{uid}").status_code == 404
    methods = [r.method for r in backend.scim_log.entries(scim.tenant, limit=10)]
    assert sorted(methods) == ["DELETE", "PATCH", "POST", "PUT"]   # every write logged, whichever way
    if backend.db.is_sqlite:
        # Only the log row of the tenant's first write of the hour, which also purges its expired rows.
        assert hops == ["record"]
    else:   # PostgreSQL: each write and each log row is a round trip the event loop must not wait out
        assert hops.count("create") == 1 and hops.count("_patch") == 1 and hops.count("record") == 4


def test_group_writes_and_big_user_bodies_or_stored_users_go_to_a_worker_thread(
        scim: ScimClient, hops: list[str]) -> None:
    group = scim.post("/Groups", json=group_payload("Inline test group"))
    assert group.status_code == 201, group.text
    assert scim.patch(f"/Groups/{group.json()['id']}", json=replace("displayName", "Renamed")).status_code == 200
    big = user_payload("big.body@contoso.com", title="x" * (INLINE_WRITE_MAX_BYTES + 1))
    created = scim.post("/Users", json=big)
    assert created.status_code == 201, created.text
    # A small PATCH of that big user still validates and re-indexes what is stored: on a thread too.
    patched = scim.patch(f"/Users/{created.json()['id']}", json=replace("displayName", "Big"))
    assert patched.status_code == 200 and patched.json()["displayName"] == "Big"
    assert hops.count("create") == 2 and hops.count("_patch") == 2


def test_writes_to_a_big_stored_user_give_way_to_a_thread_and_are_stored_and_logged_once(
        scim: ScimClient, backend: Services, hops: list[str]) -> None:
    """The body is small, so each write starts on the event loop; it reads the stored user, finds it too big to
    validate and re-index there, rolls back and runs again on a thread: one change, one version, one log row."""
    created = scim.post("/Users", json=user_payload("big.stored@contoso.com", title="x" * (INLINE_WRITE_MAX_BYTES + 1)))
    assert created.status_code == 201, created.text
    uid, version = created.json()["id"], created.json()["meta"]["version"]
    assert version == 'W/"1"'
    hops.clear()
    patched = scim.patch(f"/Users/{uid}", json=replace("displayName", "Patched"), headers={"If-Match": version})
    assert patched.status_code == 200, patched.text
    assert patched.json()["displayName"] == "Patched"
    assert patched.json()["meta"]["version"] == 'W/"2"'   # one change: not applied on the loop and again
    emails = len(patched.json().get("emails", []))
    general = scim.patch(f"/Users/{uid}", json={"schemas": [PATCH_OP], "Operations": [
        {"op": "add", "path": "emails", "value": [{"value": "second@contoso.com", "type": "home"}]}]})
    assert general.status_code == 200, general.text
    assert len(general.json()["emails"]) == emails + 1 and general.json()["meta"]["version"] == 'W/"3"'
    again = scim.patch(f"/Users/{uid}", json=replace("displayName", "Stale"), headers={"If-Match": version})
    assert again.status_code == 412
    small = user_payload("big.stored@contoso.com", id=uid, title="Small again")
    assert scim.put(f"/Users/{uid}", json=small).status_code == 200
    assert scim.get(f"/Users/{uid}").json()["title"] == "Small again"
    assert scim.delete(f"/Users/{uid}").status_code == 204   # small again: on the event loop
    assert scim.get(f"/Users/{uid}").status_code == 404
    other = scim.post("/Users", json=user_payload("big.gone@contoso.com", title="y" * (INLINE_WRITE_MAX_BYTES + 1)))
    assert scim.delete(f"/Users/{other.json()['id']}").status_code == 204
    assert scim.get(f"/Users/{other.json()['id']}").status_code == 404
    if backend.db.is_sqlite:
        assert hops.count("_patch") == 3 and hops.count("replace") == 1 and hops.count("delete") == 1
    writes = sorted((r.method, r.status) for r in backend.scim_log.entries(scim.tenant, resource_id=uid))
    assert writes == [("DELETE", 204), ("PATCH", 200), ("PATCH", 200), ("PATCH", 412), ("POST", 201), ("PUT", 200)]


def test_a_user_patch_finding_the_lock_taken_waits_on_a_thread_while_reads_are_answered(
        backend: Services, scim: ScimClient) -> None:
    if not backend.db.is_sqlite:
        pytest.skip("SQLite's database-wide write lock: PostgreSQL locks the row, and writes always go to a thread")
    created = scim.post("/Users", json=user_payload("waiting.lee@contoso.com", title="Before"))
    assert created.status_code == 201, created.text
    uid = created.json()["id"]
    # Another process holds SQLite's write lock.
    other = sqlite3.connect(str(backend.db.engine.url.database), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    app = create_app(backend.settings, backend)
    headers = {**scim.headers, "Content-Type": SCIM_JSON}

    async def run() -> tuple[httpx.Response, httpx.Response, bool]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            patch = asyncio.create_task(client.patch(f"{scim.base}/Users/{uid}", json=replace("title", "After"),
                                                     headers=headers))
            await asyncio.sleep(0.2)
            read = await asyncio.wait_for(client.get(f"{scim.base}/Users/{uid}", headers=headers), timeout=10)
            waiting = not patch.done()
            other.execute("COMMIT")
            return read, await asyncio.wait_for(patch, timeout=30), waiting

    try:
        read, patched, waiting = asyncio.run(run())
    finally:
        other.close()
    assert read.status_code == 200 and read.json()["title"] == "Before"   # answered while the write waited
    assert waiting
    assert patched.status_code == 200 and patched.json()["title"] == "After"
    assert scim.get(f"/Users/{uid}").json()["title"] == "After"
    rows = backend.scim_log.entries(scim.tenant, method="PATCH", limit=10)
    assert [(r.resource_id, r.status) for r in rows] == [(uid, 200)]


def test_a_user_write_meeting_another_threads_write_waits_for_it_on_the_event_loop(
        scim: ScimClient, backend: Services, hops: list[str]) -> None:
    """Not a hop to a thread of its own: the event loop's writes that did so kept one another on threads while a
    group's or a Bulk request's write ran there (half the PATCH rate at 8 connections, issue #16)."""
    if not backend.db.is_sqlite:
        pytest.skip("SQLite's process-wide write lock: on PostgreSQL every write goes to a thread")
    created = scim.post("/Users", json=user_payload("waits.on.loop@contoso.com", title="Before"))
    assert created.status_code == 201, created.text
    uid = created.json()["id"]
    holding = threading.Event()

    def hold() -> None:
        with backend.db.writing():
            holding.set()
            time.sleep(0.3)

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(10)
    hops.clear()
    patched = scim.patch(f"/Users/{uid}", json=replace("title", "After"))
    holder.join()
    assert patched.status_code == 200 and patched.json()["title"] == "After"
    assert hops == []
