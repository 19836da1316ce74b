"""The search index: every node of the query tree finds exactly the items it should, in one tenant, in time —
on both backends (tantivy and PostgreSQL full-text) for tests taking ``index`` or ``any_fresh``; tests taking
``fresh`` are tantivy's own (commit visibility, the directory, its writer lock).

The corpus below is small and written out so each expected hit set can be checked by reading; a last test
compares the index with a brute-force evaluation on random items and random queries.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tenantry.archive.search import (
    IndexDocument,
    SearchIndex,
    SearchIndexUnavailable,
    UnsupportedQuery,
    participant_text,
    phone_spellings,
)
from tenantry.archive.search_tantivy import MARKER, TantivySearchIndex, analyse, literal_analyzer
from tenantry.protocols.query.ast import (
    And,
    Compare,
    Keyword,
    MatchAll,
    Near,
    Node,
    Not,
    Or,
    Phrase,
    Range,
    Term,
)

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
DAY = timedelta(days=1)
ANNA = participant_text("Anna Schmidt", "anna.schmidt@contoso.com", "+491701234567")
BOB = participant_text("Bob Jones", "bob@fabrikam.com", "+14155550100")
KIM = participant_text("김민준", "minjun.kim@contoso.com", "+821012345678")


def doc(item_id: int, user: str, *, tenant: str = "contoso", sent: datetime = T0, **kw: object) -> IndexDocument:
    fields: dict[str, object] = {
        "folder": "WhatsApp Archiver", "kind": "chat", "source": "whatsapp-export", "size": 1000,
        "has_attachment": False, "sender": "", "to": "", "cc": "", "participants": "", "subject": "", "body": "",
        "attachment_names": "", "chat": "",
    }
    fields.update(kw)
    return IndexDocument(item_id=item_id, tenant=tenant, user_id=user, sent_at=sent, **fields)  # type: ignore[arg-type]


CORPUS = [
    doc(1, "u1", sender="Anna Schmidt anna.schmidt@contoso.com +491701234567", to="Bob Jones bob@fabrikam.com",
        participants=f"{ANNA} {BOB}", subject="WhatsApp: Finance team", body="The Quarterly Report is ready",
        chat="chat-fin Finance team"),
    doc(2, "u2", sent=T0 + timedelta(hours=1), participants=f"{ANNA} {BOB}", subject="WhatsApp: Finance team",
        body="report quarterly numbers later", chat="chat-fin Finance team"),
    doc(3, "u1", sent=T0 + DAY, kind="call", size=5000, sender="Bob Jones bob@fabrikam.com +14155550100",
        participants=BOB, subject="Call with Bob Jones", body="Call with Müller about the invoice", chat="call-1"),
    doc(4, "u3", sent=T0 + 2 * DAY, kind="attachment", size=250_000, has_attachment=True, participants=ANNA,
        subject="Attachment", body="invoices attached", attachment_names="Rechnung-2026.pdf scan.png",
        chat="chat-fin Finance team"),
    doc(5, "u2", sent=T0 + 3 * DAY, kind="deleted", folder="Purges", participants=KIM,
        body="회의는 내일 오전 10시입니다 🎉", chat="chat-kr 서울 팀"),
    doc(6, "u1", sent=T0 + 4 * DAY, participants=KIM, body="東京タワーで会いましょう", chat="chat-jp"),
    doc(7, "u3", sent=T0 + 5 * DAY, kind="system", source="archiver-feed",
        body="the contract was finally signed after the meeting"),
    doc(8, "u2", sent=T0 + 5 * DAY, body="signed the contract"),
    doc(9, "u1", sent=T0 + 6 * DAY, body="contract one two three four five six seven eight nine signed"),
    doc(10, "u1", sent=T0 + 7 * DAY, cc="Carol White carol@contoso.com", subject="Reports",
        body="reports are due; invoicing starts monday"),
    doc(11, "u3", sent=T0 + 8 * DAY, body="Donaudampfschifffahrtsgesellschaftskapitänsmütze straße STRASSE"),
    doc(12, "u2", sent=T0 + 9 * DAY, body="!!! ... ???"),
    doc(13, "u1", sent=T0 + 10 * DAY + timedelta(microseconds=500_000), body="precise timing"),
    doc(14, "u1", sent=T0 + 11 * DAY, body="budget budget budget"),
    doc(15, "u1", sent=T0 + 12 * DAY, body="the budget is one of many topics we discussed in the long meeting today"),
    doc(101, "f1", tenant="fabrikam", participants=ANNA, body="The Quarterly Report is ready"),
    doc(102, "f1", tenant="fabrikam", sent=T0 + DAY, body="contract signed, invoice attached"),
]
ALL = {d.item_id for d in CORPUS if d.tenant == "contoso"}


def _new_index(request: pytest.FixtureRequest, directory: Path, table: str) -> SearchIndex:
    if request.param == "tantivy":
        return TantivySearchIndex(directory, writer_threads=1, writer_heap_bytes=50_000_000)
    from tenantry.archive.search_postgres import PostgresSearchIndex

    idx = PostgresSearchIndex(request.getfixturevalue("pg_engine"), table=table)
    idx.clear()
    return idx


# The contract both backends keep (tests taking ``index`` or ``any_fresh``) runs on each of them; what is
# particular to one backend takes ``fresh`` (tantivy) here, or lives in test_search_postgres.py.
@pytest.fixture(scope="module", params=["tantivy", "postgres"])
def index(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SearchIndex]:
    idx = _new_index(request, tmp_path_factory.mktemp("index"), "search_corpus")
    idx.add(CORPUS)
    idx.commit()
    yield idx
    idx.close()


@pytest.fixture(params=["tantivy", "postgres"])
def any_fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SearchIndex]:
    idx = _new_index(request, tmp_path / "index", "search_fresh")
    yield idx
    idx.close()


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[TantivySearchIndex]:
    idx = TantivySearchIndex(tmp_path / "index", writer_threads=1, writer_heap_bytes=50_000_000)
    yield idx
    idx.close()


def hits(index: SearchIndex, node: Node, tenant: str = "contoso",
         users: Sequence[str] | None = None) -> set[int]:
    found = index.item_ids(tenant, node, users)
    # count, a page (by relevance and by date) and the full id set must agree
    assert index.count(tenant, node, users) == len(found)
    assert {h.item_id for h in index.search(tenant, node, users=users, limit=100).hits} == found
    assert {h.item_id for h in index.search(tenant, node, users=users, limit=100, order="newest").hits} == found
    return found


# -- words --------------------------------------------------------------------------------------


def test_word_matches_case_insensitively_in_subject_body_participants_attachments_and_chat(index) -> None:
    assert hits(index, Term("report")) == {1, 2}
    assert hits(index, Term("REPORT")) == {1, 2}
    assert hits(index, Term("finance")) == {1, 2, 4}          # subject and chat
    assert hits(index, Term("rechnung")) == {4}                # attachment names
    assert hits(index, Term("김민준")) == {5, 6}                 # participants


def test_word_does_not_match_other_forms_of_it_no_stemming(index) -> None:
    assert hits(index, Term("reports")) == {10}
    assert hits(index, Term("invoice")) == {3}
    assert hits(index, Term("muller")) == set()                # no accent folding either
    assert hits(index, Term("the")) == {1, 3, 7, 8, 15}        # no stop words


def test_field_less_word_ignores_from_to_and_cc(index) -> None:
    assert hits(index, Term("carol")) == set()
    assert hits(index, Term("carol", field="cc")) == {10}
    assert hits(index, Term("bob", field="from")) == {3}
    assert hits(index, Term("bob", field="to")) == {1}
    assert hits(index, Term("anna", field="from")) == {1}


def test_field_restricts_a_word_to_that_field(index) -> None:
    assert hits(index, Term("finance", field="subject")) == {1, 2}
    assert hits(index, Term("finance", field="chat")) == {1, 2, 4}
    assert hits(index, Term("call", field="subject")) == {3}
    assert hits(index, Term("2026", field="attachmentnames")) == {4}
    assert hits(index, Term("quarterly", field="body")) == {1, 2}
    assert hits(index, Term("quarterly", field="subject")) == set()


def test_prefix_matches_every_word_that_starts_with_it(index) -> None:
    assert hits(index, Term("invoi", prefix=True)) == {3, 4, 10}
    assert hits(index, Term("REPORT", prefix=True)) == {1, 2, 10}
    assert hits(index, Term("rep", field="subject", prefix=True)) == {10}


def test_prefix_after_other_words_is_a_phrase_whose_last_word_is_a_prefix(index) -> None:
    assert hits(index, Term("anna.sch", prefix=True)) == {1, 2, 4}
    assert hits(index, Term("contoso.ann", prefix=True)) == set()


def test_a_word_typed_with_punctuation_is_the_phrase_of_its_parts(index) -> None:
    assert hits(index, Term("Rechnung-2026.pdf")) == {4}
    assert hits(index, Term("anna.schmidt@contoso.com", field="participants")) == {1, 2, 4}
    assert hits(index, Term("anna.schmidt@contoso.com", field="from")) == {1}


def test_text_with_nothing_searchable_matches_nothing(index) -> None:
    assert hits(index, Term("!!!")) == set()
    assert hits(index, Phrase("")) == set()
    assert hits(index, And((Term("..."), Term("report")))) == set()


# -- participants ---------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["+491701234567", "491701234567", "01701234567", "1701234567",
                                      "+49 170 1234567", "0170 1234567", "anna.schmidt@contoso.com",
                                      "Anna Schmidt", "SCHMIDT"])
def test_participants_matches_number_in_every_spelling_address_or_display_name(index, spelling: str) -> None:
    assert hits(index, Phrase(spelling, field="participants")) == {1, 2, 4}


def test_participants_finds_us_and_korean_numbers_by_their_local_digits(index) -> None:
    assert hits(index, Term("4155550100", field="participants")) == {1, 2, 3}
    assert hits(index, Phrase("(415) 555-0100", field="participants")) == {1, 2, 3}
    assert hits(index, Term("01012345678", field="participants")) == {5, 6}
    assert hits(index, Phrase("010-1234-5678", field="participants")) == {5, 6}


def test_a_grouped_number_prefix_matches_numbers_that_start_with_those_digits(index) -> None:
    assert hits(index, Term("+49 170 12", field="participants", prefix=True)) == {1, 2, 4}
    assert hits(index, Term("+49 170 13", field="participants", prefix=True)) == set()


def test_phone_spellings_cover_e164_national_and_grouped_forms() -> None:
    assert phone_spellings("+491701234567") == "+491701234567 01701234567 1701234567"
    assert phone_spellings("+14155550100") == "+14155550100 4155550100"
    assert phone_spellings("not a number") == "not a number"


# -- phrases, keywords, values ------------------------------------------------------------------


def test_phrase_needs_its_words_adjacent_and_in_order(index) -> None:
    assert hits(index, Phrase("quarterly report")) == {1}
    assert hits(index, Phrase("Report Quarterly")) == {2}
    assert hits(index, Phrase("quarterly report", field="subject")) == set()
    assert hits(index, Phrase("finance team", field="chat")) == {1, 2, 4}


def test_keyword_matches_the_exact_value_case_insensitively(index) -> None:
    assert hits(index, Keyword("kind", "call")) == {3}
    assert hits(index, Keyword("kind", "CALL")) == {3}
    assert hits(index, Keyword("kind", "cal")) == set()
    assert hits(index, Keyword("folder", "purges")) == {5}
    assert hits(index, Keyword("folder", "WhatsApp Archiver")) == ALL - {5}
    assert hits(index, Keyword("folder", "whatsapp")) == set()
    assert hits(index, Keyword("source", "archiver-feed")) == {7}
    assert hits(index, Keyword("mailbox", "u3")) == {4, 7, 11}


def test_compare_sent_is_utc_and_exact_to_the_microsecond(index) -> None:
    five = T0 + 5 * DAY
    assert hits(index, Compare("sent", ">=", five)) == {7, 8, 9, 10, 11, 12, 13, 14, 15}
    assert hits(index, Compare("sent", ">", five)) == {9, 10, 11, 12, 13, 14, 15}
    assert hits(index, Compare("sent", "=", five)) == {7, 8}
    assert hits(index, Compare("received", "<", T0 + timedelta(hours=1))) == {1}
    assert hits(index, Compare("received", "<=", T0 + timedelta(hours=1))) == {1, 2}
    berlin = datetime(2026, 1, 5, 12, 0, tzinfo=ZoneInfo("Europe/Berlin"))    # 11:00 UTC
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


def test_hasattachment_means_a_file_and_hasmissingmedia_media_named_but_not_included(any_fresh) -> None:
    """Issue #10 item 7: ``<Media omitted>`` is no attachment; it has a property of its own."""
    any_fresh.add([doc(1, "u1", has_attachment=True), doc(2, "u1", has_missing_media=True),
                   doc(3, "u1", has_attachment=True, has_missing_media=True), doc(4, "u1")])
    any_fresh.commit()
    assert hits(any_fresh, Compare("hasattachment", "=", True)) == {1, 3}
    assert hits(any_fresh, Compare("hasattachment", "=", False)) == {2, 4}
    assert hits(any_fresh, Compare("hasmissingmedia", "=", True)) == {2, 3}
    assert hits(any_fresh, Compare("hasmissingmedia", "=", False)) == {1, 4}
    assert hits(any_fresh, Not(Compare("hasmissingmedia", "=", True))) == {1, 4}
    assert hits(any_fresh, And([Compare("hasattachment", "=", False),
                                Compare("hasmissingmedia", "=", False)])) == {4}
    with pytest.raises(UnsupportedQuery):
        any_fresh.count("contoso", Compare("hasmissingmedia", "=", 1))


