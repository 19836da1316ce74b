"""The JWS steps shared by actor tokens, client assertions and access tokens (RFC 7515, RFC 7519, RFC 8725):
size and shape, the algorithm allow-list, the key chosen by thumbprint among candidates that each carry a
validity window, the signature (joserfc's), the claims object, and times with a leeway. Each step raises the
error class of the caller's family (``Refusals``), so a client assertion fails as ``invalid_client`` and an actor
token as ``invalid_token`` through the same code. A signature that verified is remembered for the exact token
(``_verified``): only the RSA operation is skipped when the same token comes back, never a check.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Any

import orjson
import pybase64
from cryptography.exceptions import InvalidSignature
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
VERIFIED_CACHE_SIZE = 1024

_REGISTRIES = {alg: JWSRegistry(algorithms=[alg]) for alg in ALGORITHMS}
_ALGS = {alg: registry.get_alg(alg) for alg, registry in _REGISTRIES.items()}  # joserfc's RS256 and PS256
# What joserfc's RSA algorithm passes to ``cryptography`` on every verify — its padding (PKCS1v15; PSS with MGF1 and
# a salt of the digest's length) and its hash —, built once: ``RSAAlgModel.verify`` builds a new hash object and
# re-checks the JWK's key_ops on each call, 0.9 µs of a first-time validation (docs/BENCHMARKS.md). Our keys are
# always verification keys (``KeyDescriptor``), so that check has nothing to find.
_VERIFY_ARGS = {alg: (model.padding, model.hash_alg()) for alg, model in _ALGS.items()}  # type: ignore[attr-defined]


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


def _in_window(candidates: Sequence[KeyDescriptor], header: Mapping[str, Any], now: int, refusals: Refusals,
               any_key_without_id: bool) -> list[KeyDescriptor]:
    """The candidates the header names that are valid at ``now``; refused when there are none, saying why."""
    matching = _matching(candidates, header)
    if matching is None:
        if not any_key_without_id:
            raise refusals.unknown_key("the token's header names no key (no x5t, x5t#S256 or kid)")
        matching = list(candidates)
    if not matching:
        raise refusals.unknown_key("no registered key has the thumbprint in the token's header")
    in_window = [k for k in matching if k.not_before <= now <= k.not_after]
    if not in_window:
        raise refusals.key_dates("the key that signed the token is outside its start and end dates")
    return in_window


def _matching(candidates: Sequence[KeyDescriptor], header: Mapping[str, Any]) -> list[KeyDescriptor] | None:
    """The candidates the header names, or None if it names none. ``x5t#S256`` first (collision-resistant), then
    ``x5t`` (what the seed's partners send), then ``kid`` (RFC 7523 clients and our access tokens put x5t there)."""
    s256 = header.get("x5t#S256")
    if s256 is not None:
        return [k for k in candidates if k.x5t_s256 == s256]
    sha1 = header.get("x5t")
    if sha1 is not None:
        return [k for k in candidates if k.x5t == sha1]
    kid = header.get("kid")
    if kid is not None:
        return [k for k in candidates if k.x5t == kid]
    return None


# The last character of a segment of length 4n+2 (4n+3) carries 2 (4) bits of data and 4 (2) bits that must be
# zero; any other character decodes to the same bytes, which would give one token several spellings.
_CANONICAL_LAST = {2: frozenset(b"AQgw"), 3: frozenset(b"AEIMQUYcgkosw048")}
_PADDING = (b"", b"", b"==", b"=")
_PLUS, _SLASH, _EQUALS, _DOT = b"+/=."


def _b64url_decode(segment: bytes) -> bytes:
    """Base64url without padding (RFC 7515 §2), strictly: no ``+``, ``/`` or ``=``, nothing outside the alphabet,
    no stray bits in the last character, so that one value has one spelling. ValueError otherwise.

    pybase64's SIMD decoder with the URL-safe alphabet, called with positional arguments: 0.28 µs for a signature
    against 0.9 µs for the stdlib's (which needs the alphabet swapped first) and 0.5 µs for pybase64 with keywords,
    whose parsing costs more than the decoding (docs/BENCHMARKS.md). It still takes ``+`` and ``/`` beside ``-``
    and ``_`` (with a DeprecationWarning) and ``=`` as padding: refused here first."""
    # Bytes searched for ints: ``b"+" in segment`` costs 0.1 µs (it first tries its operand as an int, and fails).
    if _PLUS in segment or _SLASH in segment or _EQUALS in segment:
        raise ValueError("not base64url")
    rem = len(segment) & 3
    if rem:
        if rem == 1 or segment[-1] not in _CANONICAL_LAST[rem]:
            raise ValueError("not canonical base64url")
        segment += _PADDING[rem]
    return pybase64.b64decode(segment, b"-_", True)   # altchars, validate; binascii.Error is a ValueError


@lru_cache(maxsize=256)
def _header(segment: bytes) -> tuple[Mapping[str, Any] | None, str]:
    """The protected header of a compact JWS, checked by joserfc's registry (parameter types, RFC 7515 §4.1.11
    ``crit``: we understand no extension, so any ``crit`` is refused); ``(None, why)`` when unreadable.

    Cached: a partner signs every token with the same header, byte for byte, so the segment recurs; the cache
    holds headers only (never claims or signatures) and a header still has to come with a valid signature."""
    try:
        header = orjson.loads(_b64url_decode(segment))
    except ValueError:
        return None, "the token's header cannot be read as base64url JSON"
    if not isinstance(header, dict) or not isinstance(header.get("alg"), str):
        return None, "the token's header is not a JSON object with an 'alg'"
    if "crit" in header:
        return None, "the token's header lists critical extensions this server does not understand"
    alg = header["alg"]
    if alg in _REGISTRIES:
        try:
            _REGISTRIES[alg].check_header(header)
        except JoseError:
            return None, "the token's header has a parameter of the wrong type"
    return MappingProxyType(header), ""  # shared by every caller: read-only


# Signatures already verified, by the exact token string: a partner sends the same actor token on every call for
# its whole life (12 hours), and the RSA verification is most of the cost of validating it (docs/BENCHMARKS.md).
# Only the signature check and the claims' base64url are skipped on a hit: the header, the algorithm allow-list,
# the key choice by thumbprint and the key's window at ``now`` are checked on every call before the cache is
# consulted, and the claims (times, issuer, audience, ...) are checked by the caller every time. An entry is used
# only while the key that verified it is still among the candidates (the same object, or an equal descriptor over
# the same public key: a removed or replaced key is a miss) and only before the token's ``exp``. Bounded LRU;
# only tokens with a valid signature from a registered key get in, so strangers cannot fill it.
# An entry is (the key that verified the signature, the decoded claims — bytes, parsed afresh on each hit so that no
# two callers share a claims dict —, the token's exp): a plain tuple, since a frozen dataclass costs 0.5 µs to build,
# 2 % of a first-time validation.
_verified: OrderedDict[str, tuple[KeyDescriptor, bytes, int | float]] = OrderedDict()
# No lock: each OrderedDict operation below is one C call with str keys, so it is atomic under the GIL, and what
# two threads can do between two of them is harmless — evict one entry too many, or find an entry gone that was
# there a moment ago (KeyError, caught). A lock cost 0.1 µs a validation (docs/BENCHMARKS.md). CPython with the
# GIL only (3.11 here); a free-threaded build would need it back.


def clear_verified_cache() -> None:
    """Forget every verified signature (tests, and benchmarks)."""
    _verified.clear()


def _recall(token: str, entry: tuple[KeyDescriptor, bytes, int | float], in_window: list[KeyDescriptor],
            now: int) -> tuple[KeyDescriptor, bytes] | None:
    """The candidate key and the claims of ``token`` if its signature was verified by that same key (see above)."""
    cached, payload, expires = entry
    if now < expires:
        for key in in_window:
            if key is cached or (key == cached and key.public_key == cached.public_key):
                try:  # noqa: SIM105 - contextlib.suppress costs more than the rest of a hit
                    _verified.move_to_end(token)
                except KeyError:
                    pass   # evicted meanwhile by another thread: the entry read is still this token's
                return key, payload
    _verified.pop(token, None)
    return None


def _signature_verifies(alg: str, key: KeyDescriptor, signing_input: bytes, signature: bytes) -> bool:
    """The RSA check of ``alg`` (RS256 or PS256) with joserfc's padding and hash (``_VERIFY_ARGS``)."""
    pad, digest = _VERIFY_ARGS[alg]
    try:
        key.public_key.verify(signature, signing_input, pad, digest)
    except InvalidSignature:
        return False
    return True


def verify(token: str, candidates: Sequence[KeyDescriptor], *, now: int, refusals: Refusals = TOKEN,
           algorithms: Sequence[str] = ALGORITHMS, any_key_without_id: bool = False,
           ) -> tuple[Mapping[str, Any], dict[str, Any], KeyDescriptor]:
    """The header, the claims and the key of a compact JWS whose signature verifies with a candidate key valid at
    ``now`` (epoch seconds). ``any_key_without_id``: a header naming no key (no x5t, x5t#S256 or kid) is tried
    against every candidate in its window — RFC 7523 clients need not send a ``kid``.

    The signature check is joserfc's algorithm's (its padding and hash handed to ``cryptography`` as
    ``RSAAlgModel.verify`` does: ``_signature_verifies``) over the signing input of RFC 7515 §5.2; the header is
    parsed once per distinct segment (``_header``). A token whose signature already verified with the same key,
    before its ``exp``, is not verified again (``_verified``, above); every check before the signature runs on
    every call all the same."""
    if type(token) is not str or len(token) > MAX_TOKEN_BYTES:
        raise refusals.malformed("the token is not a compact JWS (three dot-separated parts) of a sensible size")
    try:
        raw = token.encode("ascii")
    except UnicodeError:
        raise refusals.malformed("the token is not ASCII: a compact JWS is base64url segments and dots") from None
    # rpartition, then partition: the signing input (RFC 7515 §5.2) comes out whole, and this costs 0.2 µs where
    # ``split`` and re-joining cost 0.5 µs (docs/BENCHMARKS.md).
    signing_input, _, signature_segment = raw.rpartition(b".")
    header_segment, dot2, payload_segment = signing_input.partition(b".")
    if not dot2 or _DOT in payload_segment:
        raise refusals.malformed("the token is not a compact JWS (three dot-separated parts) of a sensible size")
    header, why = _header(header_segment)
    if header is None:
        raise refusals.malformed(why)
    alg = header["alg"]
    if alg not in algorithms or alg not in _ALGS:
        raise refusals.algorithm(f"the algorithm {str(alg)[:20]!r} is not accepted; use one of "
                                 f"{', '.join(a for a in algorithms if a in _ALGS)}")
    if len(candidates) > MAX_CANDIDATE_KEYS:
        candidates = candidates[:MAX_CANDIDATE_KEYS]
    # The common case in one pass (0.15 µs less than choosing, then windowing): the key named by x5t#S256 and
    # within its dates. Anything else (another name, no key, no match, outside its dates) goes the long way, which
    # also says which refusal applies.
    s256 = header.get("x5t#S256")
    in_window = []
    if s256 is not None:
        for k in candidates:   # a loop, not a comprehension: on 3.11 that is a function call of its own
            if k.x5t_s256 == s256 and k.not_before <= now <= k.not_after:
                in_window.append(k)
    if not in_window:
        in_window = _in_window(candidates, header, now, refusals, any_key_without_id)
    entry = _verified.get(token)
    if entry is not None:
        recalled = _recall(token, entry, in_window, now)
        if recalled is not None:
            key, payload = recalled
            return header, orjson.loads(payload), key
    try:
        signature = _b64url_decode(signature_segment)
    except ValueError:
        raise refusals.malformed("the token's signature is not base64url") from None
    for key in in_window:
        if _signature_verifies(alg, key, signing_input, signature):
            break
    else:
        raise refusals.signature("the token's signature does not verify")
    try:
        # After the signature: the payload segment is part of the signing input as sent, so it is now trusted.
        payload = _b64url_decode(payload_segment)
        claims = orjson.loads(payload)
    except ValueError:
        raise refusals.malformed("the token's claims are not base64url JSON") from None
    if type(claims) is not dict:
        raise refusals.malformed("the token's claims are not a JSON object")
    exp = claims.get("exp")   # kept only until its exp: without a numeric one there is nothing to keep
    if (type(exp) is int or type(exp) is float) and exp > now:
        # A miss got us here: the token goes in at the recent end, the oldest out past the bound.
        _verified[token] = (key, payload, exp)
        if len(_verified) > VERIFIED_CACHE_SIZE:
            try:  # noqa: SIM105 - contextlib.suppress costs more than the insertion
                _verified.popitem(last=False)
            except KeyError:
                pass   # emptied meanwhile by another thread
    return header, claims, key


def string_claim(claims: dict[str, Any], name: str, refusals: Refusals = TOKEN) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise refusals.missing(f"the token has no {name!r} claim (a non-empty string)")
    return value


_NUMBERS = (int, float)  # a tuple, not ``int | float``: that builds a union object on every call


def int_claim(claims: dict[str, Any], name: str, refusals: Refusals = TOKEN) -> int:
    value = claims.get(name)
    # RFC 7519 §2 NumericDate: a number of seconds; bool is an int in Python and is not one.
    if type(value) is not int and (isinstance(value, bool) or not isinstance(value, _NUMBERS)):
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
