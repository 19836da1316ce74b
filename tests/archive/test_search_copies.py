"""A message delivered to several mailboxes is one index document with its copies in it (issue #16), and
searches still answer per copy: scoping to mailboxes, ``mailbox:`` anywhere in a query, counts, per-mailbox
counts, pages, removing one copy or moving it to another folder — on both backends (PostgreSQL keeps a row per
copy). The expected answers come from the brute-force evaluation of test_search_index.py, per copy.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tenantry.archive.search import IndexDocument, Order, SearchIndex, each_copy
from tenantry.archive.search_tantivy import SLOTS
from tenantry.protocols.query.ast import And, Keyword, MatchAll, Not, Or, Term
from tests.archive.test_search_index import _matches, _new_index, _random_doc, _random_query, doc

USERS = [f"u{n}" for n in range(1, 13)]


@pytest.fixture(params=["tantivy", "postgres"])
def any_fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SearchIndex]:
    idx = _new_index(request, tmp_path / "index", "search_copies")
    yield idx
    idx.close()


def _messages(rng: random.Random, count: int) -> list[IndexDocument]:
    """Messages with 1–12 copies (more than a document's slots), to distinct mailboxes, ids interleaved."""
    out = []
    next_id = 1
    for _ in range(count):
        base = _random_doc(rng, next_id)
        owners = rng.sample(USERS, rng.choice([1, 1, 2, 3, 5, SLOTS + 3]))
        copies = tuple((next_id + 1 + n, user) for n, user in enumerate(owners[1:]))
        out.append(replace(base, user_id=owners[0], copies=copies))
        next_id += len(owners) + rng.randint(0, 2)
    return out


def _expected(copies: list[IndexDocument], tenant: str, node, users) -> set[int]:  # type: ignore[no-untyped-def]
    return {c.item_id for c in copies
            if c.tenant == tenant and (users is None or c.user_id in users) and _matches(c, node)}


def test_each_copy_of_a_message_is_found_as_its_own_item(any_fresh) -> None:
    message = doc(1, "u1", body="quarterly figures", copies=((2, "u2"), (3, "u3")))
    any_fresh.add([message])
    any_fresh.commit()
    assert any_fresh.item_ids("contoso", Term("quarterly")) == {1, 2, 3}
    assert any_fresh.item_ids("contoso", Term("quarterly"), ["u2", "u9"]) == {2}
    assert any_fresh.count("contoso", Term("quarterly")) == 3
    assert any_fresh.count_by_user("contoso", Term("quarterly")) == {"u1": 1, "u2": 1, "u3": 1}
    assert any_fresh.item_ids("contoso", Not(Keyword("mailbox", "u1"))) == {2, 3}
    assert [h.item_id for h in any_fresh.search("contoso", MatchAll(), order=Order.NEWEST).hits] == [3, 2, 1]


def test_removing_one_copy_leaves_the_other_copies_searchable(any_fresh) -> None:
    any_fresh.add([doc(1, "u1", body="contract", copies=((2, "u2"), (3, "u3")))])
    any_fresh.commit()
    any_fresh.delete([2])
    any_fresh.commit()
    assert any_fresh.item_ids("contoso", Term("contract")) == {1, 3}
    any_fresh.delete([1])
    any_fresh.delete([3])   # in the same batch as the delete before it
    any_fresh.commit()
    assert any_fresh.item_ids("contoso", MatchAll()) == set()


def test_moving_one_copy_to_purges_rewrites_only_that_copy(any_fresh) -> None:
    any_fresh.add([doc(1, "u1", body="contract", copies=((2, "u2"), (3, "u3")))])
    any_fresh.add([doc(2, "u2", body="contract", folder="Purges")])   # before the first commit
    any_fresh.commit()
    any_fresh.add([doc(3, "u3", body="contract", folder="Purges")])   # after it
    any_fresh.commit()
    assert any_fresh.item_ids("contoso", Keyword("folder", "purges")) == {2, 3}
    assert any_fresh.item_ids("contoso", Keyword("folder", "whatsapp archiver")) == {1}
    assert any_fresh.count("contoso", Term("contract")) == 3


def test_random_queries_on_messages_with_copies_find_exactly_each_matching_copy(any_fresh) -> None:
    rng = random.Random(20261130)
    messages = _messages(rng, 160)
    any_fresh.add(messages[:90])
    any_fresh.commit()
    any_fresh.add(messages[60:])      # a re-delivery of some messages
    # Retention deletes some copies, some copies move to Purges (indexed again alone).
    copies = {c.item_id: c for c in each_copy(messages)}
    removed = rng.sample(sorted(copies), 40)
    any_fresh.delete(removed[:20])
    any_fresh.commit()
    any_fresh.delete(removed[20:])
    moved = [replace(copies[i], folder="Purges") for i in rng.sample(sorted(set(copies) - set(removed)), 30)]
    any_fresh.add(moved)
    any_fresh.commit()
    for item_id in removed:
        del copies[item_id]
    copies.update((c.item_id, c) for c in moved)
    live = list(copies.values())
    checked = 0
    for n in range(300):
        node = _random_query(rng, 3)
        if n % 5 == 0:   # a mailbox: under OR or NOT, where a copy and its message differ
            node = rng.choice([Or((node, Keyword("mailbox", rng.choice(USERS)))),
                               And((node, Not(Keyword("mailbox", rng.choice(USERS)))))])
        tenant = rng.choice(["contoso", "fabrikam"])
        users = rng.choice([None, None, ["u1"], ["u2", "u4", "u11"]])
        expected = _expected(live, tenant, node, users)
        assert any_fresh.item_ids(tenant, node, users) == expected, node
        assert any_fresh.count(tenant, node, users) == len(expected), node
        by_user: dict[str, int] = {}
        for c in live:
            if c.item_id in expected:
                by_user[c.user_id] = by_user.get(c.user_id, 0) + 1
        assert any_fresh.count_by_user(tenant, node, users) == by_user, node
        if n % 10 == 0:   # paging by 7 meets every copy once, in both orders
            for order in (Order.NEWEST, Order.RELEVANCE):
                paged = []
                for offset in range(0, len(expected) + 7, 7):
                    result = any_fresh.search(tenant, node, users=users, limit=7, offset=offset, order=order)
                    assert result.total == len(expected)
                    paged += [h.item_id for h in result.hits]
                assert sorted(paged) == sorted(expected), node
        checked += bool(expected)
    assert checked > 90
