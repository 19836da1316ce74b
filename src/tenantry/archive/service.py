"""Delivering, reading and exporting archived messages.

A delivery batch is one transaction: mailboxes and folders are created on first use, each message's bytes are
stored once by SHA-256, and an item row per mailbox points to them. The Message-ID is unique per mailbox, so
delivering the same item again (a re-run after a crash, a re-import) changes nothing and says so. The bytes are
deleted when the last item pointing to them is purged (``compliance.drop_bytes``).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import chain
from pathlib import Path
from typing import Any, Protocol, cast

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from tenantry.archive import ledger
from tenantry.archive.indexing import MISSING_MEDIA_NOTE, Indexer, IndexFields, document, fields_from_raw
from tenantry.archive.models import Blob, ExportFormat, Folder, Item, LedgerAction, Mailbox
from tenantry.archive.results import MailboxInfo
from tenantry.archive.search import IndexDocument, participant_text
from tenantry.core.batches import chunks
from tenantry.core.clock import as_utc, utcnow
from tenantry.core.db import Database, rolled_back_by_server
from tenantry.core.errors import Invalid, NotFound, TenantryError

# The archive as other domains use it. A connector delivers with the index's fields already filled
# (``IndexFields``: ``participant_text`` writes a participant the way searches find them, ``MISSING_MEDIA_NOTE``
# marks media the source did not include), so those come from here, not from the indexing modules.
__all__ = [
    "BLOB_BATCH_BYTES", "MISSING_MEDIA_NOTE", "WHATSAPP_FOLDER", "ArchiveService", "BytesSink", "Delivery",
    "IndexFields", "IntegrityFailure", "MailboxInfo", "StoredItem", "participant_text", "read_mboxrd",
    "sha256_hex", "write_mboxrd",
]

WHATSAPP_FOLDER = "WhatsApp Archiver"
# Message bytes read from the blob store in one query when streaming a mailbox out.
BLOB_BATCH_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class Delivery:
    """One message for one user's folder."""

    user_id: str
    address: str
    folder: str
    raw: bytes
    message_id: str
    kind: str
    source: str
    sent_at: datetime
    chat_id: str | None = None
    subject: str = ""
    sender: str = ""
    fields: IndexFields | None = None   # what the search index needs; None: read from the bytes
    # Other Message-IDs of the same message: a mailbox that holds any of them already has it (the connectors'
    # earlier identities of an item, or its fuller version; docs/connectors.md "Message identity").
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class StoredItem:
    id: int
    user_id: str
    folder: str
    message_id: str
    sha256: str
    size: int
    kind: str
    source: str
    chat_id: str | None
    sent_at: datetime
    subject: str
    sender: str


class IntegrityFailure(TenantryError):
    """A stored message no longer hashes to its address: the archive was changed outside Tenantry."""

    status_code = 500
    code = "integrity_failure"

    def __init__(self, item_id: int, expected: str, actual: str) -> None:
        super().__init__(f"item {item_id}: stored bytes hash to {actual}, expected {expected}")
        self.item_id = item_id


_ITEM_COLUMNS = ("tenant_id", "mailbox_id", "folder_id", "message_id", "sha256", "size", "kind", "source", "chat_id",
                 "sent_at", "subject", "sender", "delivered_at")
# Rows per INSERT statement: under SQLite's 32,766 and PostgreSQL's 65,535 parameters at 13 columns.
_ROWS_PER_STATEMENT = 1000


