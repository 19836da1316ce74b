"""The token endpoint's two JWTs, as pure functions: the client assertion a partner authenticates with
(``private_key_jwt``: RFC 7523 §2.2 and §3, RFC 7521 §4.2) and the short-lived access token we issue to it
(RFC 9068's JWT profile), so standard OAuth clients work unchanged beside the seed's actor tokens.

Client assertion, RFC 7523 §3: ``iss`` "MUST contain the client_id" (1.) and ``sub`` "MUST be the client_id"
(2., for client authentication, RFC 7521 §5.2); ``aud`` "containing a value that identifies the authorization
server" — the token endpoint's URL (3.); ``exp`` MUST be present and in the future (4.); ``nbf`` and ``iat``
optional (5., 6.); ``jti`` optional in the RFC but required here, and "the authorization server MAY ensure that
JWTs are not replayed by maintaining the set of used jti values for the length of time for which the JWT would
be considered valid" (7.): the caller's ``claim_jti`` callback keeps that set (it is storage, not protocol).
The signature (9.) verifies with one of the client's registered keys, chosen by ``kid`` / ``x5t``, or any valid
one when the header names none; failures are ``invalid_client`` (§3.2 → RFC 6749 §5.2).

Access token, RFC 9068: header ``typ`` = ``at+jwt`` (§2.1; a resource server "MUST verify" it, §4), ``kid`` =
our current certificate's ``x5t``; claims ``iss``, ``exp``, ``aud``, ``sub``, ``client_id``, ``iat``, ``jti``
(§2.2) and ``scope`` when granted.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jws import JWSRegistry

from tenantry.protocols.s2s import _jws, errors
from tenantry.protocols.s2s.certificates import KeyDescriptor, SigningCertificate

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"  # RFC 7523 §2.2
LEEWAY_SECONDS = _jws.LEEWAY_SECONDS
# An assertion must expire soon after it is made: its jti has to be remembered until then (RFC 7523 §3 7.).
MAX_ASSERTION_LIFETIME = 3600
ACCESS_TOKEN_LIFETIME = 600
ACCESS_TOKEN_TYPE = "at+jwt"
MAX_JTI_LENGTH = 256

ClaimJti = Callable[[str, str, int], bool]
"""``claim_jti(client_id, jti, exp)``: True if this jti is seen for the first time (and is now remembered until
``exp``), False if it was already used."""

_SIGNING = JWSRegistry(algorithms=["RS256"])


@dataclass(frozen=True)
class ClientAssertion:
    """A validated client assertion: the client it authenticates and the key that signed it."""

    client_id: str
    jti: str
    expires: int
    thumbprint: str
    claims: Mapping[str, Any]


@dataclass(frozen=True)
class AccessToken:
    """A validated access token we issued: to ``client_id``, for ``scope``, until ``expires``."""

    client_id: str
    scope: str | None
    issued_at: int
    expires: int
    jti: str
    thumbprint: str
    claims: Mapping[str, Any]


def unverified_client_id(assertion: str) -> str:
    """The ``iss`` of an assertion *before* validation — only to find which client's keys to validate it with
    (RFC 7521 §4.2 makes ``client_id`` optional in the request). Never trust it otherwise."""
    if not isinstance(assertion, str) or len(assertion) > _jws.MAX_TOKEN_BYTES or assertion.count(".") != 2:
        raise errors.MalformedAssertion("the client assertion is not a compact JWS of a sensible size")
    try:
        claims = json.loads(jws.extract_compact(assertion.encode("ascii")).payload)
    except (JoseError, ValueError, UnicodeError):
        raise errors.MalformedAssertion("the client assertion cannot be read") from None
    if not isinstance(claims, dict):
        raise errors.MalformedAssertion("the client assertion's claims are not a JSON object")
    return _jws.string_claim(claims, "iss", _jws.ASSERTION)


def validate_client_assertion(assertion: str, keys: Sequence[KeyDescriptor], *, client_id: str,
                              audiences: Collection[str], now: int, claim_jti: ClaimJti,
                              leeway: int = LEEWAY_SECONDS,
                              max_lifetime: int = MAX_ASSERTION_LIFETIME) -> ClientAssertion:
    """The client assertion of ``client_id``, signed by one of its ``keys``, for one of ``audiences`` (our token
    endpoint URL, our issuer), unexpired and never seen before. The jti is claimed last, so an assertion refused
    for another reason does not use it up."""
    refusals = _jws.ASSERTION
    _, claims, key = _jws.verify(assertion, keys, now=now, refusals=refusals, algorithms=("RS256", "PS256"),
                                 any_key_without_id=True)
    iss = _jws.string_claim(claims, "iss", refusals)
    sub = _jws.string_claim(claims, "sub", refusals)
    if iss != client_id or sub != client_id:
        raise errors.SubjectMismatch("the client assertion's iss and sub must both be the client_id")
    aud = claims.get("aud")
    aud_values = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else None
    if not aud_values:
        raise errors.AssertionMissingClaim("the client assertion has no 'aud' claim")
    if not any(isinstance(a, str) and a in audiences for a in aud_values):
        raise errors.AssertionAudienceMismatch("the client assertion is not addressed to this token endpoint")
    _, exp = _jws.check_times(claims, now=now, leeway=leeway, refusals=refusals, require_nbf=False)
    # Authlib and others default to one hour; the leeway keeps a client whose clock runs ahead from being refused.
    if exp > now + max_lifetime + leeway:
        raise errors.AssertionLifetimeTooLong(f"the client assertion expires more than {max_lifetime} s from now")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LENGTH:
        raise errors.MissingJti("the client assertion has no 'jti' claim (a unique string): it could be replayed")
    if not claim_jti(client_id, jti, exp):
        raise errors.ReplayedAssertion("this client assertion (its jti) has already been used")
    return ClientAssertion(client_id=client_id, jti=jti, expires=exp, thumbprint=key.x5t, claims=claims)


def mint_access_token(signing: SigningCertificate, *, issuer: str, audience: str, client_id: str, now: int,
                      lifetime: int = ACCESS_TOKEN_LIFETIME, scope: str | None = None, jti: str | None = None,
                      extra_claims: Mapping[str, Any] | None = None) -> str:
    """A short-lived access token (RFC 9068) for ``client_id``, signed with our current certificate."""
    header = {"typ": ACCESS_TOKEN_TYPE, "alg": "RS256", "kid": signing.descriptor.x5t}
    claims: dict[str, Any] = {"iss": issuer, "sub": client_id, "aud": audience, "client_id": client_id,
                              "iat": now, "nbf": now, "exp": now + lifetime, "jti": jti or secrets.token_urlsafe(18)}
    if scope:
        claims["scope"] = scope
    if extra_claims:
        claims.update(extra_claims)
    payload = json.dumps(claims, separators=(",", ":"))
    return jws.serialize_compact(header, payload, signing.signing_jwk, registry=_SIGNING)


def validate_access_token(token: str, keys: Sequence[KeyDescriptor], *, issuer: str, audience: str, now: int,
                          leeway: int = LEEWAY_SECONDS) -> AccessToken:
    """An access token we issued: ``typ`` at+jwt, signed by one of our keys (current, next or previous, each in
    its window), from ``issuer``, for ``audience``, within its times."""
    header, claims, key = _jws.verify(token, keys, now=now, algorithms=("RS256",))
    if str(header.get("typ", "")).lower() not in (ACCESS_TOKEN_TYPE, "application/at+jwt"):
        raise errors.WrongTokenType("the token is not an access token (typ at+jwt)")
    _jws.check_times(claims, now=now, leeway=leeway, require_nbf=False)
    if _jws.string_claim(claims, "iss") != issuer:
        raise errors.IssuerMismatch("the access token was issued by another server")
    aud = claims.get("aud")
    if not (aud == audience or (isinstance(aud, list) and audience in aud)):
        raise errors.AudienceMismatch("the access token is for another audience")
    scope = claims.get("scope")
    return AccessToken(client_id=_jws.string_claim(claims, "client_id"),
                       scope=scope if isinstance(scope, str) else None,
                       issued_at=_jws.int_claim(claims, "iat"), expires=_jws.int_claim(claims, "exp"),
                       jti=_jws.string_claim(claims, "jti"), thumbprint=key.x5t, claims=claims)
