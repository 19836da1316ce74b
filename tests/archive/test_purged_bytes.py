"""A message's stored bytes go with the last item that points to them: purged by a delete, retention, the expiry of
Purges or a mailbox's removal. Bytes another item (or an export file) still points to stay, also when a delivery of
the same bytes runs beside the purge."""

from __future__ import annotations

import hashlib
import threading
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import delete, insert, select

from tenantry.archive.compliance import PURGES_KEEP_DAYS, drop_bytes
from tenantry.archive.models import Blob, Item
from tenantry.archive.service import WHATSAPP_FOLDER, ArchiveService, Delivery
from tenantry.connectors.models import ExportFile
from tenantry.core.errors import NotFound
from tests.conftest import importing_admin
from tests.factories.archive import NOW, make_hold, make_policy
from tests.factories.connectors import make_connector


def deliver_to(backend, tenant: str, users: list[str], raw: bytes, *, days_ago: int = 1) -> dict[str, int]:  # noqa: ANN001
    """``raw`` (from ``unique_raw``) delivered to each of ``users`` (one stored blob); their item ids."""
    message_id = raw.split(b"<", 1)[1].split(b">", 1)[0].decode()
    sent = NOW - timedelta(days=days_ago)
    backend.archive.deliver(tenant, [Delivery(u, f"{u}@contoso.com", WHATSAPP_FOLDER, raw, message_id, "chat", "test",
                                              sent) for u in users])
    return {u: next(i.id for i in backend.archive.items(tenant, u) if i.message_id == message_id) for u in users}


def stored(backend, raw: bytes) -> bool:  # noqa: ANN001
    try:
        backend.archive.get_blob(hashlib.sha256(raw).hexdigest())
    except NotFound:
        return False
    return True


def unique_raw(label: str) -> bytes:
    """Bytes no other test delivers (the tests share one database, and blobs are shared across tenants), with the
    Message-ID ``<label@t>``."""
    return f"Message-ID: <{label}@t>\r\nSubject: {label}\r\n\r\n{uuid.uuid4()}\r\n".encode()


def test_deleting_the_only_copy_deletes_its_bytes(backend, tenant) -> None:
    raw = unique_raw("only")
    ids = deliver_to(backend, tenant, ["u1"], raw)
    assert stored(backend, raw)
    backend.compliance.delete_items(tenant, [ids["u1"]], "admin", now=NOW)
    assert not stored(backend, raw)


def test_bytes_stay_until_the_last_mailbox_copy_is_purged(backend, tenant) -> None:
    raw = unique_raw("shared")
    ids = deliver_to(backend, tenant, ["u1", "u2"], raw)
    backend.compliance.delete_items(tenant, [ids["u1"]], "admin", now=NOW)
    assert stored(backend, raw)
    assert backend.archive.read(tenant, ids["u2"]) == raw
    backend.compliance.delete_items(tenant, [ids["u2"]], "admin", now=NOW)
    assert not stored(backend, raw)


def test_a_held_items_bytes_stay_in_purges_and_go_when_purges_expire(backend, tenant) -> None:
    raw = unique_raw("held")
    ids = deliver_to(backend, tenant, ["u1"], raw)
    hold = make_hold(backend, tenant, user_id="u1")
    backend.compliance.delete_items(tenant, [ids["u1"]], "admin", now=NOW)
    assert stored(backend, raw) and backend.archive.read(tenant, ids["u1"]) == raw   # in Purges
    backend.compliance.release_hold(tenant, hold.id, "admin")
    counts = backend.compliance.apply_retention(tenant, now=NOW + timedelta(days=PURGES_KEEP_DAYS + 1))
    assert counts.purged_from_purges == 1
    assert not stored(backend, raw)


def test_retention_deletes_the_bytes_of_what_it_deletes_and_keeps_the_rest(backend, tenant) -> None:
    old, recent = unique_raw("old"), unique_raw("recent")
    deliver_to(backend, tenant, ["u1", "u2"], old, days_ago=100)
    deliver_to(backend, tenant, ["u1"], recent, days_ago=5)
    make_policy(backend, tenant, delete_after_days=30)
    assert backend.compliance.apply_retention(tenant, now=NOW).deleted == 2
    assert not stored(backend, old)
    assert stored(backend, recent)


