"""The ID token's validation (OpenID Connect Core 1.0 §3.1.3.7), by a relying party that received it from the
token endpoint.

- Signature (§3.1.3.7 6., RFC 7515): verified with the provider's JWKS, by ``kid``; the algorithm must be one of
  ``ALGORITHMS`` (the RSA PKCS#1, RSA-PSS and ECDSA families): never ``none``, never a MAC (HS*), whose key would
  be the client secret or, worse, a public key taken for one (RFC 8725 §2.1, §3.1).
- ``iss`` "MUST exactly match" the issuer (2.); ``aud`` "MUST contain the client_id" (3.); with several audiences,
  ``azp`` MUST be present (Core §2) and equal the client id (4., 5.); ``exp`` in the future and ``iat`` not in it,
  both with a small leeway for clocks (9., 10.); ``nonce`` present and equal to the one sent (11.).

joserfc verifies the signature and Authlib's ``CodeIDToken`` the claims: no JWT code of our own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import ExpiredTokenError, InvalidClaimError, InvalidKeyIdError, JoseError, MissingClaimError
from joserfc.jwk import KeySet

from tenantry.protocols.oidc.errors import IdTokenInvalid, UnknownKey

ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
LEEWAY_SECONDS = 60
MAX_TOKEN_BYTES = 16 * 1024
MAX_KEYS = 50


@dataclass(frozen=True)
class IdToken:
    """A validated ID token: who signed in (``subject`` at ``issuer``) and every claim it carried."""

    issuer: str
    subject: str
    claims: Mapping[str, Any]


def key_set(jwks: Any) -> KeySet:
    """The provider's signature keys from its JWKS document (RFC 7517 §5): encryption keys and symmetric keys
    are left out, a malformed document is refused."""
    if not isinstance(jwks, Mapping) or not isinstance(jwks.get("keys"), list):
        raise IdTokenInvalid("the provider's JWKS is not a JSON object with a 'keys' list")
    keys = [k for k in jwks["keys"] if isinstance(k, Mapping) and k.get("use", "sig") == "sig"
            and k.get("kty") in ("RSA", "EC")][:MAX_KEYS]
    try:
        return KeySet.import_key_set({"keys": [dict(k) for k in keys]})
    except (JoseError, ValueError, TypeError) as exc:
        raise IdTokenInvalid(f"the provider's JWKS cannot be read: {exc}") from None


def validate(token: str, keys: KeySet, *, issuer: str, client_id: str, nonce: str, now: int,
             leeway: int = LEEWAY_SECONDS) -> IdToken:
    """The ID token's claims, once every rule of Core §3.1.3.7 holds; ``IdTokenInvalid`` naming the first that
    does not (``UnknownKey`` for a ``kid`` the key set lacks)."""
    if len(token) > MAX_TOKEN_BYTES or token.count(".") != 2:
        raise IdTokenInvalid("the ID token is not a signed JWT (JWS compact serialization) of a sensible size")
    try:
        decoded = jwt.decode(token, keys, algorithms=list(ALGORITHMS))
    except InvalidKeyIdError:
        raise UnknownKey("the ID token is signed with a key the provider's JWKS does not hold") from None
    except JoseError as exc:
        raise IdTokenInvalid(f"the ID token's signature does not verify with the provider's keys ({exc.error})"
                             ) from None
    options: dict[str, Any] = {
        "iss": {"essential": True, "value": issuer},
        "aud": {"essential": True, "value": client_id},
        "sub": {"essential": True},
        "exp": {"essential": True},
        "iat": {"essential": True},
        "nonce": {"essential": True},
    }
    claims = CodeIDToken(decoded.claims, decoded.header, options=options,
                         params={"nonce": nonce, "client_id": client_id})
    try:
        claims.validate(now=now, leeway=leeway)
    except ExpiredTokenError:
        raise IdTokenInvalid("the ID token has expired", claim="exp") from None
    except MissingClaimError as exc:
        raise IdTokenInvalid(f"the ID token lacks a claim it must carry ({getattr(exc, 'claim', '')})",
                             claim=_claim_of(exc)) from None
    except InvalidClaimError as exc:
        claim = _claim_of(exc)
        raise IdTokenInvalid(_WHY.get(claim or "", f"the ID token's claim {claim!r} is not valid"),
                             claim=claim) from None
    except JoseError as exc:
        raise IdTokenInvalid(f"the ID token is not valid ({exc.error})") from None
    return IdToken(issuer=issuer, subject=str(decoded.claims["sub"]), claims=dict(decoded.claims))


_WHY = {
    "iss": "the ID token was issued by another issuer",
    "aud": "the ID token is meant for another client (its audience does not contain this client id)",
    "azp": "the ID token was issued to another party (azp is not this client id)",
    "nonce": "the ID token's nonce is not the one this sign-in sent (a replayed or substituted token)",
    "iat": "the ID token says it was issued in the future",
    "nbf": "the ID token is not valid yet",
    "exp": "the ID token has expired",
}


def _claim_of(exc: JoseError) -> str | None:
    claim = getattr(exc, "claim", None)   # joserfc's claim errors name their claim ("iss,nonce" when several)
    return str(claim).split(",")[0] if claim else None
