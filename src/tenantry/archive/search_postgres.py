"""A search index on PostgreSQL full-text search, for deployments with several machines sharing one database.

The same contract as the embedded tantivy index (``search.py``), evaluated in SQL on one table of its own,
``search_documents`` (another name can be given), created with its indexes on first use (``CREATE ... IF NOT
EXISTS`` under an advisory lock, so machines starting together do not race). The DDL is PostgreSQL-only and
lives here, not in the store's migrations: a deployment on SQLite never sees it.

Schema:
- ``item_id`` (primary key), ``tenant``, ``user_id``.
- ``folder``, ``kind``, ``source``: stored lower-cased (Python's ``str.lower``, so non-ASCII folds whatever the
  database's locale), compared exactly with the lower-cased value.
- ``sent_at`` (timestamptz, microseconds, like tantivy's integer field), ``size``, ``has_attachment``,
  ``has_missing_media``; a ``(sent_at, item_id)`` btree for newest-first pages.
- One ``tsvector`` column per text field (``from_tsv`` ... ``chat_tsv``); ``from``, ``to`` and ``cc`` have a GIN
  index each.
- ``ALL_WORDS`` (issue #16), an expression with a GIN index (``<table>_words``): the five ``DEFAULT_FIELDS``
  vectors concatenated, plus the lexemes ``_t:<tenant>`` and ``_u:<user id>`` (no word starts with ``_``).
  Every query is ``ALL_WORDS @@ ('_t:<tenant>' [& ('_u:a' | '_u:b' ...)] && <its words>) [AND <what the row
  must show>]``, built in one place (``_scoped``): one GIN scan intersects the tenant's posting list with the
  words', instead of five per-field scans ORed and a tenant filter on every row. Not a stored column: a count
  visits the heap row of every match, so the heap stays as narrow as before. A table made before gets the index
  built, and the indexes it replaces dropped, at the first start after upgrading.
- The narrow table ``<table>_by_tenant`` (issue #16, goal 3): ``item_id`` and ``words``, each lexeme of the row's
  ``ALL_WORDS`` (marks included) behind ``<length of tenant>:<tenant>:``, without positions, with a GIN index of its
  own, written by ``add`` from the rows it has just written, in the same transaction. Its words are stored out of
  line (see ``_NARROW_PAD``), so a row is ~90 bytes, where the table's are ~1.2 KB. PostgreSQL 15 has no
  index-only scan for GIN, and this server (15.20) reads the heap page of every match even when the page is
  all-visible, so an exact count costs a heap visit per match: a query whose index part says it all (no row part:
  words, prefixes, And/Or/Not of them, the mailbox scope) is counted there, and its ids (``item_ids``) read there;
  the rest, ranking and pages use the table. A word there is a word in one tenant, so its count reads its own
  posting list; the tenant's mark (in every row of the tenant) is ANDed only where the words alone could match a
  row holding none of them (a Not, MatchAll). A table made before gets it filled at the first start after
  upgrading (~2 minutes at 1M items); every machine must then run this version (an older one would not write it).
  The default fields are fitted so that the prefixed words fit one tsvector too.

Words are tantivy's: the text goes through the same ``prepare`` (a kana or CJK ideograph is a word of its own,
an emoji the word ``emoji<code point>``), is split into runs of Unicode letters and digits and lower-cased in
Python, words over 255 bytes are dropped, and the words joined by single spaces are what ``to_tsvector('simple',
...)`` sees. PostgreSQL's parser would otherwise keep ``anna.schmidt@contoso.com`` or ``2026.pdf`` as one token;
given only letters, digits and spaces, it keeps each word as it is. The query side splits its text the same
way, so ``anna.schmidt@contoso.com`` is the phrase ``anna <-> schmidt <-> contoso <-> com``.

Evaluation of the query tree: each node becomes an index part (a tsquery's text that ``ALL_WORDS`` must match)
and a row part (SQL), either possibly absent (``_Cond``); the tsquery is built in Python and sent as bound
parameters.
- Term: one word is ``'word'``, several a phrase of them (``<->``); ``prefix`` makes the last word ``'w':*``
  (PostgreSQL expands a prefix without limit, also inside a phrase). Digits in groups (``"+49 170 1234567"``)
  also match as one number, as in tantivy. No field means any of ``DEFAULT_FIELDS``: one ASCII word or prefix
  is then exactly ``ALL_WORDS`` (the union of those fields' lexemes) and needs no row part; a phrase, or a word
  PostgreSQL's parser might split or drop (non-ASCII), gives its words (ANDed, unordered) as the index part and
  the exact per-field check as the row part, so no phrase joins the end of one field to the start of the next.
  A field-restricted leaf does the same with its one field (``from``/``to``/``cc``: a row part only, on their own
  GIN indexes).
- Phrase: the words adjacent, in order. Keyword: exact, case-insensitive; ``mailbox:`` an exact user id.
- Compare/Range: SQL comparisons; ``sent`` and ``received`` are both ``sent_at``; ``start <= v < end``.
- Near(n): ``a <k> b OR b <k> a`` for k in 1..n+1 (at most n words between, either order). With phrases as
  operands PostgreSQL measures from the end of the left phrase to the start of the right one, so this is exact
  (tantivy's sloppy phrase can over-match there). A distance over ``MAX_NEAR`` is refused.
- And: both parts ANDed. Or: ``|`` of index parts when no side has a row part, else the whole Or on the row.
  Not: ``!`` of an index-only part, else NOT on the row. An empty And is true, an empty Or false. MatchAll: true.
Relevance is the sum of ``ts_rank`` (normalised by the log of the field's length) of each positive text leaf
in its fields, ties broken newest first. "newest" is
``sent_at DESC, item_id DESC`` (microseconds, where tantivy compares whole seconds before the item id).
Searches run in a transaction with ``work_mem`` 64 MB (a common word's bitmap stays exact, not lossy) and
``enable_seqscan`` off (the planner would test every row's tsvector rather than use the index).

PostgreSQL's tsvector limits, which tantivy does not have: positions stop at 16,383 (later words all share it,
so a phrase or NEAR beyond a field's 16,383rd word does not match, a single word still does), a word keeps at
most 256 positions, and one tsvector holds at most 1 MB: ``indexed_text`` cuts the text where it would
outgrow that (a few hundred thousand distinct words), rather than fail the batch; words after the cut are not
found. The default fields share one 1 MB (``ALL_WORDS`` holds them together): the body is cut first. A tenant or
user id must be under 2 KB (a lexeme's limit), and so must the narrow table's lexemes: the tenant, its length and
a word or the mailbox's mark.

Every ``add`` and ``delete`` commits its own transaction, so ``commit`` has nothing to do: a change is
searchable from every machine as soon as the call returns (tantivy waits for ``commit``).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
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
_BYTES_PER_CHARACTER = 24
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
# The default fields together (issue #16): their words, and the tenant and mailbox as lexemes ("_" starts no word).
# An expression with a GIN index, not a stored column: a count visits every match's heap row, so the heap is
# kept as narrow as before (a stored copy made it 40% wider, and counts and ranking slower).
_TENANT_MARK = "_t:"
_USER_MARK = "_u:"
ALL_WORDS = ("(" + " || ".join(_TEXT_COLUMNS[f][1] for f in DEFAULT_FIELDS)
             + f" || array_to_tsvector(ARRAY['{_TENANT_MARK}' || tenant, '{_USER_MARK}' || user_id]))")
# Fields outside the default ones keep a GIN index of their own; the default ones are searched through ALL_WORDS.
_OWN_INDEX_FIELDS = tuple(f for f in _TEXT_COLUMNS if f not in DEFAULT_FIELDS)
_FIT_ORDER = tuple(sorted(DEFAULT_FIELDS, key=lambda f: f == "body"))
_WORK_MEM = "64MB"
# The narrow table (issue #16, goal 3): its row is the item id, a toast pointer to the words, and ``pad``. PostgreSQL
# moves a value out of line only when the whole row is over ~2 KB (TOAST_TUPLE_THRESHOLD, compiled in; the table's
# toast_tuple_target lowers the size toasting aims at, not the size that starts it), and nearly every row is under
# it: the generated pad (2,100 spaces, ~35 bytes once compressed) lifts every row over it, so the words always go out
# of line and the row stays ~90 bytes.
_NARROW_PAD = 2100
# The narrow table's words: each lexeme of ALL_WORDS (marks included) behind its row's tenant, without positions,
# so that one lexeme ('7:contoso:ok') is a word in one tenant: no intersection with the tenant's mark. The tenant's
# length first, so that no tenant and lexeme read as another's (a tenant may hold colons).
_TENANT_WORDS = (f"array_to_tsvector(ARRAY(SELECT length(tenant) || ':' || tenant || ':' || lexeme "
                 f"FROM unnest({ALL_WORDS})))")
_QUOTED = re.compile(r"'((?:[^']|'')*)'")
# An advisory lock key for the DDL (any constant; "tsearch" in ASCII).
_DDL_LOCK = 0x7473656172636800


def words(value: str) -> list[str]:
    """The indexed words of ``value``, as tantivy's literal analyser finds them (queries are split the same)."""
    return [w for w in _WORD.findall(prepare(value).lower()) if len(w.encode()) <= MAX_WORD_BYTES]