def test_range_includes_its_start_and_excludes_its_end(index) -> None:
    assert hits(index, Range("sent", T0, T0 + DAY)) == {1, 2}
    assert hits(index, Range("received", T0 + DAY, T0 + 2 * DAY)) == {3}
    assert hits(index, Range("sent", T0 + DAY, T0 + DAY)) == set()


def test_values_of_the_wrong_type_are_refused(index) -> None:
    for node in (Compare("size", ">", T0), Compare("sent", ">", 5), Compare("hasattachment", "=", 1),
                 Compare("size", "=", True), Compare("subject", "=", 1), Term("x", field="size")):
        with pytest.raises(UnsupportedQuery):
            index.count("contoso", node)


# -- NEAR ---------------------------------------------------------------------------------------


def test_near_matches_either_order_with_at_most_n_words_between(index) -> None:
    # 7: "contract was finally signed" (2 between); 8: "signed the contract" (1, reversed); 9: 9 between
    assert hits(index, Near(Term("contract"), Term("signed"), 0)) == set()
    assert hits(index, Near(Term("contract"), Term("signed"), 1)) == {8}
    assert hits(index, Near(Term("signed"), Term("contract"), 1)) == {8}
    assert hits(index, Near(Term("contract"), Term("signed"), 2)) == {7, 8}
    assert hits(index, Near(Term("contract"), Term("signed"))) == {7, 8}     # KQL's default 8
    assert hits(index, Near(Term("contract"), Term("signed"), 9)) == {7, 8, 9}
    assert hits(index, Near(Term("quarterly"), Term("report"), 0)) == {1, 2}


