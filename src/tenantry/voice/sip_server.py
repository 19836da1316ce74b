"""The SIP redirect service: gateways and SBCs send an INVITE, we answer where the call goes (RFC 3261 subset).

asyncio over UDP and TCP on one host/port. Every INVITE is routed by the pure ``voice.routing.route`` over the
snapshot ``snapshot_source()`` returns (the integrator's source is the database, refreshed periodically; tests hand
one in), and answered at once with a final response, so no 100 Trying is sent (§17.2.1 allows that when the final
response comes within 200 ms):

    302 Moved Temporarily   Contact list in the order to try          Outcome.REDIRECT
    403 Forbidden           voice disabled, international disallowed   Outcome.FORBIDDEN
    404 Not Found           the caller is not a voice user             Outcome.NOT_FOUND
    484 Address Incomplete  the dialled number is not a valid number   Outcome.INVALID
    480 Temporarily Unavail no gateway / PeerDestination configured    Outcome.NO_ROUTE
    400 Bad Request         malformed, when it can still be answered   (never for ACK)
    513 Message Too Large   over the size bound, when answerable

OPTIONS → 200 (gateways ping us as we ping them). CANCEL → 200 when it matches an INVITE transaction (the INVITE
already has its final response, so "the CANCEL has no effect", §9.2: no 487), 481 when it matches none. Other
methods → 405 with Allow. Requests inside a dialog (a To tag on an INVITE) → 481: a redirect server has no dialogs.

Transactions (§17.2): the INVITE server transaction keeps its final response; over UDP it is retransmitted on Timer
G (T1 doubling up to T2) until the ACK arrives or Timer H (64·T1) fires; the ACK moves it to Confirmed for Timer I
(T4) to absorb ACK retransmissions. A retransmitted request (same transaction key) gets the last response again and
is not routed again. Non-INVITE transactions absorb retransmissions for Timer J (64·T1 over UDP). Over TCP no timer
retransmits, and Timers I and J are zero. The number of live transactions is bounded: beyond it, 503 + Retry-After.

A malformed datagram never stops the service: every message is handled inside one ``try``, and a failure drops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import logging
import os
import socket
import ssl
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from tenantry.protocols.sip import (
    DEFAULT_LIMITS,
    Limits,
    MessageTooLarge,
    SipError,
    SipRequest,
    StreamFramer,
    ack_transaction_key,
    parse_request,
    response,
)
from tenantry.voice.routing import HealthView, Outcome, route
from tenantry.voice.snapshot import RoutingSnapshot

__all__ = ["RedirectCore", "SipService", "Timers", "run", "serve"]

log = logging.getLogger(__name__)

SnapshotSource = Callable[[], RoutingSnapshot]
Send = Callable[[bytes], None]

_STATUS: dict[Outcome, tuple[int, str]] = {
    Outcome.REDIRECT: (302, "Moved Temporarily"),
    Outcome.FORBIDDEN: (403, "Forbidden"),
    Outcome.NOT_FOUND: (404, "Not Found"),
    Outcome.INVALID: (484, "Address Incomplete"),
    Outcome.NO_ROUTE: (480, "Temporarily Unavailable"),
}
_ALLOW = ("Allow", "INVITE, ACK, CANCEL, OPTIONS")
PORT_ATTEMPTS = 20
UDP_RECEIVE_BUFFER = 4 * 1024 * 1024


def status_of(outcome: Outcome) -> tuple[int, str]:
    """The SIP status and reason phrase a routing outcome is answered with (``voice route`` prints it too)."""
    return _STATUS[outcome]


@dataclass(frozen=True, slots=True)
class Timers:
    """RFC 3261 §17.1.1.1 / Table 4 values; tests shrink them."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0

    @property
    def h(self) -> float:
        return 64 * self.t1


@dataclass(slots=True)
class _Transaction:
    key: tuple[str, ...]
    method: str
    last: bytes
    send: Send
    reliable: bool
    created: float = 0.0
    confirmed: bool = False
    confirmed_at: float = 0.0
    swept: bool = False                             # past its first T1: in the sweeper's hands no more
    interval: float = 0.0
    timer: asyncio.TimerHandle | None = None        # Timer G (retransmit) once the first T1 passed without ACK
    expiry: asyncio.TimerHandle | None = None       # Timer H while Timer G runs
    retransmissions: int = 0


