"""No lost updates: concurrent writes to one resource, against real server processes on both backends.

Each race is run against one server process and against two server processes sharing one database (one
PostgreSQL database; one SQLite file), with real threads and one HTTP connection per thread (the in-process
TestClient serialises too much to show a race). RFC 7644 §3.14: of several writes carrying the same
``If-Match``, one wins and the others get 412; writes without one are all applied, none overwrites another.
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from tenantry.app import Services
from tenantry.connectors.models import MappingEntry
from tenantry.core.db import Database
from tenantry.core.errors import NotFound
from tests.conftest import SCIM_JSON, _pg_database, as_admin, grant_import_role, group_payload, user_payload
from tests.interop.conftest import RunningServer, start_server, stop_server

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
DEFAULT = "default"


@dataclass
class Cluster:
    """Tenantry server processes on one database, and the default tenant's tokens (valid on every one)."""

    backend: str
    servers: list[RunningServer]
    scim_token: str
    admin_token: str

    def roots(self, processes: int) -> list[str]:
        return [s.base_url.removesuffix("/scim/v2") for s in self.servers[:processes]]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Two ``tenantry serve`` processes on one database: one SQLite file, or one PostgreSQL database."""
    admin_token = "tnt_admin_" + secrets.token_urlsafe(24)
    pg = _pg_database() if request.param == "postgresql" else None
    url = next(pg) if pg is not None else (
        f"sqlite:///{tmp_path_factory.mktemp('shared-sqlite') / 'tenantry.db'}")
    servers: list[RunningServer] = []
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("TENANTRY_BOOTSTRAP_ADMIN_TOKEN", admin_token)
            for i in range(2):   # one after the other: the first migrates, the second finds the schema done
                servers.append(start_server(tmp_path_factory.mktemp(f"server-{request.param}-{i}"), url))
        yield Cluster(request.param, servers, servers[0].token, admin_token)
    finally:
        for server in servers:
            stop_server(server)
        if pg is not None:
            for _ in pg:
                pass


@pytest.fixture(params=[1, 2], ids=["one-process", "two-processes"])
def roots(request: pytest.FixtureRequest, cluster: Cluster) -> list[str]:
    """The servers the racing requests are spread over (round robin)."""
    return cluster.roots(int(request.param))


def race(n: int, roots: Sequence[str], token: str,
         send: Callable[[httpx.Client, int], httpx.Response]) -> list[httpx.Response]:
    """Run ``send`` n times at once: n threads, each with its own connection, released together."""
    clients = [httpx.Client(base_url=roots[i % len(roots)], timeout=120,
                            headers={"Authorization": f"Bearer {token}"}) for i in range(n)]
    barrier = threading.Barrier(n)
    for c in clients:     # open each connection before the race, so the requests leave together
        c.get("/scim/v2/ServiceProviderConfig").raise_for_status()

    def one(i: int) -> httpx.Response:
        barrier.wait(timeout=60)
        return send(clients[i], i)

    try:
        with ThreadPoolExecutor(n) as pool:
            return list(pool.map(one, range(n)))
    finally:
        for c in clients:
            c.close()


class Scim:
    def __init__(self, root: str, token: str) -> None:
        self.http = httpx.Client(base_url=root + "/scim/v2", timeout=60,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": SCIM_JSON})

    def create(self, resource: str, payload: dict[str, Any]) -> dict[str, Any]:
        r = self.http.post(f"/{resource}", json=payload)
        assert r.status_code == 201, r.text
        return dict(r.json())

    def get(self, resource: str, resource_id: str) -> dict[str, Any]:
        r = self.http.get(f"/{resource}/{resource_id}")
        assert r.status_code == 200, r.text
        return dict(r.json())


def patch_body(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def statuses(responses: Sequence[httpx.Response]) -> list[int]:
    return sorted(r.status_code for r in responses)


def version(doc: dict[str, Any]) -> int:
    return int(doc["meta"]["version"].removeprefix("W/").strip('"'))


def test_patches_with_the_same_if_match_let_exactly_one_win(cluster: Cluster, roots: list[str]) -> None:
    scim = Scim(roots[0], cluster.scim_token)
    user = scim.create("Users", user_payload(displayName="before"))
    etag = user["meta"]["version"]
    n = 10

    def send(client: httpx.Client, i: int) -> httpx.Response:
        return client.patch(f"/scim/v2/Users/{user['id']}", json=patch_body(
            {"op": "replace", "path": "displayName", "value": f"writer {i}"}),
            headers={"If-Match": etag, "Content-Type": SCIM_JSON})

    responses = race(n, roots, cluster.scim_token, send)
    assert statuses(responses) == [200] + [412] * (n - 1), [r.text for r in responses if r.status_code != 412]
    winner = next(r.json() for r in responses if r.status_code == 200)
    for r in responses:
        if r.status_code == 412:
            assert "urn:ietf:params:scim:api:messages:2.0:Error" in r.json()["schemas"]
    after = scim.get("Users", user["id"])
    assert version(after) == version(user) + 1
    assert after["displayName"] == winner["displayName"]


def test_concurrent_email_additions_are_all_kept(cluster: Cluster, roots: list[str]) -> None:
    scim = Scim(roots[0], cluster.scim_token)
    user = scim.create("Users", user_payload(emails=[{"value": "first@contoso.com", "type": "work"}]))
    n = 20
    added = [f"extra{i}.{uuid.uuid4().hex[:6]}@contoso.com" for i in range(n)]

    def send(client: httpx.Client, i: int) -> httpx.Response:
        return client.patch(f"/scim/v2/Users/{user['id']}", json=patch_body(
            {"op": "add", "path": "emails", "value": [{"value": added[i], "type": "other"}]}),
            headers={"Content-Type": SCIM_JSON})

    responses = race(n, roots, cluster.scim_token, send)
    assert statuses(responses) == [200] * n, [r.text for r in responses if r.status_code != 200]
    after = scim.get("Users", user["id"])
    assert sorted(e["value"] for e in after["emails"]) == sorted(["first@contoso.com", *added])
    assert version(after) == version(user) + n
    # The indexed values follow the resource: every added address finds the user.
    found = scim.http.get("/Users", params={"filter": f'emails.value eq "{added[-1]}"'}).json()
    assert [u["id"] for u in found["Resources"]] == [user["id"]]


def test_concurrent_group_member_additions_are_all_kept(cluster: Cluster, roots: list[str]) -> None:
    scim = Scim(roots[0], cluster.scim_token)
    n = 20
    users = [scim.create("Users", user_payload())["id"] for _ in range(n)]
    group = scim.create("Groups", group_payload())

    def send(client: httpx.Client, i: int) -> httpx.Response:
        return client.patch(f"/scim/v2/Groups/{group['id']}", json=patch_body(
            {"op": "add", "path": "members", "value": [{"value": users[i]}]}),
            headers={"Content-Type": SCIM_JSON})

    responses = race(n, roots, cluster.scim_token, send)
    assert statuses(responses) == [200] * n, [r.text for r in responses if r.status_code != 200]
    after = scim.get("Groups", group["id"])
    assert sorted(m["value"] for m in after.get("members", [])) == sorted(users)
    assert version(after) == version(group) + n


def test_concurrent_deletes_of_one_user_delete_it_once(cluster: Cluster, roots: list[str]) -> None:
    scim = Scim(roots[0], cluster.scim_token)
    user = scim.create("Users", user_payload())
    n = 8

    def send(client: httpx.Client, i: int) -> httpx.Response:
        return client.delete(f"/scim/v2/Users/{user['id']}")

    responses = race(n, roots, cluster.scim_token, send)
    assert statuses(responses) == [204] + [404] * (n - 1), [r.text for r in responses if r.status_code != 404]


# -- objects of the admin API ------------------------------------------------------------------------------


def admin(root: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=root + f"/api/v1/tenants/{DEFAULT}", timeout=60,
                        headers={"Authorization": f"Bearer {token}"})


def test_concurrent_releases_of_one_hold_release_it_once(cluster: Cluster, roots: list[str]) -> None:
    user = Scim(roots[0], cluster.scim_token).create("Users", user_payload())
    api = admin(roots[0], cluster.admin_token)
    hold = api.post("/holds", json={"name": f"hold-{uuid.uuid4().hex[:8]}",
                                    "user_id": user["id"]})
    assert hold.status_code == 201, hold.text
    hold_id = hold.json()["id"]
    n = 8

    def send(client: httpx.Client, i: int) -> httpx.Response:
        return client.post(f"/api/v1/tenants/{DEFAULT}/holds/{hold_id}/release", json={})

    responses = race(n, roots, cluster.admin_token, send)
    assert statuses(responses) == [200] + [409] * (n - 1), [r.text for r in responses if r.status_code != 409]
    audit = api.get("/audit", params={"action": "hold.release", "limit": 1000}).json()
    assert [e["target"] for e in audit].count(hold_id) == 1
    assert api.get("/verify").json()["ok"] is True


def test_concurrent_custodian_additions_are_all_kept(cluster: Cluster, roots: list[str]) -> None:
    scim = Scim(roots[0], cluster.scim_token)
    n = 10
    users = [scim.create("Users", user_payload())["id"] for _ in range(n)]
    api = admin(roots[0], cluster.admin_token)
    case = api.post("/cases", json={"name": f"case-{uuid.uuid4().hex[:8]}"})
    assert case.status_code == 201, case.text
    case_id = case.json()["id"]

    def send(client: httpx.Client, i: int) -> httpx.Response:
        # Every request names the same first custodian and one of its own: no request may fail on the overlap.
        return client.post(f"/api/v1/tenants/{DEFAULT}/cases/{case_id}/custodians",
                           json={"users": [users[0], users[i]]})

    responses = race(n, roots, cluster.admin_token, send)
    assert statuses(responses) == [200] * n, [r.text for r in responses if r.status_code != 200]
    final = api.post(f"/cases/{case_id}/custodians", json={"users": []})
    assert sorted(final.json()) == sorted(users)


# Settings of a provisioning app, each changed by its own concurrent request; none may undo another.
CONFIG_CHANGES: dict[str, Any] = {
    "interval_minutes": 41, "deletion_threshold": 501, "delete_after_days": 31, "rate_limit": 5,
    "concurrency": 5, "member_batch": 101, "retries": 4, "backoff_seconds": 2.0, "max_retry_after": 301,
    "timeout_seconds": 31, "quarantine_min_attempts": 21, "quarantine_retry_minutes": 361,
    "quarantine_max_days": 29,
}


def test_concurrent_provisioning_config_changes_are_all_kept(cluster: Cluster, roots: list[str]) -> None:
    api = admin(roots[0], cluster.admin_token)
    app = api.post("/provisioning/apps", json={"name": f"app-{uuid.uuid4().hex[:8]}", "token": "s3cret-token",
                                               "tenant_url": "https://scim.example.net/scim/v2"})
    assert app.status_code == 201, app.text
    app_id = app.json()["id"]
    changes = list(CONFIG_CHANGES.items())

    def send(client: httpx.Client, i: int) -> httpx.Response:
        key, value = changes[i]
        return client.patch(f"/api/v1/tenants/{DEFAULT}/provisioning/apps/{app_id}/config", json={key: value})

    responses = race(len(changes), roots, cluster.admin_token, send)
    assert statuses(responses) == [200] * len(changes), [r.text for r in responses if r.status_code != 200]
    config = api.get(f"/provisioning/apps/{app_id}/config").json()
    assert {k: config[k] for k in CONFIG_CHANGES} == CONFIG_CHANGES


def test_concurrent_creations_of_one_case_name_create_it_once(cluster: Cluster, roots: list[str]) -> None:
    name = f"case-{uuid.uuid4().hex[:8]}"
    n = 8

    def send(client: httpx.Client, i: int) -> httpx.Response:
        return client.post(f"/api/v1/tenants/{DEFAULT}/cases", json={"name": name})

    responses = race(n, roots, cluster.admin_token, send)
    assert statuses(responses) == [201] + [409] * (n - 1), [r.text for r in responses if r.status_code != 409]
    for r in responses:
        if r.status_code == 409:
            assert r.json()["error"] == "conflict"


# -- services, from real threads (one process; every thread its own connection) -------------------------------


def at_once(n: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(0..n-1)`` in n threads released together; an exception of any is raised here."""
    barrier = threading.Barrier(n)

    def one(i: int) -> Any:
        barrier.wait(timeout=60)
        return work(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def test_concurrent_ledger_appends_form_one_unbroken_chain(backend: Services, tenant: str) -> None:
    # The tenant has no ledger yet: the first appends also race to create its head.
    def work(i: int) -> None:
        for j in range(15):
            backend.ledger.record(tenant, f"officer{i}", "search", "", query=f"q{j}")

    at_once(6, work)
    report = backend.ledger.verify(tenant)
    assert report.problems == []
    assert report.entries == 6 * 15


def test_concurrent_mapping_uploads_leave_one_whole_csv(backend: Services, tenant: str) -> None:
    admin = backend.scim.create(tenant, "User", user_payload())["id"]
    grant_import_role(backend, tenant, admin)
    connector = backend.connectors.create(tenant, name="Exports", kind="whatsapp-export",
                                          by=as_admin(backend, tenant, admin),
                                          accept_terms=True, source={"timezone": "UTC"}, test_source=False).id
    csvs = [{f"p{i}.{k}@contoso.com" for k in range(5)} for i in range(6)]

    def work(i: int) -> int:
        text = "name,email\n" + "".join(f"P{i} {k},{email}\n" for k, email in enumerate(sorted(csvs[i])))
        return backend.connectors.upload_mapping(tenant, connector, text).entries

    assert at_once(len(csvs), work) == [5] * len(csvs)
    with backend.db.session() as session:
        stored = set(session.scalars(select(MappingEntry.email).where(MappingEntry.connector_id == connector)))
    assert stored in csvs


def test_concurrent_assignments_of_one_licence_and_role_assign_each_once(backend: Services, tenant: str) -> None:
    user = backend.scim.create(tenant, "User", user_payload())["id"]

    def work(i: int) -> None:
        backend.directory.assign_licence(tenant, user, "E5")
        backend.directory.add_role_group_member(tenant, "Compliance Management", user)

    at_once(8, work)
    assert backend.directory.licences_of(tenant, user) == ["E5"]
    assert backend.directory.roles_of(tenant, user) == {"Compliance Administrator"}


def test_concurrent_first_domains_make_exactly_one_default(backend: Services, tenant: str) -> None:
    names = [f"d{i}-{uuid.uuid4().hex[:6]}.example.com" for i in range(6)]
    at_once(len(names), lambda i: backend.directory.add_domain(tenant, names[i]))
    assert [d.default for d in backend.directory.list_domains(tenant)].count(True) == 1


def test_concurrent_rotations_of_one_token_issue_one_successor(backend: Services, tenant: str) -> None:
    token = backend.directory.issue_token(tenant, "scim", "rotated")

    def work(i: int) -> str:
        try:
            return backend.directory.rotate_token(token.id).id
        except NotFound:
            return "refused"

    outcome = at_once(6, work)
    assert sorted(outcome).count("refused") == 5
    active = [t for t in backend.directory.list_tokens(tenant) if t.name == "rotated" and t.revoked_at is None]
    assert [t.id for t in active] == [o for o in outcome if o != "refused"]


# -- SQLite: how a write transaction takes the database's write lock ------------------------------------------


def test_sqlite_write_block_holds_the_write_lock_from_its_first_read(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'lock.db'}")
    db.migrate()
    other = sqlite3.connect(tmp_path / "lock.db", timeout=0, isolation_level=None)   # another process's view
    try:
        with db.writing(), db.session() as session:
            session.execute(text("SELECT count(*) FROM tenants")).scalar()     # has only read so far
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
            # A session opened inside the block reads without waiting for the block's own lock.
            with db.session() as nested:
                assert nested.execute(text("SELECT count(*) FROM tenants")).scalar() == 0
        other.execute("BEGIN IMMEDIATE")    # released at commit
        other.execute("ROLLBACK")
        with db.session() as session:       # outside a write block, a read takes no write lock
            session.execute(text("SELECT count(*) FROM tenants")).scalar()
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
    finally:
        other.close()
        db.dispose()
