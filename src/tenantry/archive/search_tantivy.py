"""The default search index: tantivy (PyPI ``tantivy`` 0.27) embedded in a directory, one index for all tenants.

Schema (why each field is as it is):
- ``tenant``, ``user_id``: raw (untokenised, case kept) and always a filter: every query is
  ``tenant AND [user_id IN users] AND <the query>``, built in one place (``_scoped``), with the filters scoring
  0 so ranking is the query's alone. ``user_id`` is also a fast field, for per-mailbox counts (a terms
  aggregation) and ``mailbox:``. One index rather than one per tenant: one writer, one heap, one merge pool
  on a small machine; isolation is the mandatory filter and a test.
- ``item_id``: indexed (delete and replace by id) and fast (hits come back through the fast field, so nothing
  is stored and no document is ever loaded).
- ``sent``: UTC microseconds as an integer fast field, not tantivy's date type (which truncates to seconds):
  ``sent>=2026-01-01T10:00:00.5`` compares exactly. ``size``, ``hasattachment`` (0/1): integer fast fields.
  Comparisons and ranges run on the column, so none of them needs the inverted index.
- ``newest``: ``sent seconds << 32 | item_id``, an unsigned fast field: one sort key, so "newest first" is a
  total order (copies of one message share a second; the item id breaks the tie, later delivery first) and
  paging never repeats or skips an item within one snapshot.
- ``folder``, ``kind``, ``source``: one lower-cased token each (``folder:"whatsapp archiver"`` matches).
- ``from``, ``to``, ``cc``, ``participants``, ``subject``, ``body``, ``attachmentnames``, ``chat``: text with
  positions (phrases and NEAR work in every field). Words are runs of Unicode letters and digits (tantivy's
  simple tokeniser: Korean, umlauts, Cyrillic stay whole words), lower-cased, kept up to 255 bytes (tantivy's
  default drops words over 40 bytes: a German compound, 14 Hangul syllables). No stemming, no stop words, no
  accent folding (see ``search.py``). Before that, ``prepare`` makes each kana or CJK ideograph a word of its
  own (Chinese and Japanese have no spaces: "東京" is then the phrase "東 京", as Lucene's standard tokeniser
  does) and each emoji the word ``emoji<code point>`` (so "💊" is searchable; a skin tone is a word after it).
  ASCII text skips that step. The query text goes through the same steps, so ``anna.schmidt@contoso.com``
  is the phrase "anna schmidt contoso com"; digit groups (``"+49 170 1234567"``) also match as one number.
  Measured: tantivy's regex tokeniser (which could do all of this itself) indexed 2.5–3x slower than the
  simple one plus ``prepare``, far below the 20,000 items/s goal.
  Not handled: scripts without spaces that need a dictionary (Thai, Lao, Khmer, Burmese): a run is one word.

Evaluation of the query tree:
- Term: one word is a term query, several (``e-mail``) a phrase; no field means any of ``DEFAULT_FIELDS``.
  ``prefix``: the last word matches every indexed word that starts with it (a regex over the term dictionary,
  unlimited — tantivy's phrase-prefix query silently stops at 50 expansions, which a compliance search must
  not); a multi-word prefix (``anna.sch*``) is a regex phrase, which tantivy refuses above 16,384 expansions:
  that is reported as ``UnsupportedQuery``, never silently truncated.
- Phrase: the words adjacent, in order. Keyword: an exact, case-insensitive value; ``mailbox:`` an exact user id.
- Compare/Range: on the fast fields; ``sent`` and ``received`` are both the sent time; ``start <= v < end``.
- Near(n): tantivy's sloppy phrase allows n words between in order but only n-2 reversed (a transposition
  costs 2), so NEAR is ``"a b"~n OR "b a"~n``: at most n words between, either order — exact for words.
  With phrases as operands the slop also loosens the gaps inside them, so both exact phrases are also
  required; that can over-match (the exact phrase elsewhere in the field), never under-match.
- And: Not children become must-not clauses; an And of only Nots, and a lone Not, mean "all except".
  Or: any; an empty Or matches nothing, an empty And everything. MatchAll: every item in scope.
A word with nothing indexable in it (punctuation only) matches nothing.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson
import tantivy
from tantivy import FieldType, Filter, Occur, Query, SchemaBuilder, TextAnalyzer, TextAnalyzerBuilder, Tokenizer

from tenantry.archive.search import (
    DEFAULT_FIELDS,
    Hit,
    IndexDocument,
    Order,
    SearchIndexUnavailable,
    SearchResult,
    UnsupportedQuery,
    prepare,
)
from tenantry.core.batches import chunks
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

SCHEMA_VERSION = 1
MARKER = "tenantry-search.json"
MAX_WORD_BYTES = 255
# tantivy's terms aggregation refuses more buckets than this in one request.
MAX_BUCKETS = 65_000
# Scripts written without spaces between words (kana, CJK ideographs): each character becomes a word.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_REGEX_SPECIAL = set("\\.+*?()|[]{}^$#&-~")
_VALUE_FIELDS = {"sent": "sent", "received": "sent", "size": "size", "hasattachment": "hasattachment",
                 "hasmissingmedia": "hasattachment"}
# The integer field "hasattachment" holds flags, so that hasmissingmedia needed no new field (and no schema
# version: existing indexes keep working): bit 0 a file is attached, bit 1 media were named but not included.
_FLAG_BITS = {"hasattachment": 1, "hasmissingmedia": 2}


# The people and chat fields repeat for every copy of every message of a chat: prepare each text once.
_prepare_repeated = lru_cache(maxsize=8192)(prepare)


def literal_analyzer() -> TextAnalyzer:
    """Words as tantivy's simple tokeniser sees them (runs of letters and digits), lower-cased, any length
    up to 255 bytes. Apply ``prepare`` to the text first."""
    return (TextAnalyzerBuilder(Tokenizer.simple())
            .filter(Filter.remove_long(MAX_WORD_BYTES)).filter(Filter.lowercase()).build())


def analyse(text: str, analyzer: TextAnalyzer | None = None) -> list[str]:
    """The indexed words of ``text`` (a query's words are found the same way)."""
    return list((analyzer or literal_analyzer()).analyze(prepare(text)))


def keyword_analyzer() -> TextAnalyzer:
    return TextAnalyzerBuilder(Tokenizer.raw()).filter(Filter.lowercase()).build()


def build_schema() -> tantivy.Schema:
    sb = SchemaBuilder()
    sb.add_integer_field("item_id", indexed=True, fast=True)
    sb.add_text_field("tenant", tokenizer_name="raw", index_option="basic")
    sb.add_text_field("user_id", tokenizer_name="raw", index_option="basic", fast=True)
    for name in ("folder", "kind", "source"):
        sb.add_text_field(name, tokenizer_name="keyword", index_option="basic")
    for name in ("sent", "size", "hasattachment"):
        sb.add_integer_field(name, fast=True)
    sb.add_unsigned_field("newest", fast=True)
    for name in TEXT_FIELDS:
        sb.add_text_field(name, tokenizer_name="literal", index_option="position")
    return sb.build()


def micros(when: datetime) -> int:
    return (as_utc(when) - _EPOCH) // _MICROSECOND


def newest_key(sent_micros: int, item_id: int) -> int:
    return (max(sent_micros, 0) // 1_000_000) << 32 | (item_id & 0xFFFF_FFFF)


def _regex_escape(word: str) -> str:
    return "".join("\\" + c if c in _REGEX_SPECIAL else c for c in word)


def to_json(doc: IndexDocument) -> str:
    sent = micros(doc.sent_at)
    return orjson.dumps({
        "item_id": doc.item_id, "tenant": doc.tenant, "user_id": doc.user_id, "folder": doc.folder,
        "kind": doc.kind, "source": doc.source, "sent": sent, "newest": newest_key(sent, doc.item_id),
        "size": doc.size, "hasattachment": int(doc.has_attachment) | (2 if doc.has_missing_media else 0),
        "from": _prepare_repeated(doc.sender),
        "to": _prepare_repeated(doc.to), "cc": _prepare_repeated(doc.cc),
        "participants": _prepare_repeated(doc.participants), "subject": prepare(doc.subject),
        "body": prepare(doc.body), "attachmentnames": prepare(doc.attachment_names),
        "chat": _prepare_repeated(doc.chat),
    }).decode()


# A word of a query: its analysed text, and whether it is a prefix.
_Word = tuple[str, bool]


class TantivySearchIndex:
    """A ``SearchIndex`` in ``path`` (created if absent). Searching needs no lock; the first change takes
    tantivy's writer lock, so one process writes (the one delivering) while any number read.

    One indexing thread by default: measured on 2 cores, a second one cost ~30% more CPU per item (more,
    smaller segments to merge) for no gain in items/s, and a 2,000-item delivery batch commits in ~100 ms.
    """

    def __init__(self, path: Path | str, *, writer_heap_bytes: int = 128_000_000, writer_threads: int = 1) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        marker = self.path / MARKER
        self.schema = build_schema()
        if tantivy.Index.exists(str(self.path)):
            found = json.loads(marker.read_text()).get("schema") if marker.exists() else None
            if found != SCHEMA_VERSION:
                raise SearchIndexUnavailable(
                    f"the search index in {self.path} has schema {found}, this version needs {SCHEMA_VERSION}: "
                    "remove the directory and the items will be re-indexed")
            self._index = tantivy.Index.open(str(self.path))
        else:
            self._index = tantivy.Index(self.schema, path=str(self.path), reuse=False)
            marker.write_text(json.dumps({"schema": SCHEMA_VERSION}))
        # Custom analysers are not stored in the index: register them on every open, before any use.
        self._index.register_tokenizer("literal", literal_analyzer())
        self._index.register_tokenizer("keyword", keyword_analyzer())
        # Reload on commits made by another process (the delivering one); ours reload at once in commit(). tantivy's
        # own watcher polls meta.json every 500 ms; ``_searcher`` also looks before each search (see there).
        self._index.config_reader("OnCommit")
        self._meta_seen: tuple[int, int] | None = self._meta_stamp()
        self._words = literal_analyzer()
        self._keyword = keyword_analyzer()
        self._heap = writer_heap_bytes
        self._threads = writer_threads
        self._writer: tantivy.IndexWriter | None = None
        self._uncommitted = False
        self._lock = threading.Lock()

    # -- writing --------------------------------------------------------------------------------

    def _writable(self) -> tantivy.IndexWriter:
        if self._writer is None:
            try:
                self._writer = self._index.writer(heap_size=self._heap, num_threads=self._threads)
            except ValueError as exc:
                raise SearchIndexUnavailable(f"the search index in {self.path} cannot be written: {exc}") from exc
        return self._writer

    def add(self, docs: Sequence[IndexDocument]) -> None:
        if not docs:
            return
        with self._lock:
            writer = self._writable()
            # Replace, not duplicate: a re-index after a crash (or of a repaired item) changes nothing. One
            # delete query per batch; tantivy applies it only to documents added before it.
            writer.delete_documents_by_query(
                Query.term_set_query(self.schema, "item_id", [d.item_id for d in docs]))
            for doc in docs:
                writer.add_json(to_json(doc))
            self._uncommitted = True

    def delete(self, item_ids: Sequence[int]) -> None:
        if not item_ids:
            return
        with self._lock:
            self._writable().delete_documents_by_query(
                Query.term_set_query(self.schema, "item_id", list(item_ids)))
            self._uncommitted = True

    def commit(self) -> None:
        with self._lock:
            if self._writer is not None:
                self._writer.commit()
                self._uncommitted = False
            self._index.reload()

    def clear(self) -> None:
        with self._lock:
            writer = self._writable()
            writer.delete_all_documents()
            writer.commit()
            self._uncommitted = False
            self._index.reload()

    def close(self) -> None:
        """Release the writer lock; changes not committed are dropped.

        Waits for the merges the last commits started: dropping a tantivy writer abandons them, so a writer
        closed after every delivery batch would leave one segment per batch, and every search pays for each
        segment (measured: 50 batches, 50 segments and 4x the time; waiting, 8 segments). The price: a close
        that follows a big merge waits for it (up to 1.2 s at 300k items), so a process that delivers all day
        had better keep the writer open and close it when it stops.
        """
        with self._lock:
            if self._writer is not None:
                writer, self._writer = self._writer, None
                if self._uncommitted:
                    writer.rollback()   # which also abandons merges in progress: only when there is something to drop
                    self._uncommitted = False
                writer.wait_merging_threads()

    def segment_count(self) -> int:
        """Segments searched (each costs every query a little; merges keep them few)."""
        return int(self._searcher().num_segments)

    def __enter__(self) -> TantivySearchIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- searching ------------------------------------------------------------------------------

    def _meta_stamp(self) -> tuple[int, int] | None:
        try:
            meta = (self.path / "meta.json").stat()
        except FileNotFoundError:
            return None
        return meta.st_ino, meta.st_mtime_ns

    def _searcher(self) -> Any:
        """A searcher over every commit made before this call, by this process or another.

        A commit replaces ``meta.json`` (tantivy writes it atomically, so its inode and time change): when they
        differ from the last seen, the reader reloads first. Without this, a search in the server right after a
        Celery worker's job ended could miss the job's items for up to tantivy's 500 ms polling interval. A stat
        is ~1 µs; reloading on every search would cost ~135 µs of CPU (6 segments), half a small query's.
        """
        stamp = self._meta_stamp()
        if stamp != self._meta_seen:
            self._index.reload()
            self._meta_seen = stamp
        return self._index.searcher()

    def search(self, tenant: str, node: Node, *, users: Sequence[str] | None = None, limit: int = 20,
               offset: int = 0, order: Order = Order.RELEVANCE) -> SearchResult:
        if limit < 0 or offset < 0:
            raise UnsupportedQuery("limit and offset must not be negative")
        if order not in tuple(Order):
            raise UnsupportedQuery(f"unknown order {order!r}: relevance or newest")
        query = self._scoped(tenant, node, users)
        searcher = self._searcher()
        if limit == 0:  # tantivy's top-k collector needs k >= 1
            return SearchResult(self._run(searcher.search, query, 1, count=True).count, [])
        if order == Order.NEWEST:
            found = self._run(searcher.search, query, limit, count=True, offset=offset,
                              order_by_field="newest", order=tantivy.Order.Desc)
        else:
            found = self._run(searcher.search, query, limit, count=True, offset=offset)
        ids = searcher.fast_field_values("item_id", [address for _, address in found.hits])
        scores = [float(score) if order == Order.RELEVANCE else 0.0 for score, _ in found.hits]
        return SearchResult(found.count, [Hit(int(i), s) for i, s in zip(ids, scores, strict=True)
                                          if isinstance(i, int)])

    def count(self, tenant: str, node: Node, users: Sequence[str] | None = None) -> int:
        return int(self._run(self._searcher().search, self._scoped(tenant, node, users), 1, count=True).count)

    def count_by_user(self, tenant: str, node: Node, users: Sequence[str] | None = None) -> dict[str, int]:
        wanted = None if users is None else sorted(set(self._users(users)))
        counts: dict[str, int] = {}
        # With the mailboxes named, ask about them a bucket-limit's worth at a time; without, one request.
        buckets: list[list[str] | None] = [None] if wanted is None else list(chunks(wanted, MAX_BUCKETS))
        searcher = self._searcher()
        for chunk in buckets:
            size = MAX_BUCKETS if chunk is None else max(len(chunk), 1)
            result = self._run(searcher.aggregate, self._scoped(tenant, node, chunk),
                               {"by_user": {"terms": {"field": "user_id", "size": size}}})["by_user"]
            if result.get("sum_other_doc_count"):
                raise UnsupportedQuery(f"matches in more than {MAX_BUCKETS:,} mailboxes: name the mailboxes "
                                       "(users) to count them in parts")
            for bucket in result["buckets"]:
                counts[str(bucket["key"])] = int(bucket["doc_count"])
        return counts

    def item_ids(self, tenant: str, node: Node, users: Sequence[str] | None = None) -> set[int]:
        query = self._scoped(tenant, node, users)
        searcher = self._searcher()
        total = self._run(searcher.search, query, 1, count=True).count
        if not total:
            return set()
        # Ordered by a fast field, so nothing is scored.
        found = self._run(searcher.search, query, total, count=False, order_by_field="item_id")
        return {int(i) for i in searcher.fast_field_values("item_id", [a for _, a in found.hits])
                if isinstance(i, int)}

    def max_item_id(self, tenant: str) -> int | None:
        searcher = self._searcher()
        found = searcher.search(Query.term_query(self.schema, "tenant", tenant), 1, count=False,
                                order_by_field="item_id", order=tantivy.Order.Desc)
        if not found.hits:
            return None
        value = searcher.fast_field_values("item_id", [found.hits[0][1]])[0]
        return int(value) if isinstance(value, int) else None

    @staticmethod
    def _run(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return call(*args, **kwargs)
        except ValueError as exc:
            if "max expansions" in str(exc):
                raise UnsupportedQuery("a prefix inside a phrase or NEAR matches too many words "
                                       "(over 16,384): make it longer") from exc
            raise

    # -- the query tree to tantivy --------------------------------------------------------------

    @staticmethod
    def _users(users: Sequence[str]) -> list[str]:
        if isinstance(users, str):
            raise TypeError("users is a sequence of user ids, not one string")
        return list(users)

    def _scoped(self, tenant: str, node: Node, users: Sequence[str] | None) -> Query:
        clauses = [(Occur.Must, Query.const_score_query(Query.term_query(self.schema, "tenant", tenant), 0.0))]
        if users is not None:
            clauses.append((Occur.Must, Query.const_score_query(
                Query.term_set_query(self.schema, "user_id", self._users(users)), 0.0)))
        clauses.append((Occur.Must, self.compile(node)))
        return Query.boolean_query(clauses)

    def compile(self, node: Node) -> Query:
        """The tantivy query for ``node``, unscoped (no tenant filter): use only through ``_scoped``."""
        if isinstance(node, Term | Phrase):
            if node.field in KEYWORD_FIELDS:
                return self._keyword_query(node.field, node.text)
            words = self._analyse(node.text, prefix=isinstance(node, Term) and node.prefix)
            if not words:
                return Query.empty_query()
            if len(words) > 1 and all(text.isdigit() for text, _ in words):
                # "+49 170 1234567", "(0170) 123-4567": also the number as one word, as numbers are indexed
                joined = [("".join(text for text, _ in words), words[-1][1])]
                return self._any_field(self._text_fields(node.field), lambda f: Query.boolean_query([
                    (Occur.Should, self._sequence(f, words, 0)), (Occur.Should, self._sequence(f, joined, 0))]))
            return self._any_field(self._text_fields(node.field), lambda f: self._sequence(f, words, 0))
        if isinstance(node, Keyword):
            return self._keyword_query(node.field, node.value)
        if isinstance(node, Compare):
            return self._compare(node)
        if isinstance(node, Range):
            field, start = self._value(node.field, node.start)
            end = self._value(node.field, node.end)[1]
            if end <= start:
                return Query.empty_query()
            return Query.range_query(self.schema, field, FieldType.Integer, start, end, include_upper=False)
        if isinstance(node, Near):
            return self._near(node)
        if isinstance(node, And):
            must = [self.compile(item) for item in node.items if not isinstance(item, Not)]
            must_not = [self.compile(item.item) for item in node.items if isinstance(item, Not)]
            if len(must) == 1 and not must_not:
                return must[0]
            if not must:
                must = [Query.all_query()]
            return Query.boolean_query([(Occur.Must, q) for q in must] + [(Occur.MustNot, q) for q in must_not])
        if isinstance(node, Or):
            if not node.items:
                return Query.empty_query()
            if len(node.items) == 1:
                return self.compile(node.items[0])
            return Query.boolean_query([(Occur.Should, self.compile(item)) for item in node.items])
        if isinstance(node, Not):
            return Query.boolean_query([(Occur.Must, Query.all_query()), (Occur.MustNot, self.compile(node.item))])
        if isinstance(node, MatchAll):
            return Query.all_query()
        raise UnsupportedQuery(f"unknown query node {type(node).__name__}")

    def _analyse(self, text: str, *, prefix: bool) -> list[_Word]:
        tokens = analyse(text, self._words)
        return [(token, prefix and i == len(tokens) - 1) for i, token in enumerate(tokens)]

    @staticmethod
    def _text_fields(field: str | None) -> tuple[str, ...]:
        if field is None:
            return DEFAULT_FIELDS
        if field not in TEXT_FIELDS:
            raise UnsupportedQuery(f"{field!r} is not a text field")
        return (field,)

    @staticmethod
    def _any_field(fields: Sequence[str], build: Callable[[str], Query]) -> Query:
        if len(fields) == 1:
            return build(fields[0])
        return Query.boolean_query([(Occur.Should, build(f)) for f in fields])

    def _sequence(self, field: str, words: Sequence[_Word], slop: int) -> Query:
        """Words in order in ``field`` (``slop``: tantivy's sloppy phrase); a prefix word expands."""
        if len(words) == 1:
            text, prefix = words[0]
            if prefix:
                return Query.regex_query(self.schema, field, _regex_escape(text) + ".*")
            return Query.term_query(self.schema, field, text)
        if any(prefix for _, prefix in words):
            patterns: list[str | tuple[int, str]] = [_regex_escape(text) + (".*" if prefix else "")
                                                     for text, prefix in words]
            return Query.regex_phrase_query(self.schema, field, patterns, slop=slop)
        return Query.phrase_query(self.schema, field, [text for text, _ in words], slop=slop)

    def _near(self, node: Near) -> Query:
        left_field, right_field = node.left.field, node.right.field
        if left_field and right_field and left_field != right_field:
            raise UnsupportedQuery(f"NEAR needs both sides in one field, not {left_field!r} and {right_field!r}")
        left = self._analyse(node.left.text, prefix=isinstance(node.left, Term) and node.left.prefix)
        right = self._analyse(node.right.text, prefix=isinstance(node.right, Term) and node.right.prefix)
        if not left or not right:
            return Query.empty_query()
        distance = max(node.distance, 0)

        def near_in(field: str) -> Query:
            either = Query.boolean_query([(Occur.Should, self._sequence(field, left + right, distance)),
                                          (Occur.Should, self._sequence(field, right + left, distance))])
            if len(left) == 1 and len(right) == 1:
                return either
            return Query.boolean_query([(Occur.Must, either), (Occur.Must, self._sequence(field, left, 0)),
                                        (Occur.Must, self._sequence(field, right, 0))])

        return self._any_field(self._text_fields(left_field or right_field), near_in)

    def _keyword_query(self, field: str, value: str) -> Query:
        if field == "mailbox":
            return Query.term_query(self.schema, "user_id", value)
        if field not in KEYWORD_FIELDS:
            raise UnsupportedQuery(f"{field!r} is not a keyword field")
        tokens = self._keyword.analyze(value)
        return Query.term_query(self.schema, field, tokens[0]) if tokens else Query.empty_query()

    def _compare(self, node: Compare) -> Query:
        if node.field in _FLAG_BITS:
            return self._flag(node)
        field, value = self._value(node.field, node.value)
        bounds: dict[str, Any] = {
            "=": {"lower_bound": value, "upper_bound": value},
            "<": {"upper_bound": value, "include_upper": False},
            "<=": {"upper_bound": value},
            ">": {"lower_bound": value, "include_lower": False},
            ">=": {"lower_bound": value},
        }.get(node.op, {})
        if not bounds:
            raise UnsupportedQuery(f"unknown comparison {node.op!r}")
        return Query.range_query(self.schema, field, FieldType.Integer, **bounds)

    def _flag(self, node: Compare) -> Query:
        """``hasattachment``/``hasmissingmedia`` ``= true|false``: the flag values (0–3) with the bit set or not."""
        if node.op != "=" or not isinstance(node.value, bool):
            raise UnsupportedQuery(f"{node.field} is true or false, not {node.op}{node.value!r}")
        bit = _FLAG_BITS[node.field]
        values = [v for v in range(4) if bool(v & bit) == node.value]
        return Query.boolean_query([
            (Occur.Should, Query.range_query(self.schema, "hasattachment", FieldType.Integer,
                                             lower_bound=v, upper_bound=v)) for v in values])

    @staticmethod
    def _value(field: str, value: object) -> tuple[str, int]:
        """The indexed field and integer a compared value means; a value of the wrong type is refused."""
        target = _VALUE_FIELDS.get(field)
        if target is None:
            raise UnsupportedQuery(f"{field!r} cannot be compared: one of {', '.join(_VALUE_FIELDS)}")
        if target == "sent":
            if not isinstance(value, datetime):
                raise UnsupportedQuery(f"{field} compares with a date, not {value!r}")
            return target, micros(value)
        if target == "hasattachment":
            raise UnsupportedQuery(f"{field} is true or false, not {value!r}")
        if isinstance(value, bool) or not isinstance(value, int):
            raise UnsupportedQuery(f"{field} compares with a whole number, not {value!r}")
        return target, value
