"""Holds, retention and every deletion path: a held item survives them all; the precedence rules hold."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tenantry.archive.compliance import PURGES, PURGES_KEEP_DAYS
from tenantry.archive.results import DeletionCounts, RetentionCounts
from tenantry.archive.service import WHATSAPP_FOLDER
from tenantry.core.errors import Invalid
from tests.factories.archive import NOW, deliver_item, make_hold, make_policy


def deliver(backend, tenant: str, user: str, n: int, *, days_ago: int = 1, kind: str = "chat",  # noqa: ANN001
            folder: str = WHATSAPP_FOLDER) -> int:
    return deliver_item(backend, tenant, user, n, sent_at=NOW - timedelta(days=days_ago), kind=kind, folder=folder)


def folders_of(backend, tenant: str, user: str) -> dict[int, str]:  # noqa: ANN001
    return {i.id: i.folder for i in backend.archive.items(tenant, user)}


# -- holds --------------------------------------------------------------------------------------------


def test_deleting_a_held_item_moves_it_to_purges_and_an_unheld_one_is_gone(backend, tenant) -> None:
    held = deliver(backend, tenant, "u1", 1)
    free = deliver(backend, tenant, "u2", 1)
    make_hold(backend, tenant, user_id="u1")
    assert backend.compliance.delete_items(tenant, [held], "u1", now=NOW) == DeletionCounts(moved_to_purges=1,
                                                                                            deleted=0)
    assert backend.compliance.delete_items(tenant, [free], "u2", now=NOW) == DeletionCounts(moved_to_purges=0,
                                                                                            deleted=1)
    assert folders_of(backend, tenant, "u1") == {held: PURGES}
    assert backend.archive.count(tenant, "u2") == 0
    assert backend.archive.read(tenant, held).startswith(b"Message-ID: <u1-1@t>")


def test_a_time_based_hold_covers_items_younger_than_its_days(backend, tenant) -> None:
    recent = deliver(backend, tenant, "u1", 1, days_ago=10)
    old = deliver(backend, tenant, "u1", 2, days_ago=400)
    make_hold(backend, tenant, name="One year", user_id="u1", duration_days=365)
    p = backend.compliance.protection(tenant, [recent, old], now=NOW)
    assert p[recent].held and not p[old].held


def test_retention_never_deletes_a_held_item_and_runs_idempotently(backend, tenant) -> None:
    a = deliver(backend, tenant, "u1", 1, days_ago=100)
    b = deliver(backend, tenant, "u2", 1, days_ago=100)
    deliver(backend, tenant, "u2", 2, days_ago=5)
    make_policy(backend, tenant, name="Delete after 30 days", delete_after_days=30)
    make_hold(backend, tenant, name="Keep u1", user_id="u1")
    first = backend.compliance.apply_retention(tenant, now=NOW)
    assert first == RetentionCounts(deleted=1, purged_from_purges=0, kept_by_hold=1)
    assert backend.archive.count(tenant, "u1") == 1 and backend.archive.count(tenant, "u2") == 1
    assert backend.compliance.apply_retention(tenant, now=NOW) == RetentionCounts(deleted=0, purged_from_purges=0,
                                                                                  kept_by_hold=1)
    assert a in folders_of(backend, tenant, "u1") and b not in folders_of(backend, tenant, "u2")


def test_removing_a_held_mailbox_keeps_its_items_as_an_inactive_mailbox(backend, tenant) -> None:
    kept = deliver(backend, tenant, "u1", 1)
    deliver(backend, tenant, "u2", 1)
    make_hold(backend, tenant, name="Departed employee", user_id="u1")
    assert backend.compliance.remove_mailbox(tenant, "u1", "admin", now=NOW) == DeletionCounts(moved_to_purges=1,
                                                                                               deleted=0)
    assert backend.compliance.remove_mailbox(tenant, "u2", "admin", now=NOW) == DeletionCounts(moved_to_purges=0,
                                                                                               deleted=1)
    assert folders_of(backend, tenant, "u1") == {kept: PURGES}
    assert [m.user_id for m in backend.archive.mailboxes(tenant)] == ["u1"]


def test_releasing_a_hold_lets_retention_purge_what_was_deleted(backend, tenant) -> None:
    item = deliver(backend, tenant, "u1", 1)
    hold = make_hold(backend, tenant, name="Short matter", user_id="u1")
    backend.compliance.delete_items(tenant, [item], "u1", now=NOW)
    later = NOW + timedelta(days=PURGES_KEEP_DAYS + 1)
    assert backend.compliance.apply_retention(tenant, now=later).purged_from_purges == 0  # still held
    backend.compliance.release_hold(tenant, hold.id, "admin")
    assert backend.compliance.apply_retention(tenant, now=later).purged_from_purges == 1
    assert backend.archive.count(tenant, "u1") == 0


def test_reimport_neither_revives_nor_replaces_a_held_deleted_item(backend, tenant) -> None:
    item = deliver(backend, tenant, "u1", 1)
    make_hold(backend, tenant, name="Matter", user_id="u1")
    backend.compliance.delete_items(tenant, [item], "u1", now=NOW)
    again = deliver(backend, tenant, "u1", 1)  # the connector delivers the same message again
    assert again == item and folders_of(backend, tenant, "u1") == {item: PURGES}


def test_hold_needs_exactly_one_scope(backend, tenant) -> None:
    with pytest.raises(Invalid):
        backend.compliance.place_hold(tenant, name="x", actor="a")
    with pytest.raises(Invalid):
        backend.compliance.place_hold(tenant, name="x", actor="a", user_id="u1", query="invoice")


# -- retention precedence ------------------------------------------------------------------------------


def test_retention_wins_over_deletion(backend, tenant) -> None:
    item = deliver(backend, tenant, "u1", 1, days_ago=50)
    backend.compliance.create_policy(tenant, name="Delete 30", actor="a", delete_after_days=30)
    backend.compliance.create_policy(tenant, name="Keep 90", actor="a", retain_days=90)
    p = backend.compliance.protection(tenant, [item], now=NOW)[item]
    assert p.retain_until == NOW - timedelta(days=50) + timedelta(days=90)
    assert p.delete_at == p.retain_until  # deletion waits for retention to end
    assert backend.compliance.apply_retention(tenant, now=NOW).deleted == 0
    # A user's delete during retention keeps the item in Purges.
    assert backend.compliance.delete_items(tenant, [item], "u1", now=NOW).moved_to_purges == 1


def test_the_longest_retention_wins(backend, tenant) -> None:
    item = deliver(backend, tenant, "u1", 1, days_ago=0)
    backend.compliance.create_policy(tenant, name="Keep 1y", actor="a", retain_days=365)
    backend.compliance.create_policy(tenant, name="Keep 7y", actor="a", retain_days=7 * 365)
    p = backend.compliance.protection(tenant, [item], now=NOW)[item]
    assert p.retain_until == NOW + timedelta(days=7 * 365)


def test_explicit_inclusion_wins_over_implicit_for_deletion(backend, tenant) -> None:
    item = deliver(backend, tenant, "u1", 1, days_ago=0)
    backend.compliance.create_policy(tenant, name="Org: delete after 30", actor="a", delete_after_days=30)
    backend.compliance.create_policy(tenant, name="u1 calls: delete after 400", actor="a", delete_after_days=400,
                                     users=["u1"])
    p = backend.compliance.protection(tenant, [item], now=NOW)[item]
    assert p.delete_at == NOW + timedelta(days=400)


def test_the_shortest_deletion_wins_among_equals(backend, tenant) -> None:
    item = deliver(backend, tenant, "u1", 1, days_ago=0, kind="call")
    backend.compliance.create_policy(tenant, name="Calls 60", actor="a", delete_after_days=60, kinds=["call"])
    backend.compliance.create_policy(tenant, name="u1 90", actor="a", delete_after_days=90, users=["u1"])
    p = backend.compliance.protection(tenant, [item], now=NOW)[item]
    assert p.delete_at == NOW + timedelta(days=60)


def test_a_hold_wins_over_every_policy(backend, tenant) -> None:
    item = deliver(backend, tenant, "u1", 1, days_ago=100)
    make_policy(backend, tenant, name="Delete 1", delete_after_days=1)
    make_hold(backend, tenant, name="Hold", user_id="u1")
    assert backend.compliance.apply_retention(tenant, now=NOW).deleted == 0
    assert backend.archive.count(tenant, "u1") == 1 and item


def test_policies_scoped_to_folders_and_kinds_apply_only_there(backend, tenant) -> None:
    chat = deliver(backend, tenant, "u1", 1, days_ago=40)
    call = deliver(backend, tenant, "u1", 2, days_ago=40, kind="call")
    other = deliver(backend, tenant, "u1", 3, days_ago=40, folder="Inbox")
    backend.compliance.create_policy(tenant, name="WA calls", actor="a", delete_after_days=30,
                                     folders=[WHATSAPP_FOLDER], kinds=["call"])
    backend.compliance.apply_retention(tenant, now=NOW)
    assert set(folders_of(backend, tenant, "u1")) == {chat, other} and call
