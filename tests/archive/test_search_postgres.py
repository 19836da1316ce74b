"""What is particular to the PostgreSQL search index. The contract both indexes keep — every node of the query
tree, tenant isolation, mailbox scoping, replacement, ordering, a brute-force comparison — runs on it from
``test_search_index.py`` (its ``index`` and ``any_fresh`` fixtures take both backends). Skips, saying why,
where no PostgreSQL server answers (``TENANTRY_TEST_PG``).
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tenantry.archive.search import UnsupportedQuery
from tenantry.archive.search_postgres import PostgresSearchIndex, indexed_text, words
from tenantry.archive.search_tantivy import analyse
from tenantry.protocols.query.ast import Near, Term
from tests.archive.test_search_index import CORPUS, doc


@pytest.fixture
def fresh(pg_engine: sa.Engine) -> Iterator[PostgresSearchIndex]:
    idx = PostgresSearchIndex(pg_engine, table="search_fresh")
    idx.clear()
    yield idx
    idx.close()


def test_text_is_split_into_words_as_tantivy_splits_it() -> None:
    assert words("Anna.Schmidt@Contoso.com +49 170") == ["anna", "schmidt", "contoso", "com", "49", "170"]
    assert words("東京タワー 🎉") == ["東", "京", "タ", "ワ", "ー", "emoji1f389"]
    assert indexed_text("!!! ... ???") == ""
    assert words("a" * 256) == []
    for d in CORPUS:
        for value in (d.sender, d.to, d.cc, d.participants, d.subject, d.body, d.attachment_names, d.chat):
            assert words(value) == analyse(value), value


def test_near_beyond_postgresqls_phrase_distance_is_refused(fresh) -> None:
    with pytest.raises(UnsupportedQuery):
        fresh.count("contoso", Near(Term("a"), Term("b"), 100_000))


def test_changes_are_visible_at_once_without_a_commit(fresh) -> None:
    fresh.add([doc(1, "u1", body="keep"), doc(2, "u1", body="keep"), doc(3, "u1", body="keep")])
    assert fresh.item_ids("contoso", Term("keep")) == {1, 2, 3}
    fresh.delete([2, 3])
    fresh.delete([])
    assert fresh.item_ids("contoso", Term("keep")) == {1}
    assert fresh.max_item_id("contoso") == 1


def test_a_second_instance_on_the_same_database_sees_the_same_items(pg_engine, fresh) -> None:
    fresh.add([doc(1, "u1", body="shared")])
    other = PostgresSearchIndex(pg_engine, table="search_fresh")
    assert other.item_ids("contoso", Term("shared")) == {1}
    other.add([doc(2, "u1", body="shared")])
    assert fresh.item_ids("contoso", Term("shared")) == {1, 2}


def test_bad_table_names_and_other_databases_are_refused(pg_engine) -> None:
    with pytest.raises(ValueError):
        PostgresSearchIndex(pg_engine, table="x; drop table y")
    with pytest.raises(ValueError):
        PostgresSearchIndex(sa.create_engine("sqlite://"))


def test_a_text_too_big_for_one_tsvector_is_indexed_up_to_postgresqls_limit(fresh) -> None:
    rng = random.Random(7)
    huge = " ".join(f"w{rng.getrandbits(40):x}" for _ in range(150_000)) + " trailingword"
    fresh.add([doc(1, "u1", body="start " + huge), doc(2, "u1", body="small")])
    assert fresh.item_ids("contoso", Term("start")) == {1}
    assert fresh.item_ids("contoso", Term("small")) == {2}
    assert fresh.item_ids("contoso", Term("trailingword")) == set()   # cut: beyond what one tsvector holds
