"""The SCIM client a cycle talks to an app with: pace (rate limit), 429 Retry-After, retries with back-off.

One client per cycle, shared by the cycle's worker threads (httpx.Client is thread-safe). Every request is
counted, so a cycle can say how many it sent. A failure is a ``TargetError`` carrying the HTTP status and the
app's own words (a SCIM error's ``detail``), for the provisioning log. Connections go through the operator's
egress policy (core/egress.py); a failure to connect is one message, whatever the cause (no port scanning
through the provisioning log), with the cause in the server log.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from tenantry.core.egress import UNREACHABLE, EgressPolicy, EgressRefused, redact_url
from tenantry.core.errors import TenantryError

log = logging.getLogger(__name__)

SCIM_JSON = "application/scim+json"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


class TargetError(TenantryError):
    """The app refused or failed a request (after retries)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RateLimiter:
    """Spaces requests ``1/rate`` seconds apart across threads (``rate`` 0: no limit)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._lock = threading.Lock()
        self._next = time.monotonic()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            time.sleep(slot - now)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """RFC 9110 Retry-After: delay-seconds or an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def describe(response: httpx.Response) -> str:
    """The app's reason for a refusal, short: the status, and a SCIM error's ``detail`` (+ ``scimType``).
    Any other body is not repeated: the URL is the tenant admin's to choose, and repeating what any HTTP
    server on the operator's network answers would let them read it through us."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and (body.get("detail") or body.get("scimType")):
        kind = f" ({body['scimType']})" if body.get("scimType") else ""
        detail = str(body.get("detail") or "").replace("\n", " ")[:200]
        return f"HTTP {response.status_code}{kind}: {detail}".rstrip(": ")
    return f"HTTP {response.status_code}"


def unreachable(url: str) -> str:
    """The one message for a target that could not be reached, whatever the cause (core/egress.py)."""
    return (f"{UNREACHABLE} at {redact_url(url)}: no connection or no HTTP answer "
            "(the server log has the cause)")


class ScimTarget:
    def __init__(self, base_url: str, token: str, *, rate_limit: float = 0, retries: int = 3,
                 backoff: float = 1.0, max_retry_after: float = 300, timeout: float = 30,
                 concurrency: int = 4, transport: httpx.BaseTransport | None = None,
                 egress: EgressPolicy | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.backoff = backoff
        self.max_retry_after = max_retry_after
        self.limiter = RateLimiter(rate_limit)
        self.counts: Counter[str] = Counter()      # requests by method, retries, throttled
        self._lock = threading.Lock()
        limits = httpx.Limits(max_connections=concurrency + 2, max_keepalive_connections=concurrency + 2)
        if transport is None:   # the policy's transport, unless a caller hands in its own (benchmarks)
            transport = (egress or EgressPolicy()).transport(limits)
        self.http = httpx.Client(transport=transport, timeout=timeout, limits=limits, headers={
            "Authorization": f"Bearer {token}", "Accept": SCIM_JSON, "Content-Type": SCIM_JSON})

    def close(self) -> None:
        self.http.close()

    def snapshot(self) -> dict[str, int]:
        """Requests by method (upper case), retries, throttled: a copy, taken under the lock."""
        with self._lock:
            return dict(self.counts)

    def _count(self, key: str) -> None:
        with self._lock:
            self.counts[key] += 1

    def _sleep(self, attempt: int) -> None:
        time.sleep(self.backoff * (2 ** attempt) * (0.5 + random.random() / 2))  # noqa: S311 - jitter, not crypto

    def request(self, method: str, path: str, *, body: Any = None, params: dict[str, str] | None = None,
                ) -> httpx.Response:
        """Send one request; retry connection errors and 5xx with back-off, wait out 429s. Any other answer
        (2xx, 4xx) is returned for the caller to judge."""
        content = orjson.dumps(body) if body is not None else None
        attempt = throttled = 0
        while True:
            self.limiter.wait()
            self._count(method)
            try:
                response = self.http.request(method, f"{self.base_url}{path}", content=content, params=params)
            except EgressRefused as exc:   # the operator's policy: not retried, said as it is
                raise TargetError(exc.message) from exc
            except httpx.TransportError as exc:
                if attempt < self.retries:
                    self._count("retries")
                    self._sleep(attempt)
                    attempt += 1
                    continue
                log.warning("provisioning target %s not reached: %s: %s", redact_url(self.base_url),
                            type(exc).__name__, exc)
                raise TargetError(unreachable(self.base_url)) from exc
            if response.status_code == 429:
                delay = retry_after_seconds(response.headers.get("Retry-After"))
                delay = self.backoff * (2 ** throttled) if delay is None else delay
                if throttled < 8 and delay <= self.max_retry_after:
                    self._count("throttled")
                    time.sleep(delay)
                    throttled += 1
                    continue
                raise TargetError(f"the app kept answering 429 Too Many Requests (last Retry-After "
                                  f"{response.headers.get('Retry-After', 'none')})", 429)
            if response.status_code >= 500 and attempt < self.retries:
                self._count("retries")
                self._sleep(attempt)
                attempt += 1
                continue
            return response

    def _expect(self, response: httpx.Response, *ok: int) -> httpx.Response:
        if response.status_code not in ok:
            raise TargetError(describe(response), response.status_code)
        return response

    def find(self, resource: str, attribute: str, value: Any) -> list[dict[str, Any]]:  # dict: SCIM resources
        text = str(value).replace("\\", "\\\\").replace('"', '\\"')
        params = {"filter": f'{attribute} eq "{text}"'}
        if resource == "Groups":
            params["excludedAttributes"] = "members"   # a 50,000-member group is not what matching needs
        response = self._expect(self.request("GET", f"/{resource}", params=params), 200)
        try:
            found = response.json().get("Resources") or []
        except (ValueError, AttributeError) as exc:
            raise TargetError("the app's answer to a filter query is not a SCIM list", 200) from exc
        return [r for r in found if isinstance(r, dict)]

    def create(self, resource: str, body: dict[str, Any]) -> dict[str, Any]:  # dict: the SCIM resource created
        response = self._expect(self.request("POST", f"/{resource}", body=body), 200, 201)
        try:
            created = response.json()
        except ValueError:
            created = None
        if not isinstance(created, dict) or not created.get("id"):
            raise TargetError("the app created the object but did not answer with its id", response.status_code)
        return created

    def patch(self, resource: str, target_id: str, operations: list[dict[str, Any]]) -> None:
        self._expect(self.request("PATCH", f"/{resource}/{target_id}",
                                  body={"schemas": [PATCH_OP], "Operations": operations}), 200, 204)

    def delete(self, resource: str, target_id: str) -> bool:
        """True when deleted, False when it was not there any more (404: the outcome we wanted)."""
        response = self._expect(self.request("DELETE", f"/{resource}/{target_id}"), 200, 204, 404)
        return response.status_code != 404
