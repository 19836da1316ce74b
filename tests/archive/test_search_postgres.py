"""The PostgreSQL search index answers like the embedded one: every node of the query tree, tenant isolation,
mailbox scoping, deletion, replacement and ordering, on the corpus of ``test_search_index.py`` and against its
brute-force evaluation. Skips, saying why, where no PostgreSQL server answers (``TENANTRY_TEST_PG``).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from tenantry.archive.search import UnsupportedQuery
from tenantry.archive.search_postgres import PostgresSearchIndex, indexed_text, words
from tenantry.archive.search_tantivy import analyse
from tenantry.protocols.query.ast import And, Compare, Keyword, MatchAll, Near, Node, Not, Or, Phrase, Range, Term
from tests.archive.test_search_index import (
    ALL,
    CORPUS,
    DAY,
    T0,
    _matches,
    _random_doc,
    _random_query,
    doc,
)
from tests.conftest import _pg_database


@pytest.fixture(scope="module")
def engine() -> Iterator[sa.Engine]:
    gen = _pg_database()
    url = next(gen)
    eng = sa.create_engine(url)
    try:
        yield eng
    finally:
        eng.dispose()
        for _ in gen:
            pass


@pytest.fixture(scope="module")
def index(engine: sa.Engine) -> Iterator[PostgresSearchIndex]:
    idx = PostgresSearchIndex(engine)
    idx.add(CORPUS)
    idx.commit()
    yield idx
    idx.close()


@pytest.fixture
def fresh(engine: sa.Engine) -> Iterator[PostgresSearchIndex]:
    idx = PostgresSearchIndex(engine, table="search_fresh")
    idx.clear()
    yield idx
    idx.close()


def hits(index: PostgresSearchIndex, node: Node, tenant: str = "contoso",
         users: Sequence[str] | None = None) -> set[int]:
    found = index.item_ids(tenant, node, users)
    # count, a page and the full id set must agree
    assert index.count(tenant, node, users) == len(found)
    assert {h.item_id for h in index.search(tenant, node, users=users, limit=100).hits} == found
    assert {h.item_id for h in index.search(tenant, node, users=users, limit=100, order="newest").hits} == found
    return found


# -- words --------------------------------------------------------------------------------------


def test_text_is_split_into_words_as_tantivy_splits_it() -> None:
    assert words("Anna.Schmidt@Contoso.com +49 170") == ["anna", "schmidt", "contoso", "com", "49", "170"]
    assert words("東京タワー 🎉") == ["東", "京", "タ", "ワ", "ー", "emoji1f389"]
    assert indexed_text("!!! ... ???") == ""
    assert words("a" * 256) == []
    for d in CORPUS:
        for value in (d.sender, d.to, d.cc, d.participants, d.subject, d.body, d.attachment_names, d.chat):
            assert words(value) == analyse(value), value


def test_word_matches_case_insensitively_in_default_fields(index) -> None:
    assert hits(index, Term("report")) == {1, 2}
    assert hits(index, Term("REPORT")) == {1, 2}
    assert hits(index, Term("finance")) == {1, 2, 4}
    assert hits(index, Term("rechnung")) == {4}
    assert hits(index, Term("김민준")) == {5, 6}


def test_no_stemming_no_accent_folding_no_stop_words(index) -> None:
    assert hits(index, Term("reports")) == {10}
    assert hits(index, Term("invoice")) == {3}
    assert hits(index, Term("muller")) == set()
    assert hits(index, Term("the")) == {1, 3, 7, 8, 15}


def test_fields(index) -> None:
    assert hits(index, Term("carol")) == set()
    assert hits(index, Term("carol", field="cc")) == {10}
    assert hits(index, Term("bob", field="from")) == {3}
    assert hits(index, Term("bob", field="to")) == {1}
    assert hits(index, Term("anna", field="from")) == {1}
    assert hits(index, Term("finance", field="subject")) == {1, 2}
    assert hits(index, Term("finance", field="chat")) == {1, 2, 4}
    assert hits(index, Term("2026", field="attachmentnames")) == {4}
    assert hits(index, Term("quarterly", field="subject")) == set()


def test_prefix(index) -> None:
    assert hits(index, Term("invoi", prefix=True)) == {3, 4, 10}
    assert hits(index, Term("REPORT", prefix=True)) == {1, 2, 10}
    assert hits(index, Term("rep", field="subject", prefix=True)) == {10}
    assert hits(index, Term("anna.sch", prefix=True)) == {1, 2, 4}
    assert hits(index, Term("contoso.ann", prefix=True)) == set()


def test_a_word_with_punctuation_is_the_phrase_of_its_parts(index) -> None:
    assert hits(index, Term("Rechnung-2026.pdf")) == {4}
    assert hits(index, Term("anna.schmidt@contoso.com", field="participants")) == {1, 2, 4}
    assert hits(index, Term("anna.schmidt@contoso.com", field="from")) == {1}
    assert hits(index, Term("schmidt@contoso", field="from")) == {1}
    assert hits(index, Term("!!!")) == set()
    assert hits(index, Phrase("")) == set()
    assert hits(index, And((Term("..."), Term("report")))) == set()


@pytest.mark.parametrize("spelling", ["+491701234567", "491701234567", "01701234567", "1701234567",
                                      "+49 170 1234567", "0170 1234567", "anna.schmidt@contoso.com",
                                      "Anna Schmidt", "SCHMIDT"])
def test_participants_in_every_spelling(index, spelling: str) -> None:
    assert hits(index, Phrase(spelling, field="participants")) == {1, 2, 4}


def test_grouped_numbers(index) -> None:
    assert hits(index, Phrase("(415) 555-0100", field="participants")) == {1, 2, 3}
    assert hits(index, Phrase("010-1234-5678", field="participants")) == {5, 6}
    assert hits(index, Term("+49 170 12", field="participants", prefix=True)) == {1, 2, 4}
    assert hits(index, Term("+49 170 13", field="participants", prefix=True)) == set()


# -- phrases, keywords, values ------------------------------------------------------------------


def test_phrase(index) -> None:
    assert hits(index, Phrase("quarterly report")) == {1}
    assert hits(index, Phrase("Report Quarterly")) == {2}
    assert hits(index, Phrase("quarterly report", field="subject")) == set()
    assert hits(index, Phrase("finance team", field="chat")) == {1, 2, 4}


def test_keyword(index) -> None:
    assert hits(index, Keyword("kind", "call")) == {3}
    assert hits(index, Keyword("kind", "CALL")) == {3}
    assert hits(index, Keyword("kind", "cal")) == set()
    assert hits(index, Keyword("folder", "purges")) == {5}
    assert hits(index, Keyword("folder", "WhatsApp Archiver")) == ALL - {5}
    assert hits(index, Keyword("folder", "whatsapp")) == set()
    assert hits(index, Keyword("source", "archiver-feed")) == {7}
    assert hits(index, Keyword("mailbox", "u3")) == {4, 7, 11}
    assert hits(index, Term("purges", field="folder")) == {5}


def test_compare_sent_is_utc_and_exact_to_the_microsecond(index) -> None:
    five = T0 + 5 * DAY
    assert hits(index, Compare("sent", ">=", five)) == {7, 8, 9, 10, 11, 12, 13, 14, 15}
    assert hits(index, Compare("sent", ">", five)) == {9, 10, 11, 12, 13, 14, 15}
    assert hits(index, Compare("sent", "=", five)) == {7, 8}
    assert hits(index, Compare("received", "<", T0 + timedelta(hours=1))) == {1}
    assert hits(index, Compare("received", "<=", T0 + timedelta(hours=1))) == {1, 2}
    berlin = datetime(2026, 1, 5, 12, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    assert hits(index, Compare("sent", "<", berlin)) == {1}
    precise = T0 + 10 * DAY + timedelta(microseconds=500_000)
    assert hits(index, Compare("sent", ">=", precise)) == {13, 14, 15}
    assert hits(index, Compare("sent", ">", precise)) == {14, 15}


def test_compare_size_and_hasattachment(index) -> None:
    assert hits(index, Compare("size", ">", 1000)) == {3, 4}
    assert hits(index, Compare("size", "=", 5000)) == {3}
    assert hits(index, Compare("size", "<=", 1000)) == ALL - {3, 4}
    assert hits(index, Compare("size", "<", 1000)) == set()
    assert hits(index, Compare("hasattachment", "=", True)) == {4}
    assert hits(index, Compare("hasattachment", "=", False)) == ALL - {4}


def test_range(index) -> None:
    assert hits(index, Range("sent", T0, T0 + DAY)) == {1, 2}
    assert hits(index, Range("received", T0 + DAY, T0 + 2 * DAY)) == {3}
    assert hits(index, Range("sent", T0 + DAY, T0 + DAY)) == set()


def test_values_of_the_wrong_type_are_refused(index) -> None:
    for node in (Compare("size", ">", T0), Compare("sent", ">", 5), Compare("hasattachment", "=", 1),
                 Compare("size", "=", True), Compare("subject", "=", 1), Term("x", field="size"),
                 Near(Term("a"), Term("b"), 100_000)):
        with pytest.raises(UnsupportedQuery):
            index.count("contoso", node)


# -- NEAR ---------------------------------------------------------------------------------------


def test_near_either_order_at_most_n_words_between(index) -> None:
    assert hits(index, Near(Term("contract"), Term("signed"), 0)) == set()
    assert hits(index, Near(Term("contract"), Term("signed"), 1)) == {8}
    assert hits(index, Near(Term("signed"), Term("contract"), 1)) == {8}
    assert hits(index, Near(Term("contract"), Term("signed"), 2)) == {7, 8}
    assert hits(index, Near(Term("contract"), Term("signed"))) == {7, 8}
    assert hits(index, Near(Term("contract"), Term("signed"), 9)) == {7, 8, 9}
    assert hits(index, Near(Term("quarterly"), Term("report"), 0)) == {1, 2}


def test_near_with_phrases_prefixes_and_fields(index) -> None:
    assert hits(index, Near(Phrase("finally signed"), Term("contract"), 0)) == set()
    assert hits(index, Near(Phrase("finally signed"), Term("contract"), 1)) == {7}
    assert hits(index, Near(Phrase("signed finally"), Term("contract"), 5)) == set()
    assert hits(index, Near(Term("contr", prefix=True), Term("signed"), 2)) == {7, 8}
    assert hits(index, Near(Term("contract", field="body"), Term("signed"), 2)) == {7, 8}
    assert hits(index, Near(Term("contract", field="subject"), Term("signed"), 2)) == set()
    assert hits(index, Near(Term("..."), Term("signed"), 2)) == set()
    with pytest.raises(UnsupportedQuery):
        index.count("contoso", Near(Term("contract", field="body"), Term("signed", field="subject")))


# -- boolean ------------------------------------------------------------------------------------


def test_and_or_not(index) -> None:
    assert hits(index, And((Term("report"), Keyword("mailbox", "u2")))) == {2}
    assert hits(index, Or((Keyword("kind", "call"), Keyword("kind", "deleted")))) == {3, 5}
    assert hits(index, And((Keyword("folder", "whatsapp archiver"), Not(Term("report"))))) == ALL - {1, 2, 5}
    assert hits(index, Or((Term("report"), Not(Keyword("kind", "chat"))))) == {1, 2, 3, 4, 5, 7}
    assert hits(index, Not(Not(Term("report")))) == {1, 2}
    assert hits(index, Not(Keyword("kind", "chat"))) == {3, 4, 5, 7}
    assert hits(index, And((Not(Keyword("kind", "chat")), Not(Keyword("kind", "call"))))) == {4, 5, 7}
    assert hits(index, Not(MatchAll())) == set()
    assert hits(index, Not(Term("!!!"))) == ALL


def test_match_all_empty_and_empty_or(index) -> None:
    assert hits(index, MatchAll()) == ALL
    assert hits(index, And(())) == ALL
    assert hits(index, Or(())) == set()


def test_languages(index) -> None:
    assert hits(index, Term("회의는")) == {5}
    assert hits(index, Term("회의", prefix=True)) == {5}
    assert hits(index, Term("🎉")) == {5}
    assert hits(index, Term("東京")) == {6}
    assert hits(index, Term("京")) == {6}
    assert hits(index, Phrase("タワー")) == {6}
    assert hits(index, Term("서울", field="chat")) == {5}
    assert hits(index, Term("MÜLLER")) == {3}
    assert hits(index, Term("Straße")) == {11}
    assert hits(index, Term("strasse")) == {11}
    assert hits(index, Term("Donaudampfschifffahrtsgesellschaftskapitänsmütze")) == {11}


# -- scope --------------------------------------------------------------------------------------


def test_another_tenants_items_are_never_found(index) -> None:
    assert hits(index, Term("quarterly")) == {1, 2}
    assert hits(index, Term("quarterly"), tenant="fabrikam") == {101}
    assert hits(index, MatchAll(), tenant="fabrikam") == {101, 102}
    assert hits(index, Term("invoice"), tenant="fabrikam") == {102}
    assert hits(index, Term("quarterly"), users=["f1"]) == set()
    assert hits(index, MatchAll(), tenant="northwind") == set()


def test_users_narrow_the_search(index) -> None:
    assert hits(index, Term("report"), users=["u2"]) == {2}
    assert hits(index, Term("report"), users=["u1", "u3"]) == {1}
    assert hits(index, Term("report"), users=[]) == set()
    with pytest.raises(TypeError):
        index.count("contoso", MatchAll(), "u1")  # type: ignore[arg-type]


def test_count_by_user(index) -> None:
    assert index.count_by_user("contoso", MatchAll()) == {"u1": 8, "u2": 4, "u3": 3}
    assert index.count_by_user("contoso", Term("report")) == {"u1": 1, "u2": 1}
    assert index.count_by_user("contoso", Term("report"), users=["u2", "u3"]) == {"u2": 1}
    assert index.count_by_user("contoso", Term("nothing-like-this")) == {}
    assert index.count_by_user("fabrikam", MatchAll()) == {"f1": 2}


# -- order and paging ---------------------------------------------------------------------------


def test_newest_orders_by_sent_then_later_item_first_and_pages_do_not_overlap(index) -> None:
    expected = [15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1]
    pages = [index.search("contoso", MatchAll(), limit=4, offset=o, order="newest") for o in range(0, 16, 4)]
    assert all(p.total == 15 for p in pages)
    assert [h.item_id for p in pages for h in p.hits] == expected
    assert all(h.score == 0.0 for p in pages for h in p.hits)
    assert index.search("contoso", MatchAll(), limit=5, offset=20, order="newest").hits == []
    assert index.search("contoso", MatchAll(), limit=5, offset=20, order="newest").total == 15


def test_relevance_ranks_more_occurrences_in_fewer_words_first(index) -> None:
    result = index.search("contoso", Term("budget"))
    assert [h.item_id for h in result.hits] == [14, 15]
    assert result.hits[0].score > result.hits[1].score > 0
    # a negated word does not rank
    assert index.search("contoso", And((Term("budget"), Not(Term("budget", field="subject"))))).hits[0].item_id == 14


def test_limit_zero_counts_without_hits_and_bad_paging_is_refused(index) -> None:
    assert index.search("contoso", Term("report"), limit=0).total == 2
    assert index.search("contoso", Term("report"), limit=0).hits == []
    with pytest.raises(UnsupportedQuery):
        index.search("contoso", MatchAll(), offset=-1)
    with pytest.raises(UnsupportedQuery):
        index.search("contoso", MatchAll(), order="oldest")  # type: ignore[arg-type]


# -- changes ------------------------------------------------------------------------------------


def test_added_items_are_searchable_after_commit(fresh) -> None:
    fresh.add([doc(1, "u1", body="delivered just now")])
    fresh.commit()
    assert fresh.count("contoso", Term("delivered")) == 1


def test_a_2000_item_batch(fresh) -> None:
    fresh.add([doc(i, f"u{i % 7}", body=f"batch message {i}") for i in range(1, 2001)])
    fresh.commit()
    assert fresh.count("contoso", Term("batch")) == 2000
    assert fresh.count_by_user("contoso", Term("batch"))["u3"] == len([i for i in range(1, 2001) if i % 7 == 3])
    assert fresh.item_ids("contoso", Term("batch")) == set(range(1, 2001))


def test_deleted_items_disappear(fresh) -> None:
    fresh.add([doc(1, "u1", body="keep"), doc(2, "u1", body="keep"), doc(3, "u1", body="keep")])
    fresh.commit()
    fresh.delete([2, 3])
    fresh.delete([])
    fresh.commit()
    assert fresh.item_ids("contoso", Term("keep")) == {1}
    assert fresh.max_item_id("contoso") == 1


def test_adding_an_item_again_replaces_it(fresh) -> None:
    fresh.add([doc(1, "u1", body="first version")])
    fresh.commit()
    fresh.add([doc(1, "u1", body="second version"), doc(2, "u1", body="second version"),
               doc(2, "u2", body="second version again")])     # the same id twice in one batch: the last wins
    fresh.commit()
    assert fresh.count("contoso", MatchAll()) == 2
    assert fresh.item_ids("contoso", Term("first")) == set()
    assert fresh.item_ids("contoso", Term("second")) == {1, 2}
    assert fresh.count_by_user("contoso", MatchAll()) == {"u1": 1, "u2": 1}


def test_replace_keeps_the_rest_intact(fresh) -> None:
    fresh.add(CORPUS)
    fresh.add([replace(CORPUS[0], body="changed")])
    fresh.commit()
    assert hits(fresh, Term("changed")) == {1}
    assert hits(fresh, Phrase("quarterly report")) == set()
    assert hits(fresh, MatchAll()) == ALL


def test_max_item_id_is_per_tenant_and_none_without_items(index, fresh) -> None:
    assert index.max_item_id("contoso") == 15
    assert index.max_item_id("fabrikam") == 102
    assert index.max_item_id("northwind") is None
    assert fresh.max_item_id("contoso") is None


def test_clear_removes_every_tenants_items(fresh) -> None:
    fresh.add(CORPUS)
    fresh.clear()
    assert fresh.count("contoso", MatchAll()) == 0 and fresh.max_item_id("fabrikam") is None


def test_naive_sent_at_is_taken_as_utc(fresh) -> None:
    fresh.add([doc(1, "u1", sent=datetime(2026, 3, 1, 12, 0), body="naive")])
    assert fresh.count("contoso", Compare("sent", "=", datetime(2026, 3, 1, 12, 0, tzinfo=UTC))) == 1


def test_a_second_instance_on_the_same_database_sees_the_same_items(engine, fresh) -> None:
    fresh.add([doc(1, "u1", body="shared")])
    other = PostgresSearchIndex(engine, table="search_fresh")
    assert other.item_ids("contoso", Term("shared")) == {1}
    other.add([doc(2, "u1", body="shared")])
    assert fresh.item_ids("contoso", Term("shared")) == {1, 2}


def test_bad_table_names_and_other_databases_are_refused(engine) -> None:
    with pytest.raises(ValueError):
        PostgresSearchIndex(engine, table="x; drop table y")
    with pytest.raises(ValueError):
        PostgresSearchIndex(sa.create_engine("sqlite://"))


# -- against a brute-force evaluation -----------------------------------------------------------


def test_random_queries_find_exactly_what_a_brute_force_evaluation_finds(fresh) -> None:
    rng = random.Random(20261125)
    docs = [_random_doc(rng, i) for i in range(1, 301)]
    fresh.add(docs[:150])
    fresh.add(docs[100:])
    checked = 0
    for _ in range(600):
        node = _random_query(rng, 3)
        tenant = rng.choice(["contoso", "fabrikam"])
        users = rng.choice([None, None, ["u1"], ["u2", "u4"]])
        expected = {d.item_id for d in docs
                    if d.tenant == tenant and (users is None or d.user_id in users) and _matches(d, node)}
        assert fresh.item_ids(tenant, node, users) == expected, node
        checked += bool(expected)
    assert checked > 150


def test_a_text_too_big_for_one_tsvector_is_indexed_up_to_postgresqls_limit(fresh) -> None:
    rng = random.Random(7)
    huge = " ".join(f"w{rng.getrandbits(40):x}" for _ in range(150_000)) + " trailingword"
    fresh.add([doc(1, "u1", body="start " + huge), doc(2, "u1", body="small")])
    assert fresh.item_ids("contoso", Term("start")) == {1}
    assert fresh.item_ids("contoso", Term("small")) == {2}
    assert fresh.item_ids("contoso", Term("trailingword")) == set()   # cut: beyond what one tsvector holds
