"""What an OpenID Connect sign-in step refuses. Each error names its step (``step``) for the log and carries a
message an administrator can act on; none repeats a secret (a code, a token, a client secret).

    OidcError
    ├── DiscoveryError     the provider's configuration document (Discovery 1.0 §4)
    ├── CallbackError      the authorization response (RFC 6749 §4.1.2, RFC 9207); ``error`` is the provider's code
    ├── TokenError         the token endpoint's answer (RFC 6749 §5)
    └── IdTokenInvalid     the ID token (Core §3.1.3.7); ``claim`` names the claim at fault, if one is
        └── UnknownKey     signed with a key the JWKS does not hold (the provider may have rotated its keys)
"""

from __future__ import annotations


class OidcError(Exception):
    step = "oidc"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class DiscoveryError(OidcError):
    step = "discovery"


class CallbackError(OidcError):
    step = "callback"

    def __init__(self, message: str, error: str | None = None) -> None:
        super().__init__(message)
        self.error = error


class TokenError(OidcError):
    step = "token"


class IdTokenInvalid(OidcError):
    step = "id_token"

    def __init__(self, message: str, claim: str | None = None) -> None:
        super().__init__(message)
        self.claim = claim


class UnknownKey(IdTokenInvalid):
    """The token's ``kid`` is not in the JWKS read: read it again once (the provider rotated its keys)."""