def indexed_text(value: str, budget: int = MAX_TSVECTOR_BYTES) -> str:
    """What ``to_tsvector('simple', ...)`` is given: the words, one space between, cut where the tsvector would
    outgrow ``budget`` bytes (PostgreSQL refuses one over 1 MB, which would fail the whole batch)."""
    return fitted(value, budget)[0]


def fitted(value: str, budget: int, extra: int = 0) -> tuple[str, int]:
    """``indexed_text`` and at most how many bytes its tsvector takes (an upper bound when far from ``budget``),
    counting ``extra`` more bytes for each distinct word (the narrow table's tenant prefix)."""
    found = words(value)
    bound = 8 + (_BYTES_PER_CHARACTER + extra) * len(value)
    if bound <= budget:
        # Far from the limit, as nearly every text is: a character gives at most one word of at most 11 bytes
        # ("emoji10ffff"), and a word at most 10 bytes more (entry, alignment, position count, a position).
        return " ".join(found), bound
    size = 8                                # the tsvector's header
    seen: dict[str, tuple[int, int]] = {}   # lexeme -> (positions kept, the last one)
    for i, word in enumerate(found):
        position = min(i + 1, MAX_POSITION)  # PostgreSQL puts every word past 16,383 at 16,383
        kept = seen.get(word)
        grown = size
        if kept is None:                    # an entry, the lexeme (2-byte aligned), its position count, a position
            length = len(word.encode())
            grown += 4 + length + (length & 1) + 2 + 2 + extra
            seen[word] = (1, position)
        elif kept[0] < 256 and kept[1] != position:     # at most 256 distinct positions per lexeme
            grown += 2
            seen[word] = (kept[0] + 1, position)
        if grown > budget:
            return " ".join(found[:i]), size
        size = grown
    return " ".join(found), size


