"""A source item as an e-mail message (seed 000: every item becomes a message in the mailbox).

From is the sender, To every other participant: a mapped user's own address, or ``+E164@<outsider domain>``
for people outside the directory. The Message-ID is derived from the source's id (for an export, the chat's and the
message's identity, never the exporter's), so importing the same item twice yields the same message and the
mailbox keeps one copy. ``X-Tenantry-*`` headers carry what an
e-mail has no field for (kind, chat, the sender's number), so search and eDiscovery can use them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

from tenantry.archive.service import MISSING_MEDIA_NOTE, IndexFields, participant_text
from tenantry.connectors.items import ItemKind, Participant, SourceItem
from tenantry.protocols.mime import Address, ChatMail, Part, message_id_for, render

_SLUG = re.compile(r"[^a-z0-9]+")

SUBJECTS = {
    ItemKind.CHAT: "WhatsApp message",
    ItemKind.ATTACHMENT: "WhatsApp attachment",
    ItemKind.DELETED: "WhatsApp message deleted",
    ItemKind.SYSTEM: "WhatsApp event",
}

Resolve = Callable[[Participant], str | None]


def outsider_address(participant: Participant, domain: str) -> str:
    """``+4917012345678@domain`` for a number; a stable name-based local part otherwise."""
    if participant.phone:
        digits = re.sub(r"[^0-9]", "", participant.phone)
        if digits:
            return f"+{digits}@{domain}"
    label = participant.name or participant.email or "unknown"
    slug = _SLUG.sub(".", label.casefold()).strip(".")[:40] or "contact"
    return f"{slug}.{hashlib.sha256(label.encode()).hexdigest()[:8]}@{domain}"


def _duration(seconds: int) -> str:
    hours, rest = divmod(max(seconds, 0), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def subject_for(item: SourceItem) -> str:
    chat = item.chat_name or "chat"
    if item.kind is ItemKind.CALL and item.call:
        media = "video" if item.call.video else "voice"
        other = item.sender.label() if item.sender else "unknown"
        if item.call.missed:
            return f"Missed {media} call from {other}"
        return f"{media.capitalize()} call with {other}"
    return f"{SUBJECTS[item.kind]} in {chat}"


def body_for(item: SourceItem) -> str:
    if item.kind is ItemKind.CALL and item.call:
        call = item.call
        lines = [
            f"{'Video' if call.video else 'Voice'} call, {call.direction}",
            "Missed" if call.missed else f"Duration: {_duration(call.duration_seconds)}",
        ]
        return "\n".join(lines) + ("\n\n" + item.text if item.text else "")
    if item.kind is ItemKind.DELETED:
        note = "This message was deleted by its sender."
        if item.original_text is not None:
            return f"{note}\nOriginal text, as captured before deletion:\n\n{item.original_text}"
        return note + "\nThe source did not capture its original text."
    text = item.text
    missing = [a.filename for a in item.attachments if a.data is None]
    if missing:
        text += ("\n\n" if text else "") + "\n".join(
            f"{MISSING_MEDIA_NOTE}{name}]" for name in missing)
    return text


def to_mail(item: SourceItem, resolve: Resolve, outsider_domain: str) -> ChatMail:
    """Build the message; ``resolve`` gives a participant's mailbox address, or None for an outsider."""

    def address(p: Participant) -> Address:
        return Address(p.name or p.phone, resolve(p) or outsider_address(p, outsider_domain))

    sender = address(item.sender) if item.sender else Address("WhatsApp", f"system@{outsider_domain}")
    others: list[Address] = []
    seen = {sender.addr.lower()}
    for p in item.participants:
        a = address(p)
        if a.addr.lower() not in seen:
            seen.add(a.addr.lower())
            others.append(a)
    headers: list[tuple[str, str]] = [
        ("X-Tenantry-Source", item.source),
        ("X-Tenantry-Kind", item.kind.value),
        ("X-Tenantry-Chat-Id", item.chat_id),
        ("X-Tenantry-Source-Id", item.source_id),
    ]
    if item.chat_name:
        headers.append(("X-Tenantry-Chat-Name", item.chat_name))
    if item.sender and item.sender.phone:
        headers.append(("X-Tenantry-Sender-Number", item.sender.phone))
    if item.edited:
        headers.append(("X-Tenantry-Edited", "yes"))
    if item.call:
        headers.append(("X-Tenantry-Call", f"{item.call.direction}; duration={item.call.duration_seconds}; "
                                           f"missed={'yes' if item.call.missed else 'no'}; "
                                           f"video={'yes' if item.call.video else 'no'}"))
    if item.location:
        headers.append(("X-Tenantry-Location", item.location))
    if item.completes:
        # The same message archived without its file has this Message-ID (docs/connectors.md, "Message identity").
        headers.append(("X-Tenantry-Completes", f"<{item.completes}>"))
    parts = tuple(Part(a.filename, a.content_type, a.data) for a in item.attachments if a.data is not None)
    return ChatMail(
        message_id=message_id_for(item.source, item.chat_id, item.source_id),
        date=item.sent_at,
        sender=sender,
        to=tuple(others) or (sender,),
        subject=subject_for(item),
        body=body_for(item),
        thread_id=message_id_for(item.source, "chat", item.chat_id),
        headers=tuple(headers),
        parts=parts,
    )


def render_item(item: SourceItem, resolve: Resolve, outsider_domain: str) -> tuple[ChatMail, bytes]:
    mail = to_mail(item, resolve, outsider_domain)
    return mail, render(mail)


def index_fields(item: SourceItem, mail: ChatMail, resolve: Resolve, outsider_domain: str) -> IndexFields:
    """What the search index needs, from the item itself (numbers in every spelling, names, addresses)."""

    def person(p: Participant) -> str:
        return participant_text(p.name or "", resolve(p) or outsider_address(p, outsider_domain), p.phone or "")

    sender = person(item.sender) if item.sender else mail.sender.addr
    everyone = [person(p) for p in item.participants]
    return IndexFields(
        sender=sender,
        to=" ".join(participant_text(a.name or "", a.addr) for a in mail.to),
        participants=" ".join(dict.fromkeys([sender, *everyone])),
        subject=mail.subject,
        body=mail.body,
        attachment_names=" ".join(a.filename for a in item.attachments),
        chat=" ".join(x for x in (item.chat_id, item.chat_name or "") if x),
        # An attachment means a file in the message; one the source only named (WhatsApp's "<Media omitted>",
        # a file missing from the export) is hasmissingmedia, not hasattachment (issue #10 item 7).
        has_attachment=any(a.data is not None for a in item.attachments),
        has_missing_media=any(a.data is None for a in item.attachments),
    )
