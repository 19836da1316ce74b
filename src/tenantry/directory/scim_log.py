"""The SCIM request log: every inbound SCIM write of a tenant — who, what, the result — kept N days.

Seed 003's "provisioning report in the app": what an identity provider asked this app to do and how it was
answered, so an administrator can see why Entra ID reports a failure. One row per write (POST, PUT, PATCH,
DELETE; one per operation of a Bulk request), failures included. The row is written after the answer is
known, in a short transaction of its own; writing it never fails or holds up the SCIM write (``record`` never
raises: what it could not store goes to the Python log). Kept ``TENANTRY_SCIM_LOG_DAYS`` days: a tenant's
expired rows go on its first write of the hour, and the scheduler sweeps every tenant daily.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any, cast

import orjson
from sqlalchemy import Table, delete, insert, or_, select

from tenantry.core.clock import as_utc, utcnow
from tenantry.core.db import Database, WriterBusy
from tenantry.core.errors import Invalid
from tenantry.directory.models import ScimRequestLog
from tenantry.directory.results import ScimLogRow
from tenantry.protocols.scim.summary import names

log = logging.getLogger(__name__)

METHODS = ("POST", "PUT", "PATCH", "DELETE", "GET")
OUTCOMES = ("success", "failure")
MAX_PAGE = 1000
# The columns' sizes (models.ScimRequestLog): what is longer is cut, ending in "…".
_SIZES = {"request_id": 36, "token_id": 36, "token_name": 128, "client_ip": 64, "user_agent": 256, "method": 8,
          "resource_type": 64, "resource_id": 64, "external_id": 512, "user_name": 512, "display_name": 512,
          "operation": 512, "scim_type": 32, "detail": 1024}
_ERROR_BODY_MAX = 16_384   # of an error answer, read for its scimType and detail
# The most rows ``record_now`` writes on the caller's thread (the event loop); a Bulk request's thousand
# rows are ~35 ms of work, for a thread.
ROWS_AT_ONCE = 32


def _clip(value: str | None, size: int) -> str | None:
    if value is None:
        return None
    value = value.replace("\x00", "")   # PostgreSQL text cannot hold NUL (a resource id in a URL can)
    return value if len(value) <= size else value[: size - 1] + "…"


@dataclass
class ScimLogEntry:
    """One row of the log, as it is filled while the request runs."""

    tenant_id: str
    at: datetime
    request_id: str
    method: str
    status: int = 0                      # 0: not finished (an operation a Bulk request never reached)
    duration_ms: int = 0
    resource_type: str | None = None
    resource_id: str | None = None
    external_id: str | None = None
    user_name: str | None = None
    display_name: str | None = None
    operation: str | None = None
    bulk_index: int | None = None
    token_id: str | None = None
    token_name: str | None = None
    client_ip: str | None = None
    user_agent: str | None = None
    scim_type: str | None = None
    detail: str | None = None

    def describe(self, doc: Any, *, with_id: bool = False) -> None:
        """Take the names (externalId, userName, displayName) of a body or a stored resource; ``with_id``: and
        its id, for what the store returned (a body's own ``id`` is the client's word, not the resource's)."""
        external_id, user_name, display_name = names(doc)
        self.external_id = external_id or self.external_id
        self.user_name = user_name or self.user_name
        self.display_name = display_name or self.display_name
        if with_id and isinstance(doc, dict) and isinstance(doc.get("id"), str):
            self.resource_id = doc["id"]

    def fail(self, status: int, scim_type: str | None, detail: str | None) -> None:
        self.status, self.scim_type, self.detail = status, scim_type, detail

    def row(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = _clip(value, _SIZES[f.name]) if f.name in _SIZES else value
        out["at"] = as_utc(self.at)
        return out

    def brief(self) -> str:
        return (f"{self.method} {self.resource_type or '?'} {self.resource_id or self.user_name or ''} "
                f"→ {self.status}").strip()


@dataclass
class ScimRequestRecord:
    """What one HTTP request to the SCIM endpoint leaves in the log, filled by the router as it runs.

    It is recorded when the credential was a SCIM token of the tenant (``authenticated``) and the request
    was a write (``write``), or reads are logged too. A Bulk request leaves one row per operation it ran,
    and one for itself when it failed as a whole.
    """

    entry: ScimLogEntry
    write: bool = False
    bulk: bool = False
    authenticated: bool = False
    operations: list[ScimLogEntry] = field(default_factory=list)

    @classmethod
    def start(cls, method: str, client_ip: str | None = None, user_agent: str | None = None) -> ScimRequestRecord:
        return cls(ScimLogEntry(tenant_id="", at=utcnow(), request_id=str(uuid.uuid4()), method=method,
                                client_ip=client_ip, user_agent=user_agent))

    def credential(self, tenant: str, token_id: str, token_name: str) -> None:
        self.entry.tenant_id, self.entry.token_id, self.entry.token_name = tenant, token_id, token_name
        self.authenticated = True

    def target(self, resource_type: str | None, resource_id: str | None = None, *, write: bool) -> None:
        self.entry.resource_type, self.entry.resource_id, self.write = resource_type, resource_id, write

    def operation(self, index: int, method: str) -> ScimLogEntry:
        """A new row for operation ``index`` (1-based) of this Bulk request."""
        base = self.entry
        op = ScimLogEntry(tenant_id=base.tenant_id, at=utcnow(), request_id=base.request_id, method=method,
                          bulk_index=index, token_id=base.token_id, token_name=base.token_name,
                          client_ip=base.client_ip, user_agent=base.user_agent)
        self.operations.append(op)
        return op

    def finish(self, status: int, error_body: bytes, duration_ms: int) -> list[ScimLogEntry]:
        """The rows to store, once the answer's status (and, for an error, its body) is known."""
        done = [op for op in self.operations if op.status]
        if self.bulk and status < 400:
            return done
        entry = self.entry
        entry.status, entry.duration_ms = status, duration_ms
        if status >= 400 and entry.detail is None:
            entry.scim_type, entry.detail = error_fields(error_body)
        return [*done, entry]


def error_fields(body: bytes) -> tuple[str | None, str | None]:
    """``scimType`` and ``detail`` of an RFC 7644 §3.12 error body (or the admin API's {"error","message"})."""
    try:
        doc = orjson.loads(body[:_ERROR_BODY_MAX]) if body else None
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(doc, dict):
        return None, None
    scim_type, detail = doc.get("scimType"), doc.get("detail", doc.get("message"))
    return (scim_type if isinstance(scim_type, str) else None), (detail if isinstance(detail, str) else None)


_INSERT = insert(ScimRequestLog)   # built once: building it cost as much as running it
_TABLE = cast(Table, ScimRequestLog.__table__)


class ScimLog:
    """Stores, lists and purges the SCIM request log."""

    def __init__(self, db: Database, *, keep_days: int = 30, purge_every: float = 3600.0) -> None:
        self.db = db
        self.keep_days = keep_days
        self.purge_every = purge_every
        self._purged: dict[str, float] = {}   # tenant → time.monotonic() of its last purge in this process

    def record(self, entries: Sequence[ScimLogEntry], *, purge: bool = True) -> None:
        """Store ``entries``; purge a tenant's expired rows at most every ``purge_every`` seconds. Never raises:
        the SCIM write they describe has been answered, and a log that cannot be written must not undo it."""
        if not entries:
            return
        try:
            self._write(entries, purge)
        except Exception:  # noqa: BLE001 - whatever the database says, the write stands; the log says what is lost
            self._lost(entries)

    def can_record_now(self, entries: Sequence[ScimLogEntry]) -> bool:
        """Whether ``record_now`` may store ``entries`` on the caller's thread (the event loop): SQLite, at most
        ``ROWS_AT_ONCE`` rows and no purge due. A hop to a thread and back cost more than the row."""
        return self.db.is_sqlite and len(entries) <= ROWS_AT_ONCE and not self._due(entries, time.monotonic())

    def record_now(self, entries: Sequence[ScimLogEntry]) -> None:
        """``record`` without the purge, for a caller inside ``Database.at_once``: WriterBusy (nothing written)
        when the write lock is taken; any other failure is logged as ``record`` logs it."""
        try:
            self._write(entries, purge=False)
        except WriterBusy:
            raise
        except Exception:  # noqa: BLE001 - as record: the write stands
            self._lost(entries)

    @staticmethod
    def _lost(entries: Sequence[ScimLogEntry]) -> None:
        log.exception("SCIM request log: could not record %s",
                      "; ".join(f"tenant {e.tenant_id}: {e.brief()}" for e in entries[:20]))

    def _due(self, entries: Sequence[ScimLogEntry], now: float) -> list[str]:
        return [t for t in dict.fromkeys(e.tenant_id for e in entries)
                if now - self._purged.get(t, -self.purge_every) >= self.purge_every]

    def _write(self, entries: Sequence[ScimLogEntry], purge: bool) -> None:
        now = time.monotonic()
        due = self._due(entries, now) if purge else []
        if not due:   # the common case: rows only, in the cheapest transaction the database has
            self.db.insert_rows(_TABLE, [e.row() for e in entries])
            return
        cutoff = utcnow() - timedelta(days=self.keep_days)
        # The process's writer queue on SQLite (fair, no busy-waiting); nothing on PostgreSQL.
        with self.db.writing(), self.db.session() as session:
            session.connection().execute(_INSERT, [e.row() for e in entries])   # Core: no ORM bulk path
            for tenant in due:
                session.execute(delete(ScimRequestLog).where(ScimRequestLog.tenant_id == tenant,
                                                              ScimRequestLog.at < cutoff))
        for tenant in due:
            self._purged[tenant] = now

    def purge(self, tenant: str | None = None, now: datetime | None = None) -> int:
        """Delete the rows older than ``keep_days`` (of one tenant, or of all); the number deleted. Idempotent."""
        cutoff = (now or utcnow()) - timedelta(days=self.keep_days)
        stmt = delete(ScimRequestLog).where(ScimRequestLog.at < cutoff)
        if tenant is not None:
            stmt = stmt.where(ScimRequestLog.tenant_id == tenant)
        with self.db.writing(), self.db.session() as session:
            deleted = int(session.execute(stmt).rowcount or 0)  # type: ignore[attr-defined]
        if tenant is not None:
            self._purged[tenant] = time.monotonic()
        return deleted

    def entries(self, tenant: str, *, since: datetime | None = None, until: datetime | None = None,
                method: str | None = None, resource_type: str | None = None, resource_id: str | None = None,
                outcome: str | None = None, status: int | None = None, token: str | None = None,
                name: str | None = None, offset: int = 0, limit: int = 100) -> list[ScimLogRow]:
        """The tenant's rows, newest first, filtered; at most ``MAX_PAGE`` a page.

        ``outcome``: success (status below 400) or failure; ``token``: a token's id or name; ``name``: equal to
        the row's userName, displayName or externalId; ``since`` inclusive, ``until`` exclusive.
        """
        t = ScimRequestLog
        stmt = select(t).where(t.tenant_id == tenant)
        if method:
            if method.upper() not in METHODS:
                raise Invalid(f"method is one of {', '.join(METHODS)}, not {method[:16]!r}")
            stmt = stmt.where(t.method == method.upper())
        if outcome:
            if outcome not in OUTCOMES:
                raise Invalid(f"outcome is success or failure, not {outcome[:16]!r}")
            stmt = stmt.where(t.status < 400 if outcome == "success" else t.status >= 400)
        if since is not None:
            stmt = stmt.where(t.at >= as_utc(since))
        if until is not None:
            stmt = stmt.where(t.at < as_utc(until))
        if resource_type:
            stmt = stmt.where(t.resource_type == resource_type)
        if resource_id:
            stmt = stmt.where(t.resource_id == resource_id)
        if status is not None:
            stmt = stmt.where(t.status == status)
        if token:
            stmt = stmt.where(or_(t.token_id == token, t.token_name == token))
        if name:
            stmt = stmt.where(or_(t.user_name == name, t.display_name == name, t.external_id == name))
        stmt = stmt.order_by(t.at.desc(), t.id.desc()).offset(max(0, offset)).limit(max(0, min(limit, MAX_PAGE)))
        with self.db.session() as session:
            return [_entry(r) for r in session.scalars(stmt)]


def _entry(row: ScimRequestLog) -> ScimLogRow:
    return ScimLogRow(
        id=row.id, at=as_utc(row.at).isoformat(), request_id=row.request_id, bulk_index=row.bulk_index,
        token_id=row.token_id, token_name=row.token_name, client_ip=row.client_ip, user_agent=row.user_agent,
        method=row.method, resource_type=row.resource_type, resource_id=row.resource_id,
        external_id=row.external_id, user_name=row.user_name, display_name=row.display_name,
        operation=row.operation, status=row.status, outcome="success" if row.status < 400 else "failure",
        scim_type=row.scim_type, detail=row.detail, duration_ms=row.duration_ms)


__all__ = ["ScimLog", "ScimLogEntry", "ScimRequestRecord", "error_fields"]
