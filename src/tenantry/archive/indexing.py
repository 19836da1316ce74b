"""Keeping the search index in step with the store.

A delivery writes its items in one database transaction, then indexes them and commits the index before it
returns: a delivered item is searchable as soon as the delivery is done. Should the process die between the
two commits, ``catch_up`` re-indexes every item above the index's highest id from the stored bytes — run at
start, it makes the index whole again (``add`` is an upsert, so doing it twice changes nothing).
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from enum import StrEnum
from typing import Any

from sqlalchemy import select

from tenantry.archive.models import Blob, Folder, Item, Mailbox
from tenantry.archive.search import IndexDocument, SearchIndex, SearchIndexUnavailable, participant_text
from tenantry.core.batches import chunks
from tenantry.core.clock import as_utc
from tenantry.core.db import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndexFields:
    """What a delivery knows about its message's text, so indexing does not parse the bytes again."""

    sender: str = ""
    to: str = ""
    cc: str = ""
    participants: str = ""
    subject: str = ""
    body: str = ""
    attachment_names: str = ""
    chat: str = ""
    has_attachment: bool = False     # a file is attached (not merely named)
    has_missing_media: bool = False  # the source named media it did not include


# How a message's body notes media the source named but did not include (connectors.convert writes it);
# re-indexing from stored bytes finds ``has_missing_media`` by it.
MISSING_MEDIA_NOTE = "[attachment not included in the source: "


def document(item_id: int, tenant: str, user_id: str, folder: str, kind: str, source: str, sent_at: datetime,
             size: int, fields: IndexFields, copies: tuple[tuple[int, str], ...] = ()) -> IndexDocument:
    """``copies``: the same message's other copies in the same folder name, (item id, owner) each."""
    return IndexDocument(item_id=item_id, tenant=tenant, user_id=user_id, folder=folder, kind=kind, source=source,
                         sent_at=as_utc(sent_at), size=size, has_attachment=fields.has_attachment,
                         sender=fields.sender, to=fields.to, cc=fields.cc, participants=fields.participants,
                         subject=fields.subject, body=fields.body, attachment_names=fields.attachment_names,
                         chat=fields.chat, has_missing_media=fields.has_missing_media, copies=copies)


_PARSER = BytesParser(policy=default_policy)


def fields_from_raw(raw: bytes) -> IndexFields:
    """Index fields read back from stored bytes (the slow path: re-indexing, moves to Purges)."""
    message = _PARSER.parsebytes(raw)
    assert isinstance(message, EmailMessage)

    def addresses(name: str) -> list[str]:
        header = message.get(name)
        if header is None:
            return []
        try:
            return [participant_text(a.display_name, a.addr_spec) for a in header.addresses]
        except (AttributeError, ValueError):
            return [str(header)]

    number = str(message.get("X-Tenantry-Sender-Number", "") or "")
    sender = " ".join(addresses("From")) + (" " + participant_text(number=number) if number else "")
    to, cc = " ".join(addresses("To")), " ".join(addresses("Cc"))
    body_part = message.get_body(("plain",))
    try:
        body = body_part.get_content() if body_part is not None else ""
    except (LookupError, ValueError):
        body = ""
    names = [p.get_filename() or "" for p in message.iter_attachments()]
    chat = " ".join(str(message.get(h, "") or "") for h in ("X-Tenantry-Chat-Id", "X-Tenantry-Chat-Name")).strip()
    return IndexFields(sender=sender, to=to, cc=cc, participants=" ".join(x for x in (sender, to, cc) if x),
                       subject=str(message.get("Subject", "") or ""), body=body,
                       attachment_names=" ".join(n for n in names if n), chat=chat, has_attachment=bool(names),
                       has_missing_media=MISSING_MEDIA_NOTE in body)


WRITER_WAIT_SECONDS = 120.0
IDLE_RELEASE_SECONDS = 1.0


class IndexOp(StrEnum):
    """What a queued index change does: add (or replace) documents, or delete items' documents."""

    ADD = "add"
    DELETE = "delete"


