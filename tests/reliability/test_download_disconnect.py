"""A real server process: a client that leaves a big MBOX download after its first bytes stops the server's work
(issue #9, defect 8 — an export of 100k items ran on for minutes after the client had gone)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from tenantry.app import Services
from tenantry.archive.models import Item
from tenantry.archive.results import AuditEntry
from tenantry.archive.service import WHATSAPP_FOLDER, Delivery
from tests.conftest import admin_secret
from tests.connectors.conftest import NOW

ITEMS = 4000
BODY = 32 * 1024   # 4,000 × 32 KiB: a 128 MiB MBOX, far more than the socket buffers between client and server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def server(backend: Services, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "TENANTRY_DATA_DIR": str(backend.settings.data_dir),
           "TENANTRY_DATABASE_URL": backend.settings.resolved_database_url}
    log = tmp_path / "server.log"
    proc = subprocess.Popen([sys.executable, "-m", "tenantry", "serve", "--no-scheduler", "--host", "127.0.0.1",
                             "--port", str(port)], env=env, stdin=subprocess.DEVNULL, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield url
        assert proc.poll() is None, log.read_text()   # the disconnect did not take the server down
    finally:
        proc.terminate()
        proc.wait(30)


def big_mailbox(backend: Services, tenant: str) -> None:
    """ITEMS items sharing one stored message (the bytes are kept once), indexed like delivered ones."""
    raw = b"Message-ID: <big-0@t>\r\nSubject: big\r\n\r\n" + (b"y" * 1000 + b"\r\n") * (BODY // 1002)
    backend.archive.deliver(tenant, [Delivery("u1", "u1@contoso.com", WHATSAPP_FOLDER, raw, "big-0@t", "chat",
                                              "test", NOW)])
    (first,) = backend.archive.items(tenant, "u1")
    with backend.db.session() as session:
        row = session.get(Item, first.id)
        assert row is not None
        template: dict[str, Any] = {"tenant_id": tenant, "mailbox_id": row.mailbox_id, "folder_id": row.folder_id,
                                    "sha256": row.sha256, "size": row.size, "kind": "chat", "source": "test",
                                    "chat_id": None, "subject": "big", "sender": "", "delivered_at": NOW}
        session.execute(insert(Item), [{**template, "message_id": f"big-{n}@t", "sent_at": NOW + timedelta(seconds=n)}
                                       for n in range(1, ITEMS)])
    # Index them here, so the server's start-up catch-up has nothing of this tenant to do.
    backend.indexer.catch_up(tenant)
    backend.indexer.flush()


def first_bytes_then_hang_up(server: str, path: str, token: str, enough: int = 100_000) -> bytes:
    """GET ``path`` on a raw socket, read the first ``enough`` bytes, and close the connection (a client that
    gave up)."""
    port = int(server.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
        received = b""
        while len(received) < enough:
            chunk = sock.recv(65536)
            assert chunk, received[:300]
            received += chunk
    return received


def ledger_entries_once_written(backend: Services, tenant: str, action: str) -> list[AuditEntry]:
    """The ledger's entries of ``action``, waited for: the server writes one when a download's generator is
    closed."""
    deadline = time.monotonic() + 120
    entries: list[AuditEntry] = []
    while not entries and time.monotonic() < deadline:
        entries = backend.ledger.entries(tenant, action=action)
        time.sleep(0.1)
    return entries


def test_client_leaving_a_big_mbox_download_stops_the_servers_work(backend: Services, tenant: str,
                                                                   server: str) -> None:
    big_mailbox(backend, tenant)
    assert backend.archive.count(tenant, "u1") == ITEMS
    token = admin_secret(backend, tenant, "t")
    received = first_bytes_then_hang_up(server, f"/api/v1/tenants/{tenant}/mailboxes/u1/export.mbox", token)
    # The first bytes came before the server had read the mailbox: streamed, not built in memory first.
    assert received.startswith(b"HTTP/1.1 200") and b"\r\n\r\n" in received
    assert b"From MAILER-DAEMON " in received

    # The server closes the download's generator when the client goes: the ledger's audit entry of the
    # download is written then, saying how many items were read — far from all of them.
    entries = ledger_entries_once_written(backend, tenant, "mailbox.export")
    assert len(entries) == 1, "the download's generator was never closed"
    detail = entries[0].detail
    assert detail["complete"] is False
    assert 0 < detail["items"] < ITEMS // 2, detail
    # Nothing more happens for that download afterwards (one entry, the server answers).
    assert httpx.get(server + "/healthz", timeout=10).status_code == 200
    assert len(backend.ledger.entries(tenant, action="mailbox.export")) == 1


def test_client_leaving_an_export_zip_download_stops_the_servers_work(backend: Services, tenant: str,
                                                                      server: str) -> None:
    from tenantry.jobstore import JobStore

    case = backend.ediscovery.create_case(tenant, "M", "counsel")
    jobs = JobStore(backend.db)
    job = jobs.create(tenant, "ediscovery.export", {"query": "x"}, "counsel", subject=case.id)
    jobs.claim(job.id)
    jobs.finish(job.id, {"exported": 0})
    # A finished export whose folder holds 64 MiB that do not compress: the zip is as big as the folder.
    folder = backend.settings.data_dir / "exports" / tenant / job.id
    (folder / "mbox").mkdir(parents=True)
    (folder / "mbox" / "big.mbox").write_bytes(os.urandom(64 << 20))
    (folder / "manifest.sha256").write_text("")
    token = admin_secret(backend, tenant, "t")
    received = first_bytes_then_hang_up(server, f"/api/v1/tenants/{tenant}/cases/M/exports/{job.id}/download",
                                        token)
    assert received.startswith(b"HTTP/1.1 200") and b"PK\x03\x04" in received
    entries = ledger_entries_once_written(backend, tenant, "export.download")
    assert [e.detail for e in entries] == [{"export_id": job.id, "complete": False}]
    assert httpx.get(server + "/healthz", timeout=10).status_code == 200
