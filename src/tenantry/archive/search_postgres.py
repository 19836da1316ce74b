"""A search index on PostgreSQL full-text search, for deployments with several machines sharing one database.

The same contract as the embedded tantivy index (``search.py``), evaluated in SQL on one table of its own,
``search_documents`` (another name can be given), created with its indexes on first use (``CREATE ... IF NOT
EXISTS`` under an advisory lock, so machines starting together do not race). The DDL is PostgreSQL-only and
lives here, not in the store's migrations: a deployment on SQLite never sees it.

Schema:
- ``item_id`` (primary key), ``tenant``, ``user_id``: every query is ``tenant = :tenant [AND user_id = ANY
  (:users)] AND <the query>``, built in one place (``_scoped``).
- ``folder``, ``kind``, ``source``: stored lower-cased (Python's ``str.lower``, so non-ASCII folds whatever the
  database's locale), compared exactly with the lower-cased value.
- ``sent_at`` (timestamptz, microseconds, like tantivy's integer field), ``size``, ``has_attachment``.
- One ``tsvector`` column per text field (``from_tsv`` ... ``chat_tsv``), each with a GIN index, and a
  ``(tenant, sent_at)`` btree for newest-first pages and date ranges.

Words are tantivy's: the text goes through the same ``prepare`` (a kana or CJK ideograph is a word of its own,
an emoji the word ``emoji<code point>``), is split into runs of Unicode letters and digits and lower-cased in
Python, words over 255 bytes are dropped, and the words joined by single spaces are what ``to_tsvector('simple',
...)`` sees. PostgreSQL's parser would otherwise keep ``anna.schmidt@contoso.com`` or ``2026.pdf`` as one token;
given only letters, digits and spaces, it keeps each word as it is. The query side splits its text the same
way, so ``anna.schmidt@contoso.com`` is the phrase ``anna <-> schmidt <-> contoso <-> com``.

Evaluation of the query tree (the tsquery is built in Python and sent as one bound parameter per leaf):
- Term: one word is ``'word'``, several a phrase of them (``<->``); ``prefix`` makes the last word ``'w':*``
  (PostgreSQL expands a prefix without limit, also inside a phrase). Digits in groups (``"+49 170 1234567"``)
  also match as one number, as in tantivy. No field means any of ``DEFAULT_FIELDS``.
- Phrase: the words adjacent, in order. Keyword: exact, case-insensitive; ``mailbox:`` an exact user id.
- Compare/Range: SQL comparisons; ``sent`` and ``received`` are both ``sent_at``; ``start <= v < end``.
- Near(n): ``a <k> b OR b <k> a`` for k in 1..n+1 (at most n words between, either order). With phrases as
  operands PostgreSQL measures from the end of the left phrase to the start of the right one, so this is exact
  (tantivy's sloppy phrase can over-match there). A distance over ``MAX_NEAR`` is refused.
- And/Or/Not: SQL boolean; an empty And is true, an empty Or false. MatchAll: true.
Relevance is the sum of ``ts_rank`` (normalised by the log of the field's length) of each positive text leaf
in its fields, ties broken newest first; "newest" is ``sent_at DESC, item_id DESC`` (microseconds, where tantivy
compares whole seconds before the item id).

PostgreSQL's tsvector limits, which tantivy does not have: positions stop at 16,383 (later words all share it,
so a phrase or NEAR beyond a field's 16,383rd word does not match, a single word still does), a word keeps at
most 256 positions, and one field's tsvector holds at most 1 MB: ``indexed_text`` cuts the text where it would
outgrow that (a few hundred thousand distinct words), rather than fail the batch; words after the cut are not
found.

Every ``add`` and ``delete`` commits its own transaction, so ``commit`` has nothing to do: a change is
searchable from every machine as soon as the call returns (tantivy waits for ``commit``).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, text

from tenantry.archive.search import (
    DEFAULT_FIELDS,
    Hit,
    IndexDocument,
    Order,
    SearchResult,
    UnsupportedQuery,
    each_copy,
    prepare,
)
from tenantry.core.clock import as_utc
from tenantry.protocols.query.ast import (
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

MAX_WORD_BYTES = 255
# PostgreSQL refuses a tsvector over 1 MB (1,048,575 bytes); stay a little under it.
MAX_TSVECTOR_BYTES = 1_040_000
MAX_POSITION = 16_383
# NEAR(n) is 2(n+1) phrase operators: refuse distances that would make the tsquery absurd.
MAX_NEAR = 1000
_WORD = re.compile(r"[^\W_]+")
_TABLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# The query tree's text field -> (the document attribute, the tsvector column).
_TEXT_COLUMNS = {
    "from": ("sender", "from_tsv"), "to": ("to", "to_tsv"), "cc": ("cc", "cc_tsv"),
    "participants": ("participants", "participants_tsv"), "subject": ("subject", "subject_tsv"),
    "body": ("body", "body_tsv"), "attachmentnames": ("attachment_names", "attachmentnames_tsv"),
    "chat": ("chat", "chat_tsv"),
}
_VALUE_COLUMNS = {"sent": "sent_at", "received": "sent_at", "size": "size", "hasattachment": "has_attachment",
                  "hasmissingmedia": "has_missing_media"}
_OPS = {"=": "=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
# An advisory lock key for the DDL (any constant; "tsearch" in ASCII).
_DDL_LOCK = 0x7473656172636800


def words(value: str) -> list[str]:
    """The indexed words of ``value``, as tantivy's literal analyser finds them (queries are split the same)."""
    return [w for w in _WORD.findall(prepare(value).lower()) if len(w.encode()) <= MAX_WORD_BYTES]


