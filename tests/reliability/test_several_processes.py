"""Several processes on one PostgreSQL database and one Redis broker: nothing lost, nothing doubled (issue #16).

Two ``tenantry serve`` processes (the first with ``--workers 2``) and two ``tenantry worker`` Celery processes
share one fresh PostgreSQL database (database and search backend), one data folder (uploads, the credential
key) and a Redis database of their own. WhatsApp exports are handed in through both servers while SCIM writes
arrive at both; then the connectors run — two on the Celery workers (handed out by the servers' schedulers),
two over the admin API of each server — while more SCIM writes race across the servers. Afterwards: every
mailbox holds exactly what a one-process import of the same exports gives, no Message-ID twice in a mailbox,
no userName twice, every search sees every item, and the ledger verifies.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from tenantry.app import Services, build_services
from tenantry.archive.models import Item
from tenantry.connectors.models import Connector
from tenantry.core.clock import utcnow
from tenantry.core.settings import Settings
from tenantry.directory.admins import ensure_first_admin
from tests.conftest import SCIM_JSON, _pg_database, as_admin, grant_import_role, group_payload, user_payload
from tests.interop.conftest import free_port

REDIS = os.environ.get("TENANTRY_TEST_REDIS_PROCESSES", "redis://127.0.0.1:6379/13")   # a database of its own
DEFAULT = "default"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
# The people of every chat: display name in the export → the directory user (userName and work e-mail).
PEOPLE = {"Alice Martin": "alice@contoso.com", "Bob Stone": "bob@contoso.com", "Carol Diaz": "carol@contoso.com"}
CONNECTORS = ["celery-0", "celery-1", "api-a", "api-b"]
CHATS_PER_CONNECTOR = 2
MESSAGES_PER_CHAT = 40


def export_text(chat: int) -> bytes:
    """An Android export (24 h, day first) of chat ``chat``: every message's text is its own."""
    names = list(PEOPLE)
    lines = [f"15/02/2024, {9 + m // 60:02d}:{m % 60:02d} - {names[m % len(names)]}: chat{chat} says {m} "
             f"marker{chat}" for m in range(MESSAGES_PER_CHAT)]
    return ("\n".join(lines) + "\n").encode()


def mapping_csv() -> str:
    return "name,email\n" + "".join(f"{name},{email}\n" for name, email in PEOPLE.items())


def exports_of(connector: int) -> list[tuple[str, bytes]]:
    return [(f"chat{chat}.txt", export_text(chat))
            for chat in range(connector * CHATS_PER_CONNECTOR, (connector + 1) * CHATS_PER_CONNECTOR)]


def reachable() -> str | None:
    import redis

    try:
        redis.Redis.from_url(REDIS, socket_connect_timeout=1).ping()
    except Exception as exc:  # noqa: BLE001 - any failure to reach it means "absent"
        return f"Redis not reachable at {REDIS}: {exc.__class__.__name__}: {exc}"
    return None


def prepare(services: Services, admin: str) -> dict[str, str]:
    """The chat's people as users, and the four export connectors (mapping, consent, enabled): name → id."""
    for email in PEOPLE.values():
        services.scim.create(DEFAULT, "User", user_payload(email, emails=[{"type": "work", "value": email}]))
    grant_import_role(services, DEFAULT, admin)
    by = as_admin(services, DEFAULT, admin)
    ids: dict[str, str] = {}
    for name in CONNECTORS:
        info = services.connectors.create(DEFAULT, name=name, kind="whatsapp-export", by=by, accept_terms=True,
                                          source={"timezone": "UTC"}, test_source=False)
        services.connectors.upload_mapping(DEFAULT, info.id, mapping_csv())
        services.connectors.consent(DEFAULT, info.id, by)
        services.connectors.enable(DEFAULT, info.id)
        ids[name] = info.id
    return ids


def mailbox_counts(services: Services) -> dict[str, int]:
    """Items per mailbox, by the mailbox's userName (ids differ between installations)."""
    counts = {}
    for email in PEOPLE.values():
        user = services.directory.find_users_by_email(DEFAULT, [email])[email][0]
        counts[email] = services.archive.count(DEFAULT, user.id)
    return counts