def test_near_with_a_phrase_counts_words_between_the_phrase_and_the_word(index) -> None:
    assert hits(index, Near(Phrase("finally signed"), Term("contract"), 0)) == set()
    assert hits(index, Near(Phrase("finally signed"), Term("contract"), 1)) == {7}
    assert hits(index, Near(Phrase("signed finally"), Term("contract"), 5)) == set()


def test_near_with_a_prefix_and_a_field(index) -> None:
    assert hits(index, Near(Term("contr", prefix=True), Term("signed"), 2)) == {7, 8}
    assert hits(index, Near(Term("contract", field="body"), Term("signed"), 2)) == {7, 8}
    assert hits(index, Near(Term("contract", field="subject"), Term("signed"), 2)) == set()
    assert hits(index, Near(Term("..."), Term("signed"), 2)) == set()
    with pytest.raises(UnsupportedQuery):
        index.count("contoso", Near(Term("contract", field="body"), Term("signed", field="subject")))


# -- boolean ------------------------------------------------------------------------------------


def test_and_or_not_combine(index) -> None:
    assert hits(index, And((Term("report"), Keyword("mailbox", "u2")))) == {2}
    assert hits(index, Or((Keyword("kind", "call"), Keyword("kind", "deleted")))) == {3, 5}
    assert hits(index, And((Keyword("folder", "whatsapp archiver"), Not(Term("report"))))) == ALL - {1, 2, 5}
    assert hits(index, Or((Term("report"), Not(Keyword("kind", "chat"))))) == {1, 2, 3, 4, 5, 7}
    assert hits(index, Not(Not(Term("report")))) == {1, 2}


