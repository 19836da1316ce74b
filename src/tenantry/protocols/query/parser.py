"""The archive search language (docs/search.md): a KQL subset parsed with a lark LALR grammar into ``ast.Node``.

``parse(text, now=...)`` returns a syntax tree or raises ``QuerySyntaxError`` with a 1-based column — and
nothing else, whatever the input. Sources: [MS-KQL] §2 (grammar, operators upper case), §2.1.11 (implicit
operator); [MS-SEARCH] §2.2.11.3 (precedence); SharePoint "KQL syntax reference" (property operators, dates,
NEAR); Purview "Keyword queries and search conditions for eDiscovery" (properties, prefix-only wildcards).

Precedence, tightest first: NEAR, then NOT / ``-`` / ``+``, then AND, then OR, then the space (implicit AND).
[MS-SEARCH] §2.2.11.3: "NOT has highest priority, then AND, then OR, and an implicit join has the lowest
priority" — so ``a OR b c`` is ``(a OR b) AND c``, as [MS-KQL] §2's grammar also implies (an expression-list
is a list of operator-expressions, and an operator's operand is never a list).
"""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Literal

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from tenantry.protocols.query.ast import (
    FIELDS,
    KEYWORD_FIELDS,
    KINDS,
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
from tenantry.protocols.query.errors import QuerySyntaxError

__all__ = ["MAX_DEPTH", "MAX_LENGTH", "QuerySyntaxError", "parse"]

# SharePoint's ceiling for eDiscovery queries (DiscoveryMaxKeywordQueryTextLength, KQL syntax reference).
MAX_LENGTH = 20_480
# Levels of the parse tree; deeper nesting would only exhaust the stack of whoever walks the tree.
MAX_DEPTH = 100
NEAR_DEFAULT = 8  # [MS-KQL] / KQL syntax reference: "a default of 8"
MAX_NEAR = 2**31 - 1
MAX_SIZE = 2**63 - 1

# A word ends at white space, a parenthesis or a quotation mark (straight or curly, as pasted from Word).
_STOP = r'\s()"“”'
# An operator is an upper-case word standing alone: ``AND`` but not ``ANDROID``, ``and`` or ``AND:``.
_ALONE = rf"(?![^{_STOP}])"

GRAMMAR = rf"""
?start: seq?

// [MS-SEARCH] §2.2.11.3: NOT binds tighter than AND, AND than OR, and juxtaposition is loosest.
?seq: or_expr+
?or_expr: and_expr (_OR and_expr)*
?and_expr: unary (_AND unary)*
?unary: NOT unary       -> negation
      | MINUS atom      -> exclusion
      | PLUS atom       -> inclusion
      | near
?near: atom (NEAR atom)*
?atom: WORD
     | PHRASE
     | restriction
     | group
     | UNSUPPORTED
restriction: PROP (VALUE | PHRASE)
group: LPAR seq RPAR

_AND.6: /AND{_ALONE}/
_OR.6: /OR{_ALONE}/
NOT.6: /NOT{_ALONE}/
NEAR.6: /NEAR(\(\s*(n\s*=\s*)?[0-9]+\s*\)|{_ALONE})/
UNSUPPORTED.5: /(ONEAR|XRANK)(\([^()]*\))?{_ALONE}|(WORDS|ALL|ANY|NONE)(?=\()/
// A property restriction: a name glued to its operator, the value glued after it ([MS-KQL] §2.2).
PROP.4: /[A-Za-z][A-Za-z0-9_]*(<>|<=|>=|:|=|<|>)/
PHRASE.3: /["“][^"“”]*["”]/
// Only ever lexed right after PROP (the lexer is contextual), so a value may start with + or -.
VALUE.2: /[^{_STOP}]+/
MINUS.2: "-"
PLUS.2: "+"
WORD.1: /(?!(AND|OR|NOT|NEAR){_ALONE})[^{_STOP}+\-][^{_STOP}]*/
LPAR: "("
RPAR: ")"

%ignore /\s+/
"""

_OPERATOR_NAMES = {"_AND": "AND", "_OR": "OR", "NOT": "NOT", "NEAR": "NEAR", "MINUS": "-", "PLUS": "+"}
_PROP = re.compile(r"([A-Za-z][A-Za-z0-9_]*)(<>|<=|>=|:|=|<|>)")
_NEAR_DISTANCE = re.compile(r"[0-9]+")
_DATE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:[Tt]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,7}))?)?([Zz]|[+-][0-9]{2}:?[0-9]{2})?)?"
)
_SIZE = re.compile(r"([0-9]+)([KMGT]?B)?", re.IGNORECASE)
_SIZE_UNITS = {None: 1, "B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
_RELATIVE_DATES = ("today", "yesterday", "this week", "this month", "last month", "this year", "last year")
# Purview properties a chat archive has no data for, and what to use instead.
_ELSEWHERE = {
    "bcc": "chats have no Bcc; use participants:",
    "recipients": "use to:, cc: or participants:",
    "sender": "use from:",
    "date": "use sent: or received:",
    "itemclass": "use kind:",
    "attachment": "use attachmentnames:",
    "filename": "use attachmentnames:",
}

CompareOp = Literal["=", "<", "<=", ">", ">="]


@functools.cache
def _lark() -> Lark:
    # Compiled once, like a regular expression: building the LALR tables costs far more than a parse.
    return Lark(GRAMMAR, parser="lalr", lexer="contextual", maybe_placeholders=False)


def parse(text: str, *, now: datetime | None = None) -> Node:
    """The syntax tree of ``text``; ``now`` (default: the current time) anchors ``today``, ``this week`` and
    the other relative dates. Raises ``QuerySyntaxError`` and nothing else."""
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=UTC)  # searches run in UTC: a naive time is a UTC time
    else:
        try:
            now = now.astimezone(UTC)
        except (OverflowError, ValueError):
            raise QuerySyntaxError("the time given as now is out of range", 1, query=str(text)) from None
    return _Parser(text, now).run()


