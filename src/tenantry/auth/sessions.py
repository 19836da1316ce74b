"""Browser sessions of the console: created at sign-in, found by their cookie, ended by sign-out, by the idle
timeout (``TENANTRY_SESSION_IDLE_MINUTES``), by the absolute one (``TENANTRY_SESSION_ABSOLUTE_HOURS``), by the
operator (``tenantry admin sessions --revoke``), or when their user is no longer an active directory user.

Each session carries its CSRF token (the synchronizer token every unsafe request made with the cookie must send
back). ``last_seen_at`` is written at most once a minute per session, so reading pages does not write the
database at every request; the idle timeout is exact to that minute.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update

from tenantry.auth.cookies import Signer, sha256_hex
from tenantry.auth.models import ConsoleSession
from tenantry.core.clock import as_utc
from tenantry.core.db import Database

METHODS = ("password", "oidc")
TOUCH_EVERY = timedelta(minutes=1)
KEEP_ENDED = timedelta(days=1)     # ended sessions stay this long (the operator may look), then are swept


@dataclass(frozen=True)
class SessionUser:
    """This browser session belongs to directory user ``user_id`` of ``tenant``, signed in by ``method``
    (``password`` or ``oidc``). ``session_id`` names the session (the SHA-256 of its cookie's secret: it signs
    nobody in); ``expires_at`` is when it ends if unused (the idle timeout, never past the absolute end)."""

    tenant: str
    user_id: str
    method: str
    session_id: str
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True)
class SessionInfo:
    """A session as the operator lists it."""

    id: str
    tenant: str
    user_id: str
    method: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    active: bool


@dataclass(frozen=True)
class SessionPolicy:
    idle: timedelta = timedelta(minutes=30)
    absolute: timedelta = timedelta(hours=12)


class Sessions:
    def __init__(self, db: Database, signer: Signer, policy: SessionPolicy, now: Callable[[], datetime],
                 is_active: Callable[[str, str], bool]) -> None:
        self.db = db
        self.signer = signer
        self.policy = policy
        self.now = now
        self.is_active = is_active   # (tenant, user id) → still an active directory user of the tenant

    def create(self, tenant: str, user_id: str, method: str) -> tuple[str, SessionUser]:
        """A new session: (the cookie's value, the session). Always a new id: a session is never carried over
        from before sign-in (fixation)."""
        if method not in METHODS:
            raise ValueError(f"unknown sign-in method {method!r}")
        secret, cookie = self.signer.new()
        now = self.now()
        row = ConsoleSession(id=sha256_hex(secret), tenant_id=tenant, user_id=user_id, method=method,
                             csrf_token=secrets.token_urlsafe(32), created_at=now,
                             expires_at=now + self.policy.absolute, last_seen_at=now)
        with self.db.session() as session:
            session.add(row)
        return cookie, self._user(row, now)

    def find(self, cookie: str | None) -> SessionUser | None:
        """The live session of this cookie value, or None (no cookie, a forged one, ended, or its user gone)."""
        secret = self.signer.verify(cookie)
        if secret is None:
            return None
        now = self.now()
        with self.db.session() as session:
            row = session.get(ConsoleSession, sha256_hex(secret))
        if row is None or not self._live(row, now) or not self.is_active(row.tenant_id, row.user_id):
            return None
        if now - as_utc(row.last_seen_at) >= TOUCH_EVERY:
            with self.db.session() as session:
                session.execute(update(ConsoleSession).where(ConsoleSession.id == row.id)
                                .values(last_seen_at=now))
            row.last_seen_at = now
        return self._user(row, now)

    def _live(self, row: ConsoleSession, now: datetime) -> bool:
        return (row.revoked_at is None and now < as_utc(row.expires_at)
                and now < as_utc(row.last_seen_at) + self.policy.idle)

    def _user(self, row: ConsoleSession, now: datetime) -> SessionUser:
        ends = min(as_utc(row.expires_at), as_utc(row.last_seen_at) + self.policy.idle)
        return SessionUser(row.tenant_id, row.user_id, row.method, row.id, row.csrf_token, ends)

    def revoke(self, session_id: str, tenant: str | None = None) -> bool:
        """End one session (sign-out, the operator); True if it was live."""
        where = [ConsoleSession.id == session_id, ConsoleSession.revoked_at.is_(None)]
        if tenant is not None:
            where.append(ConsoleSession.tenant_id == tenant)
        with self.db.session() as session:
            done = session.execute(update(ConsoleSession).where(*where).values(revoked_at=self.now()))
        return bool(getattr(done, "rowcount", 0))

    def revoke_user(self, tenant: str, user_id: str, method: str | None = None) -> int:
        """End every session of a user (of one method), e.g. when the operator sets a new password."""
        where = [ConsoleSession.tenant_id == tenant, ConsoleSession.user_id == user_id,
                 ConsoleSession.revoked_at.is_(None)]
        if method is not None:
            where.append(ConsoleSession.method == method)
        with self.db.session() as session:
            done = session.execute(update(ConsoleSession).where(*where).values(revoked_at=self.now()))
        return int(getattr(done, "rowcount", 0))

    def revoke_tenant(self, tenant: str, method: str) -> int:
        """End every session of a tenant signed in by ``method`` (its single sign-on removed)."""
        with self.db.session() as session:
            done = session.execute(update(ConsoleSession).where(
                ConsoleSession.tenant_id == tenant, ConsoleSession.method == method,
                ConsoleSession.revoked_at.is_(None)).values(revoked_at=self.now()))
        return int(getattr(done, "rowcount", 0))

    def listed(self, tenant: str | None = None, *, include_ended: bool = False) -> list[SessionInfo]:
        now = self.now()
        stmt = select(ConsoleSession).order_by(ConsoleSession.created_at.desc(), ConsoleSession.id)
        if tenant is not None:
            stmt = stmt.where(ConsoleSession.tenant_id == tenant)
        with self.db.session() as session:
            rows = session.scalars(stmt).all()
        out = []
        for row in rows:
            live = self._live(row, now)
            if live or include_ended:
                out.append(SessionInfo(row.id, row.tenant_id, row.user_id, row.method, as_utc(row.created_at),
                                       as_utc(row.last_seen_at), self._user(row, now).expires_at,
                                       as_utc(row.revoked_at) if row.revoked_at else None, live))
        return out

    def sweep(self) -> int:
        """Delete sessions ended more than a day ago (expired, idle or revoked). Idempotent."""
        cutoff = self.now() - KEEP_ENDED
        with self.db.session() as session:
            done = session.execute(delete(ConsoleSession).where(or_(
                ConsoleSession.expires_at < cutoff, ConsoleSession.revoked_at < cutoff,
                ConsoleSession.last_seen_at < cutoff - self.policy.idle)))
        return int(getattr(done, "rowcount", 0))