def one_process_reference(data_dir: Path) -> dict[str, int]:
    """What one process makes of the same exports (SQLite, in this process): the counts to expect."""
    services = build_services(Settings(data_dir=data_dir))
    try:
        services.directory.ensure_tenant(DEFAULT, "Default tenant")
        ids = prepare(services, ensure_first_admin(services.scim, services.directory, DEFAULT))
        for n, name in enumerate(CONNECTORS):
            for filename, data in exports_of(n):
                services.connectors.add_export(DEFAULT, ids[name], data, filename, "alice@contoso.com")
            # The duplicate hand-in of the race below: the same file twice to the first connector.
            if n == 0:
                filename, data = exports_of(0)[0]
                services.connectors.add_export(DEFAULT, ids[name], data, filename, "alice@contoso.com")
            report = services.connectors.run(DEFAULT, ids[name])
            assert report.status == "succeeded", report
        services.indexer.flush()
        return mailbox_counts(services)
    finally:
        services.db.dispose()


@dataclass
class Processes:
    """The processes started, their logs, and how to stop them all."""

    started: list[tuple[subprocess.Popen[bytes], Path]] = field(default_factory=list)

    def start(self, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        process = subprocess.Popen([sys.executable, "-m", "tenantry", *args], env=env, cwd=log.parent,
                                   stdin=subprocess.DEVNULL, stdout=log.open("wb"), stderr=subprocess.STDOUT)
        self.started.append((process, log))
        return process

    def serve(self, env: dict[str, str], log: Path, *extra: str) -> Callable[[], str]:
        """Start a server; the callable returned waits until it answers and gives its root URL."""
        port = free_port()
        process = self.start(["serve", "--host", "127.0.0.1", "--port", str(port), *extra], env, log)
        return lambda: self._ready(process, f"http://127.0.0.1:{port}", log)

    @staticmethod
    def _ready(process: subprocess.Popen[bytes], root: str, log: Path) -> str:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert process.poll() is None, f"server exited with {process.returncode}:\n{log.read_text()}"
            try:
                if httpx.get(f"{root}/healthz", timeout=1).status_code == 200:
                    return root
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"server did not answer in 90 s:\n{log.read_text()}")

    def stop(self) -> None:
        for process, _ in self.started:
            process.terminate()
        for process, _ in self.started:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()

    def logs(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}" for _, log in self.started)


@pytest.fixture()
def processes() -> Iterator[Processes]:
    running = Processes()
    try:
        yield running
    finally:
        running.stop()


def at_once(work: list[Callable[[], Any]]) -> list[Any]:
    """Run every callable in its own thread, released together; an exception of any is raised here."""
    barrier = threading.Barrier(len(work))

    def one(call: Callable[[], Any]) -> Any:
        barrier.wait(timeout=60)
        return call()

    with ThreadPoolExecutor(len(work)) as pool:
        return list(pool.map(one, work))


def test_two_servers_and_two_celery_workers_lose_and_double_nothing(processes: Processes,
                                                                     tmp_path: Path) -> None:
    why = reachable()
    if why:
        pytest.skip(why)
    pg = _pg_database()
    url = next(pg)   # skips, saying why, when PostgreSQL is absent
    try:
        expected = one_process_reference(tmp_path / "reference")
        _race(processes, tmp_path, url, expected)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{processes.logs()}") from exc
    finally:
        processes.stop()
        for _ in pg:
            pass