def test_removing_a_mailbox_deletes_the_bytes_only_it_held(backend, tenant) -> None:
    mine, shared = unique_raw("mine"), unique_raw("ours")
    deliver_to(backend, tenant, ["u1"], mine)
    ids = deliver_to(backend, tenant, ["u1", "u2"], shared)
    backend.compliance.remove_mailbox(tenant, "u1", "admin", now=NOW)
    assert not stored(backend, mine)
    assert backend.archive.read(tenant, ids["u2"]) == shared


def test_bytes_another_tenant_still_points_to_stay(backend, tenant) -> None:
    other = new_tenant(backend)
    raw = unique_raw("two-tenants")
    deliver_to(backend, tenant, ["u1"], raw)
    theirs = deliver_to(backend, other, ["u9"], raw)
    backend.compliance.remove_mailbox(tenant, "u1", "admin", now=NOW)
    assert backend.archive.read(other, theirs["u9"]) == raw


def test_bytes_an_export_file_points_to_stay(backend, tenant) -> None:
    """Export files handed in before they were kept on disk are blobs: a message with the same bytes being purged
    does not take them."""
    raw = unique_raw("export-file")
    ids = deliver_to(backend, tenant, ["u1"], raw)
    connector = make_connector(backend, tenant, importing_admin(backend, tenant))
    with backend.db.session() as session:
        session.execute(insert(ExportFile).values(
            id=str(uuid.uuid4()), connector_id=connector, sha256=hashlib.sha256(raw).hexdigest(), filename="chat.txt",
            owner_user_id="u1", received_at=NOW))
    backend.compliance.delete_items(tenant, [ids["u1"]], "admin", now=NOW)
    assert stored(backend, raw)


def test_drop_bytes_deletes_only_what_nothing_points_to(backend, tenant) -> None:
    kept, orphan = unique_raw("kept"), unique_raw("orphan")
    deliver_to(backend, tenant, ["u1"], kept)
    digest = hashlib.sha256(orphan).hexdigest()
    with backend.db.session() as session:
        session.execute(insert(Blob).values(sha256=digest, size=len(orphan), data=orphan))
    with backend.db.session() as session:
        assert drop_bytes(session, [digest, hashlib.sha256(kept).hexdigest(), "0" * 64]) == 1
    assert stored(backend, kept) and not stored(backend, orphan)


def new_tenant(backend) -> str:  # noqa: ANN001
    name = f"t-{uuid.uuid4().hex[:8]}"
    backend.directory.create_tenant(name, name)
    return name


def test_a_delivery_of_the_same_bytes_beside_the_purge_keeps_them(backend, tenant) -> None:
    """Another tenant's copy is delivered in a transaction still open while u1's copy is purged: the purge waits
    for it on the bytes' row alone (no ledger head in common), then sees the new item and keeps the bytes
    (PostgreSQL, where both run at once)."""
    if backend.db.is_sqlite:
        pytest.skip("SQLite: one transaction writes at a time, so the purge cannot run beside the delivery")
    other = new_tenant(backend)
    raw = unique_raw("race")
    first = deliver_to(backend, tenant, ["u1"], raw)["u1"]
    purged = threading.Event()
    errors: list[BaseException] = []

    def purge() -> None:
        try:
            backend.compliance.delete_items(tenant, [first], "admin", now=NOW)
            purged.set()
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)

    with backend.db.session() as session:
        backend.archive._deliver(session, other, [Delivery("u2", "u2@contoso.com", WHATSAPP_FOLDER, raw, "race@t",
                                                           "chat", "test", NOW)], "test")
        worker = threading.Thread(target=purge)
        worker.start()
        # The purge deletes u1's item, then waits on the bytes' row this open delivery has locked.
        assert not purged.wait(1.0)
    worker.join(30)
    assert not errors and purged.is_set()
    assert stored(backend, raw)
    second = next(i.id for i in backend.archive.items(other, "u2") if i.message_id == "race@t")
    assert backend.archive.read(other, second) == raw


