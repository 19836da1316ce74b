"""Litigation holds, retention policies, and every path by which an archived item can be deleted.

The rules (Purview's, docs/compliance.md):
- A hold always wins: a held item survives every deletion path — user or admin delete, retention, mailbox
  removal, re-import. Deleting a held item moves it to the mailbox's Purges folder, where eDiscovery still
  finds it.
- Retention wins over deletion: an item within a retention period is also kept in Purges when deleted.
- Among retention periods the longest wins.
- Among deletion periods, a policy naming the item's mailbox or folder or kind explicitly wins over one that
  applies to everything; among equals the shortest deletion wins. Deletion never comes before retention ends.
Every hold, release, deletion and purge is written to the ledger (``ledger.py``).
"""

from __future__ import annotations

import functools
import json
import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ParamSpec, Protocol, TypeVar

from sqlalchemy import column, delete, func, select, table, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from tenantry.archive import ledger
from tenantry.archive.models import (
    Blob,
    Case,
    DeletionReason,
    Folder,
    Hold,
    Item,
    LedgerAction,
    Mailbox,
    RetentionPolicy,
)
from tenantry.archive.results import DeletionCounts, HoldInfo, PolicyInfo, RetentionCounts
from tenantry.core.batches import chunks
from tenantry.core.clock import as_utc, utcnow
from tenantry.core.db import FOR_WRITE, Database, add_named, rolled_back_by_server
from tenantry.core.errors import Conflict, Invalid, NotFound
from tenantry.core.results import plain
from tenantry.protocols.query.ast import Node

log = logging.getLogger(__name__)

PURGES = "Recoverable Items/Purges"
PURGES_KEEP_DAYS = 14  # what was deleted while unprotected… is deleted at once; this is for released items


P = ParamSpec("P")
T = TypeVar("T")


def _retried(method: Callable[P, T]) -> Callable[P, T]:
    """A deletion run again (twice at most) when PostgreSQL rolled its transaction back to end a deadlock or a
    serialization failure — two deletions of overlapping items or mailboxes lock them in different orders:
    nothing of it was kept, and its index work runs only after a commit."""

    @functools.wraps(method)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        for attempt in range(3):
            try:
                return method(*args, **kwargs)
            except DBAPIError as exc:
                if attempt == 2 or not rolled_back_by_server(exc):
                    raise
                log.info("%s: rolled back by the database (%s); run again", method.__name__, exc.orig)
        raise AssertionError("unreachable")

    return run


class Index(Protocol):
    def item_ids(self, tenant: str, node: Node, users: Sequence[str] | None = None) -> set[int]: ...


@dataclass(frozen=True)
class Protection:
    held_by: tuple[str, ...]          # hold ids
    retain_until: datetime | None
    delete_at: datetime | None        # when retention deletes it (None: never)

    @property
    def held(self) -> bool:
        return bool(self.held_by)

    def protected(self, now: datetime) -> bool:
        return self.held or (self.retain_until is not None and now < self.retain_until)


@dataclass(frozen=True)
class _ItemFacts:
    id: int
    user_id: str
    folder: str
    kind: str
    sent_at: datetime


@dataclass
class _Changes:
    """What a deletion leaves to do: the index's work, after its transaction commits; the bytes of the purged items
    (``digests``), at the end of the transaction (``drop_bytes``)."""

    moved: list[int]
    purged: list[int]
    digests: set[str] = field(default_factory=set)


class IndexSync(Protocol):
    def reindex(self, tenant: str, item_ids: Sequence[int]) -> int: ...
    def remove(self, item_ids: Sequence[int]) -> None: ...
    def flush(self) -> None: ...


class Directory(Protocol):
    """The part of the directory the archive asks: which of these ids are users of the tenant."""

    def users_by_id(self, tenant_id: str, user_ids: list[str]) -> Sequence[Any]: ...


