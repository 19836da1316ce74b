"""The JWS steps shared by actor tokens, client assertions and access tokens (RFC 7515, RFC 7519, RFC 8725):
size and shape, the algorithm allow-list, the key chosen by thumbprint among candidates that each carry a
validity window, the signature (joserfc's), the claims object, and times with a leeway. Each step raises the
error class of the caller's family (``Refusals``), so a client assertion fails as ``invalid_client`` and an actor
token as ``invalid_token`` through the same code.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jws import JWSRegistry

from tenantry.protocols.s2s import errors
from tenantry.protocols.s2s.certificates import KeyDescriptor

# RFC 8725 §3.1 "Libraries MUST enable the caller to specify a supported set of algorithms": RSA only — never
# "none" (no signature at all) nor HS* (a MAC whose "secret" would be the partner's public key, §2.1).
ALGORITHMS: tuple[str, ...] = ("RS256", "PS256")
MAX_TOKEN_BYTES = 16 * 1024
MAX_CANDIDATE_KEYS = 50
LEEWAY_SECONDS = 120

_REGISTRIES = {alg: JWSRegistry(algorithms=[alg]) for alg in ALGORITHMS}


@dataclass(frozen=True)
class Refusals:
    malformed: type[errors.S2SError]
    algorithm: type[errors.S2SError]
    unknown_key: type[errors.S2SError]
    key_dates: type[errors.S2SError]
    signature: type[errors.S2SError]
    missing: type[errors.S2SError]
    not_yet_valid: type[errors.S2SError]
    expired: type[errors.S2SError]


TOKEN = Refusals(errors.MalformedToken, errors.AlgorithmNotAllowed, errors.UnknownThumbprint,
                 errors.KeyOutsideValidity, errors.BadSignature, errors.MissingClaim, errors.TokenNotYetValid,
                 errors.TokenExpired)
ASSERTION = Refusals(errors.MalformedAssertion, errors.AssertionAlgorithmNotAllowed, errors.AssertionUnknownKey,
                     errors.AssertionKeyOutsideValidity, errors.AssertionBadSignature, errors.AssertionMissingClaim,
                     errors.AssertionNotYetValid, errors.AssertionExpired)


def _matches(key: KeyDescriptor, header: dict[str, Any]) -> bool:
    # x5t#S256 first (collision-resistant), then x5t (what the seed's partners send), then kid (RFC 7523 clients
    # and our own access tokens put the x5t there).
    s256 = header.get("x5t#S256")
    if s256 is not None:
        return bool(key.x5t_s256 == s256)
    sha1 = header.get("x5t")
    if sha1 is not None:
        return bool(key.x5t == sha1)
    return header.get("kid") == key.x5t


def verify(token: str, candidates: Sequence[KeyDescriptor], *, now: int, refusals: Refusals = TOKEN,
           algorithms: Sequence[str] = ALGORITHMS, any_key_without_id: bool = False,
           ) -> tuple[dict[str, Any], dict[str, Any], KeyDescriptor]:
    """The header, the claims and the key of a compact JWS whose signature verifies with a candidate key valid at
    ``now`` (epoch seconds). ``any_key_without_id``: a header naming no key (no x5t, x5t#S256 or kid) is tried
    against every candidate in its window — RFC 7523 clients need not send a ``kid``."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_BYTES or token.count(".") != 2:
        raise refusals.malformed("the token is not a compact JWS (three dot-separated parts) of a sensible size")
    try:
        obj = jws.extract_compact(token.encode("ascii"))
    except (JoseError, ValueError, UnicodeError):
        raise refusals.malformed("the token's header cannot be read as JSON") from None
    header = obj.protected
    alg = header.get("alg")
    if alg not in algorithms or alg not in _REGISTRIES:
        raise refusals.algorithm(f"the algorithm {str(alg)[:20]!r} is not accepted; use one of "
                                 f"{', '.join(a for a in algorithms if a in _REGISTRIES)}")
    if len(candidates) > MAX_CANDIDATE_KEYS:
        candidates = candidates[:MAX_CANDIDATE_KEYS]
    names_key = any(name in header for name in ("x5t#S256", "x5t", "kid"))
    if names_key:
        matching = [k for k in candidates if _matches(k, header)]
    elif any_key_without_id:
        matching = list(candidates)
    else:
        raise refusals.unknown_key("the token's header names no key (no x5t, x5t#S256 or kid)")
    if not matching:
        raise refusals.unknown_key("no registered key has the thumbprint in the token's header")
    in_window = [k for k in matching if k.start.timestamp() <= now <= k.end.timestamp()]
    if not in_window:
        raise refusals.key_dates("the key that signed the token is outside its start and end dates")
    registry = _REGISTRIES[alg]
    for key in in_window:
        try:
            if jws.validate_compact(obj, key.jwk, registry=registry):
                break
        except JoseError:
            raise refusals.malformed("the token's header is not acceptable") from None
    else:
        raise refusals.signature("the token's signature does not verify")
    try:
        claims = json.loads(obj.payload)
    except ValueError:
        raise refusals.malformed("the token's claims are not JSON") from None
    if not isinstance(claims, dict):
        raise refusals.malformed("the token's claims are not a JSON object")
    return header, claims, key


def string_claim(claims: dict[str, Any], name: str, refusals: Refusals = TOKEN) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise refusals.missing(f"the token has no {name!r} claim (a non-empty string)")
    return value


def int_claim(claims: dict[str, Any], name: str, refusals: Refusals = TOKEN) -> int:
    value = claims.get(name)
    # RFC 7519 §2 NumericDate: a number of seconds; bool is an int in Python and is not one.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise refusals.missing(f"the token has no {name!r} claim (a NumericDate)")
    return int(value)


def check_times(claims: dict[str, Any], *, now: int, leeway: int, refusals: Refusals = TOKEN,
                require_nbf: bool = True) -> tuple[int | None, int]:
    """``nbf`` (RFC 7519 §4.1.5) and ``exp`` (§4.1.4: "MUST NOT be accepted for processing" on or after it), each
    with ``leeway`` seconds for clock skew."""
    exp = int_claim(claims, "exp", refusals)
    nbf = int_claim(claims, "nbf", refusals) if require_nbf or "nbf" in claims else None
    if nbf is not None and nbf > now + leeway:
        raise refusals.not_yet_valid("the token is not valid yet (nbf is in the future)")
    if exp + leeway <= now:
        raise refusals.expired("the token has expired")
    return nbf, exp
