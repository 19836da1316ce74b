"""Which stored chat a group export belongs to, when several groups share its subject.

A group's identity is its subject (docs/connectors.md, "Message identity"), and nothing in an export tells two
groups of one subject apart. Taken alone, that would make one chat of two groups named "Team", and a message the
same person forwarded to both in the same minute would be kept once in the mailbox of someone in both: a message
lost from the second group's record. So a group export is compared with what the archive already holds under
its subject before it is imported:

- the chats of one subject are numbered slots: slot 0 is the subject's identity itself (what earlier imports
  used), slot *k* the subject with ``\\0k`` appended;
- for each stored slot, the messages the export and the slot both have in the stretch of time they share are
  counted (at most ``SAMPLE`` messages from the start of that stretch); the export joins the slot where they
  agree best, if they agree on more than half (Jaccard index of the two sets of message identities);
- where no stored slot shares any stretch of time with the export, nothing can be doubled or lost either way,
  and the export joins slot 0;
- otherwise the export is another group of the same subject, and gets the first free slot.

Two exports of one group agree on nearly every message of their shared stretch (the differences are each
phone's own system lines and edits); two groups agree on what was forwarded to both, which is rarely half.
The archive answers through ``ChatHistory`` (the store target; an IMAP target cannot be asked, and there the
subject alone decides, a limit docs/connectors.md states). What the running import has produced itself, not yet
delivered, is remembered by ``RunMemory``, so two exports handed in together are compared too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

SAMPLE = 2000          # messages compared per slot: enough to tell, bounded whatever the export's length
MAX_SLOTS = 100        # groups of one subject in one tenant; past it, the last slot is used (never fails)
_MINUTE = timedelta(minutes=1)

__all__ = ["MAX_SLOTS", "SAMPLE", "ChatHistory", "RunMemory", "Sampled", "choose_slot", "slot_id"]


class ChatHistory(Protocol):
    """What the delivery target holds of a chat, in one tenant."""

    def chat_span(self, chat_id: str) -> tuple[datetime, datetime] | None:
        """The first and last sent time of the chat's stored messages; None when it has none."""
        ...

    def chat_message_ids(self, chat_id: str, start: datetime, end: datetime, limit: int) -> set[str]:
        """The distinct Message-IDs of the chat's messages sent in [start, end], at most ``limit``."""
        ...


@dataclass
class _Produced:
    first: datetime
    last: datetime
    ids: list[tuple[datetime, str]] = field(default_factory=list)


class RunMemory:
    """The messages this import has yielded, per chat (at most ``SAMPLE * 4`` remembered per chat)."""

    def __init__(self) -> None:
        self.chats: dict[str, _Produced] = {}

    def add(self, chat_id: str, sent_at: datetime, message_id: str | None = None) -> None:
        """Remember a message of the chat (its id only where same-named chats are to be told apart)."""
        chat = self.chats.get(chat_id)
        if chat is None:
            chat = self.chats[chat_id] = _Produced(sent_at, sent_at)
        chat.first, chat.last = min(chat.first, sent_at), max(chat.last, sent_at)
        if message_id is not None and len(chat.ids) < SAMPLE * 4:
            chat.ids.append((sent_at, message_id))

    def span(self, chat_id: str) -> tuple[datetime, datetime] | None:
        chat = self.chats.get(chat_id)
        return (chat.first, chat.last) if chat else None

    def message_ids(self, chat_id: str, start: datetime, end: datetime) -> set[str]:
        chat = self.chats.get(chat_id)
        return {i for when, i in chat.ids if start <= when <= end} if chat else set()


@dataclass(frozen=True)
class Sampled:
    """One message of the export being placed: its minute, and its Message-IDs were it in a given chat."""

    minute: datetime
    ids: Callable[[str], Iterable[str]]


def slot_id(base_key: str, k: int, chat_id: Callable[[str], str]) -> str:
    return chat_id(base_key if k == 0 else f"{base_key}\0{k}")


def choose_slot(base_key: str, chat_id: Callable[[str], str], history: ChatHistory | None, memory: RunMemory,
                sample: Callable[[list[tuple[datetime, datetime]]], tuple[datetime, datetime, list[list[Sampled]]]]
                ) -> str:
    """The chat id a group export of subject ``base_key`` joins (see the module's docstring).

    ``sample(spans)`` reads the export once and answers its first and last minute and, per span, at most
    ``SAMPLE`` of its messages inside that span (the earliest)."""
    slots: list[tuple[str, tuple[datetime, datetime]]] = []
    for k in range(MAX_SLOTS):
        cid = slot_id(base_key, k, chat_id)
        span = _merged_span(history.chat_span(cid) if history else None, memory.span(cid))
        if span is None:
            break
        slots.append((cid, span))
    else:
        return slots[-1][0]
    if not slots:
        return slot_id(base_key, 0, chat_id)
    first, last, per_slot = sample([span for _, span in slots])
    scores = [_agreement(cid, span, first, last, found, history, memory)
              for (cid, span), found in zip(slots, per_slot, strict=True)]
    scored = [(score, cid) for score, (cid, _) in zip(scores, slots, strict=True) if score is not None]
    if not scored:
        return slots[0][0]          # no stored slot shares any time with the export: nothing to tell apart
    score, best = max(scored, key=lambda pair: pair[0])   # the first of equal scores
    return best if score > 0.5 else slot_id(base_key, len(slots), chat_id)


def _merged_span(a: tuple[datetime, datetime] | None,
                 b: tuple[datetime, datetime] | None) -> tuple[datetime, datetime] | None:
    if a is None or b is None:
        return a or b
    return min(a[0], b[0]), max(a[1], b[1])


def _agreement(cid: str, span: tuple[datetime, datetime], first: datetime, last: datetime, found: list[Sampled],
               history: ChatHistory | None, memory: RunMemory) -> float | None:
    """The Jaccard index of the export's and the slot's messages in the time they share; None when they share
    no time."""
    start, end = max(span[0].replace(second=0, microsecond=0), first), min(span[1], last + _MINUTE)
    if start > end:
        return None
    if len(found) >= SAMPLE:        # the export's sample stops here: compare the same stretch on both sides
        end = min(end, found[-1].minute + _MINUTE)
    ours = [m for m in found if start <= m.minute <= end]
    stored = memory.message_ids(cid, start, end)
    if history is not None:
        stored |= history.chat_message_ids(cid, start, end, SAMPLE * 4)
    if not ours and not stored:
        return None
    matched = sum(1 for m in ours if any(i in stored for i in m.ids(cid)))
    return matched / (len(ours) + len(stored) - matched)