@dataclass
class RedirectCore:
    """Transport-free logic: a message in, responses out through ``send``, transactions and their timers.

    ``max_transactions`` bounds memory under a flood; past it new requests get 503 and are not kept.
    """

    snapshot_source: SnapshotSource
    health: HealthView | None = None
    limits: Limits = DEFAULT_LIMITS
    timers: Timers = field(default_factory=Timers)
    max_transactions: int = 200_000
    transactions: dict[tuple[str, ...], _Transaction] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=lambda: {"received": 0, "dropped": 0, "retransmitted": 0})
    _tags: Any = field(default_factory=lambda: (f"{os.urandom(3).hex()}{n:x}" for n in itertools.count()))
    # Most INVITEs are ACKed within milliseconds, so no per-call timer is armed: transactions wait in creation
    # order (``_young``) and a sweeper every T1/5 looks at those whose first T1 has passed — ACKed ones move to
    # the Timer I queue, the others get Timer G and H handles of their own (the rare path). Expiries wait in
    # two queues, each in deadline order: T4-long (Timer I) and 64·T1-long (Timers H over TCP, J over UDP).
    # Three timer handles per call were a sixth of a call's cost.
    _young: deque[_Transaction] = field(default_factory=deque)
    _short: deque[tuple[float, _Transaction]] = field(default_factory=deque)
    _long: deque[tuple[float, _Transaction]] = field(default_factory=deque)
    _sweeper: asyncio.TimerHandle | None = None

    def handle(self, data: bytes, source: tuple[str, int], send: Send, *, reliable: bool) -> None:
        """One message from ``source``; never raises (a failure drops the message and is logged)."""
        self.stats["received"] += 1
        try:
            self._handle(data, source, send, reliable)
        except Exception:
            self.stats["dropped"] += 1
            log.debug("dropped a message from %s", source, exc_info=True)

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for tx in self.transactions.values():
            _cancel(tx)
        self.transactions.clear()
        self._young.clear()
        self._short.clear()
        self._long.clear()

    # --- the transaction layer -------------------------------------------------------------------------

    def _handle(self, data: bytes, source: tuple[str, int], send: Send, reliable: bool) -> None:
        if not data.strip(b"\r\n"):
            return                                     # a CRLF keep-alive (RFC 5626 §3.5.1)
        ack_key = ack_transaction_key(data)
        if ack_key is not None:
            tx = self.transactions.get(ack_key)
            if tx is not None and tx.method == "INVITE" and not tx.confirmed:
                self._confirm(tx)
            return
        try:
            request = parse_request(data, self.limits)
        except SipError as exc:
            self.stats["dropped"] += 1
            self._refuse_malformed(data, exc, source, send)
            return
        key = request.transaction_key()
        tx = self.transactions.get(key)
        if request.method == "ACK":
            if tx is not None and tx.method == "INVITE" and not tx.confirmed:
                self._confirm(tx)
            return                                     # an ACK matching nothing is for a 2xx: not ours
        if tx is not None and tx.method == request.method:
            # A retransmission (§17.2.1, §17.2.2): the last response again, no new routing.
            send(tx.last)
            return
        if len(self.transactions) >= self.max_transactions:
            send(response(request, 503, "Service Unavailable", source=source, extra=(("Retry-After", "5"),)))
            return
        status, phrase, contacts, extra = self._answer(request)
        payload = response(
            request, status, phrase, to_tag=next(self._tags), contacts=contacts, source=source, extra=extra
        )
        send(payload)
        self._remember(key, request.method, payload, send, reliable)

    def _answer(self, request: SipRequest) -> tuple[int, str, tuple[str, ...], tuple[tuple[str, str], ...]]:
        method = request.method
        if method == "INVITE":
            if request.to_tag is not None:
                return 481, "Call/Transaction Does Not Exist", (), ()
            return self._route(request)
        if method == "OPTIONS":
            return 200, "OK", (), (_ALLOW,)
        if method == "CANCEL":
            invite = self.transactions.get((*request.transaction_key()[:-1], "INVITE"))
            if invite is None:
                return 481, "Call/Transaction Does Not Exist", (), ()
            return 200, "OK", (), ()
        return 405, "Method Not Allowed", (), (_ALLOW,)

    def _route(self, request: SipRequest) -> tuple[int, str, tuple[str, ...], tuple[tuple[str, str], ...]]:
        caller_uri = request.from_address.uri
        caller = f"{caller_uri.scheme}:{caller_uri.user}@{caller_uri.host}" if caller_uri.user else ""
        dialled = request.uri.user or ""
        conference = "conference" in request.uri.parameters
        decision = route(self.snapshot_source(), caller, dialled, health=self.health, conference=conference)
        status, phrase = _STATUS[decision.outcome]
        return status, phrase, decision.contacts, ()

    def _remember(self, key: tuple[str, ...], method: str, payload: bytes, send: Send, reliable: bool) -> None:
        if method != "INVITE" and reliable:
            return                                                      # Timer J = 0 over TCP: nothing kept
        loop = asyncio.get_running_loop()
        now = loop.time()
        tx = _Transaction(key=key, method=method, last=payload, send=send, reliable=reliable, created=now)
        self.transactions[key] = tx
        if method == "INVITE":
            self._young.append(tx)                                      # Timers G and H, lazily (the sweeper)
        else:
            self._long.append((now + self.timers.h, tx))                # Timer J = 64·T1 over UDP
        if self._sweeper is None:
            self._sweeper = loop.call_later(self._tick, self._sweep)

    @property
    def _tick(self) -> float:
        return min(self.timers.t1 / 5, 0.1)

    def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        t = self.timers
        young = self._young
        while young and young[0].created + t.t1 <= now:
            tx = young.popleft()
            tx.swept = True
            if self.transactions.get(tx.key) is not tx:
                continue
            if tx.confirmed:
                self._short.append((tx.confirmed_at + t.t4, tx))        # Timer I = T4 (UDP only: TCP popped)
            elif tx.reliable:
                self._long.append((tx.created + t.h, tx))               # Timer H over TCP: no retransmission
            else:
                # Timer G fires for the first time: from here this transaction has handles of its own.
                tx.interval = t.t1
                self._timer_g(tx)
                tx.expiry = loop.call_at(tx.created + t.h, self._forget, tx)   # Timer H
        for queue in (self._short, self._long):
            while queue and queue[0][0] <= now:
                _, tx = queue.popleft()
                self._forget(tx)
        if young or self._short or self._long:
            self._sweeper = loop.call_later(self._tick, self._sweep)
        else:
            self._sweeper = None

    def _timer_g(self, tx: _Transaction) -> None:
        # §17.2.1: "If timer G fires, the response is passed to the transport layer once more for
        # retransmission, and timer G is set to fire in MIN(2*T1, T2) seconds."
        if tx.confirmed or self.transactions.get(tx.key) is not tx:
            return
        self.stats["retransmitted"] += 1
        tx.retransmissions += 1
        with contextlib.suppress(Exception):
            tx.send(tx.last)
        tx.interval = min(2 * tx.interval, self.timers.t2)
        tx.timer = asyncio.get_running_loop().call_later(tx.interval, self._timer_g, tx)

    def _confirm(self, tx: _Transaction) -> None:
        tx.confirmed = True
        if tx.reliable:
            _cancel(tx)
            self.transactions.pop(tx.key, None)                         # Timer I = 0 over TCP
            return
        now = asyncio.get_running_loop().time()
        tx.confirmed_at = now
        if tx.swept:                                                    # Timer G was running: stop it
            _cancel(tx)
            self._short.append((now + self.timers.t4, tx))              # Timer I = T4
            if self._sweeper is None:
                self._sweeper = asyncio.get_running_loop().call_later(self._tick, self._sweep)
        # else the sweeper moves it to the Timer I queue when its first T1 is over

    def _forget(self, tx: _Transaction) -> None:
        _cancel(tx)
        if self.transactions.get(tx.key) is tx:
            del self.transactions[tx.key]

    def _refuse_malformed(self, data: bytes, exc: SipError, source: tuple[str, int], send: Send) -> None:
        """Answer 400 / 513 when the headers a response copies can be read; drop otherwise (and never
        answer an ACK). Size-refused messages are parsed with a raised bound only to read those headers."""
        if isinstance(exc, MessageTooLarge) and len(data) > 4 * self.limits.max_message:
            return
        try:
            relaxed = Limits(max_message=4 * self.limits.max_message, max_headers=4 * self.limits.max_headers)
            request = _answerable(data, relaxed)
        except Exception:
            return
        if request is None or request.method == "ACK":
            return
        send(response(request, exc.status, exc.phrase, to_tag=next(self._tags), source=source))