def _insert_values(session: Session, model: Any, columns: tuple[str, ...], rows: list[tuple[Any, ...]],
                   conflict: tuple[str, ...], returning: tuple[str, ...] = (), *,
                   lock: bool = False) -> list[Any]:
    """``INSERT … VALUES (…), (…) ON CONFLICT (conflict) DO NOTHING [RETURNING …]``, a thousand rows a statement,
    the values passed to the driver as they are but for the column types' own conversions (SQLite's datetime
    text): SQLAlchemy's executemany spent more on each row's parameters than the database on the row (issue #16).
    The same statement in SQLite (3.35+) and PostgreSQL. ``lock``: on a conflict, ``DO UPDATE … WHERE 1 = 0``
    instead of ``DO NOTHING``: the existing row is locked until the transaction ends (PostgreSQL locks the
    conflicting row whether or not the update's condition holds) and nothing is written to it."""
    if not rows:
        return []
    connection = session.connection()
    dialect = connection.dialect
    table = model.__table__
    convert = [(n, p) for n, name in enumerate(columns)
               if (p := table.c[name].type.dialect_impl(dialect).bind_processor(dialect)) is not None]
    if convert:
        # A batch's copies share their times: each converted once (keyed with the offset: equal instants in two
        # zones are equal keys, and SQLite's text drops the zone).
        memo: dict[tuple[datetime, Any], Any] = {}
        converted: list[tuple[Any, ...]] = []
        for row in rows:
            values = list(row)
            for n, process in convert:
                value = values[n]
                if isinstance(value, datetime):
                    key = (value, value.utcoffset())
                    done = memo.get(key)
                    if done is None:
                        done = memo[key] = process(value)
                    values[n] = done
                elif value is not None:
                    values[n] = process(value)
            converted.append(tuple(values))
        rows = converted
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    row_marks = "(" + ", ".join([mark] * len(columns)) + ")"
    head = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES "
    kept = conflict[0]
    action = f"DO UPDATE SET {kept} = excluded.{kept} WHERE 1 = 0" if lock else "DO NOTHING"
    tail = f" ON CONFLICT ({', '.join(conflict)}) {action}" + (
        f" RETURNING {', '.join(returning)}" if returning else "")
    out: list[Any] = []
    for chunk in chunks(rows, _ROWS_PER_STATEMENT):
        statement = head + ", ".join([row_marks] * len(chunk)) + tail
        params = tuple(chain.from_iterable(chunk))
        result = connection.exec_driver_sql(statement, params)
        if returning:
            out.extend(result.all())
    return out


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ArchiveService:
    def __init__(self, db: Database, indexer: Indexer | None = None) -> None:
        self.db = db
        self.indexer = indexer

    # -- delivery ---------------------------------------------------------------------

    def deliver(self, tenant: str, deliveries: Sequence[Delivery], actor: str = "system") -> list[bool]:
        """Store a batch; returns, per delivery, True if stored now, False if the mailbox already had it."""
        if not deliveries:
            return []
        for attempt in range(3):
            try:
                with self.db.session() as session:
                    results, docs = self._deliver(session, tenant, deliveries, actor)
                break
            except (IntegrityError, OperationalError) as exc:
                # A concurrent delivery of the same items won a race (the next attempt sees its rows), or PostgreSQL
                # chose this transaction to end a deadlock or a serialization failure: run it again.
                if attempt == 2 or (isinstance(exc, OperationalError) and not rolled_back_by_server(exc)):
                    raise
        # Searchable before deliver() returns; a crash before this line is repaired by Indexer.catch_up.
        if self.indexer is not None:
            self.indexer.add(docs)
        return results

    def _deliver(self, session: Session, tenant: str, deliveries: Sequence[Delivery],
                 actor: str) -> tuple[list[bool], list[IndexDocument]]:
        now = utcnow()
        mailboxes = self._mailboxes(session, tenant, {d.user_id: d.address for d in deliveries}, now)
        folders = self._folders(session, {(mailboxes[d.user_id], d.folder) for d in deliveries}, now)
        blobs: dict[str, bytes] = {}
        rows: list[tuple[Any, ...]] = []
        keys: list[tuple[str, str]] = []
        first: set[int] = set()
        seen: set[tuple[str, str]] = set()
        held = self._held(session, {(mailboxes[d.user_id], a) for d in deliveries for a in d.aliases})
        # Copies of one item share their bytes (one object): hashed once.
        digests: dict[int, str] = {}
        for index, d in enumerate(deliveries):
            key = (mailboxes[d.user_id], d.message_id)
            keys.append(key)
            # An alias stored before, or earlier in this batch, is this message already there.
            if key in seen or (d.aliases and any((key[0], a) in held or (key[0], a) in seen for a in d.aliases)):
                continue
            seen.add(key)
            first.add(index)
            digest = digests.get(id(d.raw))
            if digest is None:
                digest = digests[id(d.raw)] = sha256_hex(d.raw)
                blobs.setdefault(digest, d.raw)
            rows.append((tenant, key[0], folders[(key[0], d.folder)], d.message_id, digest, len(d.raw), d.kind,
                         d.source, d.chat_id, d.sent_at, d.subject[:2000], d.sender[:512], now))
        # INSERT … ON CONFLICT DO NOTHING: an existing (mailbox, Message-ID) is left as it is, and the item rows
        # actually written come back through RETURNING — no look-up before, no race after.
        written = _insert_values(session, Item, _ITEM_COLUMNS, rows, ("mailbox_id", "message_id"),
                                 ("id", "mailbox_id", "message_id", "sha256"))
        inserted = {(m, mid) for _, m, mid, _ in written}
        if written:
            # The ledger entry is part of the same transaction: no item exists that the ledger does not know.
            ledger.append(session, tenant, [(actor, LedgerAction.DELIVER, "", {
                "items": sorted([item_id, digest] for item_id, _, _, digest in written)})])
        # Then the bytes, in digest order: written if missing (a delivery again repairs them), locked if stored
        # (``lock``). A purge deletes the bytes no item points to any more (compliance.drop_bytes) after locking
        # them, so it waits for this transaction and then sees its items, or this one waits and writes the bytes
        # again. Items, the ledger's head, then the bytes: a purge takes its locks in the same order.
        _insert_values(session, Blob, ("sha256", "size", "data"),
                       [(k, len(blobs[k]), blobs[k]) for k in sorted(blobs)], ("sha256",), lock=True)
        docs: list[IndexDocument] = []
        if self.indexer is not None and written:
            # One index document per message and folder, its mailbox copies in it (issue #16): copies of one
            # item share the bytes and the index fields.
            by_key = {keys[i]: deliveries[i] for i in first}
            groups: dict[tuple[str, str, str, str, datetime], list[tuple[int, Delivery]]] = {}
            for item_id, mailbox_id, message_id, digest in written:
                d = by_key[(mailbox_id, message_id)]
                groups.setdefault((digest, d.folder, d.kind, d.source, d.sent_at), []).append((item_id, d))
            for (_, folder, kind, source, sent_at), copies in groups.items():
                (item_id, d), *more = copies
                docs.append(document(item_id, tenant, d.user_id, folder, kind, source, sent_at, len(d.raw),
                                     d.fields or fields_from_raw(d.raw), tuple((i, o.user_id) for i, o in more)))
        return [i in first and keys[i] in inserted for i in range(len(deliveries))], docs

    @staticmethod
    def _held(session: Session, wanted: set[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which (mailbox, Message-ID) pairs of ``wanted`` are stored, in statement-sized chunks.

        An item's aliases are the same in every mailbox it goes to, so the look-up is by the distinct ids across
        the batch's mailboxes (a few statements per batch however many mailboxes), then filtered to the pairs.
        """
        if not wanted:
            return set()
        mailbox_ids = sorted({m for m, _ in wanted})
        message_ids = sorted({i for _, i in wanted})
        held: set[tuple[str, str]] = set()
        for boxes in chunks(mailbox_ids):
            for ids in chunks(message_ids):
                rows = session.execute(select(Item.mailbox_id, Item.message_id).where(
                    Item.mailbox_id.in_(boxes), Item.message_id.in_(ids)))
                held.update(pair for mailbox_id, message_id in rows if (pair := (mailbox_id, message_id)) in wanted)
        return held

    @staticmethod
    def _mailboxes(session: Session, tenant: str, users: dict[str, str], now: datetime) -> dict[str, str]:
        # FOR KEY SHARE (what the items' foreign keys take anyway), taken first: a mailbox's removal locks it
        # before anything else, so this waits for it (and then makes the mailbox again) or it waits for this —
        # never each for the other (compliance.drop_bytes, the order of locks). Its folders are deleted only by
        # that removal, so they need no lock of their own.
        found = dict(session.execute(
            select(Mailbox.user_id, Mailbox.id).where(Mailbox.tenant_id == tenant, Mailbox.user_id.in_(list(users)))
            .with_for_update(read=True, key_share=True)
        ).all())
        for user_id, address in users.items():
            if user_id not in found:
                mailbox = Mailbox(id=str(uuid.uuid4()), tenant_id=tenant, user_id=user_id, address=address,
                                  created_at=now)
                session.add(mailbox)
                found[user_id] = mailbox.id
        session.flush()
        return found

    @staticmethod
    def _folders(session: Session, wanted: set[tuple[str, str]], now: datetime) -> dict[tuple[str, str], str]:
        found: dict[tuple[str, str], str] = {}
        mailbox_ids = list({m for m, _ in wanted})
        for fid, mailbox_id, name in session.execute(
            select(Folder.id, Folder.mailbox_id, Folder.name).where(Folder.mailbox_id.in_(mailbox_ids))
        ):
            found[(mailbox_id, name)] = fid
        for key in wanted:
            if key not in found:
                folder = Folder(id=str(uuid.uuid4()), mailbox_id=key[0], name=key[1], created_at=now)
                session.add(folder)
                found[key] = folder.id
        session.flush()
        return found

    def get_blob(self, digest: str) -> bytes:
        with self.db.session() as session:
            blob = session.get(Blob, digest)
            if blob is None:
                raise NotFound(f"no blob {digest}")
            return blob.data

    # -- reading ------------------------------------------------------------------------

    def mailboxes(self, tenant: str) -> list[MailboxInfo]:
        with self.db.session() as session:
            rows = session.execute(select(Mailbox).where(Mailbox.tenant_id == tenant).order_by(Mailbox.address))
            return [MailboxInfo(id=m.id, user_id=m.user_id, address=m.address) for (m,) in rows]

    def folders(self, tenant: str, user_id: str) -> list[str]:
        with self.db.session() as session:
            mailbox = self._mailbox(session, tenant, user_id)
            return sorted(session.scalars(select(Folder.name).where(Folder.mailbox_id == mailbox.id)))

    @staticmethod
    def _mailbox(session: Session, tenant: str, user_id: str) -> Mailbox:
        mailbox = session.scalar(select(Mailbox).where(Mailbox.tenant_id == tenant, Mailbox.user_id == user_id))
        if mailbox is None:
            raise NotFound(f"user {user_id} has no mailbox")
        return mailbox

    def items(self, tenant: str, user_id: str, folder: str | None = None, *, start: int = 0,
              count: int | None = None) -> list[StoredItem]:
        with self.db.session() as session:
            mailbox = self._mailbox(session, tenant, user_id)
            stmt = (select(Item, Folder.name).join(Folder, Folder.id == Item.folder_id)
                    .where(Item.mailbox_id == mailbox.id).order_by(Item.sent_at, Item.id))
            if folder is not None:
                stmt = stmt.where(Folder.name == folder)
            stmt = stmt.offset(start)
            if count is not None:
                stmt = stmt.limit(count)
            return [self._stored(item, name, user_id) for item, name in session.execute(stmt)]

    @staticmethod
    def _stored(item: Item, folder: str, user_id: str) -> StoredItem:
        return StoredItem(item.id, user_id, folder, item.message_id, item.sha256, item.size, item.kind,
                          item.source, item.chat_id, as_utc(item.sent_at), item.subject, item.sender)

    def chat_span(self, tenant: str, chat_id: str) -> tuple[datetime, datetime] | None:
        """The first and last sent time of a chat's stored messages (any mailbox); None when it has none."""
        from sqlalchemy import func

        with self.db.session() as session:
            first, last = session.execute(select(func.min(Item.sent_at), func.max(Item.sent_at)).where(
                Item.tenant_id == tenant, Item.chat_id == chat_id)).one()
        return (as_utc(first), as_utc(last)) if first is not None and last is not None else None

    def chat_message_ids(self, tenant: str, chat_id: str, start: datetime, end: datetime, limit: int) -> set[str]:
        """The distinct Message-IDs of a chat's messages sent in [start, end] (the earliest ``limit``)."""
        with self.db.session() as session:
            rows = session.execute(select(Item.message_id, Item.sent_at).where(
                Item.tenant_id == tenant, Item.chat_id == chat_id, Item.sent_at >= start, Item.sent_at <= end)
                .order_by(Item.sent_at).limit(limit))
            return {message_id for message_id, _ in rows}

    def count(self, tenant: str, user_id: str | None = None, folder: str | None = None) -> int:
        from sqlalchemy import func

        with self.db.session() as session:
            stmt = select(func.count()).select_from(Item).where(Item.tenant_id == tenant)
            if user_id is not None:
                stmt = stmt.join(Mailbox, Mailbox.id == Item.mailbox_id).where(Mailbox.user_id == user_id)
            if folder is not None:
                stmt = stmt.join(Folder, Folder.id == Item.folder_id).where(Folder.name == folder)
            return session.scalar(stmt) or 0

    def read(self, tenant: str, item_id: int) -> bytes:
        """The item's bytes exactly as delivered; IntegrityFailure if they no longer hash to their address."""
        with self.db.session() as session:
            # The row and its bytes in one statement (one snapshot): a purge deletes both at once, so an item
            # purged meanwhile is not found, rather than found without its bytes.
            row = session.execute(select(Item.tenant_id, Item.sha256, Blob.data)
                                  .outerjoin(Blob, Blob.sha256 == Item.sha256).where(Item.id == item_id)).first()
        if row is None or row.tenant_id != tenant:
            raise NotFound(f"no item {item_id}")
        digest, data = row.sha256, cast(bytes | None, row.data)
        if data is None:
            raise IntegrityFailure(item_id, digest, "(missing)")
        actual = sha256_hex(data)
        if actual != digest:
            raise IntegrityFailure(item_id, digest, actual)
        return data

    # -- export -------------------------------------------------------------------------------

    def iter_messages(self, tenant: str, user_id: str, folder: str | None = None, *,
                      batch: int = 500) -> Iterator[tuple[StoredItem, bytes]]:
        """A mailbox's (or folder's) messages in date order, verified, read in batches: memory holds at most
        ``batch`` item rows and about ``BLOB_BATCH_BYTES`` of message bytes, and no database session stays open
        between two messages handed out (a slow reader holds no connection)."""
        with self.db.session() as session:
            mailbox_id = self._mailbox(session, tenant, user_id).id
        after: tuple[Any, int] | None = None
        while True:
            with self.db.session() as session:
                stmt = (select(Item, Folder.name).join(Folder, Folder.id == Item.folder_id)
                        .where(Item.mailbox_id == mailbox_id).order_by(Item.sent_at, Item.id).limit(batch))
                if folder is not None:
                    stmt = stmt.where(Folder.name == folder)
                if after is not None:
                    # Keyset paging: OFFSET would re-read every earlier row on each page of a 100k-item mailbox.
                    stmt = stmt.where(or_(Item.sent_at > after[0], and_(Item.sent_at == after[0], Item.id > after[1])))
                rows = [(item, name) for item, name in session.execute(stmt)]
            if not rows:
                return
            after = (rows[-1][0].sent_at, rows[-1][0].id)
            group: list[tuple[Item, str]] = []
            size = 0
            for row in rows:
                if group and size + row[0].size > BLOB_BATCH_BYTES:
                    yield from self._with_bytes(group, user_id)
                    group, size = [], 0
                group.append(row)
                size += row[0].size
            yield from self._with_bytes(group, user_id)
            if len(rows) < batch:
                return

    def _with_bytes(self, group: list[tuple[Item, str]], user_id: str) -> Iterator[tuple[StoredItem, bytes]]:
        with self.db.session() as session:
            # The rows again, with their bytes, in one statement: an item purged since its row was read is gone
            # with its bytes (compliance.drop_bytes) and is left out, as a mailbox read a moment later would.
            current = {item_id: ((mailbox_id, message_id, digest), data)
                       for item_id, mailbox_id, message_id, digest, data in session.execute(
                           select(Item.id, Item.mailbox_id, Item.message_id, Item.sha256, Blob.data)
                           .outerjoin(Blob, Blob.sha256 == Item.sha256)
                           .where(Item.id.in_([item.id for item, _ in group])))}
        for item, name in group:
            if current.get(item.id, (None,))[0] != (item.mailbox_id, item.message_id, item.sha256):
                continue   # purged (SQLite may give its id to a newer item: what it is tells them apart)
            raw = current[item.id][1]
            if raw is None:
                raise IntegrityFailure(item.id, item.sha256, "(missing)")
            actual = sha256_hex(raw)
            if actual != item.sha256:
                raise IntegrityFailure(item.id, item.sha256, actual)
            yield self._stored(item, name, user_id), raw

    def mbox_stream(self, tenant: str, user_id: str, folder: str | None = None,
                    actor: str = "admin-api") -> Generator[bytes, None, None]:
        """A mailbox (or folder) as mboxrd, in pieces of about 64 KiB, for a download.

        The mailbox is looked up now (an unknown user is NotFound before a response starts); the bytes are read
        batch by batch as the client takes them. When the generator ends — complete, failed, or closed because
        the client left — the ledger records the download: who, what, how many items, whether it completed.
        """
        with self.db.session() as session:
            self._mailbox(session, tenant, user_id)
        return self._mbox_chunks(tenant, user_id, folder, actor)

    def _mbox_chunks(self, tenant: str, user_id: str, folder: str | None,
                     actor: str) -> Generator[bytes, None, None]:
        from tenantry.core.streaming import CHUNK, ChunkBuffer

        sink = ChunkBuffer()
        read = 0
        complete = False
        try:
            for item, raw in self.iter_messages(tenant, user_id, folder):
                write_mboxrd(sink, raw, item.sent_at)
                read += 1
                if sink.pending >= CHUNK:
                    yield sink.take()
            if sink.pending:
                yield sink.take()
            complete = True
        finally:
            with self.db.session() as session:
                ledger.append(session, tenant, [(actor, LedgerAction.MAILBOX_EXPORT, user_id, {
                    "folder": folder, "format": ExportFormat.MBOX, "items": read, "complete": complete})])

    def export(self, tenant: str, user_id: str, folder: str | None, fmt: ExportFormat | str, dest: Path) -> int:
        """Write a folder (or the whole mailbox) as one MBOX file or a directory of .eml files."""
        if fmt not in tuple(ExportFormat):
            raise Invalid("format must be mbox or eml")
        count = 0
        if fmt == ExportFormat.EML:
            dest.mkdir(parents=True, exist_ok=True)
            for item, raw in self.iter_messages(tenant, user_id, folder):
                name = f"{item.sent_at:%Y%m%dT%H%M%SZ}-{item.id}.eml"
                (dest / name).write_bytes(raw)
                count += 1
            return count
        dest.parent.mkdir(parents=True, exist_ok=True)
        with dest.open("wb") as out:
            for item, raw in self.iter_messages(tenant, user_id, folder):
                write_mboxrd(out, raw, item.sent_at)
                count += 1
        return count


_FROM_LINE = re.compile(rb"^(>*From )", re.MULTILINE)


class BytesSink(Protocol):
    def write(self, data: bytes, /) -> Any: ...


def write_mboxrd(out: BytesSink, raw: bytes, when: datetime) -> None:
    """Append one message in mboxrd form: reversible quoting of ``>*From `` lines, LF line ends."""
    body = raw.replace(b"\r\n", b"\n")
    body = _FROM_LINE.sub(rb">\1", body)
    out.write(b"From MAILER-DAEMON " + as_utc(when).strftime("%a %b %d %H:%M:%S %Y").encode() + b"\n")
    out.write(body)
    if not body.endswith(b"\n"):
        out.write(b"\n")
    out.write(b"\n")


def read_mboxrd(data: bytes) -> list[bytes]:
    """Split an mboxrd file back into messages (CRLF line ends restored) — the inverse of write_mboxrd."""
    messages: list[bytes] = []
    current: list[bytes] | None = None
    for line in data.split(b"\n"):
        if line.startswith(b"From ") and (current is None or (current and current[-1] == b"")):
            if current is not None:
                messages.append(_finish(current[:-1]))
            current = []
            continue
        if current is not None:
            current.append(line[1:] if re.match(rb"^>+From ", line) else line)
    if current is not None:
        while current and current[-1] == b"":
            current.pop()
        messages.append(_finish(current))
    return messages


def _finish(lines: list[bytes]) -> bytes:
    return b"\r\n".join(lines) + b"\r\n"
