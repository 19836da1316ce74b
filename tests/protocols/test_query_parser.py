"""The search-language parser (docs/search.md): every form, the precedence found in [MS-SEARCH] §2.2.11.3,
the UTC date rules, every error with its column — and, under Hypothesis, no exception but QuerySyntaxError."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tenantry.core.errors import Invalid
from tenantry.protocols.query.ast import (
    FIELDS,
    KEYWORD_FIELDS,
    TEXT_FIELDS,
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
from tenantry.protocols.query.parser import MAX_LENGTH, QuerySyntaxError, parse

NOW = datetime(2026, 3, 18, 15, 30, tzinfo=UTC)  # a Wednesday
GUIDE = Path(__file__).resolve().parents[2] / "docs" / "search.md"


def day(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, tzinfo=UTC)


def t(text: str, field: str | None = None, prefix: bool = False) -> Term:
    return Term(text, field, prefix)


def p(text: str) -> Node:
    return parse(text, now=NOW)


def error(text: str) -> QuerySyntaxError:
    with pytest.raises(QuerySyntaxError) as caught:
        parse(text, now=NOW)
    return caught.value


class TestFreeText:
    def test_empty_query_matches_everything(self) -> None:
        assert p("") == MatchAll()

    def test_blank_query_matches_everything(self) -> None:
        assert p("  \t\n ") == MatchAll()

    def test_star_alone_matches_everything(self) -> None:
        assert p("*") == MatchAll()
        assert p(" ( * ) ") == MatchAll()

    def test_word_is_a_term_kept_as_typed(self) -> None:
        assert p("Invoice") == t("Invoice")

    def test_phrase_in_double_quotes(self) -> None:
        assert p('"quarterly report"') == Phrase("quarterly report")

    def test_curly_quotes_pasted_from_a_word_processor_make_a_phrase(self) -> None:
        assert p("“quarterly report”") == Phrase("quarterly report")

    def test_space_between_terms_is_and(self) -> None:
        assert p('invoice "due date" paid') == And((t("invoice"), Phrase("due date"), t("paid")))

    def test_punctuation_inside_a_word_stays_in_the_word(self) -> None:
        assert p("e-mail C++ alice@example.com 10:30") == And(
            (t("e-mail"), t("C++"), t("alice@example.com"), t("10:30")))

    def test_trailing_wildcard_is_a_prefix_term(self) -> None:
        assert p("invoi*") == t("invoi", prefix=True)

    def test_plus_marks_an_inclusion_which_is_the_default(self) -> None:
        assert p("+invoice paid") == And((t("invoice"), t("paid")))

    def test_star_among_terms_adds_nothing(self) -> None:
        assert p("invoice *") == t("invoice")


class TestOperators:
    def test_upper_case_and_or_not_are_operators(self) -> None:
        assert p("a AND b") == And((t("a"), t("b")))
        assert p("a OR b") == Or((t("a"), t("b")))
        assert p("NOT a") == Not(t("a"))

    def test_lower_and_mixed_case_operators_are_words(self) -> None:
        assert p("a and b or not c Or d") == And(
            (t("a"), t("and"), t("b"), t("or"), t("not"), t("c"), t("Or"), t("d")))

    def test_operator_letters_inside_a_word_are_the_word(self) -> None:
        assert p("ANDROID ORACLE NOTES NEARBY") == And((t("ANDROID"), t("ORACLE"), t("NOTES"), t("NEARBY")))

    def test_minus_excludes_a_term(self) -> None:
        assert p("invoice -draft") == And((t("invoice"), Not(t("draft"))))

    def test_minus_excludes_a_phrase_a_property_and_a_group(self) -> None:
        assert p('-"out of office"') == Not(Phrase("out of office"))
        assert p("-from:alice") == Not(t("alice", "from"))
        assert p("-(a OR b)") == Not(Or((t("a"), t("b"))))

    def test_not_after_a_term_means_and_not(self) -> None:
        assert p("invoice NOT draft") == And((t("invoice"), Not(t("draft"))))

    def test_parentheses_nest(self) -> None:
        assert p("(a OR (b AND (c OR d)))") == Or((t("a"), And((t("b"), Or((t("c"), t("d")))))))

    def test_operator_glued_to_a_parenthesis_is_still_an_operator(self) -> None:
        assert p("(a)OR(b)") == Or((t("a"), t("b")))


class TestPrecedence:
    """[MS-SEARCH] §2.2.11.3: "NOT has highest priority, then AND, then OR, and an implicit join has the
    lowest priority"."""

    def test_and_binds_tighter_than_or(self) -> None:
        assert p("a OR b AND c") == Or((t("a"), And((t("b"), t("c")))))
        assert p("a AND b OR c") == Or((And((t("a"), t("b"))), t("c")))

    def test_not_binds_tighter_than_and_and_or(self) -> None:
        assert p("NOT a AND b") == And((Not(t("a")), t("b")))
        assert p("NOT a OR b") == Or((Not(t("a")), t("b")))

    def test_implicit_and_binds_loosest(self) -> None:
        assert p("a OR b c") == And((Or((t("a"), t("b"))), t("c")))
        assert p("a b OR c") == And((t("a"), Or((t("b"), t("c")))))

    def test_implicit_and_is_looser_than_explicit_and(self) -> None:
        assert p("a AND b OR c d") == And((Or((And((t("a"), t("b"))), t("c"))), t("d")))

    def test_exclusion_applies_to_the_next_term_only(self) -> None:
        assert p("a OR b -c") == And((Or((t("a"), t("b"))), Not(t("c"))))

    def test_near_binds_tighter_than_not(self) -> None:
        assert p("NOT a NEAR b") == Not(Near(t("a"), t("b")))

    def test_parentheses_override_precedence(self) -> None:
        assert p("a OR (b c)") == Or((t("a"), And((t("b"), t("c")))))

    def test_purview_condition_example_reads_as_documented(self) -> None:
        # Purview's "phone* OR smartphone*(c:c)(sent=...)": items sent in the range with either prefix.
        assert p("phone* OR smartphone* sent:2019-12-01..2020-11-30") == And((
            Or((t("phone", prefix=True), t("smartphone", prefix=True))),
            Range("sent", day(2019, 12, 1), day(2020, 12, 1)),
        ))