def test_a_purge_that_took_the_bytes_first_lets_the_delivery_write_them_again(backend, tenant) -> None:
    """The other order: the purge holds the bytes' row (locked, then deleted) while another tenant's copy is
    delivered; the delivery waits, and stores the bytes anew once the purge has committed."""
    if backend.db.is_sqlite:
        pytest.skip("SQLite: one transaction writes at a time, so the delivery cannot run beside the purge")
    other = new_tenant(backend)
    raw = unique_raw("race-other-order")
    digest = hashlib.sha256(raw).hexdigest()
    first = deliver_to(backend, tenant, ["u1"], raw)["u1"]
    delivered = threading.Event()
    errors: list[BaseException] = []

    def deliver() -> None:
        try:
            backend.archive.deliver(other, [Delivery("u2", "u2@contoso.com", WHATSAPP_FOLDER, raw, "race2@t", "chat",
                                                     "test", NOW)])
            delivered.set()
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)

    with backend.db.session() as session:
        session.execute(delete(Item).where(Item.id == first))
        assert drop_bytes(session, [digest]) == 1
        worker = threading.Thread(target=deliver)
        worker.start()
        assert not delivered.wait(1.0)   # waits on the row the purge deleted
    worker.join(30)
    assert not errors and delivered.is_set()
    with backend.db.session() as session:
        assert session.scalar(select(Blob.size).where(Blob.sha256 == digest)) == len(raw)
    second = next(i.id for i in backend.archive.items(other, "u2") if i.message_id == "race2@t")
    assert backend.archive.read(other, second) == raw


def test_a_mailbox_read_leaves_out_an_item_purged_after_its_row_was_read(backend, tenant, monkeypatch) -> None:
    """A mailbox export reads a page of rows, then their bytes: an item purged in between is gone (not an
    integrity failure, which would say the archive was changed outside Tenantry)."""
    from tenantry.archive import service

    first, second = unique_raw("page-1"), unique_raw("page-2")
    deliver_to(backend, tenant, ["u1"], first, days_ago=2)
    purged = deliver_to(backend, tenant, ["u1"], second, days_ago=1)["u1"]
    monkeypatch.setattr(service, "BLOB_BATCH_BYTES", 1)   # each item's bytes read on their own, after the page
    messages = backend.archive.iter_messages(tenant, "u1")
    assert next(messages)[1] == first      # the page of both rows is read; the second's bytes are not yet
    backend.compliance.delete_items(tenant, [purged], "admin", now=NOW)
    assert list(messages) == []
    assert not stored(backend, second)


def test_reading_a_purged_item_is_not_found(backend, tenant) -> None:
    raw = unique_raw("read-after-purge")
    item = deliver_to(backend, tenant, ["u1"], raw)["u1"]
    assert backend.archive.read(tenant, item) == raw
    backend.compliance.delete_items(tenant, [item], "admin", now=NOW)
    with pytest.raises(NotFound):
        backend.archive.read(tenant, item)


def test_reindexing_skips_items_whose_bytes_are_gone_and_indexes_the_rest(backend, tenant) -> None:
    """The rows are read before their bytes: an item purged in between (here: its bytes deleted under it, as a
    purge between the two reads leaves it) is not indexed, and the others are."""
    kept, gone = unique_raw("reindex-kept"), unique_raw("reindex-gone")
    ids = {**deliver_to(backend, tenant, ["u1"], kept), "gone": deliver_to(backend, tenant, ["u2"], gone)["u2"]}
    with backend.db.session() as session:
        session.execute(delete(Blob).where(Blob.sha256 == hashlib.sha256(gone).hexdigest()))
    assert backend.indexer.reindex(tenant, [ids["u1"], ids["gone"]]) == 1


