"""What trust unlocks (issue #13 item 6, the seed's success checks): a partner that passed the gate
(``trust.gate``) writes into users' mailboxes, each action needing a role its linked account holds directly.

- **ArchiveApplication**: deposit an archived conversation (an RFC 5322 message) into the user's
  ``Recoverable Items/Purges`` — where Skype for Business puts archived conversations so that holds and
  eDiscovery keep and find them. The item is a stored item like any other (not a deleted one): holds and
  retention policies apply to it, content searches leave Purges out unless asked, eDiscovery searches include it.
- **UserApplication**: write a conversation into the user's ``Conversation History`` folder; set and read the
  user's voicemail greeting.

A partner acting for one user (an app+user token) acts in that user's mailbox only. Wrong role → 403 naming the
role and how to grant it, nothing written. Every call that reached a known partner — done or refused — is a
``partner.call`` entry in the tenant's ledger with the partner as actor; a deposit is also the archive's own
``deliver`` entry, in the same transaction as the item.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.parser import BytesParser
from email.utils import parsedate_to_datetime

from sqlalchemy import select

from tenantry.archive import ledger
from tenantry.archive.compliance import PURGES
from tenantry.archive.ledger import Ledger
from tenantry.archive.models import LedgerAction
from tenantry.archive.service import ArchiveService, Delivery
from tenantry.core.clock import as_utc, utcnow
from tenantry.core.db import Database
from tenantry.core.errors import Forbidden, Invalid, NotFound
from tenantry.directory.service import DirectoryService, DirectoryUser
from tenantry.trust.gate import PartnerCall
from tenantry.trust.models import VoicemailGreeting

ARCHIVE_APPLICATION = "ArchiveApplication"
USER_APPLICATION = "UserApplication"
CONVERSATION_HISTORY = "Conversation History"
DEPOSIT_KIND = "conversation"
MAX_MESSAGE_BYTES = 25 * 1024 * 1024     # a conversation with its attachments, as Exchange's default message limit
MAX_GREETING_BYTES = 5 * 1024 * 1024     # a few minutes of audio
GREETING_TYPES = ("audio/wav", "audio/x-wav", "audio/mpeg", "audio/mp4", "audio/ogg", "audio/webm", "audio/basic")


@dataclass(frozen=True, slots=True)
class Deposited:
    """Where a partner's message went: ``stored`` is False when the mailbox already held it (same Message-ID)."""

    user_id: str
    folder: str
    message_id: str
    sha256: str
    size: int
    stored: bool


@dataclass(frozen=True, slots=True)
class Greeting:
    user_id: str
    content_type: str
    sha256: str
    size: int
    updated_at: datetime
    updated_by: str