def test_a_lone_not_means_every_item_except(index) -> None:
    assert hits(index, Not(Keyword("kind", "chat"))) == {3, 4, 5, 7}
    assert hits(index, And((Not(Keyword("kind", "chat")), Not(Keyword("kind", "call"))))) == {4, 5, 7}
    assert hits(index, Not(MatchAll())) == set()
    assert hits(index, Not(Term("!!!"))) == ALL


def test_match_all_and_an_empty_and_are_every_item_an_empty_or_none(index) -> None:
    assert hits(index, MatchAll()) == ALL
    assert hits(index, And(())) == ALL
    assert hits(index, Or(())) == set()


# -- languages ----------------------------------------------------------------------------------


def test_korean_japanese_german_and_emoji_are_searchable(index) -> None:
    assert hits(index, Term("회의는")) == {5}
    assert hits(index, Term("회의", prefix=True)) == {5}
    assert hits(index, Term("🎉")) == {5}
    assert hits(index, Term("東京")) == {6}                     # Han characters are words: a phrase
    assert hits(index, Term("京")) == {6}
    assert hits(index, Phrase("タワー")) == {6}
    assert hits(index, Term("서울", field="chat")) == {5}
    assert hits(index, Term("MÜLLER")) == {3}
    assert hits(index, Term("Straße")) == {11}
    assert hits(index, Term("strasse")) == {11}


