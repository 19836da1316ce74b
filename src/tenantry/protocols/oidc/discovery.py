"""The provider's configuration, read from its discovery document (OpenID Connect Discovery 1.0).

§4: the document is at the issuer's URL (without a terminating "/") plus ``/.well-known/openid-configuration``.
§4.3: "The issuer value returned MUST be identical to the Issuer URL that was used as the prefix to
/.well-known/openid-configuration to retrieve the configuration information" — compared exactly, so a document
served for one issuer cannot speak for another (mix-up). §3: the fields a relying party needs are REQUIRED, and
Core §2 makes the issuer "a case-sensitive URL using the https scheme … and no query or fragment components".

http is accepted only for a provider on the loopback interface and only when the caller allows it (the
operator's ``TENANTRY_OUTBOUND_ALLOW_LOOPBACK``: tests, a provider on the same machine).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from authlib.oidc.discovery import OpenIDProviderMetadata, get_well_known_url

from tenantry.protocols.oidc.errors import DiscoveryError


@dataclass(frozen=True)
class ProviderMetadata:
    """What the sign-in uses of a provider's discovery document."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    id_token_signing_alg_values_supported: tuple[str, ...]
    token_endpoint_auth_methods_supported: tuple[str, ...]
    # RFC 9207 §3: the provider adds ``iss`` to its authorization responses; then one without it is refused.
    iss_parameter_supported: bool = False


def is_loopback_host(host: str) -> bool:
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_url(url: str, what: str, *, allow_http_loopback: bool = False) -> str:
    """An https URL (http on loopback only when allowed), with a host, no user name or password, no fragment.
    Returns it unchanged: an issuer is compared character for character, trailing "/" included."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number in range
    except ValueError:
        raise DiscoveryError(f"the {what} is not a valid URL") from None
    if not parts.hostname or "@" in parts.netloc:
        raise DiscoveryError(f"the {what} must be an https URL with a host and no user name or password")
    if parts.fragment or url.endswith("#"):
        raise DiscoveryError(f"the {what} must not carry a fragment")
    if any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in url):
        raise DiscoveryError(f"the {what} must not contain spaces or control characters")
    if parts.scheme == "https":
        return url
    if parts.scheme == "http" and allow_http_loopback and is_loopback_host(parts.hostname):
        return url
    if parts.scheme == "http" and is_loopback_host(parts.hostname):
        raise DiscoveryError(f"the {what} uses http on this machine, which needs TENANTRY_OUTBOUND_ALLOW_LOOPBACK=true "
                             "(tests, a provider on the same machine); otherwise use https")
    raise DiscoveryError(f"the {what} must use https")


def check_issuer(issuer: str, *, allow_http_loopback: bool = False) -> str:
    """Core §2: an https URL with no query or fragment."""
    checked = check_url(issuer, "issuer", allow_http_loopback=allow_http_loopback)
    if urlsplit(checked).query or checked.endswith("?"):
        raise DiscoveryError("the issuer must not carry a query string")
    return checked


def well_known_url(issuer: str) -> str:
    """§4: where the issuer's discovery document is."""
    return str(get_well_known_url(issuer, external=True))


def parse_metadata(document: Any, issuer: str, *, allow_http_loopback: bool = False) -> ProviderMetadata:
    """The provider's configuration from its discovery document, for the issuer configured (``issuer``)."""
    if not isinstance(document, Mapping):
        raise DiscoveryError("the discovery document is not a JSON object")
    if document.get("issuer") != issuer:
        raise DiscoveryError(f"the discovery document names the issuer {str(document.get('issuer'))[:200]!r}, not "
                             f"{issuer!r} as configured: they must be identical (OpenID Connect Discovery §4.3)")
    # Authlib's checks of the document's shape (REQUIRED fields and their types), all but those that insist on
    # https (loopback http is ours to allow, above).
    metadata = OpenIDProviderMetadata(dict(document))
    try:
        metadata.validate_response_types_supported()
        metadata.validate_subject_types_supported()
        metadata.validate_id_token_signing_alg_values_supported()
        metadata.validate_token_endpoint_auth_methods_supported()
        metadata.validate_code_challenge_methods_supported()
    except ValueError as exc:
        raise DiscoveryError(f"the discovery document is not valid: {exc}") from None
    if "code" not in document["response_types_supported"]:
        raise DiscoveryError("the provider does not offer the authorization code flow (response type 'code')")
    methods = document.get("code_challenge_methods_supported")
    if methods is not None and "S256" not in methods:
        raise DiscoveryError("the provider does not offer PKCE with S256 (code_challenge_methods_supported)")
    endpoints = {}
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        value = document.get(name)
        if not isinstance(value, str) or not value:
            raise DiscoveryError(f"the discovery document has no {name}")
        endpoints[name] = check_url(value, name.replace("_", " "), allow_http_loopback=allow_http_loopback)
    auth_methods = document.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    return ProviderMetadata(
        issuer=issuer,
        authorization_endpoint=endpoints["authorization_endpoint"], token_endpoint=endpoints["token_endpoint"],
        jwks_uri=endpoints["jwks_uri"],
        id_token_signing_alg_values_supported=tuple(str(a) for a in document["id_token_signing_alg_values_supported"]),
        token_endpoint_auth_methods_supported=tuple(str(m) for m in auth_methods),
        iss_parameter_supported=document.get("authorization_response_iss_parameter_supported") is True)