@dataclass(frozen=True)
class _When:
    """A date value as an interval ``[start, end)``: a whole UTC day (or week, month, year), or an instant."""

    start: datetime
    end: datetime
    instant: bool


class _Parser:
    def __init__(self, text: str, now: datetime) -> None:
        self.text = text
        self.now = now

    def error(self, message: str, pos: int, hint: str | None = None) -> QuerySyntaxError:
        return QuerySyntaxError(message, pos + 1, hint=hint, query=self.text)

    # -- syntax ------------------------------------------------------------------------------------

    def run(self) -> Node:
        if not isinstance(self.text, str):
            raise QuerySyntaxError(f"a query is text, not {type(self.text).__name__}", 1)
        if len(self.text) > MAX_LENGTH:
            raise self.error(f"the query is longer than {MAX_LENGTH} characters", MAX_LENGTH)
        tree = self.syntax_tree()
        self.check_depth(tree)
        return self.node(tree)

    def syntax_tree(self) -> Tree[Token] | Token:
        interactive = _lark().parse_interactive(self.text)
        seen: list[Token] = []
        try:
            for token in interactive.iter_parse():
                self.precheck(token, seen)
                seen.append(token)
        except UnexpectedToken as exc:
            # Raised either by the lexer (a token this position cannot take; never yielded) or by the parser
            # (the token just yielded and recorded).
            before = seen[:-1] if seen and seen[-1] is exc.token else seen
            raise self.explain(exc.token, before) from None
        except UnexpectedCharacters as exc:
            # Everything but a stray quotation mark lexes as a word, a value or an operator.
            raise self.error("unmatched quotation mark", exc.pos_in_stream or 0,
                             "a phrase is enclosed in a pair of double quotes") from None
        except UnexpectedInput as exc:  # pragma: no cover - LALR raises only the two above
            raise self.error("cannot read the query here", getattr(exc, "pos_in_stream", 0) or 0) from None
        try:
            result: Tree[Token] | Token = interactive.feed_token(Token("$END", ""))
        except UnexpectedToken:
            raise self.explain(None, seen) from None
        return result

    def precheck(self, token: Token, seen: list[Token]) -> None:
        """Errors a parser would report vaguely or not at all, caught as each token arrives."""
        prev = seen[-1] if seen else None
        if prev is not None and prev.type == "PROP" and _pos(token) != _end(prev):
            raise self.missing_value(prev, token)
        if prev is not None and prev.type in ("MINUS", "PLUS") and _pos(token) != _end(prev):
            raise self.error(f"'{prev}' must be directly followed by what it applies to", _pos(prev),
                             f"write {prev}word, {prev}\"a phrase\" or {prev}from:alice")
        if token.type == "PROP":
            self.check_property(token)
        elif token.type == "UNSUPPORTED":
            name = re.match(r"[A-Z]+", str(token))
            raise self.error(f"the {name.group() if name else str(token)} operator is not supported",
                             _pos(token), "use NEAR, AND, OR and NOT")
        elif token.type == "RPAR":
            if not _unclosed(seen):
                raise self.error("unbalanced parenthesis", _pos(token), "')' has no matching '('")
            if prev is not None and prev.type == "LPAR":
                raise self.error("empty parentheses", _pos(prev))
        elif token.type == "PHRASE" and not _unquote(token).strip():
            raise self.error("empty phrase", _pos(token), 'put words between the quotes: "quarterly report"')

    def check_property(self, token: Token) -> None:
        name, _ = _split_prop(token)
        key = name.lower()
        if key in FIELDS:
            return
        if key in _ELSEWHERE:
            raise self.error(f"property '{name}' is not searchable here", _pos(token), _ELSEWHERE[key])
        close = difflib.get_close_matches(key, FIELDS, n=1, cutoff=0.6)
        hint = (f"did you mean '{close[0]}'?" if close
                else f"properties: {', '.join(FIELDS)}; to search for the text, put it in quotes")
        raise self.error(f"unknown property '{name}'", _pos(token), hint)

    def missing_value(self, prop: Token, after: Token | None) -> QuerySyntaxError:
        if after is not None and after.type == "LPAR" and _pos(after) == _end(prop):
            hint = "a property takes one value: write (from:alice OR from:bob)"
        elif after is not None and after.type in ("VALUE", "PHRASE"):
            hint = f"no space between '{prop}' and its value"
        else:
            hint = f'put the value right after it: {prop}value, or {prop}"a value with spaces"'
        return self.error(f"expected a value after '{prop}'", _end(prop), hint)

    def explain(self, token: Token | None, seen: list[Token]) -> QuerySyntaxError:
        """Why ``token`` (None: the end of the query) cannot come after ``seen``."""
        prev = seen[-1] if seen else None
        pos = len(self.text) if token is None else _pos(token)
        kind = "$END" if token is None else token.type
        if prev is not None and prev.type == "PROP":
            return self.missing_value(prev, token)
        if kind == "NEAR" or (prev is not None and prev.type == "NEAR"):
            near = token if kind == "NEAR" and token is not None else prev
            assert near is not None
            return self.error("NEAR needs a word or phrase on each side", _pos(near), "as in budget NEAR(5) cuts")
        if prev is not None and prev.type in ("NOT", "MINUS", "PLUS", "_AND", "_OR"):
            # Outside a property the root lexer may read "-a" as a value; only its first character is wrong.
            what = ("the end of the query" if token is None
                    else f"'{str(token)[0]}'" if token.type == "VALUE" else f"'{token}'")
            return self.error(f"expected a word, phrase or property after '{_OPERATOR_NAMES[prev.type]}'", pos,
                              f"found {what}")
        if kind in ("_AND", "_OR"):
            return self.error(f"{_OPERATOR_NAMES[kind]} needs a condition on each side", pos,
                              f"lower-case '{_OPERATOR_NAMES[kind].lower()}' searches for the word")
        if kind == "RPAR":
            if not _unclosed(seen):
                return self.error("unbalanced parenthesis", pos, "')' has no matching '('")
            if prev is not None and prev.type == "LPAR":
                return self.error("empty parentheses", _pos(prev))
        if kind == "$END":
            unclosed = _unclosed(seen)
            if unclosed:
                return self.error("unbalanced parenthesis", _pos(unclosed[-1]), "'(' is never closed")
            return self.error("unexpected end of the query", pos)
        return self.error(f"unexpected '{token}'", pos)

    def check_depth(self, tree: Tree[Token] | Token) -> None:
        stack: list[tuple[Tree[Token] | Token, int, int]] = [(tree, 1, 0)]
        while stack:
            item, depth, pos = stack.pop()
            if not isinstance(item, Tree):
                continue
            first = next((c for c in item.children if isinstance(c, Token)), None)
            pos = _pos(first) if first is not None else pos
            if depth > MAX_DEPTH:
                raise self.error("the query is nested too deeply", pos,
                                 f"more than {MAX_DEPTH} levels of parentheses and operators")
            stack.extend((child, depth + 1, pos) for child in item.children)

    # -- meaning -----------------------------------------------------------------------------------

    def node(self, item: Tree[Token] | Token) -> Node:
        if isinstance(item, Token):
            if item.type == "WORD":
                return self.word(item, None)
            if item.type == "PHRASE":
                return self.phrase(item, None)
            raise self.error(f"unexpected '{item}'", _pos(item))  # pragma: no cover - grammar allows no other
        rule = item.data
        kids = item.children
        if rule == "start":
            return MatchAll()
        if rule == "seq" or rule == "and_expr":
            return _and([self.node(k) for k in kids])
        if rule == "or_expr":
            return _or([self.node(k) for k in kids])
        if rule in ("negation", "exclusion"):
            return Not(self.node(kids[1]))
        if rule == "inclusion":
            return self.node(kids[1])
        if rule == "group":
            return self.node(kids[1])
        if rule == "near":
            return self.near(kids)
        if rule == "restriction":
            prop, value = kids
            assert isinstance(prop, Token) and isinstance(value, Token)
            return self.restriction(prop, value)
        raise self.error(f"unexpected {rule}", 0)  # pragma: no cover - every rule is handled above

    def word(self, token: Token, field: str | None, pos: int | None = None) -> Term | MatchAll:
        text = str(token)
        pos = _pos(token) if pos is None else pos
        if text == "*" and field is None:
            return MatchAll()
        star = text.find("*")
        if star == -1:
            return Term(text, field)
        if star < len(text) - 1 or star == 0:
            raise self.error("misplaced wildcard '*'", pos + star,
                             "only a trailing wildcard is supported, as in invoi*")
        return Term(text[:-1], field, prefix=True)

    def phrase(self, token: Token, field: str | None) -> Term | Phrase:
        text = _unquote(token)
        if text.endswith("*"):
            # Purview's "participants:\"ronnie@contoso*\"": a quoted single token with a trailing wildcard.
            if text[:-1] and not any(c.isspace() for c in text) and "*" not in text[:-1]:
                return Term(text[:-1], field, prefix=True)
            raise self.error("a wildcard in a phrase is not supported", _pos(token) + len(text),
                             "only a single word can end with *")
        return Phrase(text, field)

    def near(self, kids: list[Tree[Token] | Token]) -> Near:
        operands = kids[0::2]
        operators = [k for k in kids[1::2] if isinstance(k, Token)]
        if len(operands) > 2:
            raise self.error("NEAR joins exactly two words or phrases", _pos(operators[1]),
                             "write (a NEAR b) AND (b NEAR c)")
        op = operators[0]
        sides: list[Term | Phrase] = []
        for operand in operands:
            side = self.node(operand)
            if not isinstance(side, Term | Phrase) or side.field is not None:
                raise self.error("NEAR needs a word or phrase on each side", _pos(op),
                                 "not a property, a group or '*'")
            sides.append(side)
        digits = _NEAR_DISTANCE.search(str(op))
        distance = int(digits.group()) if digits else NEAR_DEFAULT
        if distance > MAX_NEAR:
            raise self.error(f"NEAR distance {distance} is too large", _pos(op), f"at most {MAX_NEAR}")
        return Near(sides[0], sides[1], distance)

    # -- property restrictions ---------------------------------------------------------------------

    def restriction(self, prop: Token, value: Token) -> Node:
        name, op = _split_prop(prop)
        field = name.lower()
        op_pos = _pos(prop) + len(name)
        quoted = value.type == "PHRASE"
        raw = _unquote(value) if quoted else str(value)
        vpos = _pos(value) + (1 if quoted else 0)
        negate = op == "<>"
        node: Node
        if field in TEXT_FIELDS:
            self.require_match_op(field, op, op_pos)
            if quoted:
                node = self.phrase(value, field)
            elif raw == "*":
                raise self.error(f"'*' alone is not a value for '{name}'", vpos, f"write {name}{op}word*")
            else:
                node = self.word(value, field)
        elif field in KEYWORD_FIELDS:
            self.require_match_op(field, op, op_pos)
            node = self.keyword(field, raw, vpos, quoted)
        elif field in ("hasattachment", "hasmissingmedia"):
            # hasattachment: a file is attached; hasmissingmedia: media the source named but did not include
            # (WhatsApp's "<Media omitted>", a file missing from the export) — issue #10 item 7.
            self.require_match_op(field, op, op_pos)
            flag = raw.lower()
            if flag not in ("true", "false"):
                raise self.error(f"{field} takes true or false, not '{raw}'", vpos)
            node = Compare(field, "=", flag == "true")
        elif field == "size":
            node = self.size(op, raw, vpos)
        else:
            node = self.when(field, op, raw, vpos)
        return Not(node) if negate else node

    def require_match_op(self, field: str, op: str, pos: int) -> None:
        if op not in (":", "=", "<>"):
            raise self.error(f"'{field}' cannot be compared with '{op}'", pos,
                             f"write {field}:value; < > <= >= are for sent, received and size")

    def keyword(self, field: str, raw: str, pos: int, quoted: bool) -> Keyword:
        if not raw.strip():
            raise self.error(f"expected a value for '{field}'", pos)
        if field == "kind":
            kind = raw.lower()
            if kind not in KINDS:
                raise self.error(f"unknown kind '{raw}'", pos, f"kinds: {', '.join(KINDS)}")
            return Keyword("kind", kind)
        if not quoted and "*" in raw:
            raise self.error(f"wildcards are not supported for '{field}'", pos + raw.index("*"),
                             f"give the whole value; quote it if it has spaces: {field}:\"WhatsApp Archiver\"")
        return Keyword(field, raw)

    def size(self, op: str, raw: str, pos: int) -> Node:
        if ".." in raw:
            if op not in (":", "="):
                raise self.error("a range takes ':'", pos, "as in size:1KB..2MB")
            low_text, high_text = raw.split("..", 1)
            low = self.bytes(low_text, pos)
            high = self.bytes(high_text, pos + len(low_text) + 2)
            if high < low:
                raise self.error("the range ends before it starts", pos)
            return _and([Compare("size", ">=", low), Compare("size", "<=", high)])
        return Compare("size", _compare_op(op), self.bytes(raw, pos))

    def bytes(self, raw: str, pos: int) -> int:
        match = _SIZE.fullmatch(raw)
        if match is None:
            raise self.error(f"invalid size '{raw}'", pos, "a whole number of bytes, or with KB, MB or GB: 10KB")
        unit = match.group(2).upper() if match.group(2) else None
        value = int(match.group(1)) * _SIZE_UNITS[unit]
        if value > MAX_SIZE:
            raise self.error(f"size '{raw}' is too large", pos)
        return value

    def when(self, field: str, op: str, raw: str, pos: int) -> Node:
        if ".." in raw:
            if op not in (":", "="):
                raise self.error("a range takes ':'", pos, f"as in {field}:2026-01-01..2026-01-31")
            first_text, last_text = raw.split("..", 1)
            first = self.date(first_text, pos)
            last = self.date(last_text, pos + len(first_text) + 2)
            # Both ends are included: a day runs to its end, an instant is itself the last one matched.
            end = last.end
            if end <= first.start:
                raise self.error("the range ends before it starts", pos)
            return Range(field, first.start, end)
        value = self.date(raw, pos)
        if op in (":", "=", "<>"):
            return Compare(field, "=", value.start) if value.instant else Range(field, value.start, value.end)
        if op == ">=":
            return Compare(field, ">=", value.start)
        if op == ">":  # after the whole day: from the next day's midnight on
            return Compare(field, ">", value.start) if value.instant else Compare(field, ">=", value.end)
        if op == "<":
            return Compare(field, "<", value.start)
        # "<=": up to the end of the day
        return Compare(field, "<=", value.start) if value.instant else Compare(field, "<", value.end)

    def date(self, raw: str, pos: int) -> _When:
        hint = 'as 2026-01-31, 2026-01-31T10:00:00Z, 2026-01-31T12:00:00+02:00, today, yesterday or "this week"'
        if not raw:
            raise self.error("expected a date", pos, hint)
        try:
            relative = self.relative(raw.strip().lower())
        except (OverflowError, ValueError):  # "last year" when now is in year 1
            raise self.error(f"date '{raw}' is out of range", pos, "years 0001 to 9999") from None
        if relative is not None:
            return relative
        try:
            match = _DATE.fullmatch(raw)
            if match is None:
                raise self.error(f"invalid date '{raw}'", pos, hint)
            year, month, day, hour, minute, second, fraction, zone = match.groups()
            day_start = datetime(int(year), int(month), int(day), tzinfo=UTC)
            if hour is None:
                return _When(day_start, day_start + timedelta(days=1), instant=False)
            tz: timezone = UTC
            if zone is not None and zone not in ("Z", "z"):
                sign = -1 if zone[0] == "-" else 1
                digits = zone[1:].replace(":", "")
                tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
            micro = int((fraction or "0")[:6].ljust(6, "0"))
            local = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micro,
                             tzinfo=tz)
            instant = local.astimezone(UTC)
            return _When(instant, instant + timedelta(microseconds=1), instant=True)
        except OverflowError:
            raise self.error(f"date '{raw}' is out of range", pos, "years 0001 to 9999") from None
        except ValueError:
            raise self.error(f"invalid date '{raw}'", pos, hint) from None

    def relative(self, name: str) -> _When | None:
        """KQL's relative "day" ranges (KQL syntax reference, table 4), in UTC; weeks start on Monday."""
        if name not in _RELATIVE_DATES:
            return None
        today = self.now.date()
        if name == "today":
            first, after = today, today + timedelta(days=1)
        elif name == "yesterday":
            first, after = today - timedelta(days=1), today
        elif name == "this week":
            first = today - timedelta(days=today.weekday())
            after = first + timedelta(days=7)
        elif name == "this month":
            first, after = today.replace(day=1), _next_month(today.replace(day=1))
        elif name == "last month":
            after = today.replace(day=1)
            first = (after - timedelta(days=1)).replace(day=1)
        elif name == "this year":
            first, after = date(today.year, 1, 1), date(today.year + 1, 1, 1)
        else:  # last year
            first, after = date(today.year - 1, 1, 1), date(today.year, 1, 1)
        return _When(_midnight(first), _midnight(after), instant=False)


