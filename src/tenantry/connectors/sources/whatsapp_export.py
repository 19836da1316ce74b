"""WhatsApp "Export chat" files (.txt or .zip with media) as a connector source.

The export carries local phone time without a zone (the connector says which zone), authors as saved
contact names or numbers, and no e-mail addresses. The exporting user — the file's owner — is a participant
of every message, so every item has at least one mailbox.

A message's identity (its Message-ID) is the chat's and the message's own, never the exporter's, so that two
members' exports of one chat meet in the mailboxes (issue #10, item 5; docs/connectors.md "Message identity").
"""

from __future__ import annotations

import hashlib
import io
import mimetypes
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tenantry.connectors.items import (
    Attachment,
    CallDirection,
    CallInfo,
    ItemKind,
    Participant,
    SkipReason,
    SourceIssue,
    SourceItem,
)
from tenantry.connectors.mapping import name_key, unresolved_person_key
from tenantry.connectors.models import BuiltinSource
from tenantry.connectors.sources import ExportUpload, PersonKeys, SourceSpec
from tenantry.connectors.sources.chat_slots import SAMPLE, ChatHistory, RunMemory, Sampled, choose_slot
from tenantry.core.egress import EgressPolicy
from tenantry.core.errors import Invalid
from tenantry.protocols.mime import message_id_for
from tenantry.protocols.phones import phone_key
from tenantry.protocols.whatsapp import (
    ExportIssue,
    ExportLimits,
    ExportMessage,
    ExportStream,
    IssueReason,
    MessageKind,
    open_export,
)

SOURCE = BuiltinSource.WHATSAPP_EXPORT

# The parser's issues, as the run report counts them: a line in no message, or a file that could not be read
# at all, is an item not imported; the rest are notes on lines that were kept (docs/connectors.md).
_REASONS = {
    IssueReason.UNPARSED_LINE: SkipReason.UNPARSEABLE,
    IssueReason.UNREADABLE_ZIP: SkipReason.UNPARSEABLE,
    IssueReason.NO_CHAT_FILE: SkipReason.UNPARSEABLE,
    IssueReason.MISSING_MEDIA: SkipReason.MEDIA_MISSING,
    IssueReason.UNREADABLE_MEDIA: SkipReason.MEDIA_MISSING,
    IssueReason.UNREFERENCED_MEDIA: SkipReason.UNREFERENCED_MEDIA,
    # The safety limits (issue #9): a refused zip or media file is not imported, and says which limit.
    IssueReason.ZIP_REFUSED: SkipReason.REFUSED,
    IssueReason.MEDIA_REFUSED: SkipReason.REFUSED,
}
# Reported otherwise: a message over the limit becomes a too_large entry of its own (with its size).
_NOT_REPEATED = (IssueReason.MESSAGE_TOO_LONG,)
# Identical messages (same minute, author and text) are told apart by their occurrence; the count is kept
# for the last hours of the timeline only, so a long chat does not keep every message in memory.
_OCCURRENCE_WINDOW = timedelta(hours=3)
_MEDIA = (MessageKind.ATTACHMENT, MessageKind.MEDIA_OMITTED)

def unresolved_keys(people: Sequence[Participant]) -> dict[Participant, str]:
    """Who participants are with no mapping at all: their number, else their name as written."""
    return {p: unresolved_person_key(p) for p in people}


def participant_for(author: str) -> Participant:
    """Authors are names of saved contacts, or numbers ("+49 170 1234567") for unsaved ones — also numbers
    phonenumbers calls impossible ("+1 123 456 789"), which still map by their digits."""
    if author.lstrip().startswith("+") and phone_key(author):
        return Participant(phone=author.strip())
    return Participant(name=author)