def _race(processes: Processes, tmp_path: Path, url: str, expected: dict[str, int]) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    scim_token, admin_token = "tnt_scim_" + secrets.token_urlsafe(24), "tnt_admin_" + secrets.token_urlsafe(24)
    env = {**os.environ, "TENANTRY_DATA_DIR": str(shared), "TENANTRY_DATABASE_URL": url,
           "TENANTRY_SEARCH_BACKEND": "postgres", "TENANTRY_BROKER_URL": REDIS,
           "TENANTRY_BROKER_QUEUE": f"tenantry-processes-{uuid.uuid4().hex[:8]}", "TENANTRY_SCHEDULER_INTERVAL": "1",
           "TENANTRY_BOOTSTRAP_SCIM_TOKEN": scim_token, "TENANTRY_BOOTSTRAP_ADMIN_TOKEN": admin_token}
    env.pop("TENANTRY_BOOTSTRAP_OPERATOR_TOKEN", None)   # so the first start prints one: once, not per worker
    logs = {name: tmp_path / name / f"{name}.log" for name in ("serve-a", "serve-b", "worker-1", "worker-2")}
    for log in logs.values():
        log.parent.mkdir()
    # The first server migrates the fresh database and makes the default tenant before the others start (they
    # find both done); they start together.
    root_a = processes.serve(env, logs["serve-a"], "--workers", "2")()
    server_b = processes.serve(env, logs["serve-b"])
    for name in ("worker-1", "worker-2"):
        processes.start(["worker", "--concurrency", "2"], env, logs[name])
    root_b = server_b()
    assert logs["serve-a"].read_text().count("operator token:") == 1
    assert "First run" not in logs["serve-b"].read_text()

    services = build_services(Settings(data_dir=shared, database_url=url, search_backend="postgres"))
    try:
        ids = prepare(services, ensure_first_admin(services.scim, services.directory, DEFAULT))
        roots = [root_a, root_b]
        admin = [httpx.Client(base_url=f"{r}/api/v1/tenants/{DEFAULT}", timeout=120,
                              headers={"Authorization": f"Bearer {admin_token}"}) for r in roots]
        scim = [httpx.Client(base_url=f"{r}/scim/v2", timeout=120,
                             headers={"Authorization": f"Bearer {scim_token}", "Content-Type": SCIM_JSON})
                for r in roots]

        # 1. Exports handed in through both servers (the first chat twice, once through each) while users are
        #    created through both.
        def hand_in(server: int, connector: str, filename: str, data: bytes) -> Callable[[], httpx.Response]:
            return lambda: admin[server].post(f"/connectors/{ids[connector]}/exports", content=data, params={
                "owner": "alice@contoso.com", "filename": filename})

        uploads = [hand_in(k % 2, name, filename, data) for n, name in enumerate(CONNECTORS)
                   for k, (filename, data) in enumerate(exports_of(n))]
        uploads.append(hand_in(1, CONNECTORS[0], *exports_of(0)[0]))
        created = [f"staff{i}.{uuid.uuid4().hex[:6]}@contoso.com" for i in range(16)]
        creations = [(lambda i=i: scim[i % 2].post("/Users", json=user_payload(created[i])))
                     for i in range(len(created))]
        answers = at_once([*uploads, *creations])
        assert [r.status_code for r in answers[:len(uploads)]] == [201] * len(uploads), \
            [r.text for r in answers[:len(uploads)]]
        assert [r.status_code for r in answers[len(uploads):]] == [201] * len(creations)
        user_ids = [r.json()["id"] for r in answers[len(uploads):]]
        group = scim[0].post("/Groups", json=group_payload()).json()

        # 2. The runs, at once with more SCIM writes: two connectors handed to the Celery workers by the servers'
        #    schedulers, one run over each server's API; members added to one group through both servers; one
        #    userName created through both servers at the same moment.
        def to_celery() -> None:
            with services.db.session() as session:
                session.execute(update(Connector).where(Connector.id.in_([ids["celery-0"], ids["celery-1"]]))
                                .values(next_run_at=utcnow()))

        same_name = f"twice.{uuid.uuid4().hex[:6]}@contoso.com"
        work: list[Callable[[], Any]] = [
            to_celery,
            lambda: admin[0].post(f"/connectors/{ids['api-a']}/runs"),
            lambda: admin[1].post(f"/connectors/{ids['api-b']}/runs"),
            *[(lambda i=i: scim[i % 2].patch(f"/Groups/{group['id']}", json={"schemas": [PATCH_OP], "Operations": [
                {"op": "add", "path": "members", "value": [{"value": user_ids[i]}]}]}))
              for i in range(len(user_ids))],
            *[(lambda i=i: scim[i % 2].post("/Users", json=user_payload(same_name))) for i in range(6)],
        ]
        answers = at_once(work)
        run_a, run_b = answers[1], answers[2]
        assert (run_a.status_code, run_b.status_code) == (201, 201), (run_a.text, run_b.text)
        assert run_a.json()["status"] == run_b.json()["status"] == "succeeded"
        patches = answers[3:3 + len(user_ids)]
        assert [r.status_code for r in patches] == [200] * len(user_ids), [r.text for r in patches]
        twice = answers[3 + len(user_ids):]
        assert sorted(r.status_code for r in twice) == [201] + [409] * 5, [r.text for r in twice]

        for name in ("celery-0", "celery-1"):   # handed out once each, run by a worker
            deadline = time.monotonic() + 90
            runs: list[dict[str, Any]] = []
            while time.monotonic() < deadline:
                runs = admin[1].get(f"/connectors/{ids[name]}/runs").json()
                if any(r["status"] not in ("running",) for r in runs):
                    break
                time.sleep(0.5)
            assert [r["status"] for r in runs] == ["succeeded"], runs

        # 3. Nothing lost, nothing doubled.
        assert mailbox_counts(services) == expected
        with services.db.session() as session:
            doubled = session.execute(select(Item.mailbox_id, Item.message_id).group_by(
                Item.mailbox_id, Item.message_id).having(func.count() > 1)).all()
            total = session.scalar(select(func.count()).select_from(Item).where(Item.tenant_id == DEFAULT))
        assert doubled == [] and total == sum(expected.values())
        members = scim[1].get(f"/Groups/{group['id']}").json().get("members", [])
        assert sorted(m["value"] for m in members) == sorted(user_ids)
        found = scim[0].get("/Users", params={"filter": f'userName eq "{same_name}"'}).json()
        assert found["totalResults"] == 1
        listed = scim[1].get("/Users", params={"count": 1000}).json()
        user_names = [u["userName"] for u in listed["Resources"]]
        assert len(user_names) == len(set(user_names)) == listed["totalResults"]
        assert set(created) | {same_name} | set(PEOPLE.values()) <= set(user_names)
        for server in admin:   # the shared index has every item, whichever process delivered it
            search = server.post("/search", json={"query": "*", "count": 0})
            assert search.status_code == 200, search.text
            assert search.json()["count"] == total
            verify = server.get("/verify").json()
            assert verify["ok"] is True and verify["problems"] == [], verify
        cli = subprocess.run([sys.executable, "-m", "tenantry", "archive", "verify"], env=env, cwd=shared,
                             capture_output=True, text=True, timeout=120)
        assert cli.returncode == 0, cli.stdout + cli.stderr
        for client in (*admin, *scim):
            client.close()
    finally:
        services.db.dispose()


