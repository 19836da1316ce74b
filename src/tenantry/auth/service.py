"""``SignIn``: what the console's sign-in offers the rest of Tenantry, over its parts (``sessions``,
``passwords``, ``oidc``, ``users``).

For the guard of the console's routes (the lead's principal model): ``session_user(request)`` says which
directory user of which tenant this browser session belongs to, and how it signed in; ``require_csrf(request,
session)`` refuses an unsafe request (POST, PUT, PATCH, DELETE) made with the session cookie that does not send
the session's CSRF token back (form field ``csrf_token`` or header ``X-CSRF-Token``).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
from argon2 import PasswordHasher
from starlette.requests import HTTPConnection, Request

from tenantry.auth.cookies import LOGIN_CSRF_COOKIE, SESSION_COOKIE, CookiePolicy, Signer
from tenantry.auth.oidc import OidcSignedIn, OidcSignIn
from tenantry.auth.oidc_http import OidcHttp
from tenantry.auth.passwords import Passwords
from tenantry.auth.sessions import SessionPolicy, Sessions, SessionUser
from tenantry.auth.users import DirectoryUsers
from tenantry.core.clock import utcnow
from tenantry.core.db import Database
from tenantry.core.egress import EgressPolicy
from tenantry.core.errors import Forbidden, NotFound, Unauthorized
from tenantry.core.secrets import SecretBox
from tenantry.directory.scim_store import ScimStore
from tenantry.directory.service import DirectoryService

__all__ = ["CSRF_FIELD", "CSRF_HEADER", "SignIn", "SignInRefused", "SessionUser", "require_csrf"]

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
MAX_CSRF = 256
# One answer for an unknown user, a wrong password and a locked account: which it was is not the caller's to know.
REFUSED = ("the tenant, user name or password is wrong, or the account is locked after too many failed attempts "
           "(it unlocks by itself after a while, or the operator unlocks it)")


class SignInRefused(Unauthorized):
    code = "sign_in_refused"


async def require_csrf(request: Request, session: SessionUser) -> None:
    """Refuse (403 ``Forbidden``) an unsafe request of this session that does not carry the session's CSRF token
    as the ``X-CSRF-Token`` header or the ``csrf_token`` form field. Safe methods pass. The form is read (and
    kept by Starlette for the route) only when the header is absent and the body is a form."""
    if request.method.upper() in SAFE_METHODS:
        return
    presented = request.headers.get(CSRF_HEADER)
    if presented is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get(CSRF_FIELD)
        presented = value if isinstance(value, str) else None
    if not csrf_matches(session.csrf_token, presented):
        raise Forbidden("this request needs the session's CSRF token (form field csrf_token or header X-CSRF-Token)")


def csrf_matches(expected: str, presented: str | None) -> bool:
    if not presented or len(presented) > MAX_CSRF:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode())


@dataclass(frozen=True)
class SignInSettings:
    max_failures: int = 5
    lockout: timedelta = timedelta(minutes=15)
    idle: timedelta = timedelta(minutes=30)
    absolute: timedelta = timedelta(hours=12)
    cookie_secure: bool = True
    public_url: str | None = None
    default_tenant: str = "default"
    landing: str = "/console/"    # where a sign-in without ``next`` lands: the console's home

    @classmethod
    def from_settings(cls, settings: Any) -> SignInSettings:
        return cls(max_failures=settings.signin_max_failures,
                   lockout=timedelta(minutes=settings.signin_lockout_minutes),
                   idle=timedelta(minutes=settings.session_idle_minutes),
                   absolute=timedelta(hours=settings.session_absolute_hours),
                   cookie_secure=settings.cookie_secure, public_url=settings.public_url,
                   default_tenant=settings.default_tenant)


class SignIn:
    def __init__(self, db: Database, directory: DirectoryService, scim: ScimStore, secrets: SecretBox, *,
                 egress: EgressPolicy, settings: SignInSettings | None = None,
                 now: Callable[[], datetime] = utcnow, transport: httpx.BaseTransport | None = None,
                 hasher: PasswordHasher | None = None) -> None:
        self.settings = settings or SignInSettings()
        self.now = now
        self.users = DirectoryUsers(directory, scim)
        self.cookies = CookiePolicy(secure=self.settings.cookie_secure)
        self.session_signer = Signer(secrets.derive("console-session"), "session")
        self.login_csrf = Signer(secrets.derive("console-login-csrf"), "login-csrf")
        self.sessions = Sessions(db, self.session_signer, SessionPolicy(self.settings.idle, self.settings.absolute),
                                 now, self.users.is_active)
        self.passwords = Passwords(db, max_failures=self.settings.max_failures, lockout=self.settings.lockout,
                                   now=now, hasher=hasher)
        self.oidc = OidcSignIn(db, secrets, OidcHttp(egress, transport), self.users, egress, now)

    # -- for the console's guard --------------------------------------------------------------------------

    def session_user(self, request: HTTPConnection) -> SessionUser | None:
        """The live session this request's cookie names, or None (no cookie, a forged or altered one — refused
        before any look-up —, signed out, idle or past its absolute end, or its user no longer active)."""
        return self.sessions.find(request.cookies.get(SESSION_COOKIE))

    require_csrf = staticmethod(require_csrf)

    def redirect_uri(self, request: HTTPConnection | None, tenant: str) -> str:
        """The tenant's OIDC callback, as the provider must have it registered: under ``TENANTRY_PUBLIC_URL``
        when set (behind a proxy, and so that a request's Host header never chooses it), else this request's
        (the CLI, with no request: http://127.0.0.1:8000, the server's default address)."""
        base = self.settings.public_url or (str(request.base_url) if request is not None else "http://127.0.0.1:8000")
        return f"{base.rstrip('/')}/auth/oidc/{quote(tenant, safe='')}/callback"

    # -- signing in and out -------------------------------------------------------------------------------

    def sign_in_password(self, tenant: str, user_name: str, password: str) -> tuple[str, SessionUser]:
        """A new session for the active directory user ``user_name`` of ``tenant`` whose console password this
        is: (cookie value, session). ``SignInRefused`` (the same message) for every reason it is not."""
        user_id = self.users.find(tenant.strip(), "userName", user_name) if tenant.strip() else None
        if not self.passwords.check(tenant.strip(), user_id, password) or user_id is None:
            log.info("console sign-in refused: tenant %r, user name %r (password)", tenant[:64], user_name[:256])
            raise SignInRefused(REFUSED)
        log.info("console sign-in: tenant %s, user %s (password)", tenant, user_id)
        return self.sessions.create(tenant.strip(), user_id, "password")

    def sign_in_oidc(self, signed_in: OidcSignedIn) -> tuple[str, SessionUser]:
        log.info("console sign-in: tenant %s, user %s (oidc, subject %s)", signed_in.tenant, signed_in.user_id,
                 signed_in.subject)
        return self.sessions.create(signed_in.tenant, signed_in.user_id, "oidc")

    def sign_out(self, session: SessionUser) -> None:
        self.sessions.revoke(session.session_id)
        log.info("console sign-out: tenant %s, user %s (session %s…)", session.tenant, session.user_id,
                 session.session_id[:12])

    def login_token(self, request: HTTPConnection) -> tuple[str, bool]:
        """The sign-in form's double-submit token: this browser's (if its cookie is one of ours), or a new one;
        and whether it is new (to be set as the cookie)."""
        current = request.cookies.get(LOGIN_CSRF_COOKIE)
        if self.login_csrf.verify(current) is not None and current is not None:
            return current, False
        return self.login_csrf.new()[1], True

    def login_token_ok(self, request: HTTPConnection, presented: str | None) -> bool:
        """The form's token is the cookie's, and the cookie is one we signed (login CSRF)."""
        cookie = request.cookies.get(LOGIN_CSRF_COOKIE)
        if self.login_csrf.verify(cookie) is None or cookie is None:
            return False
        return csrf_matches(cookie, presented)

    # -- for the operator ---------------------------------------------------------------------------------

    def user_of(self, tenant: str, who: str) -> str:
        found = self.users.resolve(tenant, who)
        if found is None:
            raise NotFound(f"no user {who!r} in tenant {tenant!r} (give a userName, an e-mail address or an id)")
        return found

    def set_password(self, tenant: str, who: str, password: str) -> str:
        """Set a console password for an active user; ends the user's password sessions. Returns the user id."""
        user_id = self.user_of(tenant, who)
        if not self.users.is_active(tenant, user_id):
            raise Forbidden(f"user {who!r} is not active in the directory: only active users may sign in")
        self.passwords.set(tenant, user_id, password)
        self.sessions.revoke_user(tenant, user_id, "password")
        return user_id

    def unlock(self, tenant: str, who: str) -> str:
        user_id = self.user_of(tenant, who)
        if not self.passwords.unlock(tenant, user_id):
            raise NotFound(f"user {who!r} has no console password")
        return user_id

    def remove_oidc(self, tenant: str) -> bool:
        """Remove the tenant's single sign-on and end the sessions signed in by it (an administrator removing a
        provider, say one compromised, means nobody it vouched for stays signed in)."""
        removed = self.oidc.remove(tenant)
        if removed:
            self.sessions.revoke_tenant(tenant, "oidc")
        return removed

    def sweep(self) -> dict[str, int]:
        """Ended sessions and stale pending sign-ins, deleted (the periodic ``signin.sweep``). Idempotent."""
        return {"sessions": self.sessions.sweep(), "pending_oidc": self.oidc.sweep()}


def session_principal(signin: SignIn, directory: DirectoryService) -> Callable[[Request], Any]:
    """The admin API's first dependency (issue #12): a request without an ``Authorization`` header that carries
    a live console session acts as that session's administrator (with their roles now), and an unsafe one must
    send the session's CSRF token. The bearer guard that follows uses the principal found here."""
    from starlette.concurrency import run_in_threadpool

    async def resolve(request: Request) -> None:
        if request.headers.get("authorization") or SESSION_COOKIE not in request.cookies:
            return
        session = await run_in_threadpool(signin.session_user, request)
        if session is None:
            raise Unauthorized("the console session has ended (signed out, idle or expired): sign in again")
        await require_csrf(request, session)
        request.state.principal = await run_in_threadpool(
            directory.administrator, session.tenant, session.user_id, f"session {session.session_id[:16]}")

    return resolve
