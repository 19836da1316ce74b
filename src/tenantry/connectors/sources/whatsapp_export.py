"""WhatsApp "Export chat" files (.txt or .zip with media) as a connector source.

The export carries local phone time without a zone (the connector says which zone), authors as saved
contact names or numbers, and no e-mail addresses. The exporting user — the file's owner — is a participant
of every message, so every item has at least one mailbox.
"""

from __future__ import annotations

import hashlib
import io
import mimetypes
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO
from zoneinfo import ZoneInfo

from tenantry.connectors.items import (
    Attachment,
    CallInfo,
    ItemKind,
    Participant,
    SkipReason,
    SourceIssue,
    SourceItem,
)
from tenantry.directory.phones import phone_key
from tenantry.protocols.whatsapp import (
    ExportIssue,
    ExportLimits,
    ExportMessage,
    ExportStream,
    IssueReason,
    MessageKind,
    open_export,
)

SOURCE = "whatsapp-export"

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


@dataclass(frozen=True)
class ExportUpload:
    """One export file as handed to the connector: its bytes, or (as the service keeps them) a file's path."""

    data: bytes | Path
    filename: str
    owner_key: str              # the owner's user id: part of the chat identity, and a copy always goes there
    chat_name: str | None = None


def participant_for(author: str) -> Participant:
    """Authors are names of saved contacts, or numbers ("+49 170 1234567") for unsaved ones — also numbers
    phonenumbers calls impossible ("+1 123 456 789"), which still map by their digits."""
    if author.lstrip().startswith("+") and phone_key(author):
        return Participant(phone=author.strip())
    return Participant(name=author)


class WhatsAppExportSource:
    kind = SOURCE

    def __init__(self, uploads: list[ExportUpload], timezone: str = "UTC",
                 limits: ExportLimits | None = None) -> None:
        self.uploads = uploads
        self.zone = ZoneInfo(timezone)
        self.limits = limits or ExportLimits()

    def test(self) -> None:
        return None  # files need no credentials

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
            yield from self._stream_items(upload, stream)
        finally:
            stream.close()

    def _stream_items(self, upload: ExportUpload, stream: ExportStream) -> Iterator[SourceItem | SourceIssue]:
        chat_name = upload.chat_name or stream.chat_name or upload.filename
        chat_id = "wa-export-" + hashlib.sha256(f"{upload.owner_key}\0{chat_name}".encode()).hexdigest()[:24]
        participants = tuple(dict.fromkeys(participant_for(a) for a in stream.authors))
        occurrences: dict[tuple[datetime, str], int] = {}
        newest: datetime | None = None
        prune_at = 10_000
        for entry in stream.entries():
            if isinstance(entry, ExportIssue):
                if entry.reason not in _NOT_REPEATED:
                    yield SourceIssue(_REASONS.get(entry.reason, SkipReason.NOTICE),
                                      f"{entry.reason}: {entry.text[:500]}",
                                      location=f"{upload.filename} line {entry.line}")
                continue
            message = entry
            digest = hashlib.sha256(f"{message.author}\0{message.text}".encode()).hexdigest()[:16]
            key = (message.timestamp, digest)
            occurrence = occurrences.get(key, 0)
            occurrences[key] = occurrence + 1
            if newest is None or message.timestamp > newest:
                newest = message.timestamp
                if len(occurrences) > prune_at:
                    cutoff = newest - _OCCURRENCE_WINDOW
                    occurrences = {k: v for k, v in occurrences.items() if k[0] >= cutoff}
                    prune_at = max(10_000, 2 * len(occurrences))
            source_id = f"{message.timestamp.isoformat()}|{digest}|{occurrence}"
            if message.oversize:
                yield SourceIssue(SkipReason.TOO_LARGE,
                                  f"the text has {message.oversize} characters, over the "
                                  f"{self.limits.max_text_chars}-character limit; not read further",
                                  source_id, f"{upload.filename} line {message.line}", message.oversize,
                                  ItemKind.CHAT.value)
                continue
            yield self._item(message, upload, chat_id, chat_name, participants, source_id)

    def _item(self, m: ExportMessage, upload: ExportUpload, chat_id: str, chat_name: str,
              participants: tuple[Participant, ...], source_id: str) -> SourceItem:
        sent_at = m.timestamp.replace(tzinfo=self.zone).astimezone(UTC)
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
            call = CallInfo("incoming", 0, True, m.kind is MessageKind.MISSED_VIDEO_CALL)
        elif m.kind in (MessageKind.ATTACHMENT, MessageKind.MEDIA_OMITTED):
            kind = ItemKind.ATTACHMENT
            name = m.attachment_name or "media-omitted"
            ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
            data = m.attachment_data
            # A file not read for its size keeps the size from the zip header: the item rule skips it.
            size = len(data) if data is not None else (m.attachment_size or 0)
            attachments = (Attachment(name, ctype, data, size),)
        return SourceItem(
            source=SOURCE, source_id=source_id, chat_id=chat_id, chat_name=chat_name, kind=kind,
            sent_at=sent_at, sender=sender, participants=participants, text=m.text, attachments=attachments,
            call=call, edited=m.edited, location=location, owner_user_ids=(upload.owner_key,),
        )
