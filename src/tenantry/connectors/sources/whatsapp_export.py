"""WhatsApp "Export chat" files (.txt or .zip with media) as a connector source.

The export carries local phone time without a zone (the connector says which zone), authors as saved
contact names or numbers, and no e-mail addresses. The exporting user — the file's owner — is a participant
of every message, so every item has at least one mailbox.
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
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
from tenantry.directory.phones import to_e164
from tenantry.protocols.whatsapp import ExportMessage, IssueReason, MessageKind, ParsedExport, read_export

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
}


@dataclass(frozen=True)
class ExportUpload:
    """One export file as handed to the connector."""

    data: bytes
    filename: str
    owner_key: str              # the owner's user id: part of the chat identity, and a copy always goes there
    chat_name: str | None = None


def participant_for(author: str) -> Participant:
    """Authors are names of saved contacts, or numbers ("+49 170 1234567") for unsaved ones."""
    if author.lstrip().startswith("+") and to_e164(author):
        return Participant(phone=author.strip())
    return Participant(name=author)


class WhatsAppExportSource:
    kind = SOURCE

    def __init__(self, uploads: list[ExportUpload], timezone: str = "UTC") -> None:
        self.uploads = uploads
        self.zone = ZoneInfo(timezone)

    def test(self) -> None:
        return None  # files need no credentials

    def items(self, since: datetime | None, until: datetime) -> Iterator[SourceItem | SourceIssue]:
        # Export files are imported whole: the window applies to feeds, not to a file someone handed in.
        for upload in self.uploads:
            yield from self._file_items(upload)

    def _file_items(self, upload: ExportUpload) -> Iterator[SourceItem | SourceIssue]:
        try:
            parsed = read_export(upload.data, upload.filename)
        except Exception as exc:  # noqa: BLE001 - the parser promises not to raise; a bug must still be reported
            yield SourceIssue(SkipReason.UNPARSEABLE, f"{upload.filename}: not readable as an export: {exc}",
                              location=upload.filename)
            return
        chat_name = upload.chat_name or parsed.chat_name or upload.filename
        chat_id = "wa-export-" + hashlib.sha256(f"{upload.owner_key}\0{chat_name}".encode()).hexdigest()[:24]
        for issue in parsed.issues:
            reason = _REASONS.get(issue.reason, SkipReason.NOTICE)
            yield SourceIssue(reason, f"{issue.reason}: {issue.text[:500]}",
                              location=f"{upload.filename} line {issue.line}")
        participants = tuple(dict.fromkeys(
            participant_for(m.author) for m in parsed.messages if m.author is not None))
        occurrences: dict[tuple[str, str | None, str], int] = {}
        for message in parsed.messages:
            key = (message.timestamp.isoformat(), message.author, message.text)
            occurrence = occurrences.get(key, 0)
            occurrences[key] = occurrence + 1
            yield self._item(message, parsed, upload, chat_id, chat_name, participants, occurrence)

    def _item(self, m: ExportMessage, parsed: ParsedExport, upload: ExportUpload, chat_id: str,
              chat_name: str, participants: tuple[Participant, ...], occurrence: int) -> SourceItem | SourceIssue:
        sent_at = m.timestamp.replace(tzinfo=self.zone).astimezone(UTC)
        digest = hashlib.sha256(f"{m.author}\0{m.text}".encode()).hexdigest()[:16]
        source_id = f"{m.timestamp.isoformat()}|{digest}|{occurrence}"
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
            attachments = (Attachment(name, ctype, data, len(data) if data is not None else 0),)
        return SourceItem(
            source=SOURCE, source_id=source_id, chat_id=chat_id, chat_name=chat_name, kind=kind,
            sent_at=sent_at, sender=sender, participants=participants, text=m.text, attachments=attachments,
            call=call, edited=m.edited, location=location, owner_user_ids=(upload.owner_key,),
        )