class TestFlattening:
    def test_nested_ands_flatten(self) -> None:
        assert p("a (b (c AND d))") == And((t("a"), t("b"), t("c"), t("d")))

    def test_nested_ors_flatten(self) -> None:
        assert p("a OR (b OR (c OR d))") == Or((t("a"), t("b"), t("c"), t("d")))

    def test_single_item_group_collapses_to_its_item(self) -> None:
        assert p("((invoice))") == t("invoice")

    def test_or_with_match_all_matches_everything(self) -> None:
        assert p("a OR *") == MatchAll()

    def test_double_negation_is_kept(self) -> None:
        assert p("NOT -a") == Not(Not(t("a")))


class TestNear:
    def test_near_defaults_to_eight_words(self) -> None:
        assert p("budget NEAR cuts") == Near(t("budget"), t("cuts"), 8)

    def test_near_with_a_distance(self) -> None:
        assert p("budget NEAR(5) cuts") == Near(t("budget"), t("cuts"), 5)

    def test_near_with_the_n_equals_form(self) -> None:
        assert p("budget NEAR(n=3) cuts") == Near(t("budget"), t("cuts"), 3)
        assert p("budget NEAR( n = 0 )cuts") == Near(t("budget"), t("cuts"), 0)

    def test_near_between_phrases_and_prefixes(self) -> None:
        assert p('"sky blue" NEAR constr*') == Near(Phrase("sky blue"), t("constr", prefix=True), 8)

    def test_lower_case_near_is_a_word(self) -> None:
        assert p("a near b") == And((t("a"), t("near"), t("b")))

    def test_near_inside_a_larger_query(self) -> None:
        assert p("x OR a NEAR b") == Or((t("x"), Near(t("a"), t("b"))))