def _next_month(first: date) -> date:
    return date(first.year + 1, 1, 1) if first.month == 12 else date(first.year, first.month + 1, 1)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _compare_op(op: str) -> CompareOp:
    if op in (":", "=", "<>"):
        return "="
    if op == "<":
        return "<"
    if op == "<=":
        return "<="
    if op == ">":
        return ">"
    return ">="


def _and(items: list[Node]) -> Node:
    """Flattened: nested Ands merge, MatchAll drops out, one item stands alone, none is MatchAll."""
    flat: list[Node] = []
    for item in items:
        if isinstance(item, And):
            flat.extend(item.items)
        elif not isinstance(item, MatchAll):
            flat.append(item)
    if not flat:
        return MatchAll()
    return flat[0] if len(flat) == 1 else And(tuple(flat))


def _or(items: list[Node]) -> Node:
    """Flattened: nested Ors merge, one item stands alone, and anything OR MatchAll is MatchAll."""
    flat: list[Node] = []
    for item in items:
        if isinstance(item, MatchAll):
            return MatchAll()
        flat.extend(item.items if isinstance(item, Or) else (item,))
    return flat[0] if len(flat) == 1 else Or(tuple(flat))


def _pos(token: Token) -> int:
    return token.start_pos if token.start_pos is not None else 0


def _end(token: Token) -> int:
    return token.end_pos if token.end_pos is not None else _pos(token) + len(token)


def _unquote(token: Token) -> str:
    return str(token)[1:-1]


def _split_prop(token: Token) -> tuple[str, str]:
    match = _PROP.fullmatch(str(token))
    assert match is not None  # the PROP terminal has this exact shape
    return match.group(1), match.group(2)


def _unclosed(seen: list[Token]) -> list[Token]:
    opened: list[Token] = []
    for token in seen:
        if token.type == "LPAR":
            opened.append(token)
        elif token.type == "RPAR" and opened:
            opened.pop()
    return opened
