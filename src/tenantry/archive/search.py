"""The archive's search index: what is indexed about an item, and what an index must answer.

A compliance search evaluates a query tree (``protocols/query/ast.py``) over one tenant's items, optionally
only some mailboxes, and answers a count, a page of item ids, per-mailbox counts, or every matching id (holds,
exports). The default engine is tantivy, embedded, in ``<data dir>/index`` (``search_tantivy.py``, which says
how each node is evaluated); this module is the contract, so the store and the services never see the engine.

Why tantivy and not SQLite FTS5, measured on the same 1M generated items (``bench/search_bench.py``,
docs/BENCHMARKS.md "Search"): tantivy answers every query of the set with p95 under 10 ms. FTS5 is as fast on
a rare word and stays under 50 ms on selective ones (AND, phrase, NEAR, a participant's month), but a common
word ranked by bm25 takes ~350 ms, newest-first ~140 ms and a broad prefix ~80 ms — it scores or sorts every
match — 24–39x tantivy, so it misses "p95 < 50 ms on 1M items" exactly where reviewers start (one common word).
FTS5 indexes a little faster (27k vs 22k items/s, both committing every 2,000) and would commit with the
items in one transaction; tantivy is a separate directory that must be kept in step with the store — hence
``max_item_id`` (re-index what a crash left out) and ``add`` being an upsert (re-indexing twice changes nothing).

Text is matched literally: lower-cased, split into Unicode words, no stemming, no stop words, no accent
folding ("Müller" does not find "Muller", "reports" does not find "report"), because a compliance search
must find exactly what was written and say so in court; ``invoi*`` is how a reviewer asks for variants.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Protocol

import phonenumbers

from tenantry.core.errors import Invalid, TenantryError
from tenantry.protocols.query.ast import Node

# A word or phrase without a field looks here (Purview: subject, body, participants, attachment names; we add
# the chat's id and name, which a chat item's subject may not carry).
DEFAULT_FIELDS = ("subject", "body", "participants", "attachmentnames", "chat")


class Order(StrEnum):
    """How a page of hits is ordered: by relevance (BM25 or ts_rank, ties newest first), or newest first."""

    RELEVANCE = "relevance"
    NEWEST = "newest"


@dataclass(frozen=True)
class IndexDocument:
    """One archived message as the index sees it: ``item_id`` is the store's item row id of one mailbox copy,
    unique across tenants (``delete`` needs no tenant), ``user_id`` that copy's mailbox owner, and ``copies``
    the message's other copies that share every other field (same bytes, same folder) in other mailboxes, as
    (item id, owner) pairs. Searches still answer per copy (an item id is a copy); a document per message is
    what keeps indexing cheap when a chat message goes to six mailboxes (issue #16)."""

    item_id: int
    tenant: str
    user_id: str                # the mailbox owner
    folder: str
    kind: str                   # chat | call | attachment | deleted | system
    source: str
    sent_at: datetime           # aware; stored as UTC microseconds (naive values are taken as UTC)
    size: int
    has_attachment: bool
    sender: str                 # name, address and number text
    to: str
    cc: str
    participants: str           # every participant, see ``participant_text``
    subject: str
    body: str
    attachment_names: str
    chat: str                   # chat id and name
    has_missing_media: bool = False  # media named by the source but not included (``<Media omitted>``)
    copies: tuple[tuple[int, str], ...] = ()  # (item_id, user_id) of the other mailboxes' copies


def each_copy(docs: Sequence[IndexDocument]) -> Iterator[IndexDocument]:
    """One document per mailbox copy (``copies`` spread out): for an index that keeps a row per item."""
    for doc in docs:
        yield replace(doc, copies=()) if doc.copies else doc
        for item_id, user_id in doc.copies:
            yield replace(doc, item_id=item_id, user_id=user_id, copies=())


@dataclass(frozen=True)
class Hit:
    item_id: int
    score: float                # relevance (BM25); 0.0 when ordered by newest, which does not score


@dataclass(frozen=True)
class SearchResult:
    total: int                  # every match, not just this page
    hits: list[Hit]


class UnsupportedQuery(Invalid):
    """A well-formed query the index cannot evaluate (a value of the wrong type, NEAR across two fields,
    a prefix that expands to too many words inside a phrase)."""

    code = "query_unsupported"


class SearchIndexUnavailable(TenantryError):
    """The index directory is locked by another writer, or was built with another schema."""

    status_code = 503
    code = "search_index_unavailable"


class SearchIndex(Protocol):
    """Every call is scoped to one tenant; ``users`` (mailbox owners' user ids) narrows it further.

    Changes (``add``, ``delete``) become visible at ``commit``, atomically: a crash loses whole batches since the
    last commit, never part of one.
    """

    def add(self, docs: Sequence[IndexDocument]) -> None:
        """Index items (each document's ``item_id`` and ``copies``); an item id already indexed is replaced,
        alone — other copies indexed with it stay as they were (so re-indexing is idempotent)."""

    def delete(self, item_ids: Sequence[int]) -> None:
        """Remove these items (mailbox copies); other copies of the same messages stay searchable."""

    def commit(self) -> None:
        """Make everything added or deleted so far searchable (and durable)."""

    def search(self, tenant: str, node: Node, *, users: Sequence[str] | None = None, limit: int = 20,
               offset: int = 0, order: Order = Order.RELEVANCE) -> SearchResult: ...

    def count(self, tenant: str, node: Node, users: Sequence[str] | None = None) -> int: ...

    def count_by_user(self, tenant: str, node: Node, users: Sequence[str] | None = None) -> dict[str, int]:
        """Matches per mailbox owner; owners without a match are absent."""

    def item_ids(self, tenant: str, node: Node, users: Sequence[str] | None = None) -> set[int]:
        """Every matching item id (holds, exports): no page limit."""

    def max_item_id(self, tenant: str) -> int | None:
        """The highest item id indexed for the tenant, None when it has none (then re-index everything)."""

    def clear(self) -> None:
        """Remove every item of every tenant (committed at once)."""

    def close(self) -> None: ...


@lru_cache(maxsize=65536)
def phone_spellings(number: str) -> str:
    """The ways someone may type ``number``, as indexed words: E.164 (with or without "+" it is one word),
    the national form with its trunk prefix, and the national significant number.

    "+491701234567" gives "+491701234567 01701234567 1701234567": ``participants:+491701234567``,
    ``participants:491701234567``, ``participants:01701234567`` and ``participants:1701234567`` find it.
    Grouped input (``"+49 170 1234567"``, ``"0170 1234567"``) is joined into one number at query time rather
    than indexed in every grouping: participants are the longest field of an item, and each spelling indexed
    costs every copy of every message. Something that is not a phone number comes back as it was.
    """
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return number
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    spellings = [e164, "".join(c for c in national if c.isdigit()),
                 phonenumbers.national_significant_number(parsed)]
    return " ".join(dict.fromkeys(s for s in spellings if s))


@lru_cache(maxsize=65536)
def participant_text(name: str = "", address: str = "", number: str = "") -> str:
    """One participant for ``IndexDocument.participants`` (join several with a space); cached: a chat's
    members recur in every message of it."""
    return " ".join(part for part in (name, address, phone_spellings(number) if number else "") if part)


# CJK and pictographs for the word tokenisers of both search back ends (tantivy and PostgreSQL): kana and
# ideographs become words of their own, emoji the word "emoji<hex code point>" (a tokeniser drops them).
_CJK = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")
_PICTOGRAPH = re.compile("[\u2300-\u23ff\u2600-\u2775\u2794-\u27bf\u2b00-\u2bff"
                         "\U0001f1e6-\U0001f1ff\U0001f300-\U0001faff]")
_SPECIAL = re.compile(f"{_CJK.pattern}|{_PICTOGRAPH.pattern}")


def prepare(text: str) -> str:
    """What the word tokeniser is given, for indexing and for queries alike (ASCII text passes untouched)."""
    if text.isascii() or not _SPECIAL.search(text):
        return text
    return _SPECIAL.sub(_spaced, text)


def _spaced(match: re.Match[str]) -> str:
    char = match.group()
    return f" {char} " if _CJK.match(char) else f" emoji{ord(char):x} "