class TestWildcards:
    @pytest.mark.parametrize(("query", "column"), [("*voice", 1), ("in*voice", 3), ("invoi**", 6), ("a *b", 3)])
    def test_leading_or_middle_wildcard_is_an_error_at_the_star(self, query: str, column: int) -> None:
        err = error(query)
        assert err.reason == "misplaced wildcard '*'"
        assert err.column == column

    def test_trailing_wildcard_on_a_property_value(self) -> None:
        assert p("subject:invoi*") == t("invoi", "subject", prefix=True)

    def test_quoted_single_token_with_trailing_wildcard_is_a_prefix(self) -> None:
        # Purview's way to stop recipient expansion: participants:"ronnie@contoso*".
        assert p('participants:"ronnie@contoso*"') == t("ronnie@contoso", "participants", prefix=True)

    def test_wildcard_ending_a_multi_word_phrase_is_an_error(self) -> None:
        err = error('subject:"quarterly rep*"')
        assert (err.reason, err.column) == ("a wildcard in a phrase is not supported", 23)


class TestTextProperties:
    @pytest.mark.parametrize("field", TEXT_FIELDS)
    def test_every_text_property_makes_a_fielded_term(self, field: str) -> None:
        assert p(f"{field}:alice") == t("alice", field)

    @pytest.mark.parametrize("field", TEXT_FIELDS)
    def test_every_text_property_takes_a_phrase(self, field: str) -> None:
        assert p(f'{field}:"Ann Beebe"') == Phrase("Ann Beebe", field)

    def test_property_names_are_case_insensitive_values_kept_as_typed(self) -> None:
        assert p("From:Alice SUBJECT:Invoice") == And((t("Alice", "from"), t("Invoice", "subject")))

    def test_phone_number_with_plus_is_a_value(self) -> None:
        assert p("from:+4915112345678") == t("+4915112345678", "from")

    def test_address_and_display_name_values(self) -> None:
        assert p('participants:ann@contoso.com OR participants:"Ann Beebe"') == Or(
            (t("ann@contoso.com", "participants"), Phrase("Ann Beebe", "participants")))

    def test_equals_is_the_same_as_colon(self) -> None:
        assert p("to=bob") == t("bob", "to")

    def test_not_equal_is_an_exclusion(self) -> None:
        assert p("from<>alice") == Not(t("alice", "from"))

    def test_operator_word_as_a_value_is_a_value(self) -> None:
        assert p("subject:AND") == t("AND", "subject")

    def test_same_property_twice_is_still_and(self) -> None:
        # Purview would OR these ([MS-KQL] §2.2.4); Tenantry keeps "space = AND" (docs/search.md).
        assert p("from:alice from:bob") == And((t("alice", "from"), t("bob", "from")))


class TestKeywordProperties:
    @pytest.mark.parametrize("field", [f for f in KEYWORD_FIELDS if f != "kind"])
    def test_keyword_property_takes_a_value_as_typed(self, field: str) -> None:
        assert p(f'{field}:"WhatsApp Archiver"') == Keyword(field, "WhatsApp Archiver")
        assert p(f"{field}:Inbox") == Keyword(field, "Inbox")

    @pytest.mark.parametrize("kind", ["chat", "call", "attachment", "deleted", "system"])
    def test_every_kind(self, kind: str) -> None:
        assert p(f"kind:{kind}") == Keyword("kind", kind)

    def test_kind_value_is_case_insensitive(self) -> None:
        assert p("Kind:CHAT") == Keyword("kind", "chat")

    def test_unknown_kind_lists_the_kinds(self) -> None:
        err = error("kind:email")
        assert str(err) == "unknown kind 'email' at column 6 (kinds: chat, call, attachment, deleted, system)"

    def test_excluded_kind(self) -> None:
        assert p("-kind:system") == Not(Keyword("kind", "system"))

    def test_wildcard_in_a_keyword_is_an_error(self) -> None:
        err = error("folder:Whats*")
        assert (err.reason, err.column) == ("wildcards are not supported for 'folder'", 13)


class TestHasAttachment:
    def test_true_and_false(self) -> None:
        assert p("hasattachment:true") == Compare("hasattachment", "=", True)
        assert p("HasAttachment:False") == Compare("hasattachment", "=", False)

    def test_anything_else_is_an_error(self) -> None:
        err = error("hasattachment:yes")
        assert (err.reason, err.column) == ("hasattachment takes true or false, not 'yes'", 15)


