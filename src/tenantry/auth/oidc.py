"""OpenID Connect single sign-on for the console: each tenant's provider (configured by its administrator), the
start of a sign-in (the browser sent to the provider) and its end (the callback: code → ID token → directory
user). The protocol's rules are ``protocols.oidc``'s; the HTTP is ``oidc_http``'s; this module keeps the state
between the two legs and decides who signed in.

A pending sign-in (``oidc_logins``) is found by the SHA-256 of its ``state``, bound to the browser that started
it (the ``tenantry_oidc`` cookie must carry the same state), used once (the row is marked used in the
transaction that reads it, under its lock, so a replayed callback — the same code, state and nonce — is
refused) and lives ten minutes.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete

from tenantry.auth.cookies import sha256_hex
from tenantry.auth.models import OidcLogin, OidcProvider
from tenantry.auth.oidc_http import OidcHttp
from tenantry.auth.users import ATTRIBUTES, DirectoryUsers
from tenantry.core.clock import as_utc
from tenantry.core.db import FOR_WRITE, Database
from tenantry.core.egress import EgressPolicy
from tenantry.core.errors import Invalid, NotFound
from tenantry.core.secrets import SecretBox
from tenantry.protocols.oidc import discovery, flow, idtoken
from tenantry.protocols.oidc.errors import CallbackError, DiscoveryError, OidcError

log = logging.getLogger(__name__)

LOGIN_TTL = timedelta(minutes=10)
DEFAULT_SCOPES = ("openid", "profile", "email")
_CLAIM = re.compile(r"^[A-Za-z0-9_.:/-]{1,64}$")
_SCOPE = re.compile(r"^[\x21\x23-\x5B\x5D-\x7E]{1,64}$")    # RFC 6749 §3.3 scope-token
_PRINTABLE = re.compile(r"^[^\x00-\x1f\x7f]+$")


class NoMatchingUser(OidcError):
    """The provider vouched for someone the tenant's directory has no active user for."""

    step = "match"


@dataclass(frozen=True)
class OidcConfig:
    """A tenant's provider, as it is shown: the client secret never is, only whether one is set."""

    tenant: str
    issuer: str
    client_id: str
    claim: str
    match: str
    scopes: tuple[str, ...]
    display_name: str
    client_secret_set: bool
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "issuer": self.issuer, "client_id": self.client_id,
                "client_secret_set": self.client_secret_set, "claim": self.claim, "match": self.match,
                "scopes": list(self.scopes), "display_name": self.display_name,
                "updated_at": self.updated_at.isoformat()}


@dataclass(frozen=True)
class OidcStart:
    url: str       # where to send the browser
    state: str     # for the browser-binding cookie


@dataclass(frozen=True)
class OidcSignedIn:
    tenant: str
    user_id: str
    next_path: str
    subject: str
    name: str      # the claim's value that matched