class PartnerActions:
    def __init__(self, db: Database, directory: DirectoryService, archive: ArchiveService, ledger: Ledger) -> None:
        self.db = db
        self.directory = directory
        self.archive = archive
        self.ledger = ledger

    def deposit(self, call: PartnerCall, user: str, raw: bytes) -> Deposited:
        """ArchiveApplication: the message into the user's ``Recoverable Items/Purges``."""
        return self._deliver(call, user, raw, PURGES, ARCHIVE_APPLICATION, "deposit an archived conversation")

    def conversation_history(self, call: PartnerCall, user: str, raw: bytes) -> Deposited:
        """UserApplication: the message into the user's ``Conversation History``."""
        return self._deliver(call, user, raw, CONVERSATION_HISTORY, USER_APPLICATION, "write conversation history")

    def set_greeting(self, call: PartnerCall, user: str, data: bytes, content_type: str) -> Greeting:
        """UserApplication: the user's voicemail greeting (audio), replacing the one before."""
        what = "set a voicemail greeting"
        target = self._permitted(call, user, USER_APPLICATION, what)
        kind = content_type.split(";")[0].strip().lower()
        with self._refusals_recorded(call, target.id, what):
            if kind not in GREETING_TYPES:
                raise Invalid(f"a voicemail greeting is audio ({', '.join(GREETING_TYPES)}), not "
                              f"{kind or 'untyped'!r}")
            if not data:
                raise Invalid("the greeting is empty")
        digest = hashlib.sha256(data).hexdigest()
        now = utcnow()
        actor = call.principal.actor
        with self.db.writing(), self.db.session() as session:
            row = session.get(VoicemailGreeting, (call.principal.tenant, target.id))
            if row is None:
                row = VoicemailGreeting(tenant_id=call.principal.tenant, user_id=target.id)
                session.add(row)
            row.content_type, row.data, row.sha256, row.size = kind, data, digest, len(data)
            row.updated_at, row.updated_by = now, actor
            ledger.append(session, self._tenant(call), [(actor, LedgerAction.PARTNER_CALL, target.id, {
                "call": "set a voicemail greeting", "outcome": "done", "token": call.kind.value, "sha256": digest,
                "size": len(data)})])
        return Greeting(target.id, kind, digest, len(data), now, actor)

    def greeting(self, call: PartnerCall, user: str) -> tuple[Greeting, bytes]:
        """UserApplication: the user's voicemail greeting and its bytes (404 when none is set)."""
        target = self._permitted(call, user, USER_APPLICATION, "read a voicemail greeting")
        with self.db.session() as session:
            row = session.scalar(select(VoicemailGreeting).where(
                VoicemailGreeting.tenant_id == call.principal.tenant, VoicemailGreeting.user_id == target.id))
            found = None if row is None else (
                Greeting(target.id, row.content_type, row.sha256, row.size, as_utc(row.updated_at), row.updated_by),
                bytes(row.data))
        self._record(call, target.id, "read a voicemail greeting", "done" if found else "none set")
        if found is None:
            raise NotFound("this user has no voicemail greeting")
        return found

    # -- the shared steps ------------------------------------------------------------------------------------

    def _deliver(self, call: PartnerCall, user: str, raw: bytes, folder: str, role: str, what: str) -> Deposited:
        target = self._permitted(call, user, role, what)
        with self._refusals_recorded(call, target.id, what):
            delivery = _delivery(target, folder, raw, source=f"partner:{call.principal.name}")
        stored = self.archive.deliver(self._tenant(call), [delivery], actor=call.principal.actor)[0]
        self._record(call, target.id, what, "stored" if stored else "already held", folder=folder,
                     message_id=delivery.message_id, sha256=hashlib.sha256(raw).hexdigest())
        return Deposited(target.id, folder, delivery.message_id, hashlib.sha256(raw).hexdigest(), len(raw), stored)

    def _permitted(self, call: PartnerCall, user: str, role: str, what: str) -> DirectoryUser:
        """The target user, once the partner holds ``role`` and may act in this mailbox; a refusal is recorded."""
        tenant = self._tenant(call)
        target = self._user(tenant, user)
        principal = call.principal
        if role not in principal.roles:
            held = ", ".join(sorted(principal.roles)) or "no role"
            account = call.linked_account or "(none: link one with partner-app new --linked-account)"
            self._record(call, target.id if target else user, what, f"refused: needs {role}")
            raise Forbidden(
                f"to {what} the partner application {principal.name} needs the role {role!r} on its linked account "
                f"{account}; it holds {held}. An administrator with Organization Management grants it: "
                f"tenantry directory role-assignment new --role {role} --user {account}")
        if target is None:
            raise NotFound(f"no user {user!r} in this tenant")
        if call.acting_for is not None and call.acting_for.strip().lower() not in (
                target.id.lower(), target.user_name.lower(), target.email.lower()):
            self._record(call, target.id, what, "refused: another user's token")
            raise Forbidden(f"this app+user token acts for {call.acting_for}, not for {target.user_name}")
        return target

    def _user(self, tenant: str, ref: str) -> DirectoryUser | None:
        found = self.directory.users_by_id(tenant, [ref])
        if found:
            return found[0]
        by_mail = self.directory.find_users_by_email(tenant, [ref]).get(ref.strip().lower())
        return by_mail[0] if by_mail else None

    @contextmanager
    def _refusals_recorded(self, call: PartnerCall, target: str, what: str) -> Iterator[None]:
        """A call refused for its content (not a message, not audio) is recorded too, with the reason."""
        try:
            yield
        except Invalid as exc:
            self._record(call, target, what, f"refused: {exc.message}")
            raise

    def _record(self, call: PartnerCall, target: str, what: str, outcome: str, **detail: str) -> None:
        self.ledger.record(self._tenant(call), call.principal.actor, LedgerAction.PARTNER_CALL, target,
                           call=what, outcome=outcome, token=call.kind.value, **detail)

    @staticmethod
    def _tenant(call: PartnerCall) -> str:
        if call.principal.tenant is None:  # pragma: no cover - the gate always names the realm's tenant
            raise Forbidden("a partner acts in one tenant")
        return call.principal.tenant


def _delivery(target: DirectoryUser, folder: str, raw: bytes, *, source: str) -> Delivery:
    """The partner's message as a delivery: an RFC 5322 message with at least a From or a Date; its Message-ID
    is the item's identity (a message without one gets a name made from its SHA-256, so a retry is the same item)."""
    if not raw:
        raise Invalid("the body is empty: send the conversation as an RFC 5322 message (message/rfc822)")
    if len(raw) > MAX_MESSAGE_BYTES:
        raise Invalid(f"the message is larger than {MAX_MESSAGE_BYTES} bytes")
    message = BytesParser(policy=policy.default).parsebytes(raw, headersonly=True)
    if not message.keys() or (message["From"] is None and message["Date"] is None):
        raise Invalid("the body is not an RFC 5322 message (no From or Date header): send the conversation as "
                      "message/rfc822")
    digest = hashlib.sha256(raw).hexdigest()
    message_id = str(message["Message-ID"] or "").strip() or f"<{digest}@partner.tenantry.invalid>"
    try:
        sent_at = as_utc(parsedate_to_datetime(str(message["Date"]))) if message["Date"] else utcnow()
    except (TypeError, ValueError):
        sent_at = utcnow()
    return Delivery(user_id=target.id, address=target.email, folder=folder, raw=raw, message_id=message_id[:998],
                    kind=DEPOSIT_KIND, source=source, sent_at=sent_at, subject=str(message["Subject"] or ""),
                    sender=str(message["From"] or ""))