class TestHasMissingMedia:
    """Media the source named but did not include (``<Media omitted>``) — not an attachment (issue #10 item 7)."""

    def test_true_false_and_not(self) -> None:
        assert p("hasmissingmedia:true") == Compare("hasmissingmedia", "=", True)
        assert p("HasMissingMedia=FALSE") == Compare("hasmissingmedia", "=", False)
        assert p("hasmissingmedia<>true") == Not(Compare("hasmissingmedia", "=", True))

    def test_anything_else_is_an_error(self) -> None:
        err = error("hasmissingmedia:1")
        assert (err.reason, err.column) == ("hasmissingmedia takes true or false, not '1'", 17)


class TestSize:
    @pytest.mark.parametrize(("op", "expected"), [(">", ">"), (">=", ">="), ("<", "<"), ("<=", "<="), (":", "="),
                                                  ("=", "=")])
    def test_size_comparisons_in_bytes(self, op: str, expected: str) -> None:
        assert p(f"size{op}1000") == Compare("size", expected, 1000)  # type: ignore[arg-type]

    @pytest.mark.parametrize(("text", "value"), [("10KB", 10 * 1024), ("2MB", 2 * 1024**2), ("1gb", 1024**3),
                                                 ("512B", 512)])
    def test_size_units_are_binary(self, text: str, value: int) -> None:
        assert p(f"size>{text}") == Compare("size", ">", value)

    def test_size_range_includes_both_ends(self) -> None:
        assert p("size:1..1MB") == And((Compare("size", ">=", 1), Compare("size", "<=", 1024**2)))

    @pytest.mark.parametrize("query", ["size>1.5MB", "size>big", "size>-1", "size>10XB"])
    def test_a_size_that_is_not_a_whole_number_is_an_error(self, query: str) -> None:
        err = error(query)
        assert err.reason.startswith("invalid size")
        assert err.column == 6