# -- several first starts at once --------------------------------------------------------------------------------

FIRST_START = """
from tenantry.app import bootstrap, build_services
from tenantry.core.settings import Settings
print(sorted(bootstrap(build_services(Settings()))))
"""


def test_processes_starting_at_once_on_a_fresh_database_migrate_it_and_make_the_tenant_once(tmp_path: Path) -> None:
    pg = _pg_database()
    url = next(pg)
    try:
        shared = tmp_path / "shared"
        env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTRY_BOOTSTRAP_")}
        env.update(TENANTRY_DATA_DIR=str(shared), TENANTRY_DATABASE_URL=url, TENANTRY_SEARCH_BACKEND="postgres")
        starts = [subprocess.Popen([sys.executable, "-c", FIRST_START], env=env, cwd=tmp_path,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(3)]
        outputs = [p.communicate(timeout=240)[0].decode(errors="replace") for p in starts]
        assert [p.returncode for p in starts] == [0, 0, 0], outputs
        # One start made the tenant and printed its first tokens; the others found it made.
        printed = sorted(out.strip().splitlines()[-1] for out in outputs)
        assert printed == ["['admin', 'operator', 'scim']", "[]", "[]"], outputs
        # One credential key, written whole; no draft left behind.
        assert len((shared / "secret.key").read_bytes().strip()) == 44
        assert [p.name for p in shared.iterdir() if p.name.startswith(".secret.key")] == []
    finally:
        for _ in pg:
            pass


def test_concurrent_ensures_of_one_tenant_create_it_once(backend: Services) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    created = at_once([lambda: backend.directory.ensure_tenant(tenant, "Raced") for _ in range(6)])
    assert sorted(created) == [False] * 5 + [True]
    assert [t.id for t in backend.directory.list_tenants()].count(tenant) == 1
