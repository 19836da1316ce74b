"""Who a partner is, over HTTP (issue #13, items 3 and 5): the documents partners fetch (JWKS, auth metadata),
the RFC 7523 token endpoint, and the check every partner call passes — a bearer token resolved to a partner
application's principal (``core.principals``, kind ``partner``).

A call carries one of three tokens, told apart by their header before anything is trusted:

- an **access token** we issued at ``/trust/{realm}/token`` (RFC 9068, ``typ`` at+jwt), signed by one of our
  certificates (current, next or previous, each within its dates);
- the seed's **actor token**, signed by the partner with its own certificate: the partner acts as itself;
- the seed's **app+user token** (unsigned outer layer carrying an actor token that says ``trustedfordelegation``):
  the partner acts for the user it names, and only in that user's mailbox.

Which key verifies a partner's token: the keys on its service principal ([`ServicePrincipalKey`]) that are *not*
one of our own certificates. Our certificate is there because the seed's step 5 puts it there (the partner
verifies us with it; ``trust check`` looks for it); the partner's own signing certificates are added the same way
(``service-principal credential add``), and only those verify what the partner signs. A key verifies only within
its start and end dates.

Every check is made at every call: a partner disabled after its access token was issued is refused with it, and
its roles are its linked account's direct role assignments as they are now.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from tenantry.core.clock import as_utc, utcnow
from tenantry.core.db import Database
from tenantry.core.errors import NotFound
from tenantry.core.principals import Principal, PrincipalKind
from tenantry.core.secrets import SecretBox
from tenantry.directory.service import DirectoryService
from tenantry.protocols.s2s import assertion, errors
from tenantry.protocols.s2s.actor import Recipient, validate_actor_token, validate_app_user_token
from tenantry.protocols.s2s.certificates import (
    KeyDescriptor,
    SigningCertificate,
    certificate_base64,
    load_certificate_base64,
)
from tenantry.trust import certificates
from tenantry.trust.models import AuthCertificate, AuthConfig, PartnerApplication, ServicePrincipalKey, UsedAssertion
from tenantry.trust.results import CertificateRole
from tenantry.trust.service import SERVICE_NAME

GRANT_TYPE = "client_credentials"
# The roles a partner's linked account may hold (seed 002); a requested scope names some of them.
PARTNER_ROLES = ("UserApplication", "ArchiveApplication")
MAX_FORM_BYTES = 64 * 1024


class TokenKind(StrEnum):
    ACCESS = "access token"
    ACTOR = "actor token"
    APP_USER = "app+user token"


class PartnerDisabled(errors.TokenRefused):
    """A disabled partner application's token (any kind) is refused, however valid its signature."""


class UnknownPartner(errors.TokenRefused):
    """The token names a partner application this tenant does not know."""


class ClientDisabled(errors.ClientAssertionRefused):
    pass


class UnknownClient(errors.ClientAssertionRefused):
    pass


class TokenRequestRefused(errors.S2SError):
    """RFC 6749 §5.2 errors other than ``invalid_client`` (400): the ``error`` is set per instance."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error  # type: ignore[misc]  # a ClassVar on the family, one code per refusal here


@dataclass(frozen=True, slots=True)
class Realm:
    """A tenant as partners address it: ``/trust/{realm}/…``, and what their tokens must name."""

    tenant: str
    realm: str
    base_url: str          # public_url, else the request's own base URL (no trailing slash)

    @property
    def issuer(self) -> str:
        return f"{self.base_url}/trust/{self.realm}"

    @property
    def token_endpoint(self) -> str:
        return f"{self.issuer}/token"

    @property
    def recipient(self) -> Recipient:
        """Us, as the seed's tokens name us: Exchange's application id, our host name, the tenant's realm."""
        return Recipient(app_id=SERVICE_NAME, host=urlsplit(self.base_url).hostname or "localhost", realm=self.realm)


@dataclass(frozen=True, slots=True)
class PartnerCall:
    """A partner call that passed the gate: the principal (its roles are the linked account's direct ones,
    narrowed by the access token's scope), how it proved itself, and the user it acts for (app+user tokens)."""

    principal: Principal
    application_id: str
    linked_account: str | None
    kind: TokenKind
    acting_for: str | None


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """RFC 6749 §5.1's successful response."""

    access_token: str
    token_type: str
    expires_in: int
    scope: str | None


