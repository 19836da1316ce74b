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

import hashlib
import json
import logging
import shutil
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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

# 2: a document per message with its copies multi-valued (issue #16); 1 was a document per copy.
SCHEMA_VERSION = 2
SLOTS = 8   # copies per document: a message to more mailboxes has a document per eight
MARKER = "tenantry-search.json"
MAX_WORD_BYTES = 255
# tantivy's terms aggregation refuses more buckets than this in one request.
MAX_BUCKETS = 65_000
# Scripts written without spaces between words (kana, CJK ideographs): each character becomes a word.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
log = logging.getLogger(__name__)
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
    # One document per message and folder, its mailbox copies multi-valued (``item_id`` and ``user_id`` in the
    # same order, stored so that removing one copy can write the document again without it) and in slots
    # (``c0``… item ids, ``h0``… owners' keys) that fast-field reads can see: tantivy-py reads only the first
    # value of a multi-valued fast field.
    sb.add_integer_field("item_id", stored=True, indexed=True)
    sb.add_integer_field("top", fast=True)          # the highest of the document's item ids
    sb.add_unsigned_field("copies", fast=True)      # how many copies (slots used)
    for slot in range(SLOTS):
        sb.add_integer_field(f"c{slot}", fast=True)
        sb.add_integer_field(f"h{slot}", fast=True)
    sb.add_text_field("tenant", stored=True, tokenizer_name="raw", index_option="basic")
    sb.add_text_field("user_id", stored=True, tokenizer_name="raw", index_option="basic", fast=True)
    for name in ("folder", "kind", "source"):
        sb.add_text_field(name, stored=True, tokenizer_name="keyword", index_option="basic")
    for name in ("sent", "size", "hasattachment"):
        sb.add_integer_field(name, stored=True, fast=True)
    sb.add_unsigned_field("newest", fast=True)
    for name in TEXT_FIELDS:
        sb.add_text_field(name, stored=True, tokenizer_name="literal", index_option="position")
    return sb.build()


@lru_cache(maxsize=65536)
def user_key(user_id: str) -> int:
    """An owner as a 63-bit integer, for the fast-field slots (text fast fields cannot be read per document).
    Two owners of one message with the same key would need a 2^-63 chance; the text ``user_id`` stays exact."""
    return int.from_bytes(hashlib.blake2b(user_id.encode(), digest_size=8).digest(), "big") >> 1


def micros(when: datetime) -> int:
    return (as_utc(when) - _EPOCH) // _MICROSECOND