def test_words_longer_than_40_bytes_are_kept(index) -> None:
    assert hits(index, Term("Donaudampfschifffahrtsgesellschaftskapitänsmütze")) == {11}


# -- scope --------------------------------------------------------------------------------------


def test_another_tenants_items_are_never_found(index) -> None:
    assert hits(index, Term("quarterly")) == {1, 2}
    assert hits(index, Term("quarterly"), tenant="fabrikam") == {101}
    assert hits(index, MatchAll(), tenant="fabrikam") == {101, 102}
    assert hits(index, Term("invoice"), tenant="fabrikam") == {102}
    assert hits(index, Term("quarterly"), users=["f1"]) == set()
    assert hits(index, MatchAll(), tenant="northwind") == set()


def test_users_narrow_the_search_to_their_mailboxes(index) -> None:
    assert hits(index, Term("report"), users=["u2"]) == {2}
    assert hits(index, Term("report"), users=["u1", "u3"]) == {1}
    assert hits(index, Term("report"), users=[]) == set()
    with pytest.raises(TypeError):
        index.count("contoso", MatchAll(), "u1")  # type: ignore[arg-type]


def test_count_by_user_counts_matches_per_mailbox(index) -> None:
    assert index.count_by_user("contoso", MatchAll()) == {"u1": 8, "u2": 4, "u3": 3}
    assert index.count_by_user("contoso", Term("report")) == {"u1": 1, "u2": 1}
    assert index.count_by_user("contoso", Term("report"), users=["u2", "u3"]) == {"u2": 1}
    assert index.count_by_user("contoso", Term("nothing-like-this")) == {}
    assert index.count_by_user("fabrikam", MatchAll()) == {"f1": 2}


# -- order and paging ---------------------------------------------------------------------------


def test_newest_orders_by_sent_then_later_item_first_and_pages_do_not_overlap(index) -> None:
    expected = [15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1]       # 7 and 8 share a second
    pages = [index.search("contoso", MatchAll(), limit=4, offset=o, order="newest") for o in range(0, 16, 4)]
    assert all(p.total == 15 for p in pages)
    assert [h.item_id for p in pages for h in p.hits] == expected
    assert all(h.score == 0.0 for p in pages for h in p.hits)
    assert index.search("contoso", MatchAll(), limit=5, offset=20, order="newest").hits == []
    assert index.search("contoso", MatchAll(), limit=5, offset=20, order="newest").total == 15


def test_relevance_ranks_an_item_that_says_the_word_more_often_in_fewer_words_first(index) -> None:
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


def test_added_items_are_found_only_after_commit(fresh) -> None:
    fresh.add([doc(1, "u1", body="delivered just now")])
    assert fresh.count("contoso", Term("delivered")) == 0
    fresh.commit()
    assert fresh.count("contoso", Term("delivered")) == 1