@dataclass(frozen=True)
class _Chat:
    """Who a chat is, decided once per export file (docs/connectors.md, "Message identity").

    ``id`` is the chat's identity with the people the mapping resolved, ``unresolved_id`` the same with no
    mapping (what it was before the mapping grew), ``legacy_id`` the exporter's own chat id of before issue #10
    item 5. In a 1:1 chat, ``owner_author`` is the author who is the exporter.
    """

    name: str
    id: str
    unresolved_id: str
    legacy_id: str
    owner_key: str
    owner_author: str | None
    keys: dict[str, str]            # author as written → person key, with the mapping
    unresolved: dict[str, str]      # … and without it
    person_keys: PersonKeys
    group_key: str | None = None    # a group's subject key: the chat may be one of several of that subject

    def author_key(self, author: str | None, *, resolved: bool = True) -> str:
        if author is None:
            return "system"
        if self.owner_author is not None and name_key(author) == name_key(self.owner_author):
            return f"user:{self.owner_key}"
        keys = self.keys if resolved else self.unresolved
        key = keys.get(author)
        if key is None:  # an author past the parser's list of names (a chat has a handful)
            p = participant_for(author)
            key = keys[author] = (self.person_keys([p]) if resolved else unresolved_keys([p]))[p]
        return key


def _chat_id(key: str) -> str:
    return "wa-chat-" + hashlib.sha256(key.encode()).hexdigest()[:24]


def _chat(upload: ExportUpload, stream: ExportStream, person_keys: PersonKeys) -> _Chat:
    """Decide the chat's identity: a 1:1 chat is its two people, a group its subject, a chat of no known name
    its exporter's own (docs/connectors.md)."""
    named = upload.chat_name or stream.chat_name
    name = named or upload.filename
    legacy_id = "wa-export-" + hashlib.sha256(f"{upload.owner_key}\0{name}".encode()).hexdigest()[:24]
    people = {a: participant_for(a) for a in stream.authors}
    found = person_keys(list(dict.fromkeys(people.values()))) if people else {}
    keys = {a: found[p] for a, p in people.items()}
    unresolved = {a: unresolved_person_key(p) for a, p in people.items()}
    owner = f"user:{upload.owner_key}"
    owner_author: str | None = None
    if not named:
        # Nothing says which chat this is: two such files are never taken for one (a double is possible,
        # two chats made one is not).
        key = unresolved_key = f"exporter\0{upload.owner_key}\0{upload.filename}"
    else:
        by_key = {name_key(a): a for a in stream.authors}
        other = by_key.get(name_key(named))
        if other is not None and len(by_key) <= 2:
            # WhatsApp names a 1:1 chat after the other person, as the exporter's phone writes them, so a chat
            # named after one of its (at most two) authors is a 1:1 chat and its other author is the exporter.
            owner_author = next((a for k, a in by_key.items() if k != name_key(named)), None)
            key = "direct\0" + "\0".join(sorted({owner, keys[other]}))
            unresolved_key = "direct\0" + "\0".join(sorted({owner, unresolved[other]}))
        else:
            key = unresolved_key = "group\0" + name_key(named)
            return _Chat(name, _chat_id(key), _chat_id(key), legacy_id, upload.owner_key, None, keys, unresolved,
                         person_keys, key)
    return _Chat(name, _chat_id(key), _chat_id(unresolved_key), legacy_id, upload.owner_key, owner_author, keys,
                 unresolved, person_keys)


def _content(m: ExportMessage) -> str:
    """What a message says, as every phone writes it: the words each phone writes its own way (its language,
    "You deleted" or "This message was deleted", the media marker, the file's name on that phone) are left out."""
    if m.kind is MessageKind.MEDIA_OMITTED:
        kind, text = "media", m.text.partition("\n")[2]   # the caption follows the marker line
    elif m.kind is MessageKind.ATTACHMENT:
        kind, text = "media", m.text
    elif m.kind in (MessageKind.DELETED, MessageKind.MISSED_VOICE_CALL, MessageKind.MISSED_VIDEO_CALL):
        kind, text = m.kind.value, ""
    else:
        kind, text = m.kind.value, m.text
    return f"{kind}\0{unicodedata.normalize('NFC', text).strip()}"


