"""The syntax tree of an archive search query (the KQL subset of docs/search.md).

The parser (``parser.py``) builds it; search backends evaluate it. Every field name is lower case and one of
``FIELDS``; every date-time is aware and in UTC; text is kept as typed (backends fold case).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

# Text fields a word or phrase can be restricted to. ``None`` (no field) means all text fields:
# subject, body, participants, attachmentnames.
TEXT_FIELDS = ("from", "to", "cc", "participants", "subject", "body", "attachmentnames", "chat")
# Fields compared as exact keywords.
KEYWORD_FIELDS = ("kind", "folder", "source", "mailbox")
# Fields compared by value.
VALUE_FIELDS = ("sent", "received", "size", "hasattachment", "hasmissingmedia")
FIELDS = TEXT_FIELDS + KEYWORD_FIELDS + VALUE_FIELDS

KINDS = ("chat", "call", "attachment", "deleted", "system")


@dataclass(frozen=True)
class Term:
    """A word; ``prefix`` for ``invoi*`` (only trailing wildcards exist, as in Purview)."""

    text: str
    field: str | None = None
    prefix: bool = False


@dataclass(frozen=True)
class Phrase:
    """Words that must follow each other: ``"quarterly report"``."""

    text: str
    field: str | None = None


@dataclass(frozen=True)
class Keyword:
    """An exact value of a keyword field: ``kind:chat``, ``folder:"WhatsApp Archiver"``."""

    field: str
    value: str


@dataclass(frozen=True)
class Compare:
    """``size>1000``, ``sent>=2026-01-01``, ``hasattachment:true`` (op "=")."""

    field: str
    op: Literal["=", "<", "<=", ">", ">="]
    value: datetime | int | bool


@dataclass(frozen=True)
class Range:
    """``sent:2026-01-01..2026-02-01``: ``start <= value < end`` (the parser makes ``end`` the end of the
    last day named, so both days are included)."""

    field: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Near:
    """``a NEAR(n) b``: both within ``distance`` words of each other, either order (KQL default 8)."""

    left: Term | Phrase
    right: Term | Phrase
    distance: int = 8


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


@dataclass(frozen=True)
class MatchAll:
    """The empty query, or ``*``: every item."""


Node = Term | Phrase | Keyword | Compare | Range | Near | And | Or | Not | MatchAll