def _lexeme(word: str, prefix: bool) -> str:
    quoted = "'" + word.replace("\\", "\\\\").replace("'", "''") + "'"
    return quoted + (":*" if prefix else "")


def _sequence(items: Sequence[tuple[str, bool]]) -> str:
    """The tsquery text of words in order, adjacent (a prefix word marked ``:*``)."""
    return " <-> ".join(_lexeme(w, p) for w, p in items)


def _tenant_prefix(tenant: str) -> str:
    """What the narrow table puts before each lexeme of the tenant's rows (see ``_TENANT_WORDS``)."""
    return f"{len(tenant)}:{tenant}:"


def _in_tenant(tsq: str, tenant: str) -> str:
    """A tsquery's text (its lexemes quoted by ``_lexeme``) with each lexeme behind the tenant's prefix."""
    prefix = _tenant_prefix(tenant).replace("\\", "\\\\").replace("'", "''")
    return _QUOTED.sub(lambda m: "'" + prefix + m.group(1) + "'", tsq)


def _positive(node: Node) -> bool:
    """Whether every row ``node`` matches holds one of its lexemes (for a node whose words say it all)."""
    if isinstance(node, Term | Phrase | Near):
        return True
    if isinstance(node, And):
        return any(_positive(item) for item in node.items)
    if isinstance(node, Or):
        return bool(node.items) and all(_positive(item) for item in node.items)
    return False