def newest_key(sent_micros: int, item_id: int) -> int:
    return (max(sent_micros, 0) // 1_000_000) << 32 | (item_id & 0xFFFF_FFFF)


def _regex_escape(word: str) -> str:
    return "".join("\\" + c if c in _REGEX_SPECIAL else c for c in word)


def _base(doc: IndexDocument) -> dict[str, Any]:
    """The fields a message's copies share."""
    return {
        "tenant": doc.tenant, "folder": doc.folder, "kind": doc.kind, "source": doc.source, "sent": micros(doc.sent_at),
        "size": doc.size, "hasattachment": int(doc.has_attachment) | (2 if doc.has_missing_media else 0),
        "from": _prepare_repeated(doc.sender),
        "to": _prepare_repeated(doc.to), "cc": _prepare_repeated(doc.cc),
        "participants": _prepare_repeated(doc.participants), "subject": prepare(doc.subject),
        "body": prepare(doc.body), "attachmentnames": prepare(doc.attachment_names),
        "chat": _prepare_repeated(doc.chat),
    }


_Copy = tuple[int, str]   # (item id, owner)


def _chunks(copies: Sequence[_Copy]) -> list[list[_Copy]]:
    """Copies in groups of at most ``SLOTS`` with one copy per owner each (per-owner counts count documents)."""
    out: list[list[_Copy]] = []
    owners: list[set[str]] = []
    for copy in copies:
        for chunk, seen in zip(out, owners, strict=True):
            if len(chunk) < SLOTS and copy[1] not in seen:
                chunk.append(copy)
                seen.add(copy[1])
                break
        else:
            out.append([copy])
            owners.append({copy[1]})
    return out


def to_json(base: dict[str, Any], chunk: Sequence[_Copy]) -> str:
    """The tantivy document of some copies (``_chunks``) of a message (``_base``)."""
    top = max(item_id for item_id, _ in chunk)
    fields = {**base, "item_id": [i for i, _ in chunk], "user_id": [u for _, u in chunk], "top": top,
              "copies": len(chunk), "newest": newest_key(base["sent"], top)}
    for slot, (item_id, user_id) in enumerate(chunk):
        fields[f"c{slot}"] = item_id
        fields[f"h{slot}"] = user_key(user_id)
    return orjson.dumps(fields).decode()


@dataclass(frozen=True)
class _Allowed:
    """Which copies of a matching document are hits: owners in ``only`` (None: any), not in ``excluded``."""

    only: frozenset[str] | None = None
    excluded: frozenset[str] = frozenset()

    @property
    def restricts(self) -> bool:
        return self.only is not None or bool(self.excluded)

    def keys(self) -> tuple[frozenset[int] | None, frozenset[int]]:
        return (None if self.only is None else frozenset(user_key(u) for u in self.only),
                frozenset(user_key(u) for u in self.excluded))


def _mailboxes(node: Node) -> set[str]:
    """The user ids ``mailbox:`` names anywhere in the tree."""
    if isinstance(node, Keyword):
        return {node.value} if node.field == "mailbox" else set()
    if isinstance(node, And | Or):
        return set().union(*(_mailboxes(item) for item in node.items))
    if isinstance(node, Not):
        return _mailboxes(node.item)
    return set()


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
            if isinstance(found, int) and found < SCHEMA_VERSION:
                # An older format: started again empty; the items are indexed again from the store by
                # ``Indexer.catch_up`` (run at start for every tenant: the index has no highest id any more).
                log.warning("the search index in %s has schema %s, this version %s: it is rebuilt from the store",
                            self.path, found, SCHEMA_VERSION)
                shutil.rmtree(self.path)
                self.path.mkdir(parents=True)
            elif found != SCHEMA_VERSION:
                raise SearchIndexUnavailable(
                    f"the search index in {self.path} has schema {found}, this version needs {SCHEMA_VERSION}: "
                    "remove the directory and the items will be re-indexed")
        if tantivy.Index.exists(str(self.path)):
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
        # Since the last commit: the documents added (item id → its message's fields and the document's
        # copies), and the item ids of committed documents deleted, so that a copy removed from a document
        # added or rewritten in the same batch is removed from the right one.
        self._added: dict[int, tuple[dict[str, Any], list[_Copy]]] = {}
        self._gone: set[int] = set()
        self._lock = threading.Lock()

    # -- writing --------------------------------------------------------------------------------

    def _writable(self) -> tantivy.IndexWriter:
        if self._writer is None:
            try:
                self._writer = self._index.writer(heap_size=self._heap, num_threads=self._threads)
            except ValueError as exc:
                raise SearchIndexUnavailable(f"the search index in {self.path} cannot be written: {exc}") from exc
            # What another process committed before the lock was ours: ``_detach`` reads the documents it rewrites.
            self._index.reload()
        return self._writer

    def add(self, docs: Sequence[IndexDocument]) -> None:
        if not docs:
            return
        groups: list[tuple[IndexDocument, list[_Copy]]] = []
        seen: set[int] = set()
        for doc in reversed(docs):   # an item id given twice: the last one wins
            copies = [c for c in ((doc.item_id, doc.user_id), *doc.copies) if c[0] not in seen]
            seen.update(item_id for item_id, _ in copies)
            if copies:
                groups.append((doc, copies))
        with self._lock:
            writer = self._writable()
            # Replace, not duplicate: a re-index after a crash (or of a repaired item) changes nothing.
            self._detach(writer, seen)
            for doc, copies in reversed(groups):
                base = _base(doc)
                for chunk in _chunks(copies):
                    self._write_doc(writer, base, chunk)
            self._uncommitted = True

    def delete(self, item_ids: Sequence[int]) -> None:
        if not item_ids:
            return
        with self._lock:
            self._detach(self._writable(), {int(i) for i in item_ids})
            self._uncommitted = True

    def _write_doc(self, writer: tantivy.IndexWriter, base: dict[str, Any], chunk: list[_Copy]) -> None:
        writer.add_json(to_json(base, chunk))
        entry = (base, chunk)
        for item_id, _ in chunk:
            self._added[item_id] = entry

    def _detach(self, writer: tantivy.IndexWriter, item_ids: set[int]) -> None:
        """Delete the documents holding any of ``item_ids`` and write again the other copies they held.

        One delete query per call (tantivy applies it to documents added before it, committed or not). The
        committed documents are found in the last commit's snapshot, minus those already rewritten since.
        """
        if not item_ids:
            return
        rest: list[tuple[dict[str, Any], list[_Copy]]] = []
        pending = {id(entry): entry for i in item_ids if (entry := self._added.get(i)) is not None}
        for base, chunk in pending.values():
            for item_id, _ in chunk:
                del self._added[item_id]
            rest.append((base, [c for c in chunk if c[0] not in item_ids]))
        query = Query.term_set_query(self.schema, "item_id", sorted(item_ids))
        searcher = self._searcher()
        total = int(self._run(searcher.search, query, 1, count=True).count)
        if total:
            for _, address in searcher.search(query, total, count=False, order_by_field="top").hits:
                stored = searcher.doc(address).to_dict()
                chunk = list(zip((int(i) for i in stored.pop("item_id")), (str(u) for u in stored.pop("user_id")),
                                 strict=True))
                if chunk[0][0] in self._gone:
                    continue   # deleted since the commit (and its other copies, if any, are in ``_added``)
                self._gone.update(item_id for item_id, _ in chunk)
                rest.append(({k: v[0] for k, v in stored.items() if v}, [c for c in chunk if c[0] not in item_ids]))
        writer.delete_documents_by_query(query)
        for base, chunk in rest:
            if chunk:
                self._write_doc(writer, base, chunk)

    def commit(self) -> None:
        with self._lock:
            if self._writer is not None:
                self._writer.commit()
                self._uncommitted = False
            self._added.clear()
            self._gone.clear()
            self._index.reload()

    def clear(self) -> None:
        with self._lock:
            writer = self._writable()
            writer.delete_all_documents()
            writer.commit()
            self._uncommitted = False
            self._added.clear()
            self._gone.clear()
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
                self._added.clear()
                self._gone.clear()
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
        branches = self._branches(tenant, node, users)
        searcher = self._searcher()
        total = sum(self._count(searcher, query, allowed) for query, allowed in branches)
        if limit == 0:
            return SearchResult(total, [])
        # A page of copies: the first documents (each has a copy in scope, but for "mailbox:" queries), their
        # copies newest delivery first; documents are fetched until the page is full or none are left.
        wanted = offset + limit
        rows: list[tuple[float, int, int, int, float]] = []   # a sort key (see below), then the score
        for query, allowed in branches:
            fetch = wanted
            while True:
                if order == Order.NEWEST:
                    found = self._run(searcher.search, query, fetch, count=False,
                                      order_by_field="newest", order=tantivy.Order.Desc)
                else:
                    found = self._run(searcher.search, query, fetch, count=False)
                addresses = [address for _, address in found.hits]
                copies = self._copies(searcher, addresses, allowed)
                if sum(map(len, copies)) >= wanted or len(addresses) < fetch:
                    break
                fetch *= 2
            # The order tantivy gave (score, or the newest key, then the document's address), each document's
            # copies highest id first: one total order, so pages neither repeat nor skip a copy, and the
            # branches of a "mailbox:" query merge into it.
            for (value, address), ids in zip(found.hits, copies, strict=True):
                score = float(value) if order == Order.RELEVANCE else 0.0
                key = -float(value) if order == Order.RELEVANCE else -int(value)   # a u64 key: not a float
                rows.extend((key, address.segment_ord, address.doc, -item_id, score) for item_id in ids)
        if len(branches) > 1:
            rows.sort()
        return SearchResult(total, [Hit(-row[3], row[4]) for row in rows[offset:wanted]])

    def count(self, tenant: str, node: Node, users: Sequence[str] | None = None) -> int:
        searcher = self._searcher()
        return sum(self._count(searcher, query, allowed) for query, allowed in self._branches(tenant, node, users))

    def count_by_user(self, tenant: str, node: Node, users: Sequence[str] | None = None) -> dict[str, int]:
        counts: dict[str, int] = {}
        searcher = self._searcher()
        for query, allowed in self._branches(tenant, node, users):
            for user_id, n in self._by_user(searcher, query).items():
                if (allowed.only is None or user_id in allowed.only) and user_id not in allowed.excluded:
                    counts[user_id] = counts.get(user_id, 0) + n
        return counts

    def item_ids(self, tenant: str, node: Node, users: Sequence[str] | None = None) -> set[int]:
        searcher = self._searcher()
        out: set[int] = set()
        for query, allowed in self._branches(tenant, node, users):
            total = self._run(searcher.search, query, 1, count=True).count
            if not total:
                continue
            # Ordered by a fast field, so nothing is scored.
            found = self._run(searcher.search, query, total, count=False, order_by_field="top")
            addresses = [a for _, a in found.hits]
            if allowed.restricts:
                for ids in self._copies(searcher, addresses, allowed):
                    out.update(ids)
                continue
            # Every copy: slot by slot, a column at a time (no per-document lists to build and sort).
            counts = searcher.fast_field_values("copies", addresses)
            for slot in range(max(int(n or 0) for n in counts)):
                column = searcher.fast_field_values(f"c{slot}", addresses)
                out.update(int(v or 0) for v, n in zip(column, counts, strict=True) if (n or 0) > slot)
        return out

    def max_item_id(self, tenant: str) -> int | None:
        searcher = self._searcher()
        found = searcher.search(Query.term_query(self.schema, "tenant", tenant), 1, count=False,
                                order_by_field="top", order=tantivy.Order.Desc)
        if not found.hits:
            return None
        value = searcher.fast_field_values("top", [found.hits[0][1]])[0]
        return int(value) if isinstance(value, int) else None

    def _count(self, searcher: Any, query: Query, allowed: _Allowed) -> int:
        """Copies in scope in the documents ``query`` matches."""
        if allowed.only is not None:
            if len(allowed.only) == 1:   # the query is scoped to that owner: one copy per document
                return int(self._run(searcher.search, query, 1, count=True).count)
            return sum(n for user_id, n in self._by_user(searcher, query).items() if user_id in allowed.only)
        result = self._run(searcher.aggregate, query, {"copies": {"sum": {"field": "copies"}}})
        total = int(result["copies"]["value"] or 0)
        for user_id in allowed.excluded:
            total -= int(self._run(searcher.search, Query.boolean_query([
                (Occur.Must, query), (Occur.Must, Query.term_query(self.schema, "user_id", user_id))]),
                1, count=True).count)
        return total

    def _by_user(self, searcher: Any, query: Query) -> dict[str, int]:
        """Documents per owner, which is copies per owner (a document holds one copy per owner)."""
        result = self._run(searcher.aggregate, query,
                           {"by_user": {"terms": {"field": "user_id", "size": MAX_BUCKETS}}})["by_user"]
        if result.get("sum_other_doc_count"):
            raise UnsupportedQuery(f"matches in more than {MAX_BUCKETS:,} mailboxes: name fewer mailboxes "
                                   "(users) to count them in parts")
        return {str(bucket["key"]): int(bucket["doc_count"]) for bucket in result["buckets"]}

    def _copies(self, searcher: Any, addresses: list[Any], allowed: _Allowed) -> list[list[int]]:
        """Per document, the item ids of its copies in scope, highest (latest delivered) first."""
        if not addresses:
            return []
        counts = searcher.fast_field_values("copies", addresses)
        width = max(int(n or 0) for n in counts)
        ids = [searcher.fast_field_values(f"c{slot}", addresses) for slot in range(width)]
        only, excluded = allowed.keys()
        if not allowed.restricts:
            return [sorted((int(ids[slot][row]) for slot in range(int(n or 0))), reverse=True)
                    for row, n in enumerate(counts)]
        keys = [searcher.fast_field_values(f"h{slot}", addresses) for slot in range(width)]
        out = []
        for row, n in enumerate(counts):
            out.append(sorted((int(ids[slot][row]) for slot in range(int(n or 0))
                               if (only is None or keys[slot][row] in only) and keys[slot][row] not in excluded),
                              reverse=True))
        return out

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

    def _branches(self, tenant: str, node: Node, users: Sequence[str] | None) -> list[tuple[Query, _Allowed]]:
        """The tantivy queries for ``node``, each with the copies of its documents that are hits.

        A document holds several mailboxes' copies, so ``mailbox:`` is about a copy, not a document: for each
        user id it names, the query with ``mailbox:`` true for that one only, in that mailbox; for every other
        mailbox, the query with each ``mailbox:`` false. Without ``mailbox:``, one query.
        """
        scope = None if users is None else list(dict.fromkeys(self._users(users)))
        named = sorted(_mailboxes(node))
        if not named:
            allowed = _Allowed() if scope is None else _Allowed(only=frozenset(scope))
            return [(self._scoped(tenant, self.compile(node), scope), allowed)]
        branches = [(self._scoped(tenant, self.compile(node, {m: m == user for m in named}), [user]),
                     _Allowed(only=frozenset([user]))) for user in named if scope is None or user in scope]
        others = None if scope is None else [u for u in scope if u not in named]
        if others is None or others:
            branches.append((self._scoped(tenant, self.compile(node, dict.fromkeys(named, False)), others),
                             _Allowed(only=None if others is None else frozenset(others),
                                      excluded=frozenset(named) if others is None else frozenset())))
        return branches

    def _scoped(self, tenant: str, query: Query, users: Sequence[str] | None) -> Query:
        clauses = [(Occur.Must, Query.const_score_query(Query.term_query(self.schema, "tenant", tenant), 0.0))]
        if users is not None:
            clauses.append((Occur.Must, Query.const_score_query(
                Query.term_set_query(self.schema, "user_id", list(users)), 0.0)))
        clauses.append((Occur.Must, query))
        return Query.boolean_query(clauses)

    def compile(self, node: Node, mailbox: dict[str, bool] | None = None) -> Query:
        """The tantivy query for ``node``, unscoped (no tenant filter): use only through ``_branches``.
        ``mailbox``: whether each ``mailbox:`` value is the copy's mailbox (see ``_branches``)."""
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
            if node.field == "mailbox" and mailbox is not None:
                return (Query.const_score_query(Query.all_query(), 0.0) if mailbox.get(node.value)
                        else Query.empty_query())
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
            must = [self.compile(item, mailbox) for item in node.items if not isinstance(item, Not)]
            must_not = [self.compile(item.item, mailbox) for item in node.items if isinstance(item, Not)]
            if len(must) == 1 and not must_not:
                return must[0]
            if not must:
                must = [Query.all_query()]
            return Query.boolean_query([(Occur.Must, q) for q in must] + [(Occur.MustNot, q) for q in must_not])
        if isinstance(node, Or):
            if not node.items:
                return Query.empty_query()
            if len(node.items) == 1:
                return self.compile(node.items[0], mailbox)
            return Query.boolean_query([(Occur.Should, self.compile(item, mailbox)) for item in node.items])
        if isinstance(node, Not):
            return Query.boolean_query([(Occur.Must, Query.all_query()),
                                        (Occur.MustNot, self.compile(node.item, mailbox))])
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
