"""The archive's tamper-evident ledger, which is also its audit trail.

Every delivery batch, deletion, purge, hold, release, search and export appends an entry, in the same
transaction as the change it records. Entries are chained by SHA-256 per tenant. ``verify`` recomputes the
chain, replays it into the set of items that must exist with their digests, and compares that with the item
rows and the stored bytes: any change made outside Tenantry is named (SEC 17a-4(f)'s audit-trail alternative
to WORM storage).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, type_coerce, update
from sqlalchemy.orm import Session
from sqlalchemy.types import NullType

from tenantry.archive.models import Blob, Item, LedgerAction, LedgerEntry, LedgerHead, Mailbox
from tenantry.archive.results import AuditEntry, VerifyReport
from tenantry.core.clock import as_utc, utcnow
from tenantry.core.db import Database

GENESIS = "0" * 64
# Actions that add items to, or remove them from, what must exist.
ADDS = LedgerAction.DELIVER
REMOVES = (LedgerAction.PURGE,)


def entry_hash(prev: str, number: int, at: datetime, actor: str, action: str, target: str, detail: str) -> str:
    canonical = "\x1f".join([prev, str(number), as_utc(at).isoformat(), actor, action, target, detail])
    return hashlib.sha256(canonical.encode()).hexdigest()


def append(session: Session, tenant: str,
           records: Sequence[tuple[str, LedgerAction, str, dict[str, Any]]]) -> None:
    """Append (actor, action, target, detail) records to the tenant's chain, inside the caller's transaction.

    A detail is the JSON object the entry keeps (its shape is the action's), hashed as canonical JSON."""
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
        digest = entry_hash(prev, number, now, actor, str(action), target, text)
        rows.append({"tenant_id": tenant, "number": number, "at": now, "actor": actor, "action": str(action),
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
class _Findings:
    """What ``verify`` counts and finds as it reads."""

    entries: int = 0
    items_checked: int = 0
    problems: list[str] = field(default_factory=list)


class Ledger:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, tenant: str, actor: str, action: LedgerAction | str, target: str = "", **detail: Any) -> None:
        with self.db.session() as session:
            append(session, tenant, [(actor, LedgerAction(action), target, detail)])

    def entries(self, tenant: str, *, action: str | None = None, limit: int = 100, offset: int = 0,
                actor: str | None = None, since: datetime | None = None, until: datetime | None = None,
                target: str | None = None) -> list[AuditEntry]:
        """The tenant's entries, newest first. ``actor``: a part of the actor (a user name, a user, token or
        session id); ``since`` inclusive, ``until`` exclusive; ``target`` exact."""
        with self.db.session() as session:
            stmt = select(LedgerEntry).where(LedgerEntry.tenant_id == tenant)
            if action:
                stmt = stmt.where(LedgerEntry.action == action)
            if actor:
                stmt = stmt.where(LedgerEntry.actor.contains(actor, autoescape=True))
            if since is not None:
                stmt = stmt.where(LedgerEntry.at >= as_utc(since))
            if until is not None:
                stmt = stmt.where(LedgerEntry.at < as_utc(until))
            if target:
                stmt = stmt.where(LedgerEntry.target == target)
            rows = session.scalars(stmt.order_by(LedgerEntry.number.desc()).offset(offset).limit(limit))
            return [AuditEntry(number=e.number, at=as_utc(e.at).isoformat(), actor=e.actor, action=e.action,
                               target=e.target, detail=_detail(e.detail)) for e in rows]

    def verify(self, tenant: str) -> VerifyReport:
        """Recompute the chain and compare what it says must exist with the items and their bytes.

        Values are read raw and checked before use: a value of the wrong type or shape (a number where a
        string was, a detail that is not the JSON object written, a hash that is not 64 hex digits) was put
        there outside Tenantry, and is named as a problem like any other change — never a crash.
        """
        report = _Findings()
        expected: dict[int, str] = {}
        with self.db.session() as session:
            dialect = session.get_bind().dialect
            columns = [LedgerEntry.seq, LedgerEntry.number, LedgerEntry.at, LedgerEntry.actor, LedgerEntry.action,
                       LedgerEntry.target, LedgerEntry.detail, LedgerEntry.prev_hash, LedgerEntry.hash]
            # The dialect's own conversion, as the ORM would apply it, but where a bad value can be caught.
            read_at = LedgerEntry.__table__.c.at.type.dialect_impl(dialect).result_processor(dialect, None)
            prev: str | None = GENESIS
            number = 0
            entries: Any = session.execute(select(*[type_coerce(c, NullType()) for c in columns])
                                           .where(LedgerEntry.tenant_id == tenant).order_by(LedgerEntry.number))
            for seq, e_number, raw_at, actor, action, target, text, prev_hash, digest in entries:
                number += 1
                report.entries += 1
                name = f"ledger entry {e_number!r}" if _is_int(e_number) else f"ledger entry at position {number}"
                wrong = _wrong_types(e_number, raw_at, read_at, actor, action, target, text, prev_hash, digest)
                if wrong:
                    report.problems.append(f"{name} (row {seq}) holds values of the wrong type, so it was changed "
                                           f"outside Tenantry: {'; '.join(wrong)}")
                    prev = digest if _is_hash(digest) else None
                    continue
                at = read_at(raw_at) if read_at else raw_at
                assert isinstance(at, datetime)  # _wrong_types said so
                if e_number != number:
                    report.problems.append(f"ledger entry {number} is missing (next is {e_number})")
                    number = e_number
                if prev is not None and prev_hash != prev:
                    report.problems.append(f"ledger entry {e_number} does not follow entry {e_number - 1}")
                if entry_hash(prev_hash, e_number, at, actor, action, target, text) != digest:
                    report.problems.append(f"ledger entry {e_number} ({action}) was changed after it was written")
                prev = digest
                for problem in _replay(action, text, expected):
                    report.problems.append(f"ledger entry {e_number} ({action}): {problem}")
            head = session.execute(select(type_coerce(LedgerHead.number, NullType()),
                                          type_coerce(LedgerHead.hash, NullType()))
                                   .where(LedgerHead.tenant_id == tenant)).first()
            if head is not None and (head[0] != number or head[1] != prev):
                report.problems.append(f"the ledger ends at entry {number}, but its head says {head[0]!r}: "
                                       "entries were removed from the end")
            read_data = Blob.__table__.c.data.type.dialect_impl(dialect).result_processor(dialect, None)
            rows = session.execute(
                select(Item.id, type_coerce(Item.sha256, NullType()), type_coerce(Item.message_id, NullType()),
                       type_coerce(Mailbox.address, NullType()), type_coerce(Blob.data, NullType()))
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
                if data is not None and read_data is not None:
                    with contextlib.suppress(TypeError, ValueError):  # else left as it is, named below
                        data = read_data(data)
                if data is None:
                    report.problems.append(f"{where}: its bytes are missing")
                elif not isinstance(data, bytes | bytearray | memoryview):
                    report.problems.append(f"{where}: its bytes were replaced by a {type(data).__name__}")
                elif hashlib.sha256(data).hexdigest() != expected[item_id]:
                    report.problems.append(f"{where}: its bytes were changed")
            for item_id in sorted(set(expected) - seen):
                report.problems.append(f"item {item_id} was removed without a ledger entry")
        return VerifyReport(ok=not report.problems, entries=report.entries, items_checked=report.items_checked,
                            problems=report.problems)


def _detail(text: str) -> Any:
    """An entry's detail for reading; one changed outside Tenantry into something not JSON is shown as it is."""
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_hash(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _wrong_types(number: Any, raw_at: Any, read_at: Any, actor: Any, action: Any, target: Any, detail: Any,
                 prev_hash: Any, digest: Any) -> list[str]:
    """What of one raw ledger row is not of the type ``append`` writes."""
    wrong: list[str] = []
    if not _is_int(number):
        wrong.append(f"number is {number!r}, not a whole number")
    try:
        at = read_at(raw_at) if read_at is not None and raw_at is not None else raw_at
    except (TypeError, ValueError):
        at = None
    if not isinstance(at, datetime):
        wrong.append(f"at is {raw_at!r}, not a time")
    for field_name, value in (("actor", actor), ("action", action), ("target", target), ("detail", detail)):
        if not isinstance(value, str):
            wrong.append(f"{field_name} is {value!r}, not text")
    for field_name, value in (("prev_hash", prev_hash), ("hash", digest)):
        if not _is_hash(value):
            wrong.append(f"{field_name} is {value!r}, not 64 hexadecimal digits")
    return wrong


def _replay(action: str, text: str, expected: dict[int, str]) -> list[str]:
    """Apply one entry's detail to the items that must exist; what of it is not the shape ``append`` wrote."""
    if action != ADDS and action not in REMOVES:
        return []
    try:
        detail = json.loads(text)
    except ValueError:
        return [f"its detail is not JSON: {text[:80]!r}"]
    if not isinstance(detail, dict):
        return [f"its detail is a JSON {type(detail).__name__}, not an object"]
    items = detail.get("items", [])
    if not isinstance(items, list):
        return [f"its detail's items is {items!r}, not a list"]
    problems: list[str] = []
    for entry in items:
        if action == ADDS:
            if (isinstance(entry, list) and len(entry) == 2 and _item_id(entry[0]) is not None
                    and _is_hash(entry[1])):
                expected[_item_id(entry[0]) or 0] = entry[1]
                continue
            problems.append(f"its detail lists {entry!r}, not [item id, SHA-256]")
        else:
            item_id = _item_id(entry)
            if item_id is not None:
                expected.pop(item_id, None)
                continue
            problems.append(f"its detail lists {entry!r}, not an item id")
    return problems


def _item_id(value: Any) -> int | None:
    if _is_int(value):
        return int(value)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None