def test_a_2000_item_delivery_batch_is_searchable_right_after_its_commit(any_fresh) -> None:
    any_fresh.add([doc(i, f"u{i % 7}", body=f"batch message {i}") for i in range(1, 2001)])
    any_fresh.commit()
    assert any_fresh.count("contoso", Term("batch")) == 2000
    assert any_fresh.count_by_user("contoso", Term("batch"))["u3"] == len([i for i in range(1, 2001) if i % 7 == 3])


def test_deleted_items_disappear_at_commit(fresh) -> None:
    fresh.add([doc(1, "u1", body="keep"), doc(2, "u1", body="keep"), doc(3, "u1", body="keep")])
    fresh.commit()
    fresh.delete([2, 3])
    assert fresh.item_ids("contoso", Term("keep")) == {1, 2, 3}
    fresh.commit()
    assert fresh.item_ids("contoso", Term("keep")) == {1}


def test_adding_an_item_again_replaces_it_instead_of_duplicating(any_fresh) -> None:
    any_fresh.add([doc(1, "u1", body="first version")])
    any_fresh.commit()
    any_fresh.add([doc(1, "u1", body="second version"), doc(2, "u1", body="second version")])
    any_fresh.commit()
    assert any_fresh.count("contoso", MatchAll()) == 2
    assert any_fresh.item_ids("contoso", Term("first")) == set()
    assert any_fresh.item_ids("contoso", Term("second")) == {1, 2}


def test_uncommitted_changes_are_dropped_at_close(tmp_path: Path) -> None:
    with TantivySearchIndex(tmp_path, writer_threads=1, writer_heap_bytes=50_000_000) as idx:
        idx.add([doc(1, "u1", body="committed")])
        idx.commit()
        idx.add([doc(2, "u1", body="lost")])
    with TantivySearchIndex(tmp_path) as idx:
        assert idx.item_ids("contoso", MatchAll()) == {1}


def test_closing_the_writer_after_every_batch_still_merges_segments(fresh) -> None:
    for batch in range(24):
        fresh.add([doc(batch * 10 + i, "u1", body="merged") for i in range(1, 11)])
        fresh.commit()
        fresh.close()
    fresh.commit()  # reload
    assert fresh.count("contoso", Term("merged")) == 240
    assert fresh.segment_count() < 12


def test_index_reopened_from_disk_answers_the_same(tmp_path: Path) -> None:
    with TantivySearchIndex(tmp_path, writer_threads=1, writer_heap_bytes=50_000_000) as idx:
        idx.add(CORPUS)
        idx.commit()
    with TantivySearchIndex(tmp_path) as idx:
        assert hits(idx, Term("회의", prefix=True)) == {5}        # the custom analyser is registered again
        assert hits(idx, Phrase("quarterly report")) == {1}
        assert idx.max_item_id("contoso") == 15
        idx.add([doc(16, "u1", body="after reopening")])
        idx.commit()
        assert hits(idx, Term("reopening")) == {16}


def test_max_item_id_is_per_tenant_and_none_without_items(index, any_fresh) -> None:
    assert index.max_item_id("contoso") == 15
    assert index.max_item_id("fabrikam") == 102
    assert index.max_item_id("northwind") is None
    assert any_fresh.max_item_id("contoso") is None


def test_clear_removes_every_tenants_items(any_fresh) -> None:
    any_fresh.add(CORPUS)
    any_fresh.commit()
    any_fresh.clear()
    assert any_fresh.count("contoso", MatchAll()) == 0 and any_fresh.max_item_id("fabrikam") is None


def test_naive_sent_at_is_taken_as_utc(any_fresh) -> None:
    any_fresh.add([doc(1, "u1", sent=datetime(2026, 3, 1, 12, 0), body="naive")])
    any_fresh.commit()
    assert any_fresh.count("contoso", Compare("sent", "=", datetime(2026, 3, 1, 12, 0, tzinfo=UTC))) == 1


def test_item_ids_returns_every_match_not_a_page(any_fresh) -> None:
    any_fresh.add([doc(i, "u1", body="many") for i in range(1, 1201)])
    any_fresh.commit()
    assert any_fresh.item_ids("contoso", Term("many")) == set(range(1, 1201))


