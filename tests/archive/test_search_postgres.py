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


def test_a_table_made_before_hasmissingmedia_gains_the_column_and_keeps_its_rows(pg_engine) -> None:
    """A search table from before issue #10 item 7 (no has_missing_media) is upgraded in place at first use."""
    from tenantry.archive.search_postgres import _TEXT_COLUMNS
    from tenantry.protocols.query.ast import Compare

    table = "search_before_missing_media"
    vectors = ", ".join(f"{column} tsvector NOT NULL" for _, column in _TEXT_COLUMNS.values())
    with pg_engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
        conn.execute(sa.text(
            f"CREATE TABLE {table} (item_id bigint PRIMARY KEY, tenant text NOT NULL, user_id text NOT NULL, "
            "folder text NOT NULL, kind text NOT NULL, source text NOT NULL, sent_at timestamptz NOT NULL, "
            f"size bigint NOT NULL, has_attachment boolean NOT NULL, {vectors})"))
        conn.execute(sa.text(
            f"INSERT INTO {table} VALUES (1, 'contoso', 'u1', 'f', 'chat', 's', now(), 10, true, "
            + ", ".join("to_tsvector('simple', 'old')" for _ in _TEXT_COLUMNS) + ")"))
    idx = PostgresSearchIndex(pg_engine, table=table)
    try:
        idx.add([doc(2, "u1", has_missing_media=True)])
        assert idx.item_ids("contoso", Compare("hasmissingmedia", "=", True)) == {2}
        assert idx.item_ids("contoso", Compare("hasmissingmedia", "=", False)) == {1}
        assert idx.item_ids("contoso", Term("old")) == {1}
    finally:
        idx.clear()
        idx.close()
        with pg_engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