def indexed_text(value: str) -> str:
    """What ``to_tsvector('simple', ...)`` is given: the words, one space between, cut where the tsvector would
    outgrow PostgreSQL's 1 MB limit (which would otherwise fail the whole batch)."""
    found = words(value)
    size = 8                                # the tsvector's header
    seen: dict[str, tuple[int, int]] = {}   # lexeme -> (positions kept, the last one)
    for i, word in enumerate(found):
        position = min(i + 1, MAX_POSITION)  # PostgreSQL puts every word past 16,383 at 16,383
        kept = seen.get(word)
        if kept is None:                    # an entry, the lexeme (2-byte aligned), its position count, a position
            length = len(word.encode())
            size += 4 + length + (length & 1) + 2 + 2
            seen[word] = (1, position)
        elif kept[0] < 256 and kept[1] != position:     # at most 256 distinct positions per lexeme
            size += 2
            seen[word] = (kept[0] + 1, position)
        if size > MAX_TSVECTOR_BYTES:
            return " ".join(found[:i])
    return " ".join(found)


def _lexeme(word: str, prefix: bool) -> str:
    quoted = "'" + word.replace("\\", "\\\\").replace("'", "''") + "'"
    return quoted + (":*" if prefix else "")


def _sequence(items: Sequence[tuple[str, bool]]) -> str:
    """The tsquery text of words in order, adjacent (a prefix word marked ``:*``)."""
    return " <-> ".join(_lexeme(w, p) for w, p in items)


