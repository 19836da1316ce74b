"""The console's cookies and what is signed in them.

``tenantry_session``: ``<secret>.<signature>``, the secret 32 random bytes (base64url) and the signature its
HMAC-SHA256 under a key derived from the installation's secret key (``SecretBox.derive``). A cookie whose
signature does not verify is refused before any database look-up (a forged or altered cookie costs one HMAC);
the session row is found by the SHA-256 of the secret, so the database never holds what the cookie holds.

``tenantry_csrf``: the sign-in form's double-submit token (the form posts it back as ``csrf_token``), signed the
same way under another purpose, so that a value planted from elsewhere (a sibling sub-domain's cookie) does not
pass: the form is not submitted in a victim's browser with the attacker's account (login CSRF).

``tenantry_oidc``: the ``state`` of the OIDC sign-in this browser started; the callback must carry the same, so
an authorization response started in another browser is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from starlette.responses import Response

SESSION_COOKIE = "tenantry_session"
LOGIN_CSRF_COOKIE = "tenantry_csrf"
OIDC_STATE_COOKIE = "tenantry_oidc"
MAX_COOKIE = 512     # longer values are refused unread


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Signer:
    """HMAC-SHA256 of values under one purpose's key."""

    def __init__(self, key: bytes, purpose: str) -> None:
        self._key = key
        self._purpose = purpose.encode()

    def sign(self, value: str) -> str:
        mac = hmac.new(self._key, self._purpose + b"\x00" + value.encode(), hashlib.sha256).digest()
        return f"{value}.{_b64(mac)}"

    def new(self) -> tuple[str, str]:
        """A new random secret and its signed form (the cookie's value)."""
        secret = secrets.token_urlsafe(32)
        return secret, self.sign(secret)

    def verify(self, signed: str | None) -> str | None:
        """The secret of a signed value whose signature holds, else None."""
        if not signed or len(signed) > MAX_COOKIE or signed.count(".") != 1:
            return None
        value = signed.partition(".")[0]
        return value if hmac.compare_digest(self.sign(value), signed) else None


@dataclass(frozen=True)
class CookiePolicy:
    """Flags every console cookie gets: HttpOnly and SameSite=Lax always, Secure unless the operator turned it
    off (``TENANTRY_COOKIE_SECURE=false``: plain http on one machine, tests)."""

    secure: bool = True

    def set(self, response: Response, name: str, value: str, *, path: str = "/", max_age: int | None = None) -> None:
        response.set_cookie(name, value, max_age=max_age, path=path, secure=self.secure, httponly=True,
                            samesite="lax")

    def clear(self, response: Response, name: str, *, path: str = "/") -> None:
        response.delete_cookie(name, path=path, secure=self.secure, httponly=True, samesite="lax")
