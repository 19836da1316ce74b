"""Gateway health from SIP OPTIONS pings, as Teams Direct Routing keeps it: every gateway is pinged every minute,
and it is healthy while an answer arrived in the last 3 minutes. Routing demotes unhealthy gateways (tries them
last), it never drops them — a gateway that stopped answering OPTIONS may still take calls.

``Health`` is the state routing reads (``healthy(name)``); ``OptionsPinger`` fills it, over UDP, TCP or TLS, from
the gateways the routing snapshot lists. Any response to the OPTIONS counts as an answer (a 4xx/5xx proves the
gateway's SIP stack is up; Direct Routing too only needs a reply). A gateway never pinged is healthy: no evidence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tenantry.protocols.sip import MAGIC_COOKIE
from tenantry.voice.snapshot import GatewayRoute, RoutingSnapshot, Transport

__all__ = ["Health", "OptionsPinger", "options_request", "ping"]

log = logging.getLogger(__name__)

WINDOW = 180.0      # healthy while an answer arrived within the last 3 minutes
INTERVAL = 60.0     # ping every minute


@dataclass
class Health:
    """Last answer per gateway name; ``clock`` is injectable (monotonic seconds)."""

    window: float = WINDOW
    clock: Callable[[], float] = time.monotonic
    _last_answer: dict[str, float] = field(default_factory=dict)
    _pinged: set[str] = field(default_factory=set)

    def pinged(self, name: str) -> None:
        self._pinged.add(name)

    def answered(self, name: str) -> None:
        self._pinged.add(name)
        self._last_answer[name] = self.clock()

    def healthy(self, gateway_name: str) -> bool:
        if gateway_name not in self._pinged:
            return True
        last = self._last_answer.get(gateway_name)
        return last is not None and self.clock() - last <= self.window

    def forget(self, names: set[str]) -> None:
        """Drop gateways no longer configured, so the state stays bounded by the configuration."""
        for name in list(self._pinged - names):
            self._pinged.discard(name)
            self._last_answer.pop(name, None)


def options_request(gateway: GatewayRoute, local_host: str, local_port: int) -> tuple[bytes, str]:
    """An OPTIONS request to ``gateway`` (RFC 3261 §11) and its Call-ID."""
    token = os.urandom(8).hex()
    call_id = f"ping-{token}@{local_host}"
    via_transport = gateway.transport.value.upper()
    lines = [
        f"OPTIONS sip:{gateway.host}:{gateway.port};transport={gateway.transport.value} SIP/2.0",
        f"Via: SIP/2.0/{via_transport} {local_host}:{local_port};branch={MAGIC_COOKIE}{token};rport",
        "Max-Forwards: 70",
        f"From: <sip:ping@{local_host}>;tag={token[:8]}",
        f"To: <sip:{gateway.host}:{gateway.port}>",
        f"Call-ID: {call_id}",
        "CSeq: 1 OPTIONS",
        "Accept: application/sdp",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode(), call_id


def _status_if_answer(data: bytes, call_id: str) -> int | None:
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    lines = head.split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or parts[0] != "SIP/2.0" or not parts[1].isdigit():
        return None
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() in ("call-id", "i") and value.strip() == call_id:
            return int(parts[1])
    return None


class _UdpPing(asyncio.DatagramProtocol):
    def __init__(self, done: asyncio.Future[int]) -> None:
        self.call_id = ""            # set once the local port is known and the request built
        self.done = done

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        status = _status_if_answer(data, self.call_id)
        if status is not None and status >= 200 and not self.done.done():
            self.done.set_result(status)


async def ping(
    gateway: GatewayRoute,
    *,
    local_host: str = "127.0.0.1",
    timeout: float = 5.0,
    t1: float = 0.5,
    ssl_context: ssl.SSLContext | None = None,
) -> int | None:
    """Send one OPTIONS to ``gateway``; the final status it answered, or None (no answer within ``timeout``).

    Over UDP the request is retransmitted on Timer E (T1 doubling, §17.1.2.2) until an answer or the timeout.
    """
    loop = asyncio.get_running_loop()
    if gateway.transport is Transport.UDP:
        done: asyncio.Future[int] = loop.create_future()
        protocol = _UdpPing(done)
        transport, _ = await loop.create_datagram_endpoint(
            lambda: protocol, local_addr=(local_host, 0) if local_host not in ("0.0.0.0", "::") else None,
            remote_addr=(gateway.host, gateway.port),
        )
        try:
            # The connected socket's own address: the one the gateway sees (not 0.0.0.0 when serving on any).
            own_host, port = transport.get_extra_info("sockname")[:2]
            payload, protocol.call_id = options_request(gateway, str(own_host), int(port))
            deadline = loop.time() + timeout
            interval = t1
            while not done.done() and loop.time() < deadline:
                transport.sendto(payload)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(done), min(interval, deadline - loop.time()))
                interval = min(2 * interval, 4.0)
            return done.result() if done.done() else None
        except OSError:
            return None
        finally:
            transport.close()
    context = None
    if gateway.transport is Transport.TLS:
        context = ssl_context or ssl.create_default_context()
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(gateway.host, gateway.port, ssl=context)
            try:
                own_host, port = writer.get_extra_info("sockname")[:2]
                payload, call_id = options_request(gateway, str(own_host), int(port))
                writer.write(payload)
                await writer.drain()
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    status = _status_if_answer(head, call_id)
                    if status is not None and status >= 200:
                        return status
            finally:
                writer.close()
    except (TimeoutError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return None


@dataclass
class OptionsPinger:
    """Pings every gateway of ``snapshot_source()`` each ``interval`` seconds and records answers in ``health``."""

    health: Health
    snapshot_source: Callable[[], RoutingSnapshot]
    local_host: str = "127.0.0.1"
    interval: float = INTERVAL
    timeout: float = 5.0
    ssl_context: ssl.SSLContext | None = None

    async def ping_all(self) -> dict[str, int | None]:
        """One round: every gateway pinged at once; returns name → status (None: no answer)."""
        snapshot = self.snapshot_source()
        gateways = {g.name: g for site in snapshot.sites.values() for g in site.gateways}
        self.health.forget(set(gateways))
        names = list(gateways)
        for name in names:
            self.health.pinged(name)
        results = await asyncio.gather(
            *(self._one(gateways[name]) for name in names), return_exceptions=True
        )
        round_: dict[str, int | None] = {}
        for name, result in zip(names, results, strict=True):
            status = result if isinstance(result, int) else None
            round_[name] = status
            if status is not None:
                self.health.answered(name)
        return round_

    async def _one(self, gateway: GatewayRoute) -> int | None:
        return await ping(gateway, local_host=self.local_host, timeout=self.timeout, ssl_context=self.ssl_context)

    async def run(self) -> None:
        while True:
            try:
                await self.ping_all()
            except Exception:          # a bad snapshot or a resolver failure must not stop health keeping
                log.warning("gateway ping round failed", exc_info=True)
            await asyncio.sleep(self.interval)