@dataclass
class _Compiled:
    """SQL being built: bound parameters, and the positive text leaves (column, parameter) that rank."""

    params: dict[str, Any] = field(default_factory=dict)
    ranked: list[tuple[str, str]] = field(default_factory=list)

    def bind(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return name


@dataclass(frozen=True)
class _Cond:
    """A query node as SQL, in two parts. ``tsq``, a tsquery's text (for ``to_tsquery('simple', ...)``) that
    ``ALL_WORDS`` must match, is an index condition; ``sql`` a condition checked on the row. The node holds exactly
    when both do (a part that is None is true): a word alone is ``tsq`` only, a phrase is its words as ``tsq``
    (which rows may hold it) and the phrase itself, field by field, as ``sql``."""

    tsq: str | None
    sql: str | None

    def full(self, compiled: _Compiled) -> str:
        """The whole condition as one SQL expression (for an Or or a Not that needs the row)."""
        parts = [] if self.tsq is None else [f"{ALL_WORDS} @@ to_tsquery('simple', :{compiled.bind(self.tsq)})"]
        parts += [] if self.sql is None else [self.sql]
        return " AND ".join(f"({p})" for p in parts) if parts else "true"


_FALSE = _Cond(None, "false")


@dataclass(frozen=True)
class _Scoped:
    """A scoped query: ``query``, the SQL of the tsquery the words must match (the tenant's and mailboxes' marks and
    the index part; None: nothing matches), and ``row``, what the table's row must show besides (None: nothing).
    With no ``row`` the narrow table answers which items match."""

    query: str | None
    row: str | None
    narrow: str | None = None       # with no row part: the SQL of the tsquery on the narrow table's words

    def on_table(self) -> str:
        """The condition on the table itself (``ALL_WORDS`` and the row)."""
        clauses = [] if self.query is None else [f"{ALL_WORDS} @@ ({self.query})"]
        clauses += [] if self.row is None else [self.row]
        return " AND ".join(f"({c})" for c in clauses)


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
                # Issue #16: the default fields' words in one index, with the tenant and the mailbox as lexemes
                # no word can be, so one GIN scan answers "this word, this tenant". Computed by the database from
                # the row itself (a table made before gets the index built at the first start after upgrading).
                f"CREATE INDEX IF NOT EXISTS {t}_words ON {t} USING gin ({ALL_WORDS})",
                f"CREATE INDEX IF NOT EXISTS {t}_sent_item ON {t} (sent_at, item_id)",
                f"CREATE INDEX IF NOT EXISTS {t}_tenant_user ON {t} (tenant, user_id)",
                *(f"CREATE INDEX IF NOT EXISTS {t}_{_TEXT_COLUMNS[f][1]} ON {t} USING gin ({_TEXT_COLUMNS[f][1]})"
                  for f in _OWN_INDEX_FIELDS),
                # The default fields' own GIN indexes (before issue #16) and the (tenant, sent_at) btree are
                # replaced by the above: dropping them saves their upkeep on every insert.
                f"DROP INDEX IF EXISTS {t}_tenant_sent",
                *(f"DROP INDEX IF EXISTS {t}_{_TEXT_COLUMNS[f][1]}" for f in DEFAULT_FIELDS),
            ]
            n = self.narrow
            with self.engine.begin() as conn:
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _DDL_LOCK})
                table_new, new = conn.execute(text("SELECT to_regclass(:t) IS NULL, to_regclass(:n) IS NULL"),
                                              {"t": t, "n": n}).one()
                for statement in statements:
                    conn.execute(text(statement))
                # Issue #16, goal 3: the narrow table the counts read. A table made before gets it filled from its
                # rows here, in the transaction that creates it (under the lock: no machine sees it half-filled);
                # a narrow table left by a table since dropped is emptied with the new table's creation.
                if table_new and not new:
                    conn.execute(text(f"TRUNCATE {n}"))
                conn.execute(text(f"DROP TABLE IF EXISTS {t}_narrow"))     # 94109d4's, its words not by tenant
                conn.execute(text(
                    f"CREATE TABLE IF NOT EXISTS {n} (item_id bigint PRIMARY KEY, words tsvector NOT NULL, "
                    f"pad text GENERATED ALWAYS AS (repeat(' ', {_NARROW_PAD})) STORED) "
                    "WITH (toast_tuple_target = 128)"))
                if new:
                    filled = conn.execute(text(
                        f"INSERT INTO {n} (item_id, words) SELECT item_id, {_TENANT_WORDS} FROM {t}")).rowcount
                    if filled:
                        conn.execute(text(f"ANALYZE {n}"))
                conn.execute(text(f"CREATE INDEX IF NOT EXISTS {n}_words ON {n} USING gin (words)"))
            self._ready = True

    @property
    def narrow(self) -> str:
        """The narrow table: ``item_id`` and ``words`` (``ALL_WORDS``'s lexemes behind the tenant, without positions,
        stored out of line) with a GIN index, so a count visits a ~90-byte row per match, not the ~1.2 KB row of the
        table itself."""
        return f"{self.table}_by_tenant"

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
            for name in _OWN_INDEX_FIELDS:
                row[f"t_{_TEXT_COLUMNS[name][1]}"] = indexed_text(str(getattr(doc, _TEXT_COLUMNS[name][0])))
            # ALL_WORDS holds the default fields together, so together they must fit in one tsvector: each takes
            # from what the ones before left, the body last (the field that runs long, and is cut first).
            # The narrow table's words take each word with the tenant's prefix but no position (at least 4 bytes
            # less: the position count and one position): counting the difference for every word fits both.
            prefix = len(_tenant_prefix(doc.tenant).encode())
            extra = max(0, prefix - 4)
            budget = (MAX_TSVECTOR_BYTES - 32 - 2 * prefix
                      - len(_TENANT_MARK + doc.tenant + _USER_MARK + doc.user_id) * 4)
            for name in _FIT_ORDER:
                attribute, column = _TEXT_COLUMNS[name]
                row[f"t_{column}"], used = fitted(str(getattr(doc, attribute)), budget, extra)
                budget -= used
            rows.append(row)
        with self.engine.begin() as conn:
            conn.execute(statement, rows)
            # The narrow table's words from the rows just written, in the same transaction (and in item id order,
            # as above): computed by the database from the row itself, they cannot disagree with it.
            conn.execute(text(
                f"INSERT INTO {self.narrow} (item_id, words) SELECT item_id, {_TENANT_WORDS} FROM {self.table} "
                "WHERE item_id = ANY(:ids) ORDER BY item_id "
                "ON CONFLICT (item_id) DO UPDATE SET words = EXCLUDED.words"), {"ids": sorted(latest)})

    def delete(self, item_ids: Sequence[int]) -> None:
        if not item_ids:
            return
        self._ensure()
        ids = [int(i) for i in item_ids]
        with self.engine.begin() as conn:
            conn.execute(text(f"DELETE FROM {self.table} WHERE item_id = ANY(:ids)"), {"ids": ids})
            conn.execute(text(f"DELETE FROM {self.narrow} WHERE item_id = ANY(:ids)"), {"ids": ids})

    def commit(self) -> None:
        """Nothing to do: every ``add`` and ``delete`` committed its own transaction."""

    def clear(self) -> None:
        self._ensure()
        with self.engine.begin() as conn:
            conn.execute(text(f"DELETE FROM {self.table}"))
            conn.execute(text(f"DELETE FROM {self.narrow}"))

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
        scoped = self._scoped(tenant, node, users, compiled)
        with self._connect() as conn:
            total = self._count(conn, scoped, compiled)
            if limit == 0 or total <= offset:
                return SearchResult(total, [])
            if order == Order.RELEVANCE and compiled.ranked:
                score = " + ".join(f"ts_rank({column}, to_tsquery('simple', :{param}), 1)"
                                   for column, param in compiled.ranked)
                sort = "score DESC, sent_at DESC, item_id DESC"
            else:
                score, sort = "0.0", "sent_at DESC, item_id DESC"
            rows = conn.execute(
                text(f"SELECT item_id, ({score})::float8 AS score FROM {self.table} WHERE {scoped.on_table()} "
                     f"ORDER BY {sort} LIMIT :lim OFFSET :off"),
                {**compiled.params, "lim": limit, "off": offset}).all()
        return SearchResult(total, [Hit(int(r[0]), float(r[1]) if order == Order.RELEVANCE else 0.0) for r in rows])

    def count(self, tenant: str, node: Node, users: Sequence[str] | None = None) -> int:
        compiled = _Compiled()
        scoped = self._scoped(tenant, node, users, compiled)
        with self._connect() as conn:
            return self._count(conn, scoped, compiled)

    def count_by_user(self, tenant: str, node: Node, users: Sequence[str] | None = None) -> dict[str, int]:
        compiled = _Compiled()
        scoped = self._scoped(tenant, node, users, compiled)
        with self._connect() as conn:
            rows = conn.execute(text(f"SELECT user_id, count(*) FROM {self.table} WHERE {scoped.on_table()} "
                                     "GROUP BY user_id"), compiled.params).all()
        return {str(user): int(n) for user, n in rows}

    def item_ids(self, tenant: str, node: Node, users: Sequence[str] | None = None) -> set[int]:
        compiled = _Compiled()
        scoped = self._scoped(tenant, node, users, compiled)
        with self._connect() as conn:
            return {int(i) for i in conn.execute(text(f"SELECT item_id FROM {self._from(scoped)}"),
                                                 compiled.params).scalars()}

    def _count(self, conn: Connection, scoped: _Scoped, compiled: _Compiled) -> int:
        return int(conn.execute(text(f"SELECT count(*) FROM {self._from(scoped)}"), compiled.params).scalar_one())

    def _from(self, scoped: _Scoped) -> str:
        """``<table> WHERE <condition>`` for the matching item ids: the narrow table when the index part says it
        all (a count then visits ~90-byte rows), else the table itself."""
        if scoped.narrow is not None:
            return f"{self.narrow} WHERE words @@ {scoped.narrow}"
        return f"{self.table} WHERE {scoped.on_table()}"

    def max_item_id(self, tenant: str) -> int | None:
        with self._connect() as conn:
            found = conn.execute(text(f"SELECT max(item_id) FROM {self.table} WHERE tenant = :tenant"),
                                 {"tenant": tenant}).scalar_one()
        return None if found is None else int(found)

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        """A connection in a read transaction with room for the bitmap of a common word's matches: with the
        default 4 MB of ``work_mem`` a bitmap of ~250,000 rows turns lossy, and every row of a lossy page is
        read and re-checked, which is what makes a count slow."""
        self._ensure()
        with self.engine.connect() as conn, conn.begin():
            # Every query here carries a words condition a GIN index answers. For a common word the planner
            # would rather read the whole table and test every row's tsvector (its cost model prices @@ like a
            # comparison): 1.05 s against 0.28 s for the index at 100,000 items, more at 1M; on the narrow table it
            # would read each row's words back from out of line. JIT off: at 1M items it spent ~80 ms compiling
            # before a common word's count. No parallel workers: a search is one process's work, so many searches
            # share the cores (at 1M items on 2 busy cores, a common word's newest page took p95 193 ms with two
            # workers, 85 ms without). The settings last until this transaction ends (set_config's is_local), in
            # one round trip.
            conn.execute(text("SELECT set_config('work_mem', :mem, true), set_config('enable_seqscan', 'off', true), "
                              "set_config('jit', 'off', true), "
                              "set_config('max_parallel_workers_per_gather', '0', true)"), {"mem": _WORK_MEM})
            yield conn

    # -- the query tree to SQL --------------------------------------------------------------------

    def _scoped(self, tenant: str, node: Node, users: Sequence[str] | None, compiled: _Compiled) -> _Scoped:
        """The tenant (and mailboxes) and the query, as one tsquery on ``ALL_WORDS`` where they can be, so that one
        GIN scan finds a word's matches in the tenant (see the module doc), and what the row must show besides."""
        scope = _lexeme(_TENANT_MARK + tenant, False)
        if users is not None:
            if isinstance(users, str):
                raise TypeError("users is a sequence of user ids, not one string")
            if not users:
                return _Scoped(None, "false")
            scope += " & (" + " | ".join(_lexeme(_USER_MARK + u, False) for u in dict.fromkeys(users)) + ")"
        # CAST, not to_tsquery: the marks are lexemes as they are, not text for the parser to split. One tsquery
        # (&&), so one GIN scan intersects the tenant's posting list with the words' (two @@ conditions would be
        # costed, and sometimes planned, as two scans). Should the parser drop every word of ``tsq`` (it keeps
        # [a-z0-9]+ whole; a non-ASCII word it might drop always comes with an exact check in ``sql``), ``&&``
        # leaves the scope alone: a wider condition, never a narrower one.
        cond = self.compile(node, compiled)
        query = f"CAST(:{compiled.bind(scope)} AS tsquery)"
        if cond.tsq is not None:
            query += f" && to_tsquery('simple', :{compiled.bind(cond.tsq)})"
        if cond.sql is not None:
            return _Scoped(query, cond.sql)
        # No row part: every word is a plain ASCII word or prefix, which the parser keeps as it is, so the narrow
        # table's query is the same words, each behind the tenant, as they are (CAST). Its marks only where the
        # words alone could match a row without any of its lexemes (a Not, MatchAll): the tenant's mark is in
        # every row of the tenant, and ANDing it costs a pass over its whole posting list.
        parts = [] if cond.tsq is None else [_in_tenant(cond.tsq, tenant)]
        if users is not None:
            parts.append(" | ".join(_lexeme(_tenant_prefix(tenant) + _USER_MARK + u, False)
                                    for u in dict.fromkeys(users)))
        elif cond.tsq is None or not _positive(node):
            parts.append(_lexeme(_tenant_prefix(tenant) + _TENANT_MARK + tenant, False))
        narrow = " & ".join(f"({p})" for p in parts)
        return _Scoped(query, None, f"CAST(:{compiled.bind(narrow)} AS tsquery)")

    def compile(self, node: Node, compiled: _Compiled, *, positive: bool = True) -> _Cond:
        """``node`` as a ``_Cond`` (unscoped: use only through ``_scoped``); its parameters go into ``compiled``,
        and so do the text leaves that rank, unless under a Not (``positive`` False)."""
        if isinstance(node, Term | Phrase):
            if node.field in KEYWORD_FIELDS:
                return _Cond(None, self._keyword(node.field, node.text, compiled))
            fields = self._text_fields(node.field)
            found = words(node.text)
            if not found:
                return _FALSE
            prefix = isinstance(node, Term) and node.prefix
            items = [(w, prefix and i == len(found) - 1) for i, w in enumerate(found)]
            query = _sequence(items)
            loose = " & ".join(_lexeme(w, p) for w, p in items)
            if len(found) > 1 and all(w.isdigit() for w in found):
                # "+49 170 1234567", "(0170) 123-4567": also the number as one word, as numbers are indexed
                joined = _lexeme("".join(found), prefix)
                query, loose = f"({query}) | {joined}", f"({loose}) | {joined}"
            return self._match(fields, query, loose, len(found) == 1, compiled, positive)
        if isinstance(node, Keyword):
            return _Cond(None, self._keyword(node.field, node.value, compiled))
        if isinstance(node, Compare):
            column, value = self._value(node.field, node.value)
            op = _OPS.get(node.op)
            if op is None:
                raise UnsupportedQuery(f"unknown comparison {node.op!r}")
            return _Cond(None, f"{column} {op} :{compiled.bind(value)}")
        if isinstance(node, Range):
            column, start = self._value(node.field, node.start)
            end = self._value(node.field, node.end)[1]
            return _Cond(None, f"{column} >= :{compiled.bind(start)} AND {column} < :{compiled.bind(end)}")
        if isinstance(node, Near):
            return self._near(node, compiled, positive)
        if isinstance(node, And):
            parts = [self.compile(item, compiled, positive=positive) for item in node.items]
            tsqs = [p.tsq for p in parts if p.tsq is not None]
            sqls = [p.sql for p in parts if p.sql is not None]
            return _Cond(" & ".join(f"({q})" for q in tsqs) if tsqs else None,
                         " AND ".join(f"({q})" for q in sqls) if sqls else None)
        if isinstance(node, Or):
            if not node.items:
                return _FALSE
            parts = [self.compile(item, compiled, positive=positive) for item in node.items]
            if all(p.tsq is not None and p.sql is None for p in parts):
                return _Cond(" | ".join(f"({p.tsq})" for p in parts), None)
            # One side needs the row: the whole Or is checked on it, each side as it is.
            return _Cond(None, " OR ".join(f"({p.full(compiled)})" for p in parts))
        if isinstance(node, Not):
            part = self.compile(node.item, compiled, positive=not positive)
            if part.tsq is not None and part.sql is None:
                return _Cond(f"!({part.tsq})", None)
            return _Cond(None, f"NOT ({part.full(compiled)})")
        if isinstance(node, MatchAll):
            return _Cond(None, None)
        raise UnsupportedQuery(f"unknown query node {type(node).__name__}")

    @staticmethod
    def _match(fields: Sequence[str], query: str, loose: str, one_word: bool, compiled: _Compiled,
               positive: bool) -> _Cond:
        """A text leaf: ``query`` (a tsquery's text) in any of ``fields``. ``loose`` is what ``ALL_WORDS`` must hold
        for it (the words, not their order); for one word in the default fields that is the whole condition."""
        param = compiled.bind(query)
        columns = [_TEXT_COLUMNS[f][1] for f in fields]
        if positive:
            compiled.ranked.extend((column, param) for column in columns)
        if tuple(fields) == DEFAULT_FIELDS and one_word and loose.isascii():
            # ALL_WORDS holds the union of the default fields' lexemes, so one word (or prefix) is in it exactly
            # when it is in one of them. ASCII only: PostgreSQL's parser keeps [a-z0-9]+ whole, whatever the
            # locale; a word it would split or drop is checked field by field on the row, as before.
            return _Cond(loose, None)
        # A tsvector column is never NULL, so NOT over this is the exact complement.
        exact = " OR ".join(f"{column} @@ to_tsquery('simple', :{param})" for column in columns)
        in_all = all(f in DEFAULT_FIELDS for f in fields)
        return _Cond(loose if in_all else None, exact)

    @staticmethod
    def _text_fields(name: str | None) -> tuple[str, ...]:
        if name is None:
            return DEFAULT_FIELDS
        if name not in TEXT_FIELDS:
            raise UnsupportedQuery(f"{name!r} is not a text field")
        return (name,)

    def _near(self, node: Near, compiled: _Compiled, positive: bool) -> _Cond:
        left_field, right_field = node.left.field, node.right.field
        if left_field and right_field and left_field != right_field:
            raise UnsupportedQuery(f"NEAR needs both sides in one field, not {left_field!r} and {right_field!r}")
        fields = self._text_fields(left_field or right_field)
        distance = max(node.distance, 0)
        if distance > MAX_NEAR:
            raise UnsupportedQuery(f"NEAR distance {distance} is over {MAX_NEAR}")
        sides: list[str] = []
        loose: list[str] = []
        for side in (node.left, node.right):
            found = words(side.text)
            prefix = isinstance(side, Term) and side.prefix
            items = [(w, prefix and i == len(found) - 1) for i, w in enumerate(found)]
            sides.append(_sequence(items))
            loose.extend(_lexeme(w, p) for w, p in items)
        left, right = sides
        if not left or not right:
            return _FALSE
        query = " | ".join(f"(({a}) <{k}> ({b}))" for k in range(1, distance + 2)
                           for a, b in ((left, right), (right, left)))
        return self._match(fields, query, " & ".join(loose), False, compiled, positive)

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
