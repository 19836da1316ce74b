"""The mailbox store: deliveries are idempotent per Message-ID, bytes come back exactly, exports round-trip."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from tenantry.archive.models import Blob
from tenantry.archive.service import WHATSAPP_FOLDER, Delivery, IntegrityFailure, read_mboxrd, write_mboxrd

T0 = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)


def message(n: int, body: str = "hello") -> bytes:
    return (f"From: a@contoso.com\r\nTo: b@contoso.com\r\nMessage-ID: <m{n}@t>\r\nSubject: s{n}\r\n\r\n"
            f"{body} {n}\r\n").encode()


def delivery(user: str, n: int, **kw) -> Delivery:  # noqa: ANN003
    return Delivery(user_id=user, address=f"{user}@contoso.com", folder=kw.pop("folder", WHATSAPP_FOLDER),
                    raw=kw.pop("raw", message(n)), message_id=f"m{n}@t", kind="chat", source="test",
                    sent_at=T0 + timedelta(minutes=n), **kw)


def test_first_delivery_creates_mailbox_and_whatsapp_archiver_folder(backend, tenant: str) -> None:
    assert backend.archive.deliver(tenant, [delivery("u1", 1)]) == [True]
    assert backend.archive.folders(tenant, "u1") == [WHATSAPP_FOLDER]
    assert [m.address for m in backend.archive.mailboxes(tenant)] == ["u1@contoso.com"]


def test_same_message_id_twice_in_a_mailbox_is_stored_once(backend, tenant: str) -> None:
    assert backend.archive.deliver(tenant, [delivery("u1", 1), delivery("u1", 1)]) == [True, False]
    assert backend.archive.deliver(tenant, [delivery("u1", 1), delivery("u2", 1)]) == [False, True]
    assert backend.archive.count(tenant, "u1") == 1 and backend.archive.count(tenant, "u2") == 1


def test_identical_bytes_for_several_mailboxes_are_one_blob(backend, tenant: str) -> None:
    raw = message(7, "shared body for " + tenant)
    backend.archive.deliver(tenant, [delivery(u, 7, raw=raw) for u in ("u1", "u2", "u3")])
    from tenantry.archive.service import sha256_hex

    with backend.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Blob).where(Blob.sha256 == sha256_hex(raw))) == 1


def test_items_read_back_byte_for_byte(backend, tenant: str) -> None:
    raw = "From: x@y\r\nSubject: =?utf-8?b?7ZWc6rWt?=\r\n\r\n\u00e9\u00e8 bytes \x00\xff".encode("latin-1")
    backend.archive.deliver(tenant, [delivery("u1", 3, raw=raw)])
    (item,) = backend.archive.items(tenant, "u1")
    assert backend.archive.read(tenant, item.id) == raw
    assert item.size == len(raw) and item.sent_at == T0 + timedelta(minutes=3)


def test_a_tampered_item_is_detected_on_read(backend, tenant: str) -> None:
    raw = message(5, "original " + tenant)
    backend.archive.deliver(tenant, [delivery("u1", 5, raw=raw)])
    (item,) = backend.archive.items(tenant, "u1")
    with backend.db.session() as session:
        altered = raw.replace(b"original", b"altered!")
        session.execute(update(Blob).where(Blob.sha256 == item.sha256).values(data=altered))
    with pytest.raises(IntegrityFailure):
        backend.archive.read(tenant, item.id)


def test_mbox_export_round_trips_every_message(backend, tenant: str, tmp_path: Path) -> None:
    tricky = b"Subject: x\r\n\r\nFrom the start\r\n>From quoted\r\n\r\nFrom again\r\n"
    raws = [message(1), tricky, message(3)]
    backend.archive.deliver(tenant, [delivery("u1", i + 1, raw=r) for i, r in enumerate(raws)])
    out = tmp_path / "u1.mbox"
    assert backend.archive.export(tenant, "u1", WHATSAPP_FOLDER, "mbox", out) == 3
    assert read_mboxrd(out.read_bytes()) == raws


def test_eml_export_writes_exact_bytes(backend, tenant: str, tmp_path: Path) -> None:
    raws = [message(1), message(2)]
    backend.archive.deliver(tenant, [delivery("u1", i + 1, raw=r) for i, r in enumerate(raws)])
    assert backend.archive.export(tenant, "u1", None, "eml", tmp_path / "eml") == 2
    assert sorted(p.read_bytes() for p in (tmp_path / "eml").iterdir()) == sorted(raws)


def test_mboxrd_writer_quotes_from_lines_reversibly() -> None:
    out = io.BytesIO()
    write_mboxrd(out, b"A: b\r\n\r\nFrom me\r\n>From you\r\n", T0)
    data = out.getvalue()
    assert b"\n>From me\n>>From you\n" in data
    assert read_mboxrd(data) == [b"A: b\r\n\r\nFrom me\r\n>From you\r\n"]
