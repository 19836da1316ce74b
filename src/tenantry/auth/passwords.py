"""Console passwords of directory users: argon2id hashes (argon2-cffi's defaults, RFC 9106's second recommended
option: t=3, m=64 MiB, p=4), and the lockout after ``TENANTRY_SIGNIN_MAX_FAILURES`` consecutive wrong passwords
for ``TENANTRY_SIGNIN_LOCKOUT_MINUTES``.

A check answers only yes or no, the same way for a user without a password, a wrong password and a locked
account, and takes one argon2 verification in every case (a dummy hash stands in where there is none), so
neither the answer nor its time tells which it was. The verification of a real account runs under the
account row's lock: attempts at one account are counted one after the other (parallel guesses cannot pass the
limit), and a locked account is not verified at all, so an account costs at most ``max_failures``
verifications under the lock per lockout period.
"""

from __future__ import annotations

import secrets
import unicodedata
from collections.abc import Callable
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select

from tenantry.auth.models import ConsolePassword
from tenantry.core.clock import as_utc
from tenantry.core.db import FOR_WRITE, Database
from tenantry.core.errors import Invalid

MIN_LENGTH = 12
MAX_LENGTH = 1024


def normalized(password: str) -> str:
    """The same password typed on any system: NFC (RFC 8265's OpaqueString profile asks for it)."""
    return unicodedata.normalize("NFC", password)


class Passwords:
    def __init__(self, db: Database, *, max_failures: int, lockout: timedelta, now: Callable[[], datetime],
                 hasher: PasswordHasher | None = None) -> None:
        self.db = db
        self.max_failures = max_failures
        self.lockout = lockout
        self.now = now
        self.hasher = hasher or PasswordHasher()
        self._dummy: str | None = None

    def set(self, tenant: str, user_id: str, password: str) -> None:
        """Set (or replace) the user's password; clears a lockout and the failure count."""
        if len(password) < MIN_LENGTH:
            raise Invalid(f"a console password has at least {MIN_LENGTH} characters")
        if len(password) > MAX_LENGTH:
            raise Invalid(f"a console password has at most {MAX_LENGTH} characters")
        digest = self.hasher.hash(normalized(password))
        now = self.now()
        with self.db.writing(), self.db.session() as session:
            row = session.get(ConsolePassword, user_id, with_for_update=FOR_WRITE)
            if row is None:
                session.add(ConsolePassword(user_id=user_id, tenant_id=tenant, password_hash=digest, failed_count=0,
                                            locked_until=None, changed_at=now))
            elif row.tenant_id != tenant:
                raise Invalid("this user is not of this tenant")
            else:
                row.password_hash, row.failed_count, row.locked_until, row.changed_at = digest, 0, None, now

    def remove(self, tenant: str, user_id: str) -> bool:
        with self.db.session() as session:
            done = session.execute(delete(ConsolePassword).where(ConsolePassword.tenant_id == tenant,
                                                                 ConsolePassword.user_id == user_id))
        return bool(getattr(done, "rowcount", 0))

    def unlock(self, tenant: str, user_id: str) -> bool:
        """Lift a lockout and forget the failures; False when the user has no console password."""
        with self.db.writing(), self.db.session() as session:
            row = session.get(ConsolePassword, user_id, with_for_update=FOR_WRITE)
            if row is None or row.tenant_id != tenant:
                return False
            row.failed_count, row.locked_until = 0, None
            return True

    def locked_until(self, tenant: str, user_id: str) -> datetime | None:
        with self.db.session() as session:
            row = session.scalar(select(ConsolePassword).where(ConsolePassword.tenant_id == tenant,
                                                               ConsolePassword.user_id == user_id))
        if row is None or row.locked_until is None or as_utc(row.locked_until) <= self.now():
            return None
        return as_utc(row.locked_until)

    def check(self, tenant: str, user_id: str | None, password: str) -> bool:
        """True when ``user_id`` has this console password and is not locked out. Counts a wrong password, and
        locks the account at the ``max_failures``-th in a row."""
        candidate = normalized(password)[:MAX_LENGTH + 1]
        if user_id is None:
            self._burn(candidate)
            return False
        verified = False
        with self.db.writing(), self.db.session() as session:
            row = session.get(ConsolePassword, user_id, with_for_update=FOR_WRITE)
            now = self.now()
            usable = (row is not None and row.tenant_id == tenant
                      and (row.locked_until is None or as_utc(row.locked_until) <= now))
            if row is not None and usable:
                verified = True
                if self._verify(row.password_hash, candidate):
                    row.failed_count, row.locked_until = 0, None
                    if self.hasher.check_needs_rehash(row.password_hash):
                        row.password_hash = self.hasher.hash(candidate)
                    return True
                row.failed_count += 1
                if row.failed_count >= self.max_failures:
                    # Locked from now; the count starts again when the lockout ends.
                    row.failed_count, row.locked_until = 0, now + self.lockout
        if not verified:
            self._burn(candidate)
        return False

    def _verify(self, digest: str, password: str) -> bool:
        try:
            return bool(self.hasher.verify(digest, password))
        except (VerificationError, InvalidHashError):
            return False

    def _burn(self, password: str) -> None:
        """One verification against a hash of nothing, so that "no such account" takes as long as "wrong"."""
        if self._dummy is None:
            self._dummy = self.hasher.hash(secrets.token_urlsafe(16))
        self._verify(self._dummy, password)