class _Ordinals:
    """The occurrence of each (time, content) key, so exact repeats stay apart; kept for the last hours only."""

    def __init__(self) -> None:
        self.seen: dict[tuple[datetime, str], int] = {}
        self.newest: datetime | None = None
        self.prune_at = 10_000

    def next(self, when: datetime, key: str) -> int:
        n = self.seen.get((when, key), 0)
        self.seen[(when, key)] = n + 1
        if self.newest is None or when > self.newest:
            self.newest = when
            if len(self.seen) > self.prune_at:
                cutoff = when - _OCCURRENCE_WINDOW
                self.seen = {k: v for k, v in self.seen.items() if k[0] >= cutoff}
                self.prune_at = max(10_000, 2 * len(self.seen))
        return n

    def source_id(self, minute: datetime, what: str) -> str:
        """``<UTC minute>|<digest of author and content>|<occurrence>``."""
        digest = hashlib.sha256(what.encode()).hexdigest()[:16]
        return f"{minute:%Y-%m-%dT%H:%MZ}|{digest}|{self.next(minute, digest)}"


_SLACK = timedelta(minutes=1)


def _candidate_ids(source_id: str, other_id: str, media: bool) -> Callable[[str], list[str]]:
    """The Message-IDs a message would have in a chat: with and without the mapping, with and without its file."""
    suffixes = ("", "|file") if media else ("",)
    return lambda chat_id: [message_id_for(SOURCE, chat_id, f"{i}{s}") for i in (source_id, other_id)
                            for s in suffixes]