class TestDates:
    """Searches run in UTC: a date is a whole UTC day, a naive time is UTC, an offset is converted."""

    def test_colon_date_is_that_whole_utc_day(self) -> None:
        assert p("sent:2026-01-01") == Range("sent", day(2026, 1, 1), day(2026, 1, 2))

    def test_equals_date_is_the_same_as_colon(self) -> None:
        assert p("received=2026-01-01") == Range("received", day(2026, 1, 1), day(2026, 1, 2))

    def test_range_includes_both_whole_days(self) -> None:
        assert p("sent:2026-01-01..2026-02-01") == Range("sent", day(2026, 1, 1), day(2026, 2, 2))

    def test_one_day_range(self) -> None:
        assert p("sent:2026-01-01..2026-01-01") == Range("sent", day(2026, 1, 1), day(2026, 1, 2))

    def test_greater_or_equal_is_from_midnight_utc(self) -> None:
        assert p("sent>=2026-01-01") == Compare("sent", ">=", day(2026, 1, 1))

    def test_greater_is_after_the_whole_day(self) -> None:
        assert p("sent>2026-01-01") == Compare("sent", ">=", day(2026, 1, 2))

    def test_less_is_before_the_day_starts(self) -> None:
        assert p("sent<2026-01-01") == Compare("sent", "<", day(2026, 1, 1))

    def test_less_or_equal_includes_the_whole_day(self) -> None:
        assert p("received<=2026-01-01") == Compare("received", "<", day(2026, 1, 2))

    def test_not_equal_date_excludes_the_day(self) -> None:
        assert p("sent<>2026-01-01") == Not(Range("sent", day(2026, 1, 1), day(2026, 1, 2)))

    def test_date_time_with_z_is_an_instant(self) -> None:
        at = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
        assert p("sent>2026-01-01T10:00:00Z") == Compare("sent", ">", at)
        assert p("sent<=2026-01-01T10:00:00Z") == Compare("sent", "<=", at)
        assert p("sent:2026-01-01T10:00:00Z") == Compare("sent", "=", at)

    def test_naive_date_time_is_utc(self) -> None:
        assert p("sent>=2026-01-01T10:00:00") == Compare("sent", ">=", datetime(2026, 1, 1, 10, tzinfo=UTC))

    @pytest.mark.parametrize("offset", ["+02:00", "+0200"])
    def test_date_time_with_offset_is_converted_to_utc(self, offset: str) -> None:
        node = p(f"sent>=2026-01-01T10:00:00{offset}")
        assert node == Compare("sent", ">=", datetime(2026, 1, 1, 8, tzinfo=UTC))
        assert isinstance(node, Compare) and isinstance(node.value, datetime)
        assert node.value.tzinfo is UTC

    def test_offset_can_move_the_instant_to_another_utc_day(self) -> None:
        assert p("sent<2026-01-01T01:00-05:00") == Compare("sent", "<", datetime(2026, 1, 1, 6, tzinfo=UTC))

    def test_fraction_of_seconds_up_to_seven_digits(self) -> None:
        assert p("sent>2026-01-01T10:00:00.1234567Z") == Compare(
            "sent", ">", datetime(2026, 1, 1, 10, 0, 0, 123456, tzinfo=UTC))

    def test_date_time_range_includes_its_last_instant(self) -> None:
        node = p("sent:2026-01-01T10:00Z..2026-01-01T12:00Z")
        assert node == Range("sent", datetime(2026, 1, 1, 10, tzinfo=UTC),
                             datetime(2026, 1, 1, 12, tzinfo=UTC) + timedelta(microseconds=1))

    def test_property_name_is_case_insensitive(self) -> None:
        assert p("Sent>=2026-01-01") == p("SENT>=2026-01-01") == Compare("sent", ">=", day(2026, 1, 1))

    @pytest.mark.parametrize("query", ["sent:2026-02-30", "sent:2026-13-01", "sent:26-01-01", "sent:2026-1-1",
                                       "sent:soon", "sent:2026-01-01T25:00Z", "sent:2026-01-01T10:00+24:00"])
    def test_invalid_date_is_an_error_at_the_value(self, query: str) -> None:
        err = error(query)
        assert err.reason.startswith("invalid date")
        assert err.column == 6

    def test_date_beyond_9999_is_out_of_range(self) -> None:
        err = error("sent>9999-12-31")
        assert (err.reason, err.column) == ("date '9999-12-31' is out of range", 6)

    def test_range_ending_before_it_starts_is_an_error(self) -> None:
        err = error("sent:2026-02-01..2026-01-01")
        assert (err.reason, err.column) == ("the range ends before it starts", 6)

    def test_bad_second_date_of_a_range_points_at_it(self) -> None:
        err = error("sent:2026-01-01..2026-02-31")
        assert (err.reason, err.column) == ("invalid date '2026-02-31'", 18)

    def test_range_with_a_comparison_is_an_error(self) -> None:
        err = error("sent>=2026-01-01..2026-02-01")
        assert (err.reason, err.column) == ("a range takes ':'", 7)


class TestRelativeDates:
    """KQL's named intervals, anchored on ``now`` in UTC."""

    @pytest.mark.parametrize(("name", "start", "end"), [
        ("today", day(2026, 3, 18), day(2026, 3, 19)),
        ("yesterday", day(2026, 3, 17), day(2026, 3, 18)),
        ('"this week"', day(2026, 3, 16), day(2026, 3, 23)),
        ('"this month"', day(2026, 3, 1), day(2026, 4, 1)),
        ('"last month"', day(2026, 2, 1), day(2026, 3, 1)),
        ('"this year"', day(2026, 1, 1), day(2027, 1, 1)),
        ('"last year"', day(2025, 1, 1), day(2026, 1, 1)),
    ])
    def test_named_interval(self, name: str, start: datetime, end: datetime) -> None:
        assert p(f"sent:{name}") == Range("sent", start, end)

    def test_comparison_with_a_named_interval(self) -> None:
        assert p("received>=yesterday") == Compare("received", ">=", day(2026, 3, 17))
        assert p("received>yesterday") == Compare("received", ">=", day(2026, 3, 18))

    def test_range_of_named_intervals(self) -> None:
        assert p("sent:yesterday..today") == Range("sent", day(2026, 3, 17), day(2026, 3, 19))

    def test_naive_now_is_utc(self) -> None:
        assert parse("sent:today", now=datetime(2026, 3, 18, 23, 59)) == Range("sent", day(2026, 3, 18),
                                                                                day(2026, 3, 19))

    def test_today_is_the_utc_day_of_now_whatever_its_zone(self) -> None:
        new_york_evening = datetime(2026, 3, 18, 22, 0, tzinfo=timezone(timedelta(hours=-4)))  # 02:00 UTC, 19th
        assert parse("sent:today", now=new_york_evening) == Range("sent", day(2026, 3, 19), day(2026, 3, 20))

    def test_january_last_month_is_december(self) -> None:
        assert parse('sent:"last month"', now=day(2026, 1, 5)) == Range("sent", day(2025, 12, 1), day(2026, 1, 1))

    def test_default_now_is_the_current_utc_day(self) -> None:
        before = datetime.now(UTC).date()
        node = parse("sent:today")
        after = datetime.now(UTC).date()
        assert isinstance(node, Range)
        assert node.start.date() in (before, after)
        assert node.end - node.start == timedelta(days=1)


