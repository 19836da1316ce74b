"""What server-to-server token validation refuses, one class per rule, each carrying its OAuth wire fields
(Authlib style): ``error`` (RFC 6750 §3.1 ``invalid_token``; RFC 6749 §5.2 ``invalid_client``), ``status_code``
and a ``description`` an operator can act on. None repeats a token or a key.

    S2SError
    ├── TokenRefused                          invalid_token, 401 — an actor, app+user or access token
    │   ├── MalformedToken                    not a compact JWS / JSON object of a sensible size
    │   ├── AlgorithmNotAllowed               alg none, HS*, anything but RS256 / PS256 (RFC 8725 §2.1, §3.1)
    │   ├── UnknownThumbprint                 no candidate key has the header's x5t / x5t#S256 / kid
    │   ├── KeyOutsideValidity                the key's start/end dates do not cover the present
    │   ├── BadSignature                      the signature does not verify with the chosen key
    │   ├── MissingClaim                      a required claim is absent or of the wrong type
    │   ├── IssuerMismatch                    iss is not the expected issuer
    │   ├── AudienceMismatch                  aud is not us
    │   ├── RealmMismatch                     the realm in iss / aud / nameid is not the expected realm
    │   ├── TokenNotYetValid                  nbf in the future, beyond the leeway
    │   ├── TokenExpired                      exp in the past, beyond the leeway
    │   ├── NotTrustedForDelegation           an app+user token whose actor token lacks trustedfordelegation
    │   └── WrongTokenType                    an access token without typ at+jwt (RFC 9068 §4)
    └── ClientAssertionRefused                invalid_client, 401 — an RFC 7523 client assertion; each rule
        ├── (the same rules, as …Assertion subclasses below)
        ├── SubjectMismatch                   sub (or iss) is not the client_id (RFC 7523 §3 1., 2.)
        ├── MissingJti / ReplayedAssertion    jti absent, or seen before (RFC 7523 §3 7.)
        └── AssertionLifetimeTooLong          exp too far ahead to be worth remembering its jti
"""

from __future__ import annotations

from typing import ClassVar


class S2SError(Exception):
    """A refusal: ``error`` and ``status_code`` go on the wire, ``description`` too (never a secret)."""

    error: ClassVar[str] = "invalid_request"
    status_code: ClassVar[int] = 400

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description

    def as_dict(self) -> dict[str, str]:
        """The RFC 6749 §5.2 error body."""
        return {"error": self.error, "error_description": self.description}


class TokenRefused(S2SError):
    error = "invalid_token"
    status_code = 401


class MalformedToken(TokenRefused):
    pass


class AlgorithmNotAllowed(TokenRefused):
    pass


class UnknownThumbprint(TokenRefused):
    pass


class KeyOutsideValidity(TokenRefused):
    pass


class BadSignature(TokenRefused):
    pass


class MissingClaim(TokenRefused):
    pass


class IssuerMismatch(TokenRefused):
    pass


class AudienceMismatch(TokenRefused):
    pass


class RealmMismatch(TokenRefused):
    pass


class TokenNotYetValid(TokenRefused):
    pass


class TokenExpired(TokenRefused):
    pass


class NotTrustedForDelegation(TokenRefused):
    pass


class WrongTokenType(TokenRefused):
    pass


class ClientAssertionRefused(S2SError):
    """RFC 7523 §3.2: a client assertion that fails is an ``invalid_client`` error (RFC 6749 §5.2)."""

    error = "invalid_client"
    status_code = 401


class MalformedAssertion(ClientAssertionRefused, MalformedToken):
    pass


class AssertionAlgorithmNotAllowed(ClientAssertionRefused, AlgorithmNotAllowed):
    pass


class AssertionUnknownKey(ClientAssertionRefused, UnknownThumbprint):
    pass


class AssertionKeyOutsideValidity(ClientAssertionRefused, KeyOutsideValidity):
    pass


class AssertionBadSignature(ClientAssertionRefused, BadSignature):
    pass


class AssertionMissingClaim(ClientAssertionRefused, MissingClaim):
    pass


class AssertionAudienceMismatch(ClientAssertionRefused, AudienceMismatch):
    pass


class AssertionNotYetValid(ClientAssertionRefused, TokenNotYetValid):
    pass


class AssertionExpired(ClientAssertionRefused, TokenExpired):
    pass


class SubjectMismatch(ClientAssertionRefused):
    pass


class MissingJti(ClientAssertionRefused):
    pass


class ReplayedAssertion(ClientAssertionRefused):
    pass


class AssertionLifetimeTooLong(ClientAssertionRefused):
    pass