class WhatsAppExportSource:
    kind: str = SOURCE

    def __init__(self, uploads: list[ExportUpload], timezone: str = "UTC",
                 limits: ExportLimits | None = None, person_keys: PersonKeys | None = None,
                 history: ChatHistory | None = None) -> None:
        self.uploads = uploads
        self.zone = ZoneInfo(timezone)
        self.limits = limits or ExportLimits()
        # The run's user mapping says who an author is; without one, people are who their names say.
        self.person_keys = person_keys or unresolved_keys
        # What the target holds of each chat, and what this import has produced: which of several groups of one
        # subject an export belongs to (connectors/sources/chat_slots.py).
        self.history = history
        self.memory = RunMemory()

    def test(self) -> None:
        return None  # files need no credentials

    def close(self) -> None:
        return None  # each file is closed when it has been read

    def items(self, since: datetime | None, until: datetime) -> Iterator[SourceItem | SourceIssue]:
        # Export files are imported whole: the window applies to feeds, not to a file someone handed in.
        for upload in self.uploads:
            yield from self._file_items(upload)

    def _file_items(self, upload: ExportUpload) -> Iterator[SourceItem | SourceIssue]:
        data = upload.data

        def open_bytes() -> IO[bytes]:
            return data.open("rb") if isinstance(data, Path) else io.BytesIO(data)

        try:
            stream = open_export(open_bytes, upload.filename, self.limits)
        except Exception as exc:  # noqa: BLE001 - the parser promises not to raise; a bug must still be reported
            yield SourceIssue(SkipReason.UNPARSEABLE, f"{upload.filename}: not readable as an export: {exc}",
                              location=upload.filename)
            return
        try:
            yield from self._stream_items(upload, stream, open_bytes)
        finally:
            stream.close()

    def _place(self, upload: ExportUpload, chat: _Chat, open_bytes: Callable[[], IO[bytes]]) -> _Chat:
        """The chat a group export joins among the groups of its subject (chat_slots.choose_slot)."""
        if chat.group_key is None:
            return chat

        def sample(spans: list[tuple[datetime, datetime]]) -> tuple[datetime, datetime, list[list[Sampled]]]:
            per_span: list[list[Sampled]] = [[] for _ in spans]
            first = last = None
            resolved, unresolved = _Ordinals(), _Ordinals()
            stream = open_export(open_bytes, upload.filename, self.limits)
            try:
                for entry in stream.entries():
                    if isinstance(entry, ExportIssue) or entry.oversize:
                        continue
                    minute, source_id, other_id = self._identity(chat, entry, resolved, unresolved)[1:]
                    first = minute if first is None else min(first, minute)
                    last = minute if last is None else max(last, minute)
                    for span, found in zip(spans, per_span, strict=True):
                        if len(found) < SAMPLE and span[0] - _SLACK <= minute <= span[1]:
                            found.append(Sampled(minute, _candidate_ids(source_id, other_id, entry.kind in _MEDIA)))
            finally:
                stream.close()
            if first is None or last is None:
                far = datetime.max.replace(tzinfo=UTC)
                return far, far, per_span
            return first, last, per_span

        chosen = choose_slot(chat.group_key, _chat_id, self.history, self.memory, sample)
        return chat if chosen == chat.id else replace(chat, id=chosen, unresolved_id=chosen)

    def _holds(self, chat_id: str) -> bool:
        """Whether messages of ``chat_id`` may be archived already (True where the target cannot be asked)."""
        return (self.history is None or self.memory.span(chat_id) is not None
                or self.history.chat_span(chat_id) is not None)

    def _identity(self, chat: _Chat, message: ExportMessage, resolved: _Ordinals,
                  unresolved: _Ordinals) -> tuple[datetime, datetime, str, str]:
        """The message's sent time, its minute, and its source ids with and without the mapping."""
        sent_at = message.timestamp.replace(tzinfo=self.zone).astimezone(UTC)
        # Minutes: Android writes no seconds, iOS does, and both may export one chat.
        minute = sent_at.replace(second=0, microsecond=0)
        content = _content(message)
        source_id = resolved.source_id(minute, f"{chat.author_key(message.author)}\0{content}")
        other_id = unresolved.source_id(minute, f"{chat.author_key(message.author, resolved=False)}\0{content}")
        return sent_at, minute, source_id, other_id

    def _stream_items(self, upload: ExportUpload, stream: ExportStream,
                      open_bytes: Callable[[], IO[bytes]]) -> Iterator[SourceItem | SourceIssue]:
        chat = self._place(upload, _chat(upload, stream, self.person_keys), open_bytes)
        participants = tuple(dict.fromkeys(participant_for(a) for a in stream.authors))
        resolved = _Ordinals()
        unresolved = _Ordinals()
        legacy = _Ordinals()
        # Other ids a message may be archived under are looked for only where its chat has messages — archived
        # (the old id: under the exporter's old chat), or produced earlier in this run; an IMAP target cannot be
        # asked, so there they always are. A new chat's import then costs no look-up of ids that cannot exist.
        with_legacy = self._holds(chat.legacy_id)
        with_aliases = self._holds(chat.id) or (chat.unresolved_id != chat.id and self._holds(chat.unresolved_id))
        for entry in stream.entries():
            if isinstance(entry, ExportIssue):
                if entry.reason not in _NOT_REPEATED:
                    yield SourceIssue(_REASONS.get(entry.reason, SkipReason.NOTICE),
                                      f"{entry.reason}: {entry.text[:500]}",
                                      location=f"{upload.filename} line {entry.line}")
                continue
            message = entry
            sent_at, minute, source_id, other_id = self._identity(chat, message, resolved, unresolved)
            # Before issue #10 item 5 an export's messages were its exporter's own: local time, the author as the
            # exporter's phone wrote it. A file archived then and handed in again is found by that id.
            old_ids: tuple[str, ...] = ()
            if with_legacy:
                old_digest = hashlib.sha256(f"{message.author}\0{message.text}".encode()).hexdigest()[:16]
                old_ids = (message_id_for(SOURCE, chat.legacy_id, f"{message.timestamp.isoformat()}|{old_digest}|"
                                          f"{legacy.next(message.timestamp, old_digest)}"),)
            if message.oversize:
                yield SourceIssue(SkipReason.TOO_LARGE,
                                  f"the text has {message.oversize} characters, over the "
                                  f"{self.limits.max_text_chars}-character limit; not read further",
                                  source_id, f"{upload.filename} line {message.line}", message.oversize,
                                  ItemKind.CHAT)
                continue
            # The same message with its file (an export "with media") and without it (a phone that left the
            # media out) are one message: the file's version is the fuller one, so the version without the file
            # is already archived where the file's is, and not the other way round (the archive never rewrites
            # a stored message: the file's version is added beside it and says which message it completes).
            ids = [(chat.id, source_id), (chat.unresolved_id, other_id)]
            completes = None
            if message.kind in _MEDIA:
                if message.attachment_data is not None:
                    completes = message_id_for(SOURCE, chat.id, source_id)
                    ids = [(c, f"{i}|file") for c, i in ids]
                else:
                    ids += [(c, f"{i}|file") for c, i in ids]
            others = dict.fromkeys(ids[1:]) if with_aliases else {}
            others.pop(ids[0], None)   # the same with and without the mapping: no alias needed
            aliases = (*(message_id_for(SOURCE, c, i) for c, i in others), *old_ids)
            # Only a group can be one of several of its name (chat_slots): only its ids are remembered.
            self.memory.add(chat.id, minute,
                            message_id_for(SOURCE, chat.id, ids[0][1]) if chat.group_key is not None else None)
            yield self._item(message, upload, chat, participants, ids[0][1], sent_at, aliases, completes)

    def _item(self, m: ExportMessage, upload: ExportUpload, chat: _Chat, participants: tuple[Participant, ...],
              source_id: str, sent_at: datetime, aliases: tuple[str, ...], completes: str | None) -> SourceItem:
        sender = participant_for(m.author) if m.author is not None else None
        location = f"{upload.filename} line {m.line}"
        kind = ItemKind.CHAT
        attachments: tuple[Attachment, ...] = ()
        call = None
        if m.kind is MessageKind.SYSTEM:
            kind = ItemKind.SYSTEM
        elif m.kind is MessageKind.DELETED:
            kind = ItemKind.DELETED
        elif m.kind in (MessageKind.MISSED_VOICE_CALL, MessageKind.MISSED_VIDEO_CALL):
            kind = ItemKind.CALL
            call = CallInfo(CallDirection.INCOMING, 0, True, m.kind is MessageKind.MISSED_VIDEO_CALL)
        elif m.kind in (MessageKind.ATTACHMENT, MessageKind.MEDIA_OMITTED):
            kind = ItemKind.ATTACHMENT
            name = m.attachment_name or "media-omitted"
            ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
            data = m.attachment_data
            # A file not read for its size keeps the size from the zip header: the item rule skips it.
            size = len(data) if data is not None else (m.attachment_size or 0)
            attachments = (Attachment(name, ctype, data, size),)
        return SourceItem(
            source=SOURCE, source_id=source_id, chat_id=chat.id, chat_name=chat.name, kind=kind,
            sent_at=sent_at, sender=sender, participants=participants, text=m.text, attachments=attachments,
            call=call, edited=m.edited, location=location, owner_user_ids=(upload.owner_key,), aliases=aliases,
            completes=completes,
        )