def test_a_second_writer_on_the_same_directory_is_refused(tmp_path: Path) -> None:
    with TantivySearchIndex(tmp_path, writer_threads=1, writer_heap_bytes=50_000_000) as first:
        first.add([doc(1, "u1", body="x")])
        second = TantivySearchIndex(tmp_path)
        assert second.count("contoso", MatchAll()) == 0                 # reading needs no lock
        with pytest.raises(SearchIndexUnavailable):
            second.add([doc(2, "u1", body="y")])


def test_an_index_of_a_newer_schema_version_is_refused(tmp_path: Path) -> None:
    TantivySearchIndex(tmp_path).close()
    (tmp_path / MARKER).write_text(json.dumps({"schema": 99}))
    with pytest.raises(SearchIndexUnavailable):
        TantivySearchIndex(tmp_path)


def test_an_index_of_an_older_schema_version_is_started_again_empty_for_catch_up(tmp_path: Path) -> None:
    with TantivySearchIndex(tmp_path) as index:
        index.add([doc(7, "u1", body="kept before")])
        index.commit()
    (tmp_path / MARKER).write_text(json.dumps({"schema": 1}))
    with TantivySearchIndex(tmp_path) as index:
        # empty, so Indexer.catch_up (run at start) indexes every item again from the store
        assert index.max_item_id("contoso") is None
        assert json.loads((tmp_path / MARKER).read_text()) == {"schema": 2}
        index.add([doc(7, "u1", body="again")])
        index.commit()
        assert index.item_ids("contoso", Term("again")) == {7}


# -- against a brute-force evaluation -----------------------------------------------------------

VOCAB = ["alpha", "alpine", "beta", "gamma", "delta", "müller", "über", "회의", "東", "🎉", "sigma", "sigmoid"]
FIELDS = {"subject": "subject", "body": "body", "participants": "participants", "chat": "chat", "from": "sender",
          "attachmentnames": "attachment_names"}
DEFAULT = ("subject", "body", "participants", "attachmentnames", "chat")
_ANALYSER = literal_analyzer()


def _random_doc(rng: random.Random, item_id: int) -> IndexDocument:
    def text(n: int) -> str:
        return " ".join(rng.choice(VOCAB) for _ in range(rng.randint(0, n)))

    return IndexDocument(
        item_id=item_id, tenant=rng.choice(["contoso", "contoso", "fabrikam"]), user_id=f"u{rng.randint(1, 4)}",
        folder=rng.choice(["WhatsApp Archiver", "Purges"]), kind=rng.choice(["chat", "call", "deleted"]),
        source="whatsapp-export", sent_at=T0 + timedelta(hours=rng.randint(0, 100)), size=rng.randint(0, 10),
        has_attachment=rng.random() < 0.3, sender=text(3), to="", cc="", participants=text(4), subject=text(3),
        body=text(12), attachment_names=text(2), chat=text(2))


def _occurs(tokens: list[str], words: list[str], prefix: bool) -> list[int]:
    """Start positions of ``words`` in ``tokens`` (the last word as a prefix when ``prefix``)."""
    found = []
    for i in range(len(tokens) - len(words) + 1):
        if all(tokens[i + k] == w for k, w in enumerate(words[:-1])) and (
                tokens[i + len(words) - 1].startswith(words[-1]) if prefix
                else tokens[i + len(words) - 1] == words[-1]):
            found.append(i)
    return found


def _tokens(d: IndexDocument, field: str) -> list[str]:
    return analyse(str(getattr(d, FIELDS[field])), _ANALYSER)