class PartnerGate:
    def __init__(self, db: Database, secrets: SecretBox, directory: DirectoryService, *,
                 public_url: str | None = None) -> None:
        self.db = db
        self.secrets = secrets
        self.directory = directory
        self.public_url = public_url.rstrip("/") if public_url else None
        self._signers: OrderedDict[str, SigningCertificate] = OrderedDict()
        self._lock = threading.Lock()

    # -- realms and our keys ---------------------------------------------------------------------------------

    def realm(self, realm: str, request_base_url: str) -> Realm:
        """The tenant whose realm this is; 404 for a realm nobody configured (the same answer for every unknown
        realm: the URL reveals nothing about other tenants)."""
        with self.db.session() as session:
            tenant = session.scalar(select(AuthConfig.tenant_id).where(AuthConfig.realm == realm))
        if tenant is None:
            raise NotFound(f"no realm {realm!r} here")
        return Realm(tenant, realm, self.public_url or request_base_url.rstrip("/"))

    def our_keys(self, tenant: str) -> list[tuple[CertificateRole, KeyDescriptor]]:
        """Our certificates, each with its role: they verify the access tokens we issued (all three roles, so a
        token signed just before a switch stays valid) and are what the JWKS publishes."""
        with self.db.session() as session:
            rows = session.execute(select(AuthCertificate.role, AuthCertificate.certificate_pem).where(
                AuthCertificate.tenant_id == tenant)).all()
        order = list(CertificateRole)
        return sorted(((CertificateRole(role), _our_descriptor(pem)) for role, pem in rows),
                      key=lambda pair: order.index(pair[0]))

    def jwks(self, realm: Realm) -> dict[str, Any]:  # dict: RFC 7517's JWK Set, a wire document
        """The signing keys as a JWK Set (RFC 7517 §5): current, next (so a partner can fetch it before the
        switch) and previous (until retired)."""
        return {"keys": [descriptor.public_jwk() for _, descriptor in self.our_keys(realm.tenant)]}

    def metadata(self, realm: Realm) -> dict[str, Any]:  # dict: the auth metadata document, a wire format
        """The auth metadata document partners fetch (the shape Exchange and ACS publish at
        ``…/metadata/json/1``): who we are, our keys as base64 DER certificates, and where tokens are issued."""
        with self.db.session() as session:
            pems = session.execute(select(AuthCertificate.role, AuthCertificate.certificate_pem).where(
                AuthCertificate.tenant_id == realm.tenant)).all()
        keys = []
        for role, pem in sorted(pems, key=lambda pair: list(CertificateRole).index(CertificateRole(pair[0]))):
            cert = certificates.load_pem(pem)
            keys.append({"usage": "signing", "role": role,
                         "keyinfo": {"x5t": _our_descriptor(pem).x5t},
                         "keyvalue": {"type": "x509Certificate", "value": certificate_base64(cert)}})
        recipient = realm.recipient
        return {"id": f"_{realm.realm}", "version": "1.0", "name": "Tenantry", "realm": realm.realm,
                "serviceName": SERVICE_NAME, "issuer": f"{SERVICE_NAME}@{realm.realm}",
                "allowedAudiences": [recipient.audience], "keys": keys,
                "endpoints": [{"location": realm.token_endpoint, "protocol": "OAuth2", "usage": "issuance"},
                              {"location": f"{realm.issuer}/jwks", "protocol": "JWKS", "usage": "keys"}]}

    def authorization_server(self, realm: Realm) -> dict[str, Any]:  # dict: RFC 8414's metadata, a wire document
        """RFC 8414 authorization server metadata: what a standard OAuth client needs to get a token here."""
        return {"issuer": realm.issuer, "token_endpoint": realm.token_endpoint, "jwks_uri": f"{realm.issuer}/jwks",
                "grant_types_supported": [GRANT_TYPE], "response_types_supported": [],
                "token_endpoint_auth_methods_supported": ["private_key_jwt"],
                "token_endpoint_auth_signing_alg_values_supported": list(("RS256", "PS256")),
                "scopes_supported": list(PARTNER_ROLES)}

    def _signer(self, tenant: str) -> SigningCertificate:
        with self.db.session() as session:
            row = session.scalar(select(AuthCertificate).where(
                AuthCertificate.tenant_id == tenant, AuthCertificate.role == CertificateRole.CURRENT))
            if row is None:
                raise NotFound("the authorisation configuration has no current certificate")
            key_id, pem, sealed = row.id, row.certificate_pem, row.private_key
        with self._lock:
            found = self._signers.get(key_id)
            if found is not None:
                self._signers.move_to_end(key_id)
                return found
        private = serialization.load_pem_private_key(self.secrets.open(sealed).encode(), password=None)
        if not isinstance(private, rsa.RSAPrivateKey):  # pragma: no cover - we only ever store RSA keys
            raise NotFound("the current certificate's key is not an RSA key")
        signer = SigningCertificate(certificates.load_pem(pem), private)
        with self._lock:
            self._signers[key_id] = signer
            while len(self._signers) > 256:
                self._signers.popitem(last=False)
        return signer

    # -- the token endpoint ----------------------------------------------------------------------------------

    def issue(self, realm: Realm, form: dict[str, str]) -> IssuedToken:
        """RFC 6749 §4.4 client credentials, the client authenticated by an RFC 7523 assertion
        (``private_key_jwt``) signed with one of its service principal's keys."""
        grant = form.get("grant_type")
        if not grant:
            raise TokenRequestRefused("invalid_request", "grant_type is missing")
        if grant != GRANT_TYPE:
            raise TokenRequestRefused("unsupported_grant_type", f"only {GRANT_TYPE} is issued here")
        if form.get("client_assertion_type") != assertion.CLIENT_ASSERTION_TYPE or not form.get("client_assertion"):
            raise errors.ClientAssertionRefused(
                "authenticate with private_key_jwt: client_assertion_type "
                f"{assertion.CLIENT_ASSERTION_TYPE} and a client_assertion (RFC 7523 §2.2)")
        token = form["client_assertion"]
        client_id = form.get("client_id") or assertion.unverified_client_id(token)
        now = int(utcnow().timestamp())
        partner = self._partner(realm.tenant, client_id.strip().lower(), for_client=True)
        checked = assertion.validate_client_assertion(
            token, self._partner_keys(realm.tenant, partner.id), client_id=client_id,
            audiences={realm.token_endpoint, realm.issuer}, now=now, claim_jti=self._claimer(realm.tenant))
        _enabled(partner, for_client=True)
        scope = _scope(form.get("scope"))
        lifetime = assertion.ACCESS_TOKEN_LIFETIME
        issued = assertion.mint_access_token(
            self._signer(realm.tenant), issuer=realm.issuer, audience=realm.recipient.audience,
            client_id=partner.application_id, now=now, lifetime=lifetime, scope=scope,
            extra_claims={"appid": partner.application_id, "client_assertion_jti": checked.jti})
        return IssuedToken(issued, "Bearer", lifetime, scope)

    def _claimer(self, tenant: str) -> assertion.ClaimJti:
        def claim(client_id: str, jti: str, exp: int) -> bool:
            now = utcnow()
            try:
                with self.db.writing(), self.db.session() as session:
                    # Forget what has expired (an expired assertion is refused before its jti is looked at).
                    session.execute(delete(UsedAssertion).where(UsedAssertion.tenant_id == tenant,
                                                                UsedAssertion.expires_at < now - timedelta(hours=1)))
                    session.add(UsedAssertion(tenant_id=tenant, client_id=client_id[:64], jti=jti,
                                              expires_at=datetime.fromtimestamp(exp, UTC)))
            except IntegrityError:
                return False
            return True

        return claim

    # -- partner calls ---------------------------------------------------------------------------------------

    def authenticate(self, realm: Realm, authorization: str | None) -> PartnerCall:
        """The partner behind ``Authorization: Bearer …``, or a refusal (``errors.TokenRefused``, 401)."""
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise errors.TokenRefused("send the partner's token as Authorization: Bearer <token>")
        header, claims = _peek(token)
        now = int(utcnow().timestamp())
        recipient = realm.recipient
        acting_for: str | None = None
        scope: str | None = None
        if header.get("alg") == "none":
            app_id = _app_id_of(claims.get("iss"))
            partner = self._partner(realm.tenant, app_id)
            user_token = validate_app_user_token(token, self._partner_keys(realm.tenant, partner.id), recipient,
                                                 partner_app_id=partner.application_id, now=now)
            kind, thumbprint, acting_for = TokenKind.APP_USER, user_token.actor.thumbprint, user_token.nameid
        elif str(header.get("typ", "")).lower() in (assertion.ACCESS_TOKEN_TYPE, "application/at+jwt"):
            keys = [descriptor for _, descriptor in self.our_keys(realm.tenant)]
            access = assertion.validate_access_token(token, keys, issuer=realm.issuer, audience=recipient.audience,
                                                     now=now)
            partner = self._partner(realm.tenant, access.client_id.lower())
            kind, thumbprint, scope = TokenKind.ACCESS, access.thumbprint, access.scope
        else:
            partner = self._partner(realm.tenant, _app_id_of(claims.get("iss")))
            actor = validate_actor_token(token, self._partner_keys(realm.tenant, partner.id), recipient,
                                         partner_app_id=partner.application_id, now=now)
            kind, thumbprint = TokenKind.ACTOR, actor.thumbprint
        _enabled(partner)   # after the token verified: a stranger learns nothing of the partner from the answer
        roles = self.directory.direct_roles(realm.tenant, partner.linked_account) if partner.linked_account \
            else frozenset()
        if scope is not None:
            roles = roles & frozenset(scope.split())
        principal = Principal(PrincipalKind.PARTNER, partner.id, partner.name, realm.tenant, frozenset(roles),
                              f"{kind.value} x5t={thumbprint}")
        return PartnerCall(principal, partner.application_id, partner.linked_account, kind, acting_for)

    def _partner(self, tenant: str, app_id: str, *, for_client: bool = False) -> PartnerApplication:
        with self.db.session() as session:
            row = session.scalar(select(PartnerApplication).where(
                PartnerApplication.tenant_id == tenant, PartnerApplication.application_id == app_id))
            if row is not None:
                session.expunge(row)
        if row is None:
            raise (UnknownClient if for_client else UnknownPartner)(
                "no partner application with that ApplicationIdentifier in this realm")
        return row

    def _partner_keys(self, tenant: str, partner_id: str) -> list[KeyDescriptor]:
        """The partner's own signing keys: its service principal's keys that are not one of our certificates."""
        with self.db.session() as session:
            ours = set(session.scalars(select(AuthCertificate.thumbprint).where(AuthCertificate.tenant_id == tenant)))
            rows = session.execute(select(ServicePrincipalKey.value, ServicePrincipalKey.thumbprint,
                                          ServicePrincipalKey.start_at, ServicePrincipalKey.end_at).where(
                ServicePrincipalKey.tenant_id == tenant, ServicePrincipalKey.partner_id == partner_id)).all()
        return [_partner_descriptor(value, as_utc(start), as_utc(end))
                for value, thumbprint, start, end in rows if thumbprint not in ours]