class WhatsAppExportKind:
    """The ``whatsapp-export`` kind: files handed in, read whole, in the connector's time zone."""

    name: str = SOURCE
    takes_files = True
    windowed = False    # a file is imported whole, whatever its messages' times

    # dict: the kind's settings (timezone), saved as JSON with the connector
    def check(self, settings: dict[str, Any], password: str | None, egress: EgressPolicy) -> dict[str, Any]:
        try:
            ZoneInfo(str(settings.get("timezone", "UTC")))
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise Invalid(f"unknown time zone {settings.get('timezone')!r}") from exc
        return settings

    def build(self, spec: SourceSpec) -> WhatsAppExportSource:
        # The connector's item rule (seed 000: 10 MB) also bounds what the reader takes in: a larger media
        # file is not read (its size comes from the zip header), a longer text is not kept.
        limits = replace(spec.export_limits, max_media_bytes=spec.max_item_bytes,
                         max_text_chars=spec.max_item_bytes)
        # The run's mapping says who each author is: a message's identity names people, not how one phone
        # wrote them (issue #10, item 5). What the target holds of a chat tells same-named groups apart
        # (chat_slots.py); a target that cannot be asked (IMAP) leaves it to a group's subject alone.
        return WhatsAppExportSource(list(spec.uploads), str(spec.settings.get("timezone", "UTC")), limits,
                                    spec.person_keys, spec.history)


KIND = WhatsAppExportKind()
