"""The HTTP side of OpenID Connect sign-in: the discovery document, the JWKS and the token request, through the
operator's egress policy (``core.egress``), with a timeout and a bound on every answer's size, and no redirects
followed (a provider's endpoints are where its discovery document says).

Every failure to connect is one message (``core.egress.UNREACHABLE``: no port scanning through us); the
details go to the server log.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx

from tenantry.core.egress import UNREACHABLE, EgressPolicy, EgressRefused, redact_url
from tenantry.protocols.oidc.errors import OidcError

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10.0
MAX_DOCUMENT = 256 * 1024     # discovery documents and JWKS are a few kB (Entra's JWKS: ~10 kB)
MAX_TOKEN_ANSWER = 64 * 1024


class ProviderUnreachable(OidcError):
    step = "http"


class OidcHttp:
    def __init__(self, egress: EgressPolicy, transport: httpx.BaseTransport | None = None,
                 timeout: float = TIMEOUT_SECONDS) -> None:
        self.egress = egress
        self.transport = transport   # tests may hand one in; otherwise the policy's, per request
        self.timeout = timeout

    def get_json(self, url: str, what: str, max_bytes: int = MAX_DOCUMENT) -> Any:
        status, body = self._call("GET", url, what, {"Accept": "application/json"}, None, max_bytes)
        if status != 200:
            raise ProviderUnreachable(f"the identity provider's {what} answered HTTP {status}")
        return self._json(body, what)

    def post_form(self, url: str, headers: dict[str, str], body: str, what: str,
                  max_bytes: int = MAX_TOKEN_ANSWER) -> tuple[int, Any]:
        status, answer = self._call("POST", url, what, headers, body.encode(), max_bytes)
        return status, self._json(answer, what)

    def _call(self, method: str, url: str, what: str, headers: dict[str, str], content: bytes | None,
              max_bytes: int) -> tuple[int, bytes]:
        try:
            with httpx.Client(transport=self.transport or self.egress.transport(), timeout=self.timeout,
                              follow_redirects=False) as client, \
                    client.stream(method, url, headers=headers, content=content) as response:
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise ProviderUnreachable(f"the identity provider's {what} is over {max_bytes} bytes")
                data = bytearray()
                for chunk in response.iter_bytes():
                    data += chunk
                    if len(data) > max_bytes:
                        raise ProviderUnreachable(f"the identity provider's {what} is over {max_bytes} bytes")
                return response.status_code, bytes(data)
        except EgressRefused as exc:
            raise ProviderUnreachable(exc.message) from None
        except (httpx.HTTPError, OSError) as exc:
            log.warning("OIDC %s %s (%s): %s: %s", method, redact_url(url), what, type(exc).__name__, exc)
            raise ProviderUnreachable(f"{UNREACHABLE} (the identity provider's {what})") from None

    @staticmethod
    def _json(body: bytes, what: str) -> Any:
        try:
            return json.loads(body)
        except ValueError:
            raise ProviderUnreachable(f"the identity provider's {what} is not JSON") from None