def _enabled(partner: PartnerApplication, *, for_client: bool = False) -> None:
    if not partner.enabled:
        raise (ClientDisabled if for_client else PartnerDisabled)(
            f"the partner application {partner.name!r} is disabled")


def _scope(requested: str | None) -> str | None:
    if requested is None or not requested.strip():
        return None
    wanted = requested.split()
    unknown = [s for s in wanted if s not in PARTNER_ROLES]
    if unknown:
        raise TokenRequestRefused("invalid_scope", f"unknown scope {unknown[0]!r}: a scope names roles of "
                                  f"{', '.join(PARTNER_ROLES)}")
    return " ".join(dict.fromkeys(wanted))


def _app_id_of(issuer: Any) -> str:
    """The application id of ``<app id>@<realm>``, before validation (only to find whose keys to try)."""
    if not isinstance(issuer, str) or "@" not in issuer:
        raise errors.MalformedToken("the token's issuer is not of the form <app id>@<realm>")
    return issuer.rpartition("@")[0].strip().lower()


def _peek(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of a compact JWS, unverified: only to choose how to validate it."""
    parts = token.split(".")
    if len(token) > 32 * 1024 or len(parts) != 3:
        raise errors.MalformedToken("the token is not a compact JWT (three dot-separated parts) of a sensible size")
    try:
        header, claims = (json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))) for p in parts[:2])
    except (ValueError, binascii.Error, UnicodeError):
        raise errors.MalformedToken("the token's header or claims cannot be read") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise errors.MalformedToken("the token's header and claims must be JSON objects")
    return header, claims


@lru_cache(maxsize=256)
def _our_descriptor(pem: str) -> KeyDescriptor:
    return KeyDescriptor.from_certificate(certificates.load_pem(pem))


@lru_cache(maxsize=1024)
def _partner_descriptor(value: str, start: datetime, end: datetime) -> KeyDescriptor:
    return KeyDescriptor.from_certificate(load_certificate_base64(value), start=start, end=end)
