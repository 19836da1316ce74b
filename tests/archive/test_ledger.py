"""Tamper evidence: `verify` proves the archive unchanged, or names what changed."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, update

from tenantry.archive.models import Blob, Item, LedgerEntry
from tenantry.archive.service import WHATSAPP_FOLDER, Delivery

T = datetime(2026, 11, 1, tzinfo=UTC)


def fill(backend, tenant: str) -> list[int]:  # noqa: ANN001
    backend.archive.deliver(tenant, [
        Delivery(u, f"{u}@contoso.com", WHATSAPP_FOLDER, f"Message-ID: <{n}@t>\r\n\r\n{tenant} {n}\r\n".encode(),
                 f"{n}@t", "chat", "test", T) for u in ("u1", "u2") for n in range(3)])
    return [i.id for u in ("u1", "u2") for i in backend.archive.items(tenant, u)]


def test_an_untouched_archive_verifies(backend, tenant) -> None:
    ids = fill(backend, tenant)
    backend.compliance.place_hold(tenant, name="h", actor="a", user_id="u1")
    backend.compliance.delete_items(tenant, ids[:2], "u1")
    backend.compliance.delete_items(tenant, ids[-1:], "u2")
    report = backend.ledger.verify(tenant)
    assert report.ok, report.problems
    assert report.items_checked == 5 and report.entries >= 4


def test_changed_bytes_are_named(backend, tenant) -> None:
    ids = fill(backend, tenant)
    item = backend.archive.items(tenant, "u1")[0]
    with backend.db.session() as session:
        session.execute(update(Blob).where(Blob.sha256 == item.sha256).values(data=b"forged"))
    problems = backend.ledger.verify(tenant).problems
    assert any(f"item {item.id} (u1@contoso.com" in p and "bytes were changed" in p for p in problems), problems
    assert ids


def test_a_changed_digest_a_removed_item_and_an_added_item_are_named(backend, tenant) -> None:
    ids = fill(backend, tenant)
    with backend.db.session() as session:
        session.execute(update(Item).where(Item.id == ids[0]).values(sha256="0" * 64))
        session.execute(delete(Item).where(Item.id == ids[1]))
    problems = backend.ledger.verify(tenant).problems
    assert any(f"item {ids[0]}" in p and "digest was changed" in p for p in problems), problems
    assert any(f"item {ids[1]} was removed without a ledger entry" in p for p in problems), problems


def test_an_edited_or_dropped_ledger_entry_breaks_the_chain(backend, tenant) -> None:
    fill(backend, tenant)
    hold = backend.compliance.place_hold(tenant, name="h", actor="a", user_id="u1")
    backend.compliance.release_hold(tenant, hold["id"], "a")
    with backend.db.session() as session:
        session.execute(update(LedgerEntry).where(LedgerEntry.tenant_id == tenant, LedgerEntry.number == 1)
                        .values(actor="someone-else"))
    assert any("entry 1" in p and "changed" in p for p in backend.ledger.verify(tenant).problems)
    with backend.db.session() as session:
        session.execute(delete(LedgerEntry).where(LedgerEntry.tenant_id == tenant, LedgerEntry.number == 2))
    assert any("entry 2 is missing" in p for p in backend.ledger.verify(tenant).problems)
    with backend.db.session() as session:  # and cutting the end off is seen too
        session.execute(delete(LedgerEntry).where(LedgerEntry.tenant_id == tenant, LedgerEntry.number == 3))
    assert any("entries were removed from the end" in p for p in backend.ledger.verify(tenant).problems)


def test_every_hold_and_deletion_is_in_the_audit_trail(backend, tenant) -> None:
    ids = fill(backend, tenant)
    hold = backend.compliance.place_hold(tenant, name="h", actor="alice", user_id="u1")
    backend.compliance.release_hold(tenant, hold["id"], "bob")
    backend.compliance.delete_items(tenant, ids[:1], "carol")
    actions = [(e["actor"], e["action"]) for e in backend.ledger.entries(tenant)]
    assert ("alice", "hold.place") in actions and ("bob", "hold.release") in actions
    assert ("carol", "purge") in actions
