"""The seed's server-to-server tokens ([MS-SPS2SAUTH]; Exchange ↔ Skype for Business Online OAuth,
``oauth-with-online-and-on-premises.md``): a partner signs an *actor token* with the certificate it uploaded to
our service principal; an *app+user token* is an unsigned outer token carrying a user's identity and that actor token.

- Actor token (RFC 7519 JWT, RFC 7515 compact JWS): header ``{typ: JWT, alg: RS256, x5t, x5t#S256}`` (RFC 7515
  §4.1.7–4.1.8); claims ``iss`` = ``<partner app id>@<realm>``, ``aud`` = ``<our app id>/<host>@<realm>``,
  ``nameid`` = ``<partner app id>@<realm>``, ``nbf``, ``exp``, ``trustedfordelegation`` when the partner may act
  for users. The verification key is chosen by thumbprint among the partner's registered keys, each only within
  its start and end dates (joserfc's KeySet selects by ``kid`` only, so the choice is ours: ``_jws.verify``).
- App+user token: header ``{typ: JWT, alg: none}`` and claims ``aud``, ``iss``, ``nbf``, ``exp``, ``nameid`` (the
  user), ``nii`` (who names the user) and ``actortoken``. It is trusted only because its actor token is signed
  *and* says ``trustedfordelegation``: the one place an unsigned JWT is read, and only its outer layer.

Minting is here for tests, benches and our own outbound calls; a real partner mints its own.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, NamedTuple

from joserfc import jws
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jws import JWSRegistry

from tenantry.protocols.s2s import _jws, errors
from tenantry.protocols.s2s.certificates import KeyDescriptor, SigningCertificate

LEEWAY_SECONDS = _jws.LEEWAY_SECONDS
ACTOR_TOKEN_LIFETIME = 12 * 3600  # Exchange's actor tokens live 12 hours; ours default to the same
ALGORITHMS = _jws.ALGORITHMS

_SIGNING_REGISTRIES = {alg: JWSRegistry(algorithms=[alg]) for alg in ALGORITHMS}
_UNSIGNED = JWSRegistry(algorithms=["none"])


@dataclass(frozen=True)
class Recipient:
    """Who a token is for: our application id (Exchange's is ``00000002-0000-0ff1-ce00-000000000000``), the host
    the partner calls, and the realm (the tenant's id) shared by both sides."""

    app_id: str
    host: str
    realm: str

    @cached_property
    def audience(self) -> str:
        """The ``aud`` of a token for us: ``<app id>/<host>@<realm>``."""
        return f"{self.app_id}/{self.host}@{self.realm}"


class ActorToken(NamedTuple):
    """A validated actor token: the partner (``partner_app_id`` in ``realm``), the key that signed it and its claims.

    A NamedTuple, not a frozen dataclass: as immutable, and built in 0.4 µs instead of 1.8 µs (a frozen dataclass
    sets each field through ``object.__setattr__``), 5 % of a first-time validation (docs/BENCHMARKS.md)."""

    partner_app_id: str
    realm: str
    nameid: str
    not_before: int
    expires: int
    trusted_for_delegation: bool
    thumbprint: str
    claims: Mapping[str, Any]


_new_actor_token = tuple.__new__


class AppUserToken(NamedTuple):
    """A validated app+user token: the partner acting (``actor``) for the user ``nameid`` named by ``nii``."""

    nameid: str
    nii: str
    not_before: int
    expires: int
    actor: ActorToken
    claims: Mapping[str, Any]


def mint_actor_token(signing: SigningCertificate, recipient: Recipient, *, partner_app_id: str, now: int,
                     lifetime: int = ACTOR_TOKEN_LIFETIME, trusted_for_delegation: bool = False,
                     alg: str = "RS256", extra_claims: Mapping[str, Any] | None = None) -> str:
    """An actor token signed with ``signing``'s private key; ``nameid`` is the issuer, as in the seed."""
    if alg not in _SIGNING_REGISTRIES:
        raise errors.AlgorithmNotAllowed(f"actor tokens are signed with {' or '.join(ALGORITHMS)}, not {alg!r}")
    descriptor = signing.descriptor
    header = {"typ": "JWT", "alg": alg, "x5t": descriptor.x5t}
    if descriptor.x5t_s256:
        header["x5t#S256"] = descriptor.x5t_s256
    issuer = f"{partner_app_id}@{recipient.realm}"
    claims: dict[str, Any] = {"aud": recipient.audience, "iss": issuer, "nbf": now, "exp": now + lifetime,
                              "nameid": issuer}
    if trusted_for_delegation:
        claims["trustedfordelegation"] = "true"
    if extra_claims:
        claims.update(extra_claims)
    payload = json.dumps(claims, separators=(",", ":"))
    return jws.serialize_compact(header, payload, signing.signing_jwk, registry=_SIGNING_REGISTRIES[alg])


def mint_app_user_token(actor_token: str, recipient: Recipient, *, partner_app_id: str, nameid: str, nii: str,
                        now: int, lifetime: int = 3600) -> str:
    """The unsigned outer token of an app+user call ([MS-SPS2SAUTH]): the user and the partner's actor token."""
    claims = {"aud": recipient.audience, "iss": f"{partner_app_id}@{recipient.realm}", "nbf": now,
              "exp": now + lifetime, "nameid": nameid, "nii": nii, "actortoken": actor_token}
    payload = json.dumps(claims, separators=(",", ":"))
    with warnings.catch_warnings():
        # joserfc warns that "none" is deprecated (rightly, for a whole token): here it is the format's outer layer.
        warnings.simplefilter("ignore", SecurityWarning)
        return jws.serialize_compact({"typ": "JWT", "alg": "none"}, payload, None, registry=_UNSIGNED)


def _split_at_realm(value: str) -> tuple[str, str] | None:
    head, sep, realm = value.rpartition("@")
    if not sep or not head or not realm:
        return None
    return head, realm


def _check_issuer(iss: str, *, partner_app_id: str, realm: str) -> None:
    parts = _split_at_realm(iss)
    if parts is None:
        raise errors.IssuerMismatch("the token's issuer is not of the form <app id>@<realm>")
    if parts[1].lower() != realm.lower():
        raise errors.RealmMismatch("the token's issuer is in another realm")
    if parts[0].lower() != partner_app_id.lower():
        raise errors.IssuerMismatch("the token's issuer is not the partner application")


def _check_audience(aud: str, recipient: Recipient) -> None:
    parts = _split_at_realm(aud)
    if parts is None or "/" not in parts[0]:
        raise errors.AudienceMismatch("the token's audience is not of the form <app id>/<host>@<realm>")
    if parts[1].lower() != recipient.realm.lower():
        raise errors.RealmMismatch("the token's audience is in another realm")
    app_id, _, host = parts[0].partition("/")
    if app_id.lower() != recipient.app_id.lower() or host.lower() != recipient.host.lower():
        # RFC 7519 §4.1.3: "If the principal processing the claim does not identify itself with a value in the
        # "aud" claim ... then the JWT MUST be rejected."
        raise errors.AudienceMismatch("the token is for another application or host")


def validate_actor_token(token: str, keys: Sequence[KeyDescriptor], recipient: Recipient, *, partner_app_id: str,
                         now: int, leeway: int = LEEWAY_SECONDS) -> ActorToken:
    """The actor token, once its signature verifies with one of ``keys`` (the partner's registered keys, chosen by
    thumbprint, each within its dates) and its issuer, audience, realm, ``nbf`` and ``exp`` hold."""
    _, claims, key = _jws.verify(token, keys, now=now)
    nbf, exp = claims.get("nbf"), claims.get("exp")
    if type(nbf) is not int or type(exp) is not int or nbf > now + leeway or exp + leeway <= now:
        # Not both whole seconds in their window (what partners send): the full check says which refusal applies,
        # and accepts a fractional NumericDate. The inline test saves two calls, 0.3 µs (docs/BENCHMARKS.md).
        nbf, exp = _jws.check_times(claims, now=now, leeway=leeway)
    # The exact strings first (what a partner sends); the parsing below says which part differs, or accepts a
    # difference of case only.
    issuer = f"{partner_app_id}@{recipient.realm}"
    if claims.get("iss") != issuer:
        _check_issuer(_jws.string_claim(claims, "iss"), partner_app_id=partner_app_id, realm=recipient.realm)
    if claims.get("aud") != recipient.audience:
        _check_audience(_jws.string_claim(claims, "aud"), recipient)
    nameid = claims.get("nameid")
    if nameid != issuer:
        nameid = _jws.string_claim(claims, "nameid")
        nameid_parts = _split_at_realm(nameid)
        if nameid_parts is not None and nameid_parts[1].lower() != recipient.realm.lower():
            raise errors.RealmMismatch("the token's nameid is in another realm")
    trusted = claims.get("trustedfordelegation")
    delegates = trusted == "true" or trusted is True or (isinstance(trusted, str) and trusted.lower() == "true")
    # tuple.__new__ with the fields in order: what the NamedTuple's own __new__ does after a Python-level call
    # (0.07 µs more; keywords 0.5 µs more).
    return _new_actor_token(ActorToken, (partner_app_id, recipient.realm, nameid, nbf if nbf is not None else now,
                                         exp, delegates, key.x5t, claims))


def validate_app_user_token(token: str, keys: Sequence[KeyDescriptor], recipient: Recipient, *,
                            partner_app_id: str, now: int, leeway: int = LEEWAY_SECONDS) -> AppUserToken:
    """The app+user token: its outer layer (unsigned: ``alg`` must be ``none`` and the signature empty) with
    audience, issuer and times checked, and its actor token validated in full and trusted for delegation."""
    if not isinstance(token, str) or len(token) > 2 * _jws.MAX_TOKEN_BYTES or token.count(".") != 2:
        raise errors.MalformedToken("the app+user token is not a JWT (three dot-separated parts) of a sensible size")
    if not token.endswith("."):
        raise errors.AlgorithmNotAllowed("an app+user token's outer layer is unsigned; this one carries a signature")
    try:
        obj = jws.extract_compact(token.encode("ascii"), registry=_UNSIGNED)
    except (JoseError, ValueError, UnicodeError):
        raise errors.MalformedToken("the app+user token's header cannot be read") from None
    if obj.protected.get("alg") != "none":
        raise errors.AlgorithmNotAllowed("an app+user token's outer layer must say alg none; its actor token signs")
    try:
        claims = json.loads(obj.payload)
    except ValueError:
        raise errors.MalformedToken("the app+user token's claims are not JSON") from None
    if not isinstance(claims, dict):
        raise errors.MalformedToken("the app+user token's claims are not a JSON object")
    actor = validate_actor_token(_jws.string_claim(claims, "actortoken"), keys, recipient,
                                 partner_app_id=partner_app_id, now=now, leeway=leeway)
    if not actor.trusted_for_delegation:
        raise errors.NotTrustedForDelegation("the actor token does not say trustedfordelegation: the partner may "
                                             "not act for users")
    nbf, exp = _jws.check_times(claims, now=now, leeway=leeway)
    _check_issuer(_jws.string_claim(claims, "iss"), partner_app_id=partner_app_id, realm=recipient.realm)
    _check_audience(_jws.string_claim(claims, "aud"), recipient)
    return AppUserToken(nameid=_jws.string_claim(claims, "nameid"), nii=_jws.string_claim(claims, "nii"),
                        not_before=nbf if nbf is not None else now, expires=exp, actor=actor, claims=claims)
