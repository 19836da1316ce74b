"""The authorization code flow with PKCE, for a confidential client (OpenID Connect Core 1.0 §3.1).

- The authorization request (Core §3.1.2.1, RFC 6749 §4.1.1): ``response_type=code``, the client's
  ``redirect_uri``, ``scope`` with ``openid``, a ``state`` (RFC 6749 §10.12: "The client MUST implement CSRF
  protection for its redirection URI"), a ``nonce`` (Core §3.1.2.1, bound into the ID token) and the PKCE
  challenge (RFC 7636 §4.2: ``S256``, the base64url SHA-256 of a verifier of 43 to 128 characters, §4.1).
- The authorization response (RFC 6749 §4.1.2 / §4.1.2.1 errors; RFC 9207 §2.4: "Clients … MUST compare the
  iss parameter value … with the issuer identifier of the authorization server", and where the server
  advertises the parameter, refuse a response without it).
- The token request (RFC 6749 §4.1.3 with RFC 7636 §4.5's ``code_verifier``; client authentication per §2.3.1,
  ``client_secret_basic`` unless the provider offers only ``client_secret_post``) and its answer (§5.1, §5.2;
  Core §3.1.3.3: the answer carries an ``id_token``).

Authlib builds and parses the messages; this module chooses what goes in them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from authlib.common.security import generate_token
from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from tenantry.protocols.oidc.discovery import ProviderMetadata
from tenantry.protocols.oidc.errors import CallbackError, TokenError

# 256 bits and more of the 62-letter alphabet Authlib draws from (secrets.SystemRandom).
STATE_LENGTH = 48
NONCE_LENGTH = 48
VERIFIER_LENGTH = 64     # RFC 7636 §4.1: 43 to 128 unreserved characters


@dataclass(frozen=True)
class AuthorizationRequest:
    """Where to send the browser, and what to keep until it comes back (never sent anywhere else)."""

    url: str
    state: str
    nonce: str
    code_verifier: str


@dataclass(frozen=True)
class TokenRequest:
    url: str
    headers: dict[str, str]
    body: str


def authorization_request(metadata: ProviderMetadata, *, client_id: str, redirect_uri: str,
                          scopes: Sequence[str]) -> AuthorizationRequest:
    state, nonce = generate_token(STATE_LENGTH), generate_token(NONCE_LENGTH)
    verifier = generate_token(VERIFIER_LENGTH)
    scope = list(dict.fromkeys(["openid", *scopes]))   # Core §3.1.2.1: "scope … MUST contain the openid value"
    url = prepare_grant_uri(metadata.authorization_endpoint, client_id, "code", redirect_uri, scope=scope,
                            state=state, nonce=nonce, code_challenge=create_s256_code_challenge(verifier),
                            code_challenge_method="S256")
    return AuthorizationRequest(str(url), state, nonce, verifier)


def authorization_code(params: Mapping[str, str], metadata: ProviderMetadata) -> str:
    """The code of an authorization response whose ``state`` the caller has matched already."""
    issuer = params.get("iss")
    if issuer is not None and issuer != metadata.issuer:
        raise CallbackError("the answer comes from another issuer than the one this sign-in went to (RFC 9207)")
    if issuer is None and metadata.iss_parameter_supported:
        raise CallbackError("the answer does not name its issuer, which this provider always does (RFC 9207)")
    error = params.get("error")
    if error is not None:
        description = params.get("error_description") or ""
        raise CallbackError(f"the identity provider refused the sign-in: {error[:64]}"
                            + (f" ({description[:200]})" if description else ""), error=error[:64])
    code = params.get("code")
    if not code:
        raise CallbackError("the answer carries no authorization code")
    return code


def _client_auth_method(metadata: ProviderMetadata) -> str:
    offered = metadata.token_endpoint_auth_methods_supported
    if "client_secret_basic" in offered or "client_secret_post" not in offered:
        return "client_secret_basic"
    return "client_secret_post"


def token_request(metadata: ProviderMetadata, *, client_id: str, client_secret: str, code: str, redirect_uri: str,
                  code_verifier: str) -> TokenRequest:
    body = prepare_token_request("authorization_code", code=code, redirect_uri=redirect_uri,
                                 code_verifier=code_verifier)
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    url, headers, body = ClientAuth(client_id, client_secret, _client_auth_method(metadata)).prepare(
        "POST", metadata.token_endpoint, headers, body)
    return TokenRequest(str(url), dict(headers), str(body))


def id_token_of(status: int, answer: Any) -> str:
    """The ``id_token`` of the token endpoint's answer (its HTTP status and JSON body)."""
    if not isinstance(answer, Mapping):
        raise TokenError(f"the token endpoint answered {status} without a JSON object")
    if status != 200 or "error" in answer:
        error = str(answer.get("error") or status)[:64]
        description = str(answer.get("error_description") or "")[:200]
        raise TokenError(f"the token endpoint refused the code: {error}" + (f" ({description})" if description else ""))
    token = answer.get("id_token")
    if not isinstance(token, str) or not token:
        raise TokenError("the token endpoint's answer carries no id_token (is 'openid' among the scopes?)")
    token_type = answer.get("token_type")
    if isinstance(token_type, str) and token_type.lower() not in ("bearer", "dpop"):
        raise TokenError(f"the token endpoint answered an unexpected token_type {token_type[:32]!r}")
    return token