@dataclass
class _Compiled:
    """SQL being built: bound parameters, and the positive text leaves (column, parameter) that rank."""

    params: dict[str, Any] = field(default_factory=dict)
    ranked: list[tuple[str, str]] = field(default_factory=list)

    def bind(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return name


class PostgresSearchIndex:
    """A ``SearchIndex`` in the PostgreSQL database behind ``engine`` (SQLAlchemy, psycopg 3), shared by
    any number of machines reading and writing. The engine stays the caller's: ``close`` does not dispose it."""

    def __init__(self, engine: Engine, *, table: str = "search_documents") -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError(f"PostgresSearchIndex needs PostgreSQL, not {engine.dialect.name}")
        if not _TABLE_NAME.fullmatch(table):
            raise ValueError(f"not a plain table name: {table!r}")
        self.engine = engine
        self.table = table
        self._ready = False
        self._lock = threading.Lock()

    # -- the table --------------------------------------------------------------------------------

    def _ensure(self) -> None:
        if self._ready:
            return
        with self._lock:
            if self._ready:
                return
            t = self.table
            vectors = ", ".join(f"{column} tsvector NOT NULL" for _, column in _TEXT_COLUMNS.values())
            statements = [
                f"CREATE TABLE IF NOT EXISTS {t} (item_id bigint PRIMARY KEY, tenant text NOT NULL, "
                "user_id text NOT NULL, folder text NOT NULL, kind text NOT NULL, source text NOT NULL, "
                f"sent_at timestamptz NOT NULL, size bigint NOT NULL, has_attachment boolean NOT NULL, {vectors})",
                # Added after the table's first version (issue #10 item 7): tables made before get the column,
                # false for their rows until they are re-indexed.
                f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS has_missing_media boolean NOT NULL DEFAULT false",
                f"CREATE INDEX IF NOT EXISTS {t}_tenant_sent ON {t} (tenant, sent_at)",
                f"CREATE INDEX IF NOT EXISTS {t}_tenant_user ON {t} (tenant, user_id)",
                *(f"CREATE INDEX IF NOT EXISTS {t}_{column} ON {t} USING gin ({column})"
                  for _, column in _TEXT_COLUMNS.values()),
            ]
            with self.engine.begin() as conn:
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _DDL_LOCK})
                for statement in statements:
                    conn.execute(text(statement))
            self._ready = True

    # -- writing ----------------------------------------------------------------------------------

    def add(self, docs: Sequence[IndexDocument]) -> None:
        if not docs:
            return
        self._ensure()
        columns = [column for _, column in _TEXT_COLUMNS.values()]
        text_params = [f"t_{column}" for column in columns]
        statement = text(
            f"INSERT INTO {self.table} (item_id, tenant, user_id, folder, kind, source, sent_at, size, "
            f"has_attachment, has_missing_media, {', '.join(columns)}) VALUES (:item_id, :tenant, :user_id, "
            ":folder, :kind, :source, :sent_at, :size, :has_attachment, :has_missing_media, "
            + ", ".join(f"to_tsvector('simple', :{p})" for p in text_params)
            + ") ON CONFLICT (item_id) DO UPDATE SET "
            + ", ".join(f"{c} = EXCLUDED.{c}" for c in ["tenant", "user_id", "folder", "kind", "source", "sent_at",
                                                          "size", "has_attachment", "has_missing_media",
                                                          *columns]))
        # One row per item id: the last copy in the batch wins (ON CONFLICT cannot touch a row twice).
        # In item id order, so two machines upserting overlapping batches lock rows in one order (no deadlock).
        latest = {doc.item_id: doc for doc in each_copy(docs)}  # a row per copy (``copies`` spread out)
        rows = []
        for doc in (latest[item_id] for item_id in sorted(latest)):
            row: dict[str, Any] = {
                "item_id": doc.item_id, "tenant": doc.tenant, "user_id": doc.user_id, "folder": doc.folder.lower(),
                "kind": doc.kind.lower(), "source": doc.source.lower(), "sent_at": as_utc(doc.sent_at),
                "size": doc.size, "has_attachment": bool(doc.has_attachment),
                "has_missing_media": bool(doc.has_missing_media),
            }
            for (attribute, _column), param in zip(_TEXT_COLUMNS.values(), text_params, strict=True):
                row[param] = indexed_text(str(getattr(doc, attribute)))
            rows.append(row)
        with self.engine.begin() as conn:
            conn.execute(statement, rows)

    def delete(self, item_ids: Sequence[int]) -> None:
        if not item_ids:
            return
        self._ensure()
        with self.engine.begin() as conn:
            conn.execute(text(f"DELETE FROM {self.table} WHERE item_id = ANY(:ids)"),
                         {"ids": [int(i) for i in item_ids]})

    def commit(self) -> None:
        """Nothing to do: every ``add`` and ``delete`` committed its own transaction."""

    def clear(self) -> None:
        self._ensure()
        with self.engine.begin() as conn:
            conn.execute(text(f"DELETE FROM {self.table}"))

    def close(self) -> None:
        """Nothing is held between calls (connections go back to the engine's pool)."""

    def __enter__(self) -> PostgresSearchIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- searching --------------------------------------------------------------------------------

    def search(self, tenant: str, node: Node, *, users: Sequence[str] | None = None, limit: int = 20,
               offset: int = 0, order: Order = Order.RELEVANCE) -> SearchResult:
        if limit < 0 or offset < 0:
            raise UnsupportedQuery("limit and offset must not be negative")
        if order not in tuple(Order):
            raise UnsupportedQuery(f"unknown order {order!r}: relevance or newest")
        compiled = _Compiled()
        where = self._scoped(tenant, node, users, compiled)
        with self._connect() as conn:
            total = int(conn.execute(text(f"SELECT count(*) FROM {self.table} WHERE {where}"),
                                     compiled.params).scalar_one())
            if limit == 0 or total <= offset:
                return SearchResult(total, [])
            if order == Order.RELEVANCE and compiled.ranked:
                score = " + ".join(f"ts_rank({column}, to_tsquery('simple', :{param}), 1)"
                                   for column, param in compiled.ranked)
                sort = "score DESC, sent_at DESC, item_id DESC"
            else:
                score, sort = "0.0", "sent_at DESC, item_id DESC"
            rows = conn.execute(
                text(f"SELECT item_id, ({score})::float8 AS score FROM {self.table} WHERE {where} "
                     f"ORDER BY {sort} LIMIT :lim OFFSET :off"),
                {**compiled.params, "lim": limit, "off": offset}).all()
        return SearchResult(total, [Hit(int(r[0]), float(r[1]) if order == Order.RELEVANCE else 0.0) for r in rows])

    def count(self, tenant: str, node: Node, users: Sequence[str] | None = None) -> int:
        compiled = _Compiled()
        where = self._scoped(tenant, node, users, compiled)
        with self._connect() as conn:
            return int(conn.execute(text(f"SELECT count(*) FROM {self.table} WHERE {where}"),
                                    compiled.params).scalar_one())

    def count_by_user(self, tenant: str, node: Node, users: Sequence[str] | None = None) -> dict[str, int]:
        compiled = _Compiled()
        where = self._scoped(tenant, node, users, compiled)
        with self._connect() as conn:
            rows = conn.execute(text(f"SELECT user_id, count(*) FROM {self.table} WHERE {where} GROUP BY user_id"),
                                compiled.params).all()
        return {str(user): int(n) for user, n in rows}

    def item_ids(self, tenant: str, node: Node, users: Sequence[str] | None = None) -> set[int]:
        compiled = _Compiled()
        where = self._scoped(tenant, node, users, compiled)
        with self._connect() as conn:
            return {int(i) for i in conn.execute(text(f"SELECT item_id FROM {self.table} WHERE {where}"),
                                                 compiled.params).scalars()}

    def max_item_id(self, tenant: str) -> int | None:
        with self._connect() as conn:
            found = conn.execute(text(f"SELECT max(item_id) FROM {self.table} WHERE tenant = :tenant"),
                                 {"tenant": tenant}).scalar_one()
        return None if found is None else int(found)

    def _connect(self) -> Connection:
        self._ensure()
        return self.engine.connect()

    # -- the query tree to SQL --------------------------------------------------------------------

    def _scoped(self, tenant: str, node: Node, users: Sequence[str] | None, compiled: _Compiled) -> str:
        clauses = [f"tenant = :{compiled.bind(tenant)}"]
        if users is not None:
            if isinstance(users, str):
                raise TypeError("users is a sequence of user ids, not one string")
            clauses.append(f"user_id = ANY(:{compiled.bind(list(users))})")
        clauses.append(self.compile(node, compiled))
        return " AND ".join(f"({c})" for c in clauses)

    def compile(self, node: Node, compiled: _Compiled, *, positive: bool = True) -> str:
        """The SQL condition for ``node`` (unscoped: use only through ``_scoped``); its parameters go into
        ``compiled``, and so do the text leaves that rank, unless under a Not (``positive`` False)."""
        if isinstance(node, Term | Phrase):
            if node.field in KEYWORD_FIELDS:
                return self._keyword(node.field, node.text, compiled)
            fields = self._text_fields(node.field)
            found = words(node.text)
            if not found:
                return "false"
            prefix = isinstance(node, Term) and node.prefix
            items = [(w, prefix and i == len(found) - 1) for i, w in enumerate(found)]
            query = _sequence(items)
            if len(found) > 1 and all(w.isdigit() for w in found):
                # "+49 170 1234567", "(0170) 123-4567": also the number as one word, as numbers are indexed
                query = f"({query}) | {_lexeme(''.join(found), prefix)}"
            return self._match(fields, query, compiled, positive)
        if isinstance(node, Keyword):
            return self._keyword(node.field, node.value, compiled)
        if isinstance(node, Compare):
            column, value = self._value(node.field, node.value)
            op = _OPS.get(node.op)
            if op is None:
                raise UnsupportedQuery(f"unknown comparison {node.op!r}")
            return f"{column} {op} :{compiled.bind(value)}"
        if isinstance(node, Range):
            column, start = self._value(node.field, node.start)
            end = self._value(node.field, node.end)[1]
            return f"{column} >= :{compiled.bind(start)} AND {column} < :{compiled.bind(end)}"
        if isinstance(node, Near):
            return self._near(node, compiled, positive)
        if isinstance(node, And):
            if not node.items:
                return "true"
            return " AND ".join(f"({self.compile(item, compiled, positive=positive)})" for item in node.items)
        if isinstance(node, Or):
            if not node.items:
                return "false"
            return " OR ".join(f"({self.compile(item, compiled, positive=positive)})" for item in node.items)
        if isinstance(node, Not):
            return f"NOT ({self.compile(node.item, compiled, positive=not positive)})"
        if isinstance(node, MatchAll):
            return "true"
        raise UnsupportedQuery(f"unknown query node {type(node).__name__}")

    @staticmethod
    def _match(fields: Sequence[str], query: str, compiled: _Compiled, positive: bool) -> str:
        param = compiled.bind(query)
        columns = [_TEXT_COLUMNS[f][1] for f in fields]
        if positive:
            compiled.ranked.extend((column, param) for column in columns)
        # A tsvector column is never NULL, so NOT over this is the exact complement.
        return " OR ".join(f"{column} @@ to_tsquery('simple', :{param})" for column in columns)

    @staticmethod
    def _text_fields(name: str | None) -> tuple[str, ...]:
        if name is None:
            return DEFAULT_FIELDS
        if name not in TEXT_FIELDS:
            raise UnsupportedQuery(f"{name!r} is not a text field")
        return (name,)

    def _near(self, node: Near, compiled: _Compiled, positive: bool) -> str:
        left_field, right_field = node.left.field, node.right.field
        if left_field and right_field and left_field != right_field:
            raise UnsupportedQuery(f"NEAR needs both sides in one field, not {left_field!r} and {right_field!r}")
        fields = self._text_fields(left_field or right_field)
        distance = max(node.distance, 0)
        if distance > MAX_NEAR:
            raise UnsupportedQuery(f"NEAR distance {distance} is over {MAX_NEAR}")
        sides = []
        for side in (node.left, node.right):
            found = words(side.text)
            prefix = isinstance(side, Term) and side.prefix
            sides.append(_sequence([(w, prefix and i == len(found) - 1) for i, w in enumerate(found)]))
        left, right = sides
        if not left or not right:
            return "false"
        query = " | ".join(f"(({a}) <{k}> ({b}))" for k in range(1, distance + 2)
                           for a, b in ((left, right), (right, left)))
        return self._match(fields, query, compiled, positive)

    @staticmethod
    def _keyword(name: str, value: str, compiled: _Compiled) -> str:
        if name == "mailbox":
            return f"user_id = :{compiled.bind(value)}"
        if name not in KEYWORD_FIELDS:
            raise UnsupportedQuery(f"{name!r} is not a keyword field")
        return f"{name} = :{compiled.bind(value.lower())}"

    @staticmethod
    def _value(name: str, value: object) -> tuple[str, datetime | int | bool]:
        """The column and value a compared value means; a value of the wrong type is refused."""
        column = _VALUE_COLUMNS.get(name)
        if column is None:
            raise UnsupportedQuery(f"{name!r} cannot be compared: one of {', '.join(_VALUE_COLUMNS)}")
        if column == "sent_at":
            if not isinstance(value, datetime):
                raise UnsupportedQuery(f"{name} compares with a date, not {value!r}")
            return column, as_utc(value)
        if column in ("has_attachment", "has_missing_media"):
            if isinstance(value, bool):
                return column, value
            raise UnsupportedQuery(f"{name} is true or false, not {value!r}")
        if isinstance(value, bool) or not isinstance(value, int):
            raise UnsupportedQuery(f"{name} compares with a whole number, not {value!r}")
        return column, value