class ComplianceService:
    def __init__(self, db: Database, index: Index | None, parse_query: Callable[[str], Node],
                 indexer: IndexSync | None = None, directory: Directory | None = None) -> None:
        self.db = db
        self.index = index
        self.parse_query = parse_query
        self.indexer = indexer
        self.directory = directory

    def require_users(self, tenant: str, user_ids: Iterable[str]) -> None:
        """NotFound unless every id is a user of ``tenant``: a directory user, or the owner of a mailbox here.

        A mailbox outlives its user (a departed employee's archive stays held), so its owner counts. An id of
        another tenant is refused with the same words as an id that exists nowhere: holds, custodians and
        policies are rules of this tenant, and the answer must not tell what exists elsewhere.
        """
        wanted = list(dict.fromkeys(user_ids))
        if not wanted:
            return
        known: set[str] = set()
        with self.db.session() as session:
            for batch in chunks(wanted):
                known.update(session.scalars(select(Mailbox.user_id).where(
                    Mailbox.tenant_id == tenant, Mailbox.user_id.in_(batch))))
        rest = [u for u in wanted if u not in known]
        if rest and self.directory is not None:
            known.update(u.id for u in self.directory.users_by_id(tenant, rest))
        missing = [u for u in wanted if u not in known]
        if missing:
            raise NotFound(f"no user or mailbox {missing[0]!r} in this tenant")

    def _sync(self, tenant: str, changes: _Changes) -> None:
        if self.indexer is None:
            return
        if changes.moved:
            self.indexer.reindex(tenant, changes.moved)   # their folder is now Purges
        if changes.purged:
            self.indexer.remove(changes.purged)

    # -- holds ------------------------------------------------------------------------------

    def place_hold(self, tenant: str, *, name: str, actor: str, user_id: str | None = None,
                   case_id: str | None = None, query: str | None = None,
                   duration_days: int | None = None) -> HoldInfo:
        if (user_id is None) == (case_id is None):
            raise Invalid("a hold is on one mailbox (user) or in one case")
        if user_id is not None and query:
            raise Invalid("a query-based hold belongs to a case (its custodians' mailboxes)")
        if duration_days is not None and duration_days <= 0:
            raise Invalid("duration_days must be positive (or absent for an indefinite hold)")
        if query:
            self.parse_query(query)  # a hold whose query cannot run would protect nothing: refuse it now
            if self.index is None:
                raise Invalid("query-based holds need the search index")
        if user_id is not None:
            self.require_users(tenant, [user_id])
        hold = Hold(id=str(uuid.uuid4()), tenant_id=tenant, name=name, user_id=user_id, case_id=case_id,
                    query=query or None, duration_days=duration_days, created_by=actor, created_at=utcnow())
        with self.db.session() as session:
            if case_id is not None:
                case = session.get(Case, case_id)
                if case is None or case.tenant_id != tenant:
                    raise NotFound(f"no case {case_id}")
            session.add(hold)
            session.flush()
            info = _hold_info(hold)
            ledger.append(session, tenant, [(actor, LedgerAction.HOLD_PLACE, hold.id, plain(info))])
            return info

    def release_hold(self, tenant: str, hold_id: str, actor: str) -> HoldInfo:
        with self.db.writing(), self.db.session() as session:
            # Locked: of two releases at once one releases (one ledger entry), the other finds it released.
            hold = session.get(Hold, hold_id, with_for_update=FOR_WRITE)
            if hold is None or hold.tenant_id != tenant:
                raise NotFound(f"no hold {hold_id}")
            if hold.released_at is not None:
                raise Conflict(f"hold {hold_id} is already released")
            hold.released_at = utcnow()
            hold.released_by = actor
            ledger.append(session, tenant, [(actor, LedgerAction.HOLD_RELEASE, hold.id, {"name": hold.name})])
            return _hold_info(hold)

    def holds(self, tenant: str, *, active_only: bool = True, case_id: str | None = None) -> list[HoldInfo]:
        with self.db.session() as session:
            stmt = select(Hold).where(Hold.tenant_id == tenant)
            if active_only:
                stmt = stmt.where(Hold.released_at.is_(None))
            if case_id is not None:
                stmt = stmt.where(Hold.case_id == case_id)
            return [_hold_info(h) for h in session.scalars(stmt.order_by(Hold.created_at))]

    # -- retention policies ---------------------------------------------------------------------

    def create_policy(self, tenant: str, *, name: str, actor: str, retain_days: int | None = None,
                      delete_after_days: int | None = None, users: Sequence[str] = (),
                      folders: Sequence[str] = (), kinds: Sequence[str] = ()) -> PolicyInfo:
        if retain_days is None and delete_after_days is None:
            raise Invalid("a policy retains (retain_days), deletes (delete_after_days), or both")
        for value in (retain_days, delete_after_days):
            if value is not None and value <= 0:
                raise Invalid("days must be positive")
        self.require_users(tenant, users)
        policy = RetentionPolicy(id=str(uuid.uuid4()), tenant_id=tenant, name=name, retain_days=retain_days,
                                 delete_after_days=delete_after_days, users=json.dumps(list(users)),
                                 folders=json.dumps(list(folders)), kinds=json.dumps(list(kinds)), enabled=True,
                                 created_at=utcnow())
        with self.db.session() as session:
            add_named(session, policy, RetentionPolicy.name, RetentionPolicy.tenant_id, "retention policy")
            info = _policy_info(policy)
            ledger.append(session, tenant, [(actor, LedgerAction.RETENTION_CREATE, policy.id, plain(info))])
            return info

    def policies(self, tenant: str) -> list[PolicyInfo]:
        with self.db.session() as session:
            return [_policy_info(p) for p in session.scalars(
                select(RetentionPolicy).where(RetentionPolicy.tenant_id == tenant).order_by(RetentionPolicy.name))]

    def disable_policy(self, tenant: str, name: str, actor: str) -> None:
        with self.db.writing(), self.db.session() as session:
            policy = session.scalar(select(RetentionPolicy).where(RetentionPolicy.tenant_id == tenant,
                                                                  RetentionPolicy.name == name)
                                    .with_for_update(**FOR_WRITE))
            if policy is None:
                raise NotFound(f"no retention policy {name!r}")
            policy.enabled = False
            ledger.append(session, tenant, [(actor, LedgerAction.RETENTION_DISABLE, policy.id, {"name": name})])

    # -- protection of items --------------------------------------------------------------------

    def protection(self, tenant: str, item_ids: Iterable[int], now: datetime | None = None) -> dict[int, Protection]:
        now = now or utcnow()
        with self.db.session() as session:
            facts = self._facts(session, tenant, list(item_ids))
            return self._protection(session, tenant, facts, now)

    def _facts(self, session: Session, tenant: str, item_ids: list[int],
               progress: Callable[[int, int | None], None] | None = None) -> list[_ItemFacts]:
        out: list[_ItemFacts] = []
        for n, chunk in enumerate(chunks(item_ids, 900)):
            if progress is not None:
                progress(n * 900, len(item_ids))
            rows = session.execute(
                select(Item.id, Mailbox.user_id, Folder.name, Item.kind, Item.sent_at, Item.original_folder_id)
                .join(Mailbox, Mailbox.id == Item.mailbox_id).join(Folder, Folder.id == Item.folder_id)
                .where(Item.tenant_id == tenant, Item.id.in_(chunk)))
            originals: dict[int, str] = {}
            fetched = list(rows)
            wanted = {r[5] for r in fetched if r[5]}
            if wanted:
                names = dict(session.execute(select(Folder.id, Folder.name).where(Folder.id.in_(wanted))).all())
                originals = {r[0]: names.get(r[5], r[2]) for r in fetched if r[5]}
            for item_id, user_id, folder, kind, sent_at, _ in fetched:
                # Policies scoped to a folder still apply to its items after they were deleted to Purges.
                out.append(_ItemFacts(item_id, user_id, originals.get(item_id, folder), kind, as_utc(sent_at)))
        return out

    def _protection(self, session: Session, tenant: str, facts: list[_ItemFacts],
                    now: datetime) -> dict[int, Protection]:
        holds = list(session.scalars(select(Hold).where(Hold.tenant_id == tenant, Hold.released_at.is_(None))))
        policies = list(session.scalars(select(RetentionPolicy).where(RetentionPolicy.tenant_id == tenant,
                                                                      RetentionPolicy.enabled.is_(True))))
        from tenantry.archive.models import CaseCustodian

        custodians: dict[str, set[str]] = {}
        for h in holds:
            if h.case_id and h.case_id not in custodians:
                custodians[h.case_id] = set(session.scalars(
                    select(CaseCustodian.user_id).where(CaseCustodian.case_id == h.case_id)))
        query_hits: dict[str, set[int]] = {}
        if self.indexer is not None and any(h.query for h in holds):
            self.indexer.flush()  # a query hold must see every item delivered so far
        for h in holds:
            if h.query and self.index is not None:
                query_hits[h.id] = self.index.item_ids(tenant, self.parse_query(h.query),
                                                       sorted(custodians.get(h.case_id or "", set())))
        out: dict[int, Protection] = {}
        for f in facts:
            held: list[str] = []
            for h in holds:
                if h.duration_days is not None and f.sent_at + timedelta(days=h.duration_days) <= now:
                    continue
                if _holds(h, f, custodians, query_hits):
                    held.append(h.id)
            out[f.id] = Protection(tuple(held), *_retention(f, policies))
        return out

    # -- deletion paths ---------------------------------------------------------------------------

    @_retried
    def delete_items(self, tenant: str, item_ids: Sequence[int], actor: str,
                     now: datetime | None = None) -> DeletionCounts:
        """A user's or admin's delete: protected items go to Purges, the rest are deleted for good."""
        now = now or utcnow()
        changes = _Changes([], [])
        item_ids = list(dict.fromkeys(item_ids))  # an id sent twice is one item: counted and logged once
        with self.db.session() as session:
            known = set(session.scalars(select(Item.id).where(Item.tenant_id == tenant, Item.id.in_(item_ids))))
            missing = [i for i in item_ids if i not in known]
            if missing:
                raise NotFound(f"no item {missing[0]}")
            counts = self._delete(session, tenant, list(item_ids), actor, now, DeletionReason.DELETE, changes)
            drop_bytes(session, changes.digests)
        self._sync(tenant, changes)
        return counts

    @_retried
    def remove_mailbox(self, tenant: str, user_id: str, actor: str, now: datetime | None = None) -> DeletionCounts:
        """Remove a user's mailbox: what is held or retained stays (an inactive mailbox); the rest goes."""
        now = now or utcnow()
        changes = _Changes([], [])
        with self.db.session() as session:
            # Locked first: a delivery into this mailbox (its items' foreign key) waits here, before it holds
            # anything this transaction will want (docs/ARCHITECTURE.md, "A deletion": the order of locks).
            mailbox = session.scalar(select(Mailbox).where(Mailbox.tenant_id == tenant, Mailbox.user_id == user_id)
                                     .with_for_update())
            if mailbox is None:
                raise NotFound(f"user {user_id} has no mailbox")
            ids = list(session.scalars(select(Item.id).where(Item.mailbox_id == mailbox.id, Item.deleted_at.is_(None))))
            counts = self._delete(session, tenant, ids, actor, now, DeletionReason.MAILBOX_REMOVE, changes)
            mailbox.removed_at = now
            remaining = session.scalar(select(func.count()).select_from(Item).where(Item.mailbox_id == mailbox.id))
            if not remaining:
                session.execute(delete(Folder).where(Folder.mailbox_id == mailbox.id))
                session.delete(mailbox)
            ledger.append(session, tenant, [(actor, LedgerAction.MAILBOX_REMOVE, user_id,
                                             {**plain(counts), "kept": remaining or 0})])
            drop_bytes(session, changes.digests)
        self._sync(tenant, changes)
        return counts

    @_retried
    def apply_retention(self, tenant: str, now: datetime | None = None, actor: str = "retention",
                        progress: Callable[[int, int | None], None] | None = None) -> RetentionCounts:
        """The scheduled job: delete what retention says is due, and empty Purges of what nothing protects.

        Idempotent: a second run at the same time finds nothing to do. ``progress(done, total)`` counts the
        items examined; it is called while the transaction has only read, so its own write never waits on ours.
        """
        now = now or utcnow()
        kept_by_hold = 0
        changes = _Changes([], [])
        with self.db.session() as session:
            ids = list(session.scalars(select(Item.id).where(Item.tenant_id == tenant)))
            facts = self._facts(session, tenant, ids, progress)
            protection = self._protection(session, tenant, facts, now)
            deleted_at: dict[int, datetime] = {
                i: d for i, d in session.execute(select(Item.id, Item.deleted_at).where(
                    Item.tenant_id == tenant, Item.deleted_at.is_not(None))).all() if d is not None}
            due: list[int] = []
            purge: list[int] = []
            for f in facts:
                p = protection[f.id]
                if f.id in deleted_at:
                    # In Purges: kept while anything protects it, and for PURGES_KEEP_DAYS after deletion.
                    if not p.protected(now) and as_utc(deleted_at[f.id]) + timedelta(days=PURGES_KEEP_DAYS) <= now:
                        purge.append(f.id)
                    elif p.held:
                        kept_by_hold += 1
                elif p.delete_at is not None and p.delete_at <= now:
                    if p.held:
                        kept_by_hold += 1
                    else:
                        due.append(f.id)
            if due:
                self._purge(session, tenant, due, actor, DeletionReason.RETENTION, changes)
            if purge:
                self._purge(session, tenant, purge, actor, DeletionReason.PURGES_EXPIRE, changes)
            counts = RetentionCounts(deleted=len(due), purged_from_purges=len(purge), kept_by_hold=kept_by_hold)
            ledger.append(session, tenant, [(actor, LedgerAction.RETENTION_APPLY, "",
                                             {**plain(counts), "at": now.isoformat()})])
            drop_bytes(session, changes.digests)
        self._sync(tenant, changes)
        if progress is not None:
            progress(len(ids), len(ids))
        return counts

    def _delete(self, session: Session, tenant: str, ids: list[int], actor: str, now: datetime,
                reason: DeletionReason, changes: _Changes) -> DeletionCounts:
        facts = self._facts(session, tenant, ids)
        protection = self._protection(session, tenant, facts, now)
        keep = [f.id for f in facts if protection[f.id].protected(now)]
        gone = [f.id for f in facts if not protection[f.id].protected(now)]
        if keep:
            self._to_purges(session, tenant, keep, actor, now)
            changes.moved.extend(keep)
            ledger.append(session, tenant, [(actor, LedgerAction.DELETE_TO_PURGES, "",
                                             {"items": sorted(keep), "reason": reason})])
        if gone:
            self._purge(session, tenant, gone, actor, reason, changes)
        return DeletionCounts(moved_to_purges=len(keep), deleted=len(gone))

    @staticmethod
    def _to_purges(session: Session, tenant: str, ids: list[int], actor: str, now: datetime) -> None:
        rows = session.execute(select(Item.id, Item.mailbox_id, Item.folder_id, Item.deleted_at)
                               .where(Item.id.in_(ids))).all()
        purges: dict[str, str] = {}
        for item_id, mailbox_id, folder_id, deleted_at in rows:
            if deleted_at is not None:
                continue  # already in Purges
            if mailbox_id not in purges:
                folder = session.scalar(select(Folder).where(Folder.mailbox_id == mailbox_id, Folder.name == PURGES))
                if folder is None:
                    folder = Folder(id=str(uuid.uuid4()), mailbox_id=mailbox_id, name=PURGES, created_at=now)
                    session.add(folder)
                    session.flush()
                purges[mailbox_id] = folder.id
            session.execute(update(Item).where(Item.id == item_id).values(
                deleted_at=now, deleted_by=actor, original_folder_id=folder_id, folder_id=purges[mailbox_id]))

    @staticmethod
    def _purge(session: Session, tenant: str, ids: list[int], actor: str, reason: DeletionReason,
               changes: _Changes) -> None:
        """Delete for good; the bytes no other item points to any more go at the end of the transaction."""
        changes.purged.extend(ids)
        for chunk in chunks(ids, 900):
            changes.digests.update(session.scalars(delete(Item).where(Item.id.in_(chunk)).returning(Item.sha256)))
        ledger.append(session, tenant, [(actor, LedgerAction.PURGE, "", {"items": sorted(ids), "reason": reason})])