def paced(monkeypatch, owner: object, name: str, *, after: bool = False) -> tuple[threading.Event, threading.Event]:  # noqa: ANN001
    """``owner.name`` made to stop at its first call (before it runs, or ``after``): the first event is set when it
    is reached, and it goes on when the second is set. Later calls (another thread's) run as they are."""
    reached, go_on = threading.Event(), threading.Event()
    original = getattr(owner, name)

    def stopping(*args: object, **kwargs: object) -> object:
        if reached.is_set():
            return original(*args, **kwargs)
        result = original(*args, **kwargs) if after else None
        reached.set()
        assert go_on.wait(30)
        return result if after else original(*args, **kwargs)

    monkeypatch.setattr(owner, name, staticmethod(stopping) if isinstance(owner, type) else stopping)
    return reached, go_on


def counted(monkeypatch, owner: type, name: str) -> list[object]:  # noqa: ANN001
    """Calls of ``owner.name`` from now on, one entry each."""
    calls: list[object] = []
    original = getattr(owner, name)

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counting)
    return calls


def run_beside(first, second) -> tuple[dict[str, BaseException], bool]:  # noqa: ANN001
    """Starts ``first`` (which stops where ``paced`` made it), then ``second``; lets ``first`` go on once ``second``
    has had time to take its locks; the errors of both, and whether ``second`` was still waiting when ``first``
    went on (what the test is about happened: the two met on a lock)."""
    errors: dict[str, BaseException] = {}

    def call(name: str, fn) -> None:  # noqa: ANN001
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - returned to the test
            errors[name] = exc

    reached, go_on, work = first
    one = threading.Thread(target=call, args=("first", work))
    one.start()
    assert reached.wait(30)
    two = threading.Thread(target=call, args=("second", second))
    two.start()
    two.join(2.0)          # the second waits on a lock the first holds (or is done)
    waited = two.is_alive()
    go_on.set()
    one.join(60)
    two.join(60)
    return errors, waited


def moving_and_purging(backend, tenant: str, monkeypatch, label: str):  # noqa: ANN001, ANN201
    """u1's held message and u2's unheld one, delivered, and a delete of both ready to run: it moves u1's to Purges
    (its ledger entry: the tenant's ledger head), then stops before it purges u2's (``paced``). The bytes of both,
    their item ids, and the delete as ``run_beside`` takes it."""
    from tenantry.archive.compliance import ComplianceService

    held, gone = unique_raw(f"{label}-held"), unique_raw(f"{label}-gone")
    keep = deliver_to(backend, tenant, ["u1"], held)["u1"]
    purge = deliver_to(backend, tenant, ["u2"], gone)["u2"]
    make_hold(backend, tenant, user_id="u1")
    reached, go_on = paced(monkeypatch, ComplianceService, "_purge")
    return held, gone, keep, (reached, go_on,
                              lambda: backend.compliance.delete_items(tenant, [keep, purge], "admin", now=NOW))


def test_a_delete_that_moves_and_purges_beside_a_delivery_of_the_same_bytes_ends_without_deadlock(
        backend, tenant, monkeypatch) -> None:  # noqa: ANN001
    """A delete that moves a held item to Purges (its ledger entry: the tenant's ledger head) and then purges
    another, while u3 of the same tenant receives the purged message's bytes: both finish, the bytes stay."""
    if backend.db.is_sqlite:
        pytest.skip("SQLite: one transaction writes at a time")
    _, gone, _, delete = moving_and_purging(backend, tenant, monkeypatch, "beside-delivery")
    deliveries = counted(monkeypatch, ArchiveService, "_deliver")
    errors, waited = run_beside(delete, lambda: deliver_to(backend, tenant, ["u3"], gone))
    assert errors == {} and waited   # the delivery waited on the ledger's head, before any bytes
    assert len(deliveries) == 1   # no deadlock that PostgreSQL broke by rolling the delivery back for a retry
    assert stored(backend, gone)
    assert backend.archive.read(tenant, next(i.id for i in backend.archive.items(tenant, "u3"))) == gone


