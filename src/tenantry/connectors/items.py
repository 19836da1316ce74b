"""The source-neutral item every connector source yields, and the issues it reports instead of dropping.

Sources differ (a phone's export file, an archiver's JSON feed); after them, mapping, conversion and delivery
see only these types.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

# C0 and C1 controls and DEL (category Cc), and the bidi embeddings, overrides and isolates that reorder a line
# on screen: a report quotes the source's bytes, and these would act on the terminal or page showing it.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` with control characters escaped (``\\x1b``, ``\\u202e``), for reports and terminals."""
    return _UNPRINTABLE.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}",
                            text)


MAX_UNMAPPED = 1000  # unmapped participants a run report lists by name; a chat export has a handful


class ItemKind(StrEnum):
    CHAT = "chat"
    CALL = "call"
    ATTACHMENT = "attachment"
    DELETED = "deleted"
    SYSTEM = "system"


class CallDirection(StrEnum):
    INCOMING = "incoming"
    OUTGOING = "outgoing"


class SkipReason(StrEnum):
    NO_USER = "no_user"            # no participant maps to a user (seed 000: "not imported")
    TOO_LARGE = "too_large"        # over the item size limit (seed 000: 10 MB)
    UNPARSEABLE = "unparseable"    # the source had something we could not read
    UNREFERENCED_MEDIA = "unreferenced_media"  # a file in an export that no message names
    REFUSED = "refused"            # over a safety limit of the reader (zip bomb, too many members; issue #9)
    # The next two are notes on items that *were* imported: reported, not counted as skipped.
    MEDIA_MISSING = "media_missing"  # the message names a file the export does not contain
    NOTICE = "notice"              # something odd the reader of the report should know (a doubtful line kept)

    @property
    def skips(self) -> bool:
        """True when the issue stands for something not imported."""
        return self not in (SkipReason.MEDIA_MISSING, SkipReason.NOTICE)


@dataclass(frozen=True)
class Participant:
    phone: str | None = None   # as given by the source
    name: str | None = None
    email: str | None = None

    def label(self) -> str:
        return self.name or self.phone or self.email or "unknown"


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes | None         # None: the source named the file but did not include it
    size: int


@dataclass(frozen=True)
class CallInfo:
    direction: CallDirection
    duration_seconds: int
    missed: bool
    video: bool


@dataclass(frozen=True)
class SourceItem:
    source: str                # the source kind's name (models.BuiltinSource, or a registered kind's)
    source_id: str             # stable within the source: the Message-ID is derived from it
    chat_id: str
    chat_name: str | None
    kind: ItemKind
    sent_at: datetime          # aware, UTC
    sender: Participant | None  # None for system events
    participants: tuple[Participant, ...]
    text: str = ""
    attachments: tuple[Attachment, ...] = ()
    call: CallInfo | None = None
    edited: bool = False
    original_text: str | None = None   # a deleted message's text, when the archiver captured it
    location: str | None = None        # where in the source: "file.zip line 42", "feed page 3"
    owner_user_ids: tuple[str, ...] = ()  # users who get a copy whatever the mapping (an export's owner)
    # Other Message-IDs under which this same item may already be archived: a mailbox holding any of them already
    # has it (an earlier identity scheme, the mapping as it was, the item's version with its file).
    aliases: tuple[str, ...] = ()
    # The Message-ID of this same message without its file, on an item that carries the file (issue #10 item 5).
    completes: str | None = None

    @property
    def approximate_size(self) -> int:
        return len(self.text.encode()) + sum(a.size for a in self.attachments)


@dataclass(frozen=True)
class SourceIssue:
    """Something in the source that is not an item, or an item that cannot be imported: always reported."""

    reason: SkipReason
    detail: str
    source_id: str | None = None
    location: str | None = None
    size: int | None = None
    kind: ItemKind | None = None


@dataclass
class Unmapped:
    """A participant who maps to no user, the messages they sent in the run, and why each rule failed."""

    participant: Participant
    rule: str
    messages: int = 0

    def as_dict(self) -> dict[str, Any]:  # dict: written as JSON into the run's saved counts
        p = self.participant
        return {"participant": p.label(), "phone": p.phone, "name": p.name, "email": p.email,
                "messages": self.messages, "rule": self.rule}


@dataclass
class RunCounts:
    seen: int = 0
    imported: int = 0                  # items delivered to at least one mailbox (or already there)
    copies: int = 0                    # mailbox copies written now
    duplicates: int = 0                # mailbox copies that were already there
    # Items (of ``imported``) every copy of which was already in its mailbox: the run added nothing for them,
    # as when a second member's export of a chat repeats what the first brought (issue #10, item 5).
    already_archived: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    by_kind: dict[str, int] = field(default_factory=dict)
    # Participants no mapping rule found a user for (issue #10, item 2). At most MAX_UNMAPPED are listed; the
    # messages sent by any further ones are counted in unmapped_not_listed.
    unmapped: dict[Participant, Unmapped] = field(default_factory=dict)
    unmapped_not_listed: int = 0
    # Participants mapped through a number that is not a valid one, by its digits: noted once per run.
    by_digits: set[str] = field(default_factory=set)

    def note_unmapped(self, p: Participant, sent: bool, rule: Callable[[], str]) -> None:
        """Record a participant of an item whom no rule mapped; ``sent``: they sent the item."""
        entry = self.unmapped.get(p)
        if entry is None:
            if len(self.unmapped) >= MAX_UNMAPPED:
                self.unmapped_not_listed += int(sent)
                return
            entry = self.unmapped[p] = Unmapped(p, rule())
        entry.messages += int(sent)

    def skip(self, reason: SkipReason) -> None:
        self.skipped[reason.value] = self.skipped.get(reason.value, 0) + 1
