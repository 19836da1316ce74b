"""The archive's tamper-evident ledger, which is also its audit trail.

Every delivery batch, deletion, purge, hold, release, search and export appends an entry, in the same
transaction as the change it records. Entries are chained by SHA-256 per tenant. ``verify`` recomputes the
chain, replays it into the set of items that must exist with their digests, and compares that with the item
rows and the stored bytes: any change made outside Tenantry is named (SEC 17a-4(f)'s audit-trail alternative
to WORM storage).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tenantry.archive.models import Blob, Item, LedgerEntry, LedgerHead, Mailbox
from tenantry.core.clock import as_utc, utcnow
from tenantry.core.db import Database

GENESIS = "0" * 64
# Actions that add items to, or remove them from, what must exist.
ADDS = "deliver"
REMOVES = ("purge",)


def entry_hash(prev: str, number: int, at: datetime, actor: str, action: str, target: str, detail: str) -> str:
    canonical = "\x1f".join([prev, str(number), as_utc(at).isoformat(), actor, action, target, detail])
    return hashlib.sha256(canonical.encode()).hexdigest()


def append(session: Session, tenant: str, records: Sequence[tuple[str, str, str, dict[str, Any]]]) -> None:
    """Append (actor, action, target, detail) records to the tenant's chain, inside the caller's transaction."""
    if not records:
        return
    if session.get_bind().dialect.name == "sqlite":
        # SQLite ignores FOR UPDATE, and pysqlite reads outside a transaction until the first write: two
        # appenders would read the same head and fork the chain. A write first (it changes nothing) takes the
        # database's write lock, so the head read next is the one this transaction replaces.
        session.execute(update(LedgerHead).where(LedgerHead.tenant_id == tenant).values(number=LedgerHead.number))
    head = session.scalar(select(LedgerHead).where(LedgerHead.tenant_id == tenant).with_for_update())
    if head is None:
        # The tenant's first entry. Two first appenders at once must not both insert the head: the second's
        # insert does nothing (it waits for the first to commit), then it locks the head the first wrote.
        session.execute(_insert_ignore(session, LedgerHead).values(tenant_id=tenant, number=0, hash=GENESIS))
        head = session.scalar(select(LedgerHead).where(LedgerHead.tenant_id == tenant).with_for_update()
                              .execution_options(populate_existing=True))
        assert head is not None
    now = utcnow()
    rows = []
    number, prev = head.number, head.hash
    for actor, action, target, detail in records:
        number += 1
        text = json.dumps(detail, sort_keys=True, separators=(",", ":"), default=str)
        digest = entry_hash(prev, number, now, actor, action, target, text)
        rows.append({"tenant_id": tenant, "number": number, "at": now, "actor": actor, "action": action,
                     "target": target, "detail": text, "prev_hash": prev, "hash": digest})
        prev = digest
    from sqlalchemy import insert

    session.connection().execute(insert(LedgerEntry), rows)
    head.number, head.hash = number, prev
    session.flush()


def _insert_ignore(session: Session, model: Any) -> Any:
    """INSERT … ON CONFLICT DO NOTHING in the session's dialect."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(model).on_conflict_do_nothing()
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(model).on_conflict_do_nothing()


@dataclass
class VerifyReport:
    tenant: str
    entries: int = 0
    items_checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class Ledger:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, tenant: str, actor: str, action: str, target: str = "", **detail: Any) -> None:
        with self.db.session() as session:
            append(session, tenant, [(actor, action, target, detail)])

    def entries(self, tenant: str, *, action: str | None = None, limit: int = 100,
                offset: int = 0) -> list[dict[str, Any]]:
        with self.db.session() as session:
            stmt = select(LedgerEntry).where(LedgerEntry.tenant_id == tenant)
            if action:
                stmt = stmt.where(LedgerEntry.action == action)
            rows = session.scalars(stmt.order_by(LedgerEntry.number.desc()).offset(offset).limit(limit))
            return [{"number": e.number, "at": as_utc(e.at).isoformat(), "actor": e.actor, "action": e.action,
                     "target": e.target, "detail": json.loads(e.detail)} for e in rows]

    def verify(self, tenant: str) -> VerifyReport:
        report = VerifyReport(tenant)
        expected: dict[int, str] = {}
        with self.db.session() as session:
            prev = GENESIS
            number = 0
            for e in session.scalars(select(LedgerEntry).where(LedgerEntry.tenant_id == tenant)
                                     .order_by(LedgerEntry.number)):
                number += 1
                report.entries += 1
                if e.number != number:
                    report.problems.append(f"ledger entry {number} is missing (next is {e.number})")
                    number = e.number
                if e.prev_hash != prev:
                    report.problems.append(f"ledger entry {e.number} does not follow entry {e.number - 1}")
                if entry_hash(e.prev_hash, e.number, e.at, e.actor, e.action, e.target, e.detail) != e.hash:
                    report.problems.append(f"ledger entry {e.number} ({e.action}) was changed after it was written")
                prev = e.hash
                detail = json.loads(e.detail)
                if e.action == ADDS:
                    for item_id, digest in detail.get("items", []):
                        expected[int(item_id)] = digest
                elif e.action in REMOVES:
                    for item_id in detail.get("items", []):
                        expected.pop(int(item_id), None)
            head = session.get(LedgerHead, tenant)
            if head is not None and (head.number != number or head.hash != prev):
                report.problems.append(f"the ledger ends at entry {number}, but its head says {head.number}: "
                                       "entries were removed from the end")
            rows = session.execute(
                select(Item.id, Item.sha256, Item.message_id, Mailbox.address, Blob.data)
                .join(Mailbox, Mailbox.id == Item.mailbox_id).outerjoin(Blob, Blob.sha256 == Item.sha256)
                .where(Item.tenant_id == tenant).order_by(Item.id).execution_options(yield_per=1000))
            seen: set[int] = set()
            for item_id, digest, message_id, address, data in rows:
                seen.add(item_id)
                report.items_checked += 1
                where = f"item {item_id} ({address}, <{message_id}>)"
                if item_id not in expected:
                    report.problems.append(f"{where} is not in the ledger: added outside Tenantry")
                    continue
                if expected[item_id] != digest:
                    report.problems.append(f"{where}: its recorded digest was changed")
                if data is None:
                    report.problems.append(f"{where}: its bytes are missing")
                elif hashlib.sha256(data).hexdigest() != expected[item_id]:
                    report.problems.append(f"{where}: its bytes were changed")
            for item_id in sorted(set(expected) - seen):
                report.problems.append(f"item {item_id} was removed without a ledger entry")
        return report