# Export files handed in before they were kept on disk are blobs too (connectors/uploads.py moves one out when a
# run reads it); a table of the connectors', named here rather than imported: the archive does not import them.
_EXPORT_FILES = table("connector_export_files", column("sha256"))


def drop_bytes(session: Session, digests: Iterable[str]) -> int:
    """Delete the stored bytes (blobs) of ``digests`` that no item points to any more — the last copy of a message
    was purged — nor an export file; the number deleted. Bytes another item still points to stay. Called once, as
    the last thing of a deletion's transaction.

    The rows are locked first, in digest order. A delivery that points an item at the same bytes locks them too
    (``ArchiveService._deliver``), so on PostgreSQL one waits for the other: this transaction then sees the
    delivered item and keeps the bytes, or the delivery finds them deleted and writes them again. The look-up is
    a statement of its own, after the lock, so that it sees what the delivery committed, and only rows this
    transaction locked are deleted. A delivery and a deletion take their locks in one order — a removed mailbox
    (the deletion ``FOR UPDATE`` first, the delivery ``FOR KEY SHARE`` first), items, the tenant's ledger head,
    then the bytes by digest — so neither waits for the other in a cycle. Two deletions of overlapping items or
    mailboxes can still (as before) each wait for the other; PostgreSQL then rolls one back, and ``_retried`` runs
    it again. On SQLite one transaction writes at a time.
    """
    dropped = 0
    for chunk in chunks(sorted(set(digests))):
        locked = set(session.scalars(select(Blob.sha256).where(Blob.sha256.in_(chunk)).order_by(Blob.sha256)
                                     .with_for_update()))
        referenced = set(session.scalars(select(Item.sha256).where(Item.sha256.in_(chunk)).distinct()))
        referenced.update(session.scalars(select(_EXPORT_FILES.c.sha256).where(_EXPORT_FILES.c.sha256.in_(chunk))))
        unreferenced = sorted(locked - referenced)
        if unreferenced:
            dropped += len(session.scalars(delete(Blob).where(Blob.sha256.in_(unreferenced))
                                           .returning(Blob.sha256)).all())
    return dropped


