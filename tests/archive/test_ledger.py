"""Tamper evidence: `verify` proves the archive unchanged, or names what changed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, text, update

from tenantry.app import build_services
from tenantry.archive.models import Blob, Item, LedgerEntry
from tenantry.archive.service import WHATSAPP_FOLDER, Delivery
from tenantry.core.settings import Settings
from tests.factories.archive import make_hold

T = datetime(2026, 11, 1, tzinfo=UTC)


def fill(backend, tenant: str) -> list[int]:  # noqa: ANN001
    backend.archive.deliver(tenant, [
        Delivery(u, f"{u}@contoso.com", WHATSAPP_FOLDER, f"Message-ID: <{n}@t>\r\n\r\n{tenant} {n}\r\n".encode(),
                 f"{n}@t", "chat", "test", T) for u in ("u1", "u2") for n in range(3)])
    return [i.id for u in ("u1", "u2") for i in backend.archive.items(tenant, u)]


def test_an_untouched_archive_verifies(backend, tenant) -> None:
    ids = fill(backend, tenant)
    make_hold(backend, tenant, name="h", actor="a", user_id="u1")
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
    hold = make_hold(backend, tenant, name="h", actor="a", user_id="u1")
    backend.compliance.release_hold(tenant, hold.id, "a")
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
    hold = make_hold(backend, tenant, name="h", actor="alice", user_id="u1")
    backend.compliance.release_hold(tenant, hold.id, "bob")
    backend.compliance.delete_items(tenant, ids[:1], "carol")
    actions = [(e.actor, e.action) for e in backend.ledger.entries(tenant)]
    assert ("alice", "hold.place") in actions and ("bob", "hold.release") in actions
    assert ("carol", "purge") in actions


# Tampering that leaves a value of the wrong type or shape: (column, value, what the problem must say).
# SQLite keeps whatever is written (type affinity), so it gets the type changes too; PostgreSQL's columns
# allow only the shape changes (text that is not the JSON written, a hash of the wrong length).
SHAPES = [
    ("detail", "[1, 2]", "detail is a JSON list, not an object"),
    ("detail", "not json", "detail is not JSON"),
    ("detail", '{"items": 5}', "items is 5, not a list"),
    ("detail", '{"items": [["x", 3]]}', "not [item id, SHA-256]"),
    ("detail", '{"items": [[1]]}', "not [item id, SHA-256]"),
    ("hash", "abc", "hash is 'abc', not 64 hexadecimal digits"),
    ("prev_hash", "Z" * 64, "not 64 hexadecimal digits"),
]
SQLITE_TYPES = [
    ("number", "x", "number is 'x', not a whole number"),
    ("number", 2.5, "number is 2.5, not a whole number"),
    ("at", "not a time", "at is 'not a time', not a time"),
    ("at", 12345, "at is 12345, not a time"),
    ("actor", b"\x00\xff", "actor is b'\\x00\\xff', not text"),
    ("detail", b"{}", "detail is b'{}', not text"),
]


def tamper_entry(backend, tenant: str, column: str, value: object) -> None:  # noqa: ANN001
    with backend.db.engine.begin() as conn:
        conn.execute(text(f"UPDATE ledger SET {column} = :v WHERE tenant_id = :t AND number = 1"),
                     {"v": value, "t": tenant})


@pytest.fixture()
def sqlite_only(tmp_path):  # noqa: ANN001, ANN201 - SQLite's type affinity is what lets these values in
    services = build_services(Settings(data_dir=tmp_path / "data", database_url=None))
    services.directory.create_tenant("t-types", "Types")
    yield services
    services.db.dispose()


@pytest.mark.parametrize(("column", "value", "says"), SHAPES)
def test_a_ledger_value_of_the_wrong_shape_is_named_not_a_crash(backend, tenant, column, value, says) -> None:
    _wrong_value_is_named(backend, tenant, column, value, says)


@pytest.mark.parametrize(("column", "value", "says"), SQLITE_TYPES)
def test_a_ledger_value_of_the_wrong_type_is_named_not_a_crash_on_sqlite(sqlite_only, column, value,
                                                                         says) -> None:
    _wrong_value_is_named(sqlite_only, "t-types", column, value, says)


def _wrong_value_is_named(backend, tenant: str, column: str, value: object, says: str) -> None:  # noqa: ANN001
    fill(backend, tenant)
    make_hold(backend, tenant, name="h", actor="a", user_id="u1")
    tamper_entry(backend, tenant, column, value)
    report = backend.ledger.verify(tenant)
    assert not report.ok
    # Named by its number, or by its place in the chain where the number itself is what was changed.
    named = "ledger entry at position" if column == "number" else "ledger entry 1"
    assert any(says in p and p.startswith(named) for p in report.problems), report.problems
    # The other entries are still checked: the hold after it is read, the items are compared.
    assert report.entries == 2 and report.items_checked == 6


def test_blob_bytes_replaced_by_text_are_named_not_a_crash(backend, tenant) -> None:
    fill(backend, tenant)
    item = backend.archive.items(tenant, "u1")[0]
    with backend.db.engine.begin() as conn:
        if backend.db.is_sqlite:  # a BLOB column of SQLite takes text
            conn.execute(text("UPDATE blobs SET data = 'forged' WHERE sha256 = :s"), {"s": item.sha256})
            says = "its bytes were replaced by a str"
        else:
            conn.execute(text("UPDATE blobs SET data = 'forged'::bytea WHERE sha256 = :s"), {"s": item.sha256})
            says = "its bytes were changed"
    problems = backend.ledger.verify(tenant).problems
    assert any(f"item {item.id}" in p and says in p for p in problems), problems


def test_item_digest_that_is_not_hex_is_named(backend, tenant) -> None:
    ids = fill(backend, tenant)
    with backend.db.engine.begin() as conn:
        conn.execute(text("UPDATE items SET sha256 = 'zz' WHERE id = :i"), {"i": ids[0]})
    problems = backend.ledger.verify(tenant).problems
    assert any(f"item {ids[0]}" in p and "digest was changed" in p for p in problems), problems


def test_audit_trail_lists_an_entry_whose_detail_is_not_json_as_text(backend, tenant) -> None:
    fill(backend, tenant)
    tamper_entry(backend, tenant, "detail", "not json")
    assert [e.detail for e in backend.ledger.entries(tenant) if e.number == 1] == ["not json"]
