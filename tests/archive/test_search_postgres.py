"""What is particular to the PostgreSQL search index. The contract both indexes keep — every node of the query
tree, tenant isolation, mailbox scoping, replacement, ordering, a brute-force comparison — runs on it from
``test_search_index.py`` (its ``index`` and ``any_fresh`` fixtures take both backends). Skips, saying why,
where no PostgreSQL server answers (``TENANTRY_TEST_PG``).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from tenantry.archive.search import UnsupportedQuery
from tenantry.archive.search_postgres import PostgresSearchIndex, _Compiled, indexed_text, words
from tenantry.archive.search_tantivy import analyse
from tenantry.protocols.query.ast import And, MatchAll, Near, Not, Or, Phrase, Term
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
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}, {table}_by_tenant"))
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
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}, {table}_by_tenant"))


# -- issue #16: the default fields in one vector, the tenant and mailbox as lexemes ---------------------------


def test_a_tenant_whose_name_begins_another_tenants_name_sees_only_its_own_items(fresh) -> None:
    odd = "o'brien \\ co:x"
    fresh.add([doc(1, "u1", body="word"), doc(2, "u1", tenant="contoso2", body="word"),
               doc(3, "u'1 x", tenant=odd, body="word"), doc(4, "u1", tenant="contos", body="word")])
    for tenant, expected in (("contoso", {1}), ("contoso2", {2}), (odd, {3}), ("contos", {4}), ("cont", set())):
        assert fresh.item_ids(tenant, Term("word")) == expected, tenant
        assert fresh.item_ids(tenant, MatchAll()) == expected, tenant
        assert fresh.count(tenant, Not(Term("word"))) == 0
    assert fresh.item_ids(odd, Term("word"), users=["u'1 x"]) == {3}
    assert fresh.item_ids(odd, Term("word"), users=["u'1"]) == set()
    assert fresh.item_ids("contoso", Term("word"), users=[]) == set()


def test_a_phrase_or_near_does_not_join_the_end_of_one_field_to_the_start_of_the_next(fresh) -> None:
    # ALL_WORDS puts the default fields one after the other: the row is checked field by field for order
    fresh.add([doc(1, "u1", subject="the quarterly", body="report follows"),
               doc(2, "u1", body="the quarterly report follows")])
    assert fresh.item_ids("contoso", Phrase("quarterly report")) == {2}
    assert fresh.item_ids("contoso", Term("quarterly report")) == {2}
    assert fresh.item_ids("contoso", Near(Term("quarterly"), Term("report"), 0)) == {2}
    assert fresh.item_ids("contoso", And((Term("quarterly"), Term("report")))) == {1, 2}
    assert fresh.item_ids("contoso", Not(Phrase("quarterly report"))) == {1}
    assert fresh.item_ids("contoso", Or((Phrase("quarterly report"), Term("nothing")))) == {2}


def test_a_word_in_a_default_field_is_found_in_that_field_only_when_asked_for_it(fresh) -> None:
    fresh.add([doc(1, "u1", subject="budget"), doc(2, "u1", body="budget"), doc(3, "u1", sender="budget")])
    assert fresh.item_ids("contoso", Term("budget")) == {1, 2}          # from: is not a default field
    assert fresh.item_ids("contoso", Term("budget", field="subject")) == {1}
    assert fresh.item_ids("contoso", Term("budget", field="from")) == {3}
    assert fresh.item_ids("contoso", Not(Term("budget", field="body"))) == {1, 3}
    assert fresh.item_ids("contoso", Term("straße")) == set()
    fresh.add([doc(4, "u1", chat="Straße 東京")])
    assert fresh.item_ids("contoso", Term("STRASSE")) == set()           # no folding, as in tantivy
    assert fresh.item_ids("contoso", Term("straße")) == {4}
    assert fresh.item_ids("contoso", Or((Term("straße"), Term("budget", field="subject")))) == {1, 4}
    assert fresh.item_ids("contoso", And((Term("東"), Not(Term("京"))))) == set()


def _plan(idx: PostgresSearchIndex, sql: str, node, users=None) -> str:  # noqa: ANN001
    compiled = _Compiled()
    scoped = idx._scoped("contoso", node, users, compiled)
    with idx._connect() as conn:
        return "\n".join(conn.execute(sa.text("EXPLAIN " + sql.format(table=idx.table, where=scoped.on_table(),
                                                                       source=idx._from(scoped))),
                                       compiled.params).scalars())


def test_a_word_is_found_through_the_one_words_index_alone(pg_engine, fresh) -> None:
    fresh.add([doc(i, "u1", body="common" if i % 2 else "other") for i in range(1, 201)])
    plan = _plan(fresh, "SELECT item_id FROM {table} WHERE {where}", Term("common"))
    assert "search_fresh_words" in plan and "Filter" not in plan, plan
    assert fresh.count("contoso", Term("common")) == 100


# -- issue #16, goal 3: counts on the narrow table -------------------------------------------------------------


def test_a_count_whose_words_say_it_all_reads_the_narrow_table_and_one_that_needs_the_row_reads_the_table(
        fresh) -> None:
    fresh.add([doc(i, "u1", body="the quarterly report" if i % 3 else "report quarterly") for i in range(1, 61)])
    for node in (Term("quarterly"), And((Term("quarterly"), Not(Term("x")))), Term("quar", prefix=True), MatchAll()):
        plan = _plan(fresh, "SELECT count(*) FROM {source}", node, users=["u1"])
        assert "search_fresh_by_tenant_words" in plan and "Filter" not in plan, plan
    plan = _plan(fresh, "SELECT count(*) FROM {source}", Phrase("quarterly report"))
    assert "search_fresh_by_tenant" not in plan and "search_fresh_words" in plan, plan
    assert fresh.count("contoso", Term("quarterly")) == 60
    assert fresh.count("contoso", Phrase("quarterly report")) == 40
    assert fresh.search("contoso", Term("quarterly"), limit=5).total == 60
    assert fresh.count("contoso", MatchAll(), users=["u2"]) == 0


def test_a_search_runs_in_one_process_without_jit_and_leaves_the_connections_settings_alone(pg_engine,
                                                                                         fresh) -> None:
    with fresh._connect() as conn:
        inside = conn.execute(sa.text("SELECT current_setting('max_parallel_workers_per_gather'), "
                                      "current_setting('jit'), current_setting('enable_seqscan')")).one()
    assert tuple(inside) == ("0", "off", "off")
    with pg_engine.connect() as conn:           # the pool's connection again, its transaction over
        after = conn.execute(sa.text("SELECT current_setting('max_parallel_workers_per_gather'), "
                                     "current_setting('enable_seqscan')")).one()
    assert tuple(after) != ("0", "off")


def test_a_word_is_counted_by_its_lexeme_in_the_tenant_alone_and_a_not_or_matchall_by_the_tenants_mark() -> None:
    idx = PostgresSearchIndex.__new__(PostgresSearchIndex)
    for node, marked in ((Term("ok"), False), (And((Term("ok"), Not(Term("x")))), False),
                         (Or((Term("ok"), Term("in", prefix=True))), False), (Not(Term("ok")), True),
                         (MatchAll(), True), (Or((Term("ok"), Not(Term("x")))), True)):
        compiled = _Compiled()
        scoped = idx._scoped("contoso", node, None, compiled)
        assert scoped.narrow is not None, node
        narrow = compiled.params[scoped.narrow.split(":")[1].split(" ")[0]]
        assert ("'7:contoso:_t:contoso'" in narrow) == marked, (node, narrow)
        assert "'ok'" not in narrow and "'_t:" not in narrow, narrow     # every lexeme behind the tenant


def test_a_tenant_name_holding_colons_cannot_read_another_tenants_marks_as_its_words(fresh) -> None:
    fresh.add([doc(1, "b:c", tenant="a", body="word"), doc(2, "u1", tenant="a:_u:b", body="other")])
    assert fresh.item_ids("a:_u:b", Term("c")) == set()            # '1:a:_u:b:c' is not '6:a:_u:b' + 'c'
    assert fresh.item_ids("a:_u:b", Term("other")) == {2}
    assert fresh.item_ids("a", Term("word"), users=["b:c"]) == {1}
    assert fresh.item_ids("a", MatchAll()) == {1}


def test_the_narrow_table_follows_every_add_replacement_delete_and_clear(pg_engine, fresh) -> None:
    fresh.add([doc(1, "u1", body="alpha"), doc(2, "u1", body="alpha"), doc(3, "u2", body="beta")])
    fresh.add([doc(2, "u1", body="beta")])                             # replaced: alpha no more
    fresh.delete([3])
    assert fresh.item_ids("contoso", Term("alpha")) == {1}
    assert fresh.item_ids("contoso", Term("beta")) == {2}
    assert fresh.item_ids("contoso", Term("beta"), users=["u2"]) == set()
    assert _narrow_rows(pg_engine, fresh) == [1, 2]
    fresh.clear()
    assert _narrow_rows(pg_engine, fresh) == []


def _narrow_rows(engine: sa.Engine, idx: PostgresSearchIndex) -> list[int]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text(f"SELECT item_id FROM {idx.narrow} ORDER BY item_id")).scalars())


@contextmanager
def _scratch_table(engine: sa.Engine, table: str) -> Iterator[str]:
    """``table`` (and its narrow table) dropped before the test and after it."""
    def drop() -> None:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}, {table}_by_tenant"))
    drop()
    try:
        yield table
    finally:
        drop()


def test_a_narrow_row_keeps_its_words_out_of_line_whatever_the_texts_length(pg_engine) -> None:
    with _scratch_table(pg_engine, "search_narrow_width") as table:
        idx = PostgresSearchIndex(pg_engine, table=table)
        idx.add([doc(i, "u1", body=" ".join(f"w{i}x{j}" for j in range(i % 150)), participants="Anna Schmidt")
                 for i in range(1, 1001)])
        with pg_engine.connect() as conn:
            narrow, table_size = conn.execute(sa.text(
                f"SELECT pg_relation_size('{idx.narrow}'), pg_relation_size('{table}')")).one()
        assert narrow / 1000 < 150, narrow / 1000      # bytes a row, pages included; inline words made it ~900
        assert table_size > 4 * narrow
        assert idx.count("contoso", Term("w899x148")) == 1
        assert idx.count("contoso", Term("anna")) == 1000


def test_a_table_made_before_the_narrow_table_gets_it_filled_at_first_use(pg_engine) -> None:
    with _scratch_table(pg_engine, "search_before_narrow") as table:
        old = PostgresSearchIndex(pg_engine, table=table)
        old.add([doc(i, "u1" if i % 2 else "u2", body="kept" if i % 3 else "gone") for i in range(1, 31)])
        with pg_engine.begin() as conn:                  # as a table made before issue #16 goal 3 looks
            conn.execute(sa.text(f"DROP TABLE {table}_by_tenant"))
            conn.execute(sa.text(f"CREATE TABLE {table}_narrow (item_id bigint)"))     # 94109d4's, dropped
        upgraded = PostgresSearchIndex(pg_engine, table=table)
        assert upgraded.count("contoso", Term("kept")) == 20
        assert upgraded.item_ids("contoso", Term("gone"), users=["u2"]) == {6, 12, 18, 24, 30}
        assert upgraded.count("contoso", Phrase("kept")) == 20
        assert _narrow_rows(pg_engine, upgraded) == list(range(1, 31))
        with pg_engine.connect() as conn:
            assert conn.execute(sa.text("SELECT to_regclass(:n)"), {"n": f"{table}_narrow"}).scalar_one() is None
        upgraded.add([doc(31, "u1", body="kept")])
        assert PostgresSearchIndex(pg_engine, table=table).count("contoso", Term("kept")) == 21
        with pg_engine.begin() as conn:                  # the table dropped and made again: nothing stale counts
            conn.execute(sa.text(f"DROP TABLE {table}"))
        again = PostgresSearchIndex(pg_engine, table=table)
        assert again.count("contoso", Term("kept")) == 0 and _narrow_rows(pg_engine, again) == []


def test_a_table_made_before_issue_16_gains_the_words_index_and_drops_the_indexes_it_replaces(pg_engine) -> None:
    from tenantry.archive.search_postgres import _TEXT_COLUMNS

    table = "search_before_words"
    vectors = ", ".join(f"{column} tsvector NOT NULL" for _, column in _TEXT_COLUMNS.values())
    with pg_engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}, {table}_by_tenant"))
        conn.execute(sa.text(
            f"CREATE TABLE {table} (item_id bigint PRIMARY KEY, tenant text NOT NULL, user_id text NOT NULL, "
            "folder text NOT NULL, kind text NOT NULL, source text NOT NULL, sent_at timestamptz NOT NULL, "
            f"size bigint NOT NULL, has_attachment boolean NOT NULL, {vectors}, "
            "has_missing_media boolean NOT NULL DEFAULT false)"))
        conn.execute(sa.text(f"CREATE INDEX {table}_tenant_sent ON {table} (tenant, sent_at)"))
        for _, column in _TEXT_COLUMNS.values():
            conn.execute(sa.text(f"CREATE INDEX {table}_{column} ON {table} USING gin ({column})"))
        conn.execute(sa.text(
            f"INSERT INTO {table} VALUES (1, 'contoso', 'u1', 'f', 'chat', 's', now(), 10, true, "
            + ", ".join(f"to_tsvector('simple', '{column} old')" for _, column in _TEXT_COLUMNS.values())
            + ", false)"))
    idx = PostgresSearchIndex(pg_engine, table=table)
    try:
        assert idx.item_ids("contoso", Term("old")) == {1}
        assert idx.item_ids("contoso", Term("body_tsv")) == {1}
        assert idx.item_ids("contoso", Term("from_tsv")) == set()          # from: is not a default field
        assert idx.item_ids("contoso", Term("old"), users=["u1"]) == {1}
        assert idx.item_ids("fabrikam", Term("old")) == set()
        with pg_engine.connect() as conn:
            indexes = set(conn.execute(sa.text("SELECT indexname FROM pg_indexes WHERE tablename = :t"),
                                       {"t": table}).scalars())
        assert indexes == {f"{table}_pkey", f"{table}_words", f"{table}_sent_item", f"{table}_tenant_user",
                           f"{table}_from_tsv", f"{table}_to_tsv", f"{table}_cc_tsv"}
    finally:
        idx.close()
        with pg_engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}, {table}_by_tenant"))


def test_the_default_fields_together_are_cut_to_one_tsvector_body_last(fresh) -> None:
    rng = random.Random(8)

    def noise(n: int) -> str:
        return " ".join(f"w{rng.getrandbits(40):x}" for _ in range(n))

    # each alone fits in a tsvector; together (ALL_WORDS) they would not, and the batch would fail
    fresh.add([doc(1, "u1", participants="firstname " + noise(35_000) + " lastname",
                   body="opening " + noise(35_000) + " closing"), doc(2, "u1", body="small")])
    assert fresh.item_ids("contoso", Term("lastname")) == {1}
    assert fresh.item_ids("contoso", Term("opening")) == {1}
    assert fresh.item_ids("contoso", Term("closing")) == set()         # the body is cut, not the participants
    assert fresh.item_ids("contoso", Term("small")) == {2}