class Indexer:
    """Feeds the index from a background thread, a batch at a time, holding tantivy's writer lock only for
    the batch.

    A delivery hands its documents over and returns; the thread writes and commits them while the importer
    goes on (tantivy commits outside the GIL, so the two share the machine's cores). Every search first calls
    ``flush``, which waits until everything handed over before it is committed: an item is in every search
    made after its delivery returned. Several processes may write (the server, a CLI import, Celery workers):
    one that finds the writer lock taken waits and tries again, for up to two minutes.
    """

    def __init__(self, db: Database, index: SearchIndex, *, background: bool = True) -> None:
        self.db = db
        self.index = index
        self.background = background
        self._pending: list[tuple[IndexOp, Any]] = []
        self._queued = 0      # operations handed over
        self._done = 0        # operations committed (or failed)
        self._error: BaseException | None = None
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False

    def _write(self, change: Callable[[], None]) -> None:
        deadline = time.monotonic() + WRITER_WAIT_SECONDS
        pause = 0.02
        while True:
            try:
                change()
                self.index.commit()
                return
            except SearchIndexUnavailable:
                self.index.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 1.0)

    def _apply(self, ops: list[tuple[IndexOp, Any]]) -> None:
        def change() -> None:
            for op, payload in ops:
                if op == IndexOp.ADD:
                    self.index.add(payload)
                else:
                    self.index.delete(payload)

        self._write(change)

    def _submit(self, op: IndexOp, payload: Any) -> None:
        if not self.background:
            try:
                self._apply([(op, payload)])
            finally:
                self.index.close()
            return
        with self._cond:
            if self._error is not None:
                error, self._error = self._error, None
                raise SearchIndexUnavailable(f"indexing failed: {error}") from error
            self._pending.append((op, payload))
            self._queued += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="tenantry-indexer", daemon=True)
                self._thread.start()
                atexit.register(self.flush)
            self._cond.notify_all()

    def _run(self) -> None:
        writer_open = False
        while True:
            with self._cond:
                while not self._pending and not self._stopping:
                    # Keep the writer (and tantivy's background merges) while batches keep coming; let the
                    # lock go once idle, so another process can write.
                    if not self._cond.wait(timeout=IDLE_RELEASE_SECONDS) and writer_open:
                        self.index.close()
                        writer_open = False
                if not self._pending and self._stopping:
                    return
                ops, self._pending = self._pending, []
            try:
                writer_open = True
                self._apply(ops)
            except BaseException as exc:  # noqa: BLE001 - kept and raised to the next caller; catch_up repairs
                log.exception("indexing failed; the items are re-indexed by the next catch-up")
                with self._cond:
                    self._error = exc
            with self._cond:
                self._done += len(ops)
                self._cond.notify_all()

    def flush(self, timeout: float = WRITER_WAIT_SECONDS * 2) -> None:
        """Wait until everything handed over so far is committed (searches call this first)."""
        if not self.background:
            return
        with self._cond:
            target = self._queued
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._done >= target, timeout=timeout)
            if self._error is not None:
                error, self._error = self._error, None
                raise SearchIndexUnavailable(f"indexing failed: {error}") from error

    def add(self, docs: Sequence[IndexDocument]) -> None:
        if docs:
            self._submit(IndexOp.ADD, list(docs))

    def remove(self, item_ids: Sequence[int]) -> None:
        if item_ids:
            self._submit(IndexOp.DELETE, list(item_ids))

    def reindex(self, tenant: str, item_ids: Sequence[int]) -> int:
        """Index these items again from their stored bytes (after a move to Purges, or to repair)."""
        # Copies of one message (same bytes) in folders of one name become one document, its bytes read and
        # parsed once. Grouped per chunk of ids: a delivery's copies have neighbouring ids.
        indexed = 0
        with self.db.session() as session:
            for chunk in chunks(item_ids):
                groups: dict[tuple[str, str, str, str, datetime], list[tuple[int, str, int]]] = {}
                rows = session.execute(
                    select(Item.id, Mailbox.user_id, Folder.name, Item.kind, Item.source, Item.sent_at, Item.size,
                           Item.sha256)
                    .join(Mailbox, Mailbox.id == Item.mailbox_id).join(Folder, Folder.id == Item.folder_id)
                    .where(Item.tenant_id == tenant, Item.id.in_(chunk)))
                for item_id, user_id, folder, kind, source, sent_at, size, digest in rows:
                    groups.setdefault((digest, folder, kind, source, as_utc(sent_at)), []).append(
                        (item_id, user_id, size))
                data_of = dict(session.execute(select(Blob.sha256, Blob.data).where(
                    Blob.sha256.in_(sorted({key[0] for key in groups})))).all())
                docs: list[IndexDocument] = []
                for (digest, folder, kind, source, sent_at), copies in groups.items():
                    (item_id, user_id, size), *more = copies
                    raw = data_of.get(digest)
                    if raw is None:
                        # Purged since their rows were read (the bytes go with the last item), or changed outside
                        # Tenantry (``tenantry archive verify`` names them): nothing to index.
                        log.warning("items %s of %s: no stored bytes, not indexed", [i for i, _, _ in copies], tenant)
                        continue
                    docs.append(document(item_id, tenant, user_id, folder, kind, source, sent_at, size,
                                         fields_from_raw(raw), tuple((i, u) for i, u, _ in more)))
                    indexed += len(copies)
                self.add(docs)
        self.flush()
        return indexed

    def catch_up(self, tenant: str) -> int:
        """Index what the store has and the index lacks (items above the index's highest id)."""
        missing = self._ids_above(tenant, self.index.max_item_id(tenant) or 0)
        if missing:
            log.info("re-indexing %d items of %s the index did not have", len(missing), tenant)
        return self.reindex(tenant, missing) if missing else 0

    def reindex_all(self, tenant: str) -> int:
        """Index every item of the tenant again from its stored bytes (``tenantry archive reindex --full``)."""
        return self.reindex(tenant, self._ids_above(tenant, 0))

    def _ids_above(self, tenant: str, highest: int) -> list[int]:
        with self.db.session() as session:
            return list(session.scalars(select(Item.id).where(Item.tenant_id == tenant, Item.id > highest)
                                        .order_by(Item.id)))