def _holds(h: Hold, f: _ItemFacts, custodians: dict[str, set[str]], query_hits: dict[str, set[int]]) -> bool:
    if h.user_id is not None:
        return h.user_id == f.user_id
    in_case = f.user_id in custodians.get(h.case_id or "", set())
    return in_case and (h.query is None or f.id in query_hits.get(h.id, set()))


def _applies(values: str, value: str) -> tuple[bool, bool]:
    """(applies, explicitly): an empty scope applies to everything, implicitly."""
    scope = json.loads(values)
    if not scope:
        return True, False
    return value in scope, True


def _retention(f: _ItemFacts, policies: list[RetentionPolicy]) -> tuple[datetime | None, datetime | None]:
    retain_until: datetime | None = None
    deletions: list[tuple[bool, datetime]] = []
    for p in policies:
        checks = [_applies(p.users, f.user_id), _applies(p.folders, f.folder), _applies(p.kinds, f.kind)]
        if not all(applies for applies, _ in checks):
            continue
        explicit = any(exp for _, exp in checks)
        if p.retain_days is not None:
            until = f.sent_at + timedelta(days=p.retain_days)
            retain_until = until if retain_until is None or until > retain_until else retain_until  # longest wins
        if p.delete_after_days is not None:
            deletions.append((explicit, f.sent_at + timedelta(days=p.delete_after_days)))
    delete_at: datetime | None = None
    if deletions:
        explicit_ones = [d for exp, d in deletions if exp]
        delete_at = min(explicit_ones or [d for _, d in deletions])  # explicit wins; then the shortest
        if retain_until is not None and delete_at < retain_until:
            delete_at = retain_until  # retention wins over deletion
    return retain_until, delete_at


def _hold_info(h: Hold) -> HoldInfo:
    return HoldInfo(id=h.id, name=h.name, user_id=h.user_id, case_id=h.case_id, query=h.query,
                    duration_days=h.duration_days, created_by=h.created_by,
                    created_at=as_utc(h.created_at).isoformat(),
                    released_at=as_utc(h.released_at).isoformat() if h.released_at else None)


def _policy_info(p: RetentionPolicy) -> PolicyInfo:
    return PolicyInfo(id=p.id, name=p.name, retain_days=p.retain_days, delete_after_days=p.delete_after_days,
                      users=json.loads(p.users), folders=json.loads(p.folders), kinds=json.loads(p.kinds),
                      enabled=p.enabled)