class OidcSignIn:
    def __init__(self, db: Database, secrets: SecretBox, http: OidcHttp, users: DirectoryUsers,
                 egress: EgressPolicy, now: Callable[[], datetime]) -> None:
        self.db = db
        self.secrets = secrets
        self.http = http
        self.users = users
        self.egress = egress
        self.now = now

    @property
    def allow_http_loopback(self) -> bool:
        return self.egress.allow_loopback

    # -- configuration ------------------------------------------------------------------------------------

    def configure(self, tenant: str, *, issuer: str, client_id: str, client_secret: str | None,
                  claim: str = "preferred_username", match: str = "userName",
                  scopes: Sequence[str] = DEFAULT_SCOPES, display_name: str | None = None) -> OidcConfig:
        """Set the tenant's provider. ``client_secret`` None keeps the one stored (a change of anything else)."""
        try:
            issuer = discovery.check_issuer(issuer.strip(), allow_http_loopback=self.allow_http_loopback)
        except DiscoveryError as exc:
            raise Invalid(exc.message) from None
        parts = urlsplit(issuer)
        self.egress.check_host(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
        client_id = client_id.strip()
        if not 0 < len(client_id) <= 256 or not _PRINTABLE.match(client_id):
            raise Invalid("the client id is 1 to 256 characters, without control characters")
        if not _CLAIM.match(claim):
            raise Invalid("the claim is a claim name (letters, digits, _ . : / -, at most 64), e.g. "
                          "preferred_username, upn or email")
        if match not in ATTRIBUTES:
            raise Invalid(f"match is one of {', '.join(ATTRIBUTES)} (the directory attribute the claim is "
                          "compared with)")
        wanted = list(dict.fromkeys(["openid", *(s.strip() for s in scopes if s.strip())]))
        if len(wanted) > 20 or not all(_SCOPE.match(s) for s in wanted):
            raise Invalid("scopes are at most 20 scope names (RFC 6749 §3.3 characters, at most 64 each)")
        name = (display_name or parts.hostname or "your identity provider").strip()
        if not 0 < len(name) <= 64 or not _PRINTABLE.match(name):
            raise Invalid("the display name is 1 to 64 characters, without control characters")
        if client_secret is not None and not 0 < len(client_secret) <= 2048:
            raise Invalid("the client secret is 1 to 2048 characters")
        now = self.now()
        with self.db.writing(), self.db.session() as session:
            row = session.get(OidcProvider, tenant, with_for_update=FOR_WRITE)
            if row is None:
                if client_secret is None:
                    raise Invalid("a client secret is required (the provider's secret for this client)")
                row = OidcProvider(tenant_id=tenant)
                session.add(row)
            if client_secret is not None:
                row.client_secret = self.secrets.seal(client_secret)
            row.issuer, row.client_id, row.claim, row.match_attribute = issuer, client_id, claim, match
            row.scopes, row.display_name, row.updated_at = " ".join(wanted), name, now
            return _config(row)

    def config(self, tenant: str) -> OidcConfig | None:
        with self.db.session() as session:
            row = session.get(OidcProvider, tenant)
            return _config(row) if row is not None else None

    def remove(self, tenant: str) -> bool:
        with self.db.session() as session:
            done = session.execute(delete(OidcProvider).where(OidcProvider.tenant_id == tenant))
        return bool(getattr(done, "rowcount", 0))

    # -- the sign-in --------------------------------------------------------------------------------------

    def _metadata(self, issuer: str) -> discovery.ProviderMetadata:
        document = self.http.get_json(discovery.well_known_url(issuer), "discovery document")
        return discovery.parse_metadata(document, issuer, allow_http_loopback=self.allow_http_loopback)

    def start(self, tenant: str, redirect_uri: str, next_path: str) -> OidcStart:
        """A new pending sign-in; the browser goes to the provider's authorization endpoint."""
        config = self.config(tenant)
        if config is None:
            raise NotFound(f"tenant {tenant!r} has no single sign-on configured")
        metadata = self._metadata(config.issuer)
        request = flow.authorization_request(metadata, client_id=config.client_id, redirect_uri=redirect_uri,
                                             scopes=config.scopes)
        with self.db.session() as session:
            session.add(OidcLogin(id=sha256_hex(request.state), tenant_id=tenant, issuer=config.issuer,
                                  client_id=config.client_id, nonce=request.nonce, code_verifier=request.code_verifier,
                                  redirect_uri=redirect_uri, next_path=next_path, created_at=self.now()))
        return OidcStart(request.url, request.state)

    def _consume(self, tenant: str, state: str) -> OidcLogin:
        """The pending sign-in of ``state``, marked used (once: a second callback finds it used)."""
        now = self.now()
        with self.db.writing(), self.db.session() as session:
            row = session.get(OidcLogin, sha256_hex(state), with_for_update=FOR_WRITE)
            if row is None or row.tenant_id != tenant:
                raise CallbackError("this sign-in is unknown here (it was not started, or started for another "
                                    "tenant); start again")
            if row.used_at is not None:
                raise CallbackError("this sign-in answer was already used: a sign-in answer is good once "
                                    "(a replayed callback, state or nonce)")
            if as_utc(row.created_at) + LOGIN_TTL < now:
                raise CallbackError("this sign-in took longer than ten minutes; start again")
            row.used_at = now
            return row

    def finish(self, tenant: str, params: Mapping[str, str], state_cookie: str | None) -> OidcSignedIn:
        """The callback: the pending sign-in used, the code exchanged, the ID token validated, the user found."""
        state = params.get("state") or ""
        if not state:
            raise CallbackError("the answer carries no state")
        if not state_cookie or not hmac.compare_digest(state_cookie.encode(), state.encode()):
            raise CallbackError("this sign-in was not started in this browser (its state is not this browser's)")
        pending = self._consume(tenant, state)
        with self.db.session() as session:
            row = session.get(OidcProvider, tenant)
            if row is None or (row.issuer, row.client_id) != (pending.issuer, pending.client_id):
                raise CallbackError("the tenant's single sign-on changed during this sign-in; start again")
            client_id, claim, match = row.client_id, row.claim, row.match_attribute
            secret = self.secrets.open(row.client_secret)
        metadata = self._metadata(pending.issuer)
        code = flow.authorization_code(params, metadata)
        request = flow.token_request(metadata, client_id=client_id, client_secret=secret, code=code,
                                     redirect_uri=pending.redirect_uri, code_verifier=pending.code_verifier)
        status, answer = self.http.post_form(request.url, request.headers, request.body, "token endpoint")
        token = flow.id_token_of(status, answer)
        keys = idtoken.key_set(self.http.get_json(metadata.jwks_uri, "JWKS"))
        verified = idtoken.validate(token, keys, issuer=pending.issuer, client_id=client_id, nonce=pending.nonce,
                                    now=int(self.now().timestamp()))
        name = verified.claims.get(claim)
        if not isinstance(name, str) or not name.strip():
            raise NoMatchingUser(f"the identity provider's ID token has no {claim!r} claim to find the user by "
                                 "(add the claim, or its scope, at the provider)")
        if claim == "email" and verified.claims.get("email_verified") is False:
            raise NoMatchingUser("the identity provider says this e-mail address is not verified")
        user_id = self.users.find(tenant, match, name)
        if user_id is None:
            what = "e-mail address" if match == "emails" else "user name"
            raise NoMatchingUser(f"you signed in at the identity provider as {name[:256]!r}, but no active user "
                                 f"of this tenant's directory has that {what}")
        return OidcSignedIn(tenant, user_id, pending.next_path, verified.subject, name)

    def sweep(self) -> int:
        """Delete pending sign-ins past their ten minutes (used or not). Idempotent."""
        with self.db.session() as session:
            done = session.execute(delete(OidcLogin).where(OidcLogin.created_at < self.now() - LOGIN_TTL))
        return int(getattr(done, "rowcount", 0))


def _config(row: OidcProvider) -> OidcConfig:
    return OidcConfig(row.tenant_id, row.issuer, row.client_id, row.claim, row.match_attribute,
                      tuple(row.scopes.split()), row.display_name, bool(row.client_secret), as_utc(row.updated_at))