def _matches(d: IndexDocument, node: Node) -> bool:
    if isinstance(node, Term | Phrase):
        words = analyse(node.text, _ANALYSER)
        prefix = isinstance(node, Term) and node.prefix
        fields = [node.field] if node.field else DEFAULT
        return bool(words) and any(_occurs(_tokens(d, f), words, prefix) for f in fields)
    if isinstance(node, Near):
        assert isinstance(node.left, Term) and isinstance(node.right, Term)
        fields = [node.left.field] if node.left.field else DEFAULT
        for f in fields:
            tokens = _tokens(d, f)
            left = _occurs(tokens, analyse(node.left.text, _ANALYSER), node.left.prefix)
            right = _occurs(tokens, analyse(node.right.text, _ANALYSER), node.right.prefix)
            if any(i != j and abs(i - j) - 1 <= node.distance for i in left for j in right):
                return True
        return False
    if isinstance(node, Keyword):
        value = d.user_id if node.field == "mailbox" else getattr(d, node.field)
        return bool(value.lower() == node.value.lower())
    if isinstance(node, Compare):
        have: object = {"sent": d.sent_at, "size": d.size, "hasattachment": d.has_attachment}[node.field]
        return bool({"=": have == node.value, "<": have < node.value, "<=": have <= node.value,  # type: ignore[operator]
                     ">": have > node.value, ">=": have >= node.value}[node.op])  # type: ignore[operator]
    if isinstance(node, Range):
        return node.start <= d.sent_at < node.end
    if isinstance(node, And):
        return all(_matches(d, item) for item in node.items)
    if isinstance(node, Or):
        return any(_matches(d, item) for item in node.items)
    if isinstance(node, Not):
        return not _matches(d, node.item)
    return isinstance(node, MatchAll)


def _random_leaf(rng: random.Random) -> Node:
    word = rng.choice(VOCAB)
    field = rng.choice([None, None, *FIELDS])
    choice = rng.randrange(8)
    if choice == 0:
        return Term(word[:rng.randint(1, len(word))], field, prefix=True)
    if choice == 1:
        return Phrase(f"{word} {rng.choice(VOCAB)}", field)
    if choice == 2:
        other = rng.choice([w for w in VOCAB if not w.startswith(word[:2]) and not word.startswith(w[:2])])
        left = Term(word[:2], field, prefix=True) if rng.random() < 0.3 else Term(word, field)
        return Near(left, Term(other, field), rng.randint(0, 4))
    if choice == 3:
        return rng.choice([Keyword("kind", rng.choice(["chat", "CALL", "deleted"])),
                           Keyword("folder", rng.choice(["purges", "WhatsApp Archiver"])),
                           Keyword("mailbox", f"u{rng.randint(1, 4)}")])
    if choice == 4:
        return rng.choice([Compare("sent", rng.choice(["=", "<", "<=", ">", ">="]),
                                   T0 + timedelta(hours=rng.randint(0, 100))),
                           Compare("size", rng.choice(["=", "<", ">="]), rng.randint(0, 10)),
                           Compare("hasattachment", "=", rng.random() < 0.5)])
    if choice == 5:
        start = T0 + timedelta(hours=rng.randint(0, 100))
        return Range("sent", start, start + timedelta(hours=rng.randint(0, 40)))
    return Term(word, field)


def _random_query(rng: random.Random, depth: int) -> Node:
    if depth == 0 or rng.random() < 0.4:
        return _random_leaf(rng)
    kind = rng.randrange(3)
    if kind == 2:
        return Not(_random_query(rng, depth - 1))
    items = tuple(_random_query(rng, depth - 1) for _ in range(rng.randint(1, 3)))
    return And(items) if kind == 0 else Or(items)


def test_random_queries_find_exactly_what_a_brute_force_evaluation_finds(any_fresh) -> None:
    rng = random.Random(20261125)
    docs = [_random_doc(rng, i) for i in range(1, 301)]
    # deliver in batches, with a re-delivery of some items, as the store does
    any_fresh.add(docs[:150])
    any_fresh.commit()
    any_fresh.add(docs[100:])
    any_fresh.commit()
    checked = 0
    for _ in range(600):
        node = _random_query(rng, 3)
        tenant = rng.choice(["contoso", "fabrikam"])
        users = rng.choice([None, None, ["u1"], ["u2", "u4"]])
        expected = {d.item_id for d in docs
                    if d.tenant == tenant and (users is None or d.user_id in users) and _matches(d, node)}
        assert any_fresh.item_ids(tenant, node, users) == expected, node
        checked += bool(expected)
    assert checked > 150  # the random queries mostly find something, so the comparison means something


def test_replace_keeps_other_fields_of_the_corpus_intact(any_fresh) -> None:
    any_fresh.add(CORPUS)
    any_fresh.add([replace(CORPUS[0], body="changed")])
    any_fresh.commit()
    assert hits(any_fresh, Term("changed")) == {1}
    assert hits(any_fresh, Phrase("quarterly report")) == set()
    assert hits(any_fresh, MatchAll()) == ALL
