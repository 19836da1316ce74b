"""Mailbox downloads (issue #9, defect 8): an MBOX streamed in batches that parses back message for message, raw
items streamed exactly; each download audited, saying whether it completed."""

from __future__ import annotations

import mailbox
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from tenantry.app import Services
from tenantry.archive.service import WHATSAPP_FOLDER, Delivery, read_mboxrd
from tests.conftest import admin_secret
from tests.connectors.conftest import NOW


def admin(backend: Services, tenant: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {admin_secret(backend, tenant, 'a')}"}


def raw_message(n: int) -> bytes:
    # Every 100th message carries body lines an mbox reader would take for separators unless quoted.
    body = (b"From the desk of n\r\n>From quoted\r\nline\r\n" if n % 100 == 0 else b"hello\r\n")
    return f"Message-ID: <m{n}@t>\r\nSubject: number {n}\r\n\r\n".encode() + body


def test_mbox_download_streams_every_message_in_order_and_parses_back(
        app_client: TestClient, backend: Services, tenant: str, tmp_path: Path) -> None:
    # 1,234 items over several batches; many share a sent_at, so paging must order by (sent_at, id).
    deliveries = [Delivery("u1", "u1@contoso.com", WHATSAPP_FOLDER, raw_message(n), f"m{n}@t", "chat", "test",
                           NOW - timedelta(minutes=n // 7)) for n in range(1234)]
    for start in range(0, len(deliveries), 500):
        backend.archive.deliver(tenant, deliveries[start : start + 500])
    h = admin(backend, tenant)
    with app_client.stream("GET", f"/api/v1/tenants/{tenant}/mailboxes/u1/export.mbox", headers=h) as r:
        assert r.status_code == 200 and r.headers["content-type"] == "application/mbox"
        assert "content-length" not in r.headers   # streamed, not built first
        data = b"".join(r.iter_bytes())
    (tmp_path / "u1.mbox").write_bytes(data)
    box = mailbox.mbox(tmp_path / "u1.mbox")
    ids = [m["Message-ID"] for m in box]
    box.close()
    assert len(ids) == 1234 and set(ids) == {f"<m{n}@t>" for n in range(1234)}
    # mboxrd quoting is reversed exactly: the stored bytes, in date order, ties in delivery (id) order.
    expected = [d.raw for d in sorted(deliveries, key=lambda d: d.sent_at)]   # sorted() is stable
    assert read_mboxrd(data) == expected
    (entry,) = backend.ledger.entries(tenant, action="mailbox.export")
    assert entry.target == "u1" and entry.detail["items"] == 1234 and entry.detail["complete"] is True


def test_mbox_download_of_one_folder_and_of_an_unknown_mailbox(
        app_client: TestClient, backend: Services, tenant: str) -> None:
    backend.archive.deliver(tenant, [
        Delivery("u1", "u1@contoso.com", "A", raw_message(1), "m1@t", "chat", "test", NOW),
        Delivery("u1", "u1@contoso.com", "B", raw_message(2), "m2@t", "chat", "test", NOW)])
    h = admin(backend, tenant)
    r = app_client.get(f"/api/v1/tenants/{tenant}/mailboxes/u1/export.mbox", params={"folder": "B"}, headers=h)
    assert read_mboxrd(r.content) == [raw_message(2)]
    r = app_client.get(f"/api/v1/tenants/{tenant}/mailboxes/nobody/export.mbox", headers=h)
    assert r.status_code == 404 and r.json()["error"] == "not_found"


def test_raw_item_download_is_the_exact_stored_bytes(app_client: TestClient, backend: Services, tenant: str) -> None:
    big = b"Message-ID: <big@t>\r\nSubject: big\r\n\r\n" + b"x" * 300_000 + b"\r\n"
    backend.archive.deliver(tenant, [Delivery("u1", "u1@contoso.com", WHATSAPP_FOLDER, big, "big@t", "chat",
                                              "test", NOW)])
    item_id = backend.archive.items(tenant, "u1")[0].id
    r = app_client.get(f"/api/v1/tenants/{tenant}/items/{item_id}/raw", headers=admin(backend, tenant))
    assert r.status_code == 200 and r.headers["content-type"] == "message/rfc822"
    assert r.content == big and r.headers["content-length"] == str(len(big))