def _answerable(data: bytes, limits: Limits) -> SipRequest | None:
    """The request as far as a response can be built from it, or None."""
    try:
        return parse_request(data, limits, strict=False)
    except SipError:
        return None


def _cancel(tx: _Transaction) -> None:
    for handle in (tx.timer, tx.expiry):
        if handle is not None:
            handle.cancel()
    tx.timer = tx.expiry = None


# --- transports --------------------------------------------------------------------------------------------


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, core: RedirectCore) -> None:
        self.core = core
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)   # selector transports are not subclasses

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        transport = self.transport
        if transport is None:
            return
        source = (addr[0], addr[1])

        def send(payload: bytes) -> None:
            # §18.2.2 with RFC 3581: answer the address the request came from.
            transport.sendto(payload, source)

        self.core.handle(data, source, send, reliable=False)

    def error_received(self, exc: Exception) -> None:
        log.debug("UDP error: %s", exc)       # e.g. ICMP port unreachable for a retransmission: keep serving


class _Tcp(asyncio.Protocol):
    def __init__(self, core: RedirectCore, service: SipService) -> None:
        self.core = core
        self.service = service
        self.framer = StreamFramer(core.limits)
        self.transport: asyncio.Transport | None = None
        self.source: tuple[str, int] = ("", 0)
        self.last_activity = 0.0
        self.idle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)
        if len(self.service.connections) >= self.service.max_connections:
            transport.abort()
            return
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.source = (str(peer[0]), int(peer[1])) if peer else ("", 0)
        self.service.connections.add(self)
        loop = asyncio.get_running_loop()
        self.last_activity = loop.time()
        self.idle = loop.call_later(self.service.idle_timeout, self._check_idle)

    def _check_idle(self) -> None:
        # One handle per connection, re-armed for the remainder rather than on every segment: a connection that
        # sent nothing for ``idle_timeout`` is closed, so idle or trickling peers cannot hold every slot.
        if self.transport is None:
            return
        loop = asyncio.get_running_loop()
        left = self.last_activity + self.service.idle_timeout - loop.time()
        if left <= 0:
            self.transport.close()
        else:
            self.idle = loop.call_later(left, self._check_idle)

    def data_received(self, data: bytes) -> None:
        transport = self.transport
        if transport is None:
            return
        self.last_activity = asyncio.get_running_loop().time()
        try:
            messages = self.framer.feed(data)
        except SipError:
            transport.close()                  # a stream that lost its framing cannot be resynchronised
            return
        for message in messages:
            self.core.handle(message, self.source, self._send, reliable=True)

    def _send(self, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(payload)

    def connection_lost(self, exc: Exception | None) -> None:
        self.service.connections.discard(self)
        self.transport = None
        if self.idle is not None:
            self.idle.cancel()


@dataclass
class SipService:
    """A running redirect service: its UDP endpoint and TCP server on one host/port, and a TLS server on
    ``tls_port`` when it was given a certificate. ``close()`` stops them all."""

    core: RedirectCore
    host: str
    port: int
    max_connections: int = 1024
    idle_timeout: float = 300.0        # seconds without a byte before a TCP/TLS connection is closed
    udp: asyncio.DatagramTransport | None = None
    tcp: asyncio.Server | None = None
    tls: asyncio.Server | None = None
    tls_port: int | None = None
    connections: set[_Tcp] = field(default_factory=set)

    async def close(self) -> None:
        if self.udp is not None:
            self.udp.close()
        servers = [server for server in (self.tcp, self.tls) if server is not None]
        for server in servers:
            server.close()
        for connection in list(self.connections):
            if connection.transport is not None:
                connection.transport.abort()
        for server in servers:
            await server.wait_closed()
        self.core.close()


async def serve(
    host: str,
    port: int,
    snapshot_source: SnapshotSource,
    *,
    health: HealthView | None = None,
    timers: Timers | None = None,
    limits: Limits = DEFAULT_LIMITS,
    udp: bool = True,
    tcp: bool = True,
    tls_context: ssl.SSLContext | None = None,
    tls_port: int = 5061,
) -> SipService:
    """Start the service on ``host``:``port`` (UDP and TCP; port 0 picks a free one, the same for both where the
    system allows) and return it running; ``await service.close()`` stops it.

    With ``tls_context`` (a server context holding the service's certificate, e.g. one the tenant root CA of
    ``voice.tlscheck`` issued) it also listens for SIP over TLS on ``tls_port`` (RFC 3261 §26.2: gateways of the
    seed's hybrid setup talk TLS). TLS framing is TCP's; responses go back on the connection."""
    loop = asyncio.get_running_loop()
    core = RedirectCore(snapshot_source, health=health, limits=limits, timers=timers or Timers())
    service = SipService(core=core, host=host, port=port)
    # Port 0: the UDP port the system picks may already be some TCP socket's; then pick again (a few times).
    for attempt in range(PORT_ATTEMPTS if port == 0 and udp and tcp else 1):
        if udp:
            transport, _ = await loop.create_datagram_endpoint(lambda: _Udp(core), local_addr=(host, port))
            sock = transport.get_extra_info("socket")
            if sock is not None:
                # A burst of INVITEs must wait in the kernel, not be dropped (the kernel caps this at rmem_max).
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
            service.udp = transport
            service.port = int(transport.get_extra_info("sockname")[1])
        if tcp:
            try:
                service.tcp = await loop.create_server(lambda: _Tcp(core, service), host, service.port,
                                                       reuse_address=True)
            except OSError as exc:
                if port != 0 or exc.errno != errno.EADDRINUSE or attempt == PORT_ATTEMPTS - 1:
                    if service.udp is not None:
                        service.udp.close()
                    raise
                if service.udp is not None:
                    service.udp.close()
                    service.udp = None
                service.port = 0
                continue
            service.port = int(service.tcp.sockets[0].getsockname()[1])
        break
    if tls_context is not None:
        service.tls = await loop.create_server(
            lambda: _Tcp(core, service), host, tls_port, reuse_address=True, ssl=tls_context
        )
        service.tls_port = int(service.tls.sockets[0].getsockname()[1])
    return service


def run(
    host: str,
    port: int,
    snapshot_source: SnapshotSource,
    *,
    ping_gateways: bool = True,
    tls_context: ssl.SSLContext | None = None,
    tls_port: int = 5061,
) -> None:
    """What ``tenantry voice serve`` calls: serve until interrupted, pinging the snapshot's gateways with OPTIONS
    (``voice.health``) so routing demotes the silent ones. Runs on uvloop (a dependency already) for throughput."""
    import uvloop

    from tenantry.voice.health import Health, OptionsPinger

    async def main() -> None:
        health = Health()
        service = await serve(host, port, snapshot_source, health=health, tls_context=tls_context, tls_port=tls_port)
        pinger = OptionsPinger(health, snapshot_source, local_host=host) if ping_gateways else None
        task = asyncio.create_task(pinger.run()) if pinger is not None else None
        log.info("SIP redirect service on %s:%d (UDP and TCP)", host, service.port)
        try:
            await asyncio.Event().wait()
        finally:
            if task is not None:
                task.cancel()
            await service.close()

    with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())