class TestErrors:
    """Every error names the problem and its 1-based column; the pointer puts a caret under it."""

    @pytest.mark.parametrize(("query", "message"), [
        ("from:", "expected a value after 'from:' at column 6 "
                  "(put the value right after it: from:value, or from:\"a value with spaces\")"),
        ("from: alice", "expected a value after 'from:' at column 6 (no space between 'from:' and its value)"),
        ("from:(alice OR bob)", "expected a value after 'from:' at column 6 "
                                "(a property takes one value: write (from:alice OR from:bob))"),
        ("subject: AND", "expected a value after 'subject:' at column 9 (no space between 'subject:' and its value)"),
        ("a size> 5", "expected a value after 'size>' at column 8 (no space between 'size>' and its value)"),
        ("frm:alice", "unknown property 'frm' at column 1 (did you mean 'from'?)"),
        ("x Sbject:hi", "unknown property 'Sbject' at column 3 (did you mean 'subject'?)"),
        ("bcc:ann", "property 'bcc' is not searchable here at column 1 (chats have no Bcc; use participants:)"),
        ("(a OR b", "unbalanced parenthesis at column 1 ('(' is never closed)"),
        ("a) OR b", "unbalanced parenthesis at column 2 (')' has no matching '(')"),
        (")", "unbalanced parenthesis at column 1 (')' has no matching '(')"),
        ("((a) b", "unbalanced parenthesis at column 1 ('(' is never closed)"),
        ("a ()", "empty parentheses at column 3"),
        ("a NEAR", "NEAR needs a word or phrase on each side at column 3 (as in budget NEAR(5) cuts)"),
        ("NEAR b", "NEAR needs a word or phrase on each side at column 1 (as in budget NEAR(5) cuts)"),
        ("a NEAR from:bob", "NEAR needs a word or phrase on each side at column 3 (not a property, a group or '*')"),
        ("a NEAR (b OR c)", "NEAR needs a word or phrase on each side at column 3 (not a property, a group or '*')"),
        ("a NEAR -b", "NEAR needs a word or phrase on each side at column 3 (as in budget NEAR(5) cuts)"),
        ("a NEAR b NEAR c", "NEAR joins exactly two words or phrases at column 10 (write (a NEAR b) AND (b NEAR c))"),
        ("a AND", "expected a word, phrase or property after 'AND' at column 6 (found the end of the query)"),
        ("a OR OR b", "expected a word, phrase or property after 'OR' at column 6 (found 'OR')"),
        ("NOT", "expected a word, phrase or property after 'NOT' at column 4 (found the end of the query)"),
        ("AND b", "AND needs a condition on each side at column 1 (lower-case 'and' searches for the word)"),
        ("(OR b)", "OR needs a condition on each side at column 2 (lower-case 'or' searches for the word)"),
        ("a - b", "'-' must be directly followed by what it applies to at column 3 "
                  "(write -word, -\"a phrase\" or -from:alice)"),
        ('say "hello', "unmatched quotation mark at column 5 (a phrase is enclosed in a pair of double quotes)"),
        ('subject:"hello', "unmatched quotation mark at column 9 (a phrase is enclosed in a pair of double quotes)"),
        ('""', 'empty phrase at column 1 (put words between the quotes: "quarterly report")'),
        ("subject>3", "'subject' cannot be compared with '>' at column 8 "
                      "(write subject:value; < > <= >= are for sent, received and size)"),
        ("a ONEAR b", "the ONEAR operator is not supported at column 3 (use NEAR, AND, OR and NOT)"),
        ("XRANK(cb=1) a", "the XRANK operator is not supported at column 1 (use NEAR, AND, OR and NOT)"),
        ("subject:*", "'*' alone is not a value for 'subject' at column 9 (write subject:word*)"),
    ])
    def test_message_and_column(self, query: str, message: str) -> None:
        assert str(error(query)) == message

    def test_error_carries_reason_column_and_hint_separately(self) -> None:
        err = error("frm:alice")
        assert (err.reason, err.column, err.hint) == ("unknown property 'frm'", 1, "did you mean 'from'?")

    def test_unknown_property_without_a_close_match_lists_the_properties(self) -> None:
        err = error("http://example.com")
        assert err.reason == "unknown property 'http'"
        assert err.hint is not None and "from, to, cc" in err.hint and "quotes" in err.hint

    def test_pointer_puts_a_caret_under_the_column(self) -> None:
        assert error("from: alice").pointer == "from: alice\n     ^"

    def test_pointer_at_the_end_of_the_query(self) -> None:
        assert error("a AND").pointer == "a AND\n     ^"

    def test_pointer_keeps_a_multi_line_query_on_one_line(self) -> None:
        err = error("a\nb AND")
        assert err.column == 8
        assert err.pointer == "a b AND\n       ^"

    def test_is_an_invalid_domain_error_rendered_as_400(self) -> None:
        err = error("frm:alice")
        assert isinstance(err, Invalid)
        assert err.status_code == 400
        assert err.to_dict() == {"error": "query_syntax", "column": 1,
                                 "message": "unknown property 'frm' at column 1 (did you mean 'from'?)"}

    def test_built_directly_from_message_and_column(self) -> None:
        err = QuerySyntaxError("unbalanced parenthesis", 7)
        assert str(err) == "unbalanced parenthesis at column 7"
        assert err.pointer == "\n      ^"

    def test_deep_nesting_is_an_error_not_a_crash(self) -> None:
        assert error("(" * 500 + "a" + ")" * 500).reason == "the query is nested too deeply"
        assert error("NOT " * 2000 + "a").reason == "the query is nested too deeply"

    def test_reasonable_nesting_is_fine(self) -> None:
        assert p("(" * 40 + "a" + ")" * 40) == t("a")

    def test_overlong_query_is_an_error(self) -> None:
        err = error("a " * (MAX_LENGTH // 2 + 1))
        assert err.column == MAX_LENGTH + 1

    def test_huge_near_distance_is_an_error(self) -> None:
        assert error("a NEAR(99999999999) b").reason == "NEAR distance 99999999999 is too large"

    def test_huge_size_is_an_error(self) -> None:
        assert error("size>99999999999TB").reason == "size '99999999999TB' is too large"


class TestAdminGuide:
    """docs/search.md's examples are checked here, so the guide cannot drift from the parser."""

    def section(self, title: str) -> str:
        text = GUIDE.read_text(encoding="utf-8")
        start = text.index(f"{title}\n")
        end = text.find("\n#", start + len(title))
        return text[start:] if end == -1 else text[start:end]

    def test_opening_examples_parse(self) -> None:
        block = GUIDE.read_text(encoding="utf-8").split("```text\n", 1)[1].split("```", 1)[0]
        for line in block.strip().splitlines():
            p(line)

    def test_precedence_table_equivalences_hold(self) -> None:
        rows = re.findall(r"^\| `([^`]+)` \| `([^`]+)` \|$", self.section("### Precedence"), re.MULTILINE)
        assert len(rows) == 6
        for query, meaning in rows:
            assert p(query) == p(meaning), query

    def test_every_error_example_in_the_table_is_refused_with_its_message(self) -> None:
        rows = re.findall(r"^\| `([^`]+)`[^|]* \| ([^|]+) \|", self.section("## Errors"), re.MULTILINE)
        assert len(rows) >= 25
        def shape(text: str) -> str:  # the message without what varies: quoted values, numbers, AND/OR
            return " ".join(re.sub(r"'[^']*'|…|[0-9]+|\b(AND|OR)\b", " ", text).split())

        for message, examples in rows:
            for example in re.findall(r"`([^`]+)`", examples):
                assert shape(error(example).reason).startswith(shape(message)), (example, message)


# -- never raises anything but QuerySyntaxError -------------------------------------------------------

FUZZ = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TOKENS = [
    "a", "invoice", "Ann", "*", "invoi*", "*x", "in*x", '"x y"', '"', "“", "”", '""', "(", ")", "AND", "OR", "NOT",
    "and", "NEAR", "NEAR(3)", "NEAR(n=2)", "NEAR(", "ONEAR", "XRANK", "WORDS(", "-", "+", ":", "=", "<", ">", "<=",
    ">=", "<>", "..", *(f"{f}:" for f in FIELDS), "From:", "frm:", "bcc:", "size>", "size>=", "sent>", "sent<=",
    "received=", "kind:", "chat", "email", "true", "yes", "10KB", "2MB", "1.5MB", "99999999999999999999",
    "2026-01-01", "2026-02-30", "9999-12-31", "0001-01-01", "2026-01-01T10:00:00Z", "T10:00", "+02:00", "Z",
    "today", '"this week"', "yesterday", "\u00a0", "\x00", "\ud800", "é", "\n",
]


def assert_well_formed(node: Node) -> None:
    """What the backend relies on: flat, non-trivial And/Or; known fields; aware UTC date-times."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, And | Or):
            assert len(item.items) >= 2
            assert not any(isinstance(i, type(item)) for i in item.items)
            stack.extend(item.items)
        elif isinstance(item, Not):
            stack.append(item.item)
        elif isinstance(item, Near):
            assert isinstance(item.left, Term | Phrase) and isinstance(item.right, Term | Phrase)
            assert item.left.field is None and item.right.field is None and item.distance >= 0
        elif isinstance(item, Term | Phrase):
            assert item.field is None or item.field in TEXT_FIELDS
            assert item.text
        elif isinstance(item, Keyword):
            assert item.field in KEYWORD_FIELDS
        elif isinstance(item, Range):
            assert item.start.tzinfo is UTC and item.end.tzinfo is UTC and item.start < item.end
        elif isinstance(item, Compare):
            assert item.field in FIELDS
            if isinstance(item.value, datetime):
                assert item.value.tzinfo is UTC
        else:
            assert isinstance(item, MatchAll)


def parse_or_explain(text: str) -> None:
    try:
        node = parse(text, now=NOW)
    except QuerySyntaxError as err:
        assert 1 <= err.column <= len(text) + 1
        assert err.pointer.endswith("^")
        assert str(err).startswith(err.reason)
    else:
        assert_well_formed(node)


class TestNeverRaises:
    @FUZZ
    @given(st.text(max_size=200))
    def test_arbitrary_text_parses_or_raises_query_syntax_error(self, text: str) -> None:
        parse_or_explain(text)

    @FUZZ
    @given(st.lists(st.tuples(st.sampled_from(TOKENS), st.sampled_from(["", "", " ", "  "])), max_size=25))
    def test_text_built_from_the_grammars_tokens_parses_or_raises_query_syntax_error(
        self, pieces: list[tuple[str, str]]
    ) -> None:
        parse_or_explain("".join(token + gap for token, gap in pieces))

    @FUZZ
    @given(st.text(alphabet=st.sampled_from('()"- *:AND OR NOT NEAR a'), max_size=60))
    def test_dense_operator_soup_parses_or_raises_query_syntax_error(self, text: str) -> None:
        parse_or_explain(text)

    @FUZZ
    @given(st.datetimes(timezones=st.none() | st.timezones()), st.sampled_from(
        ["sent:today", "sent:yesterday", 'sent:"this week"', 'sent:"this month"', 'sent:"last month"',
         'sent:"this year"', 'sent:"last year"', "sent>today"]))
    def test_relative_dates_at_any_now_parse_or_raise_query_syntax_error(self, now: datetime, query: str) -> None:
        try:
            node = parse(query, now=now)
        except QuerySyntaxError as err:
            assert err.reason.endswith("is out of range")
        else:
            assert_well_formed(node)

    def test_non_text_input_is_a_query_syntax_error(self) -> None:
        with pytest.raises(QuerySyntaxError):
            parse(b"from:alice", now=NOW)  # type: ignore[arg-type]