def test_removing_a_mailbox_beside_a_delivery_into_it_ends_without_deadlock(backend, tenant, monkeypatch) -> None:
    """The mailbox is locked first: a delivery into it waits there — not on the ledger's head the removal holds
    while it goes on to delete the folders the delivery's items point to — and then makes the mailbox again."""
    if backend.db.is_sqlite:
        pytest.skip("SQLite: one transaction writes at a time")
    from tenantry.archive import ledger

    raw = unique_raw("removed-mailbox")
    deliver_to(backend, tenant, ["u1"], raw)
    before = {m.user_id: m.id for m in backend.archive.mailboxes(tenant)}["u1"]
    again = unique_raw("into-removed-mailbox")
    reached, go_on = paced(monkeypatch, ledger, "append", after=True)   # the removal's purge entry: head held
    deliveries = counted(monkeypatch, ArchiveService, "_deliver")
    errors, waited = run_beside(
        (reached, go_on, lambda: backend.compliance.remove_mailbox(tenant, "u1", "admin", now=NOW)),
        lambda: deliver_to(backend, tenant, ["u1"], again))
    assert errors == {} and waited
    assert len(deliveries) == 1   # it waited for the removal: no deadlock, no retry
    assert {m.user_id: m.id for m in backend.archive.mailboxes(tenant)}["u1"] != before   # made again
    assert not stored(backend, raw)
    assert [backend.archive.read(tenant, i.id) for i in backend.archive.items(tenant, "u1")] == [again]


def test_a_mailbox_read_skips_a_purged_item_whose_id_a_newer_item_took(backend, tenant, monkeypatch) -> None:
    """SQLite gives the highest id again once its item is deleted: the export tells the newer item apart (here the
    same message in another mailbox: the same bytes) by its mailbox, and leaves the purged one out."""
    from tenantry.archive import service

    first, newest = unique_raw("reuse-1"), unique_raw("reuse-2")
    deliver_to(backend, tenant, ["u1"], first, days_ago=2)
    purged = deliver_to(backend, tenant, ["u1"], newest, days_ago=1)["u1"]
    monkeypatch.setattr(service, "BLOB_BATCH_BYTES", 1)
    messages = backend.archive.iter_messages(tenant, "u1")
    assert next(messages)[1] == first
    backend.compliance.delete_items(tenant, [purged], "admin", now=NOW)
    taken = deliver_to(backend, tenant, ["u2"], newest)["u2"]
    assert taken == purged or not backend.db.is_sqlite   # the case this is about (PostgreSQL never reuses an id)
    assert list(messages) == []


def test_two_deletions_that_wait_for_each_other_both_finish(backend, tenant, monkeypatch) -> None:
    """A delete that moves u1's held item to Purges (the ledger's head) and then purges u2's item, beside the removal
    of u2's mailbox (u2's items, then the head): PostgreSQL ends the deadlock by rolling one back, which runs again."""
    if backend.db.is_sqlite:
        pytest.skip("SQLite: one transaction writes at a time")
    held, gone, keep, delete = moving_and_purging(backend, tenant, monkeypatch, "two-deletions")
    errors, waited = run_beside(delete, lambda: backend.compliance.remove_mailbox(tenant, "u2", "admin", now=NOW))
    assert errors == {} and waited
    assert not stored(backend, gone)
    assert backend.archive.read(tenant, keep) == held
    assert "u2" not in {m.user_id for m in backend.archive.mailboxes(tenant)}


def test_delivering_a_message_again_repairs_its_missing_bytes(backend, tenant) -> None:
    """The mailbox already holds the message (nothing new is written), but its bytes are gone: they are stored
    again."""
    raw = unique_raw("repaired")
    item = deliver_to(backend, tenant, ["u1"], raw)["u1"]
    with backend.db.session() as session:
        session.execute(delete(Blob).where(Blob.sha256 == hashlib.sha256(raw).hexdigest()))
    assert deliver_to(backend, tenant, ["u1"], raw)["u1"] == item
    assert backend.archive.read(tenant, item) == raw
