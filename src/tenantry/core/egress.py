"""What leaves the machine: the operator's egress policy for connections to targets a tenant admin names
(a provisioning app's SCIM URL, an archiver feed, an IMAP delivery server), and URL hygiene.

The policy (``TENANTRY_OUTBOUND_*``, docs/security.md "What leaves the machine"):

- never: cloud metadata addresses and names (169.254.169.254, fd00:ec2::254, metadata.google.internal …),
  unspecified (0.0.0.0/8, ::), multicast and broadcast addresses — no setting opens these;
- the operator's denied networks (``OUTBOUND_DENIED_NETWORKS``) — checked first, they win over everything;
- loopback (127.0.0.0/8, ::1) only with ``OUTBOUND_ALLOW_LOOPBACK=true`` (tests, a target on the same machine);
- link-local (169.254.0.0/16, fe80::/10) only inside a network the operator allows explicitly;
- with ``OUTBOUND_ALLOWED_NETWORKS`` set, nothing outside those networks; unset, every other address (public
  and private LAN ranges: self-hosted apps live there).

An address embedded in an IPv6 one (IPv4-mapped ``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4) is checked
as well. A host name is checked by every address it resolves to (one refused address refuses the name), and
the connection is made to one of exactly those checked addresses: the name is resolved once, inside the
connect, so a DNS answer that changes between the check and the connection (rebinding) cannot slip through.
For HTTP this is ``EgressTransport`` (an httpx transport whose network backend resolves, checks and connects;
TLS still verifies the certificate for, and sends SNI and Host with, the name in the URL); for IMAP it is
``EgressPolicy.connect``.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

import httpcore
import httpx

from tenantry.core.errors import Invalid

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]

UNREACHABLE = "could not reach the target"
"""The one message for every failure to connect (refused, timed out, reset, TLS, not the protocol, no such
name): telling them apart would let a tenant admin scan ports of the operator's network through us. The
details go to the server log, which is the operator's."""

METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254",   # AWS, Azure, GCP, OpenStack, DigitalOcean, Oracle … instance metadata
    "169.254.170.2",     # AWS ECS task metadata and credentials
    "169.254.169.253",   # AWS VPC DNS
    "169.254.0.23",      # Tencent Cloud
    "192.0.0.192",       # Oracle Cloud (classic) metadata
    "100.100.100.200",   # Alibaba Cloud (not link-local: listed so no setting opens it)
    "fd00:ec2::254",     # AWS IMDS over IPv6
    "fd00:ec2::253",     # AWS VPC DNS over IPv6
    "fd20:ce::254",      # GCP metadata over IPv6
))
METADATA_HOSTS = frozenset({
    "metadata.google.internal", "metadata.goog", "metadata", "instance-data", "instance-data.ec2.internal",
    "metadata.tencentyun.com", "metadata.platformequinix.com",
})
_UNSPECIFIED_V4 = ipaddress.ip_network("0.0.0.0/8")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# IPv4-compatible IPv6 (RFC 4291 §2.5.5.1, deprecated): ::a.b.c.d; some stacks still route it to a.b.c.d.
_V4_COMPATIBLE = ipaddress.ip_network("::/96")
_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}\.?$){_LABEL}(?:\.{_LABEL})*\.?$")


class EgressRefused(Invalid):
    """The operator's outbound policy does not allow this host (400 when a URL is saved)."""

    code = "egress_refused"


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDRs (a bare address is a /32 or /128); a wrong one is a startup error that names it."""
    out = []
    for value in values:
        try:
            out.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"{value!r} is not an IP network (CIDR such as 10.0.0.0/8 or fd00::/8)") from exc
    return tuple(out)


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: dict[str, None] = {}
    for info in infos:
        seen.setdefault(str(info[4][0]), None)
    return list(seen)


def _embedded(ip: IPAddress) -> list[IPAddress]:
    """The address and any IPv4 address an IPv6 one carries (mapped, NAT64, 6to4): each is checked."""
    found: list[IPAddress] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            found.append(ip.ipv4_mapped)
        if ip.sixtofour is not None:
            found.append(ip.sixtofour)
        if ip in _NAT64 or (ip in _V4_COMPATIBLE and int(ip) > 1):   # :: and ::1 are themselves
            found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


@dataclass(frozen=True)
class EgressPolicy:
    allow_loopback: bool = False
    allowed_networks: tuple[IPNetwork, ...] = ()
    denied_networks: tuple[IPNetwork, ...] = ()
    resolver: Resolver = _system_resolver

    @classmethod
    def from_settings(cls, settings: Any) -> EgressPolicy:
        return cls(allow_loopback=bool(settings.outbound_allow_loopback),
                   allowed_networks=parse_networks(settings.outbound_allowed_networks),
                   denied_networks=parse_networks(settings.outbound_denied_networks))

    # -- addresses --------------------------------------------------------------------------------------

    def refusal(self, ip: IPAddress) -> str | None:
        """Why the policy refuses this address, or None when it may be reached."""
        candidates = _embedded(ip)
        allowed = any(a.version == n.version and a in n for a in candidates for n in self.allowed_networks)
        for a in candidates:
            if any(a.version == n.version and a in n for n in self.denied_networks):
                return "an address in a network the operator denies"
            if a in METADATA_ADDRESSES:
                return "a cloud metadata address"
            if a.is_unspecified or (isinstance(a, ipaddress.IPv4Address) and a in _UNSPECIFIED_V4):
                return "an unspecified address"
            if a.is_multicast or a == _BROADCAST:
                return "a multicast or broadcast address"
            if a.is_loopback and not self.allow_loopback:
                return "a loopback address (TENANTRY_OUTBOUND_ALLOW_LOOPBACK is off)"
            if a.is_link_local and not allowed:
                return "a link-local address"
        if any(a.is_loopback for a in candidates):
            return None   # loopback has its own switch, independent of the allowed networks
        if self.allowed_networks and not allowed:
            return "an address outside the networks the operator allows"
        return None

    def addresses(self, host: str, port: int) -> list[str]:
        """Every address ``host`` resolves to, each allowed; ``EgressRefused`` if any is not (naming the host
        as given, never the address it resolved to); ``OSError`` if it does not resolve."""
        name = host.strip().strip("[]").rstrip(".").lower()
        if not name:
            raise EgressRefused("no host given")
        if name in METADATA_HOSTS:
            raise EgressRefused(f"the outbound policy does not allow {host}: a cloud metadata host")
        try:
            literal: IPAddress | None = ipaddress.ip_address(name)
        except ValueError:
            literal = None
        found = [name] if literal is not None else list(self.resolver(name, port))
        if not found:
            raise OSError(f"{host} resolves to no address")
        for address in found:
            why = self.refusal(ipaddress.ip_address(address))
            if why is not None:
                said = why if literal is not None else f"it resolves to {why}"
                raise EgressRefused(f"the outbound policy does not allow {host}: {said}")
        return found

    def check_host(self, host: str, port: int) -> None:
        """When a target is saved: refuse a host the policy refuses. A name that does not resolve (yet) is
        accepted — the check is made again at every connection, where it counts."""
        try:
            self.addresses(host, port)
        except EgressRefused:
            raise
        except OSError:
            return

    def connect(self, host: str, port: int, timeout: float | None = None) -> socket.socket:
        """A TCP connection to one of the checked addresses of ``host`` (tried in order)."""
        last: OSError | None = None
        for address in self.addresses(host, port):
            try:
                return socket.create_connection((address, port), timeout)
            except OSError as exc:
                last = exc
        raise last or OSError(f"no address for {host}")

    def transport(self, limits: httpx.Limits | None = None) -> EgressTransport:
        return EgressTransport(self, limits=limits or httpx.Limits())


class _PolicyNetworkBackend(httpcore.NetworkBackend):
    """httpcore's TCP connect, through the policy: resolve once, check every address, connect to a checked
    one. TLS (``start_tls``) is then started by httpcore with the URL's host name as SNI and for the
    certificate check, so a name is verified as usual even though the socket was opened to an address."""

    def __init__(self, policy: EgressPolicy) -> None:
        self.policy = policy
        self._tcp = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        try:
            addresses = self.policy.addresses(host, port)
        except EgressRefused:
            raise
        except OSError as exc:
            raise httpcore.ConnectError(f"{host} does not resolve: {exc}") from exc
        last: Exception | None = None
        for address in addresses:
            try:
                return self._tcp.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        raise last or httpcore.ConnectError(f"no address for {host}")

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        raise EgressRefused("the outbound policy does not allow Unix sockets")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class EgressTransport(httpx.HTTPTransport):
    """httpx's transport with the policy's network backend. httpx 0.28 (pinned) takes no network backend,
    so the connection pool is built here as ``HTTPTransport.__init__`` builds it without a proxy: a client
    given a transport ignores HTTP(S)_PROXY, and a proxy would resolve and connect beyond the policy."""

    def __init__(self, policy: EgressPolicy, *, limits: httpx.Limits) -> None:
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(), max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections, keepalive_expiry=limits.keepalive_expiry,
            network_backend=_PolicyNetworkBackend(policy))


# -- URLs ------------------------------------------------------------------------------------------------


def _split(url: str, what: str) -> SplitResult:
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number in range
    except ValueError:
        raise Invalid(f"the {what} is not a valid URL") from None
    return parts


def check_url(url: str, what: str, policy: EgressPolicy | None = None, *, secret_field: str = "the token"
              ) -> str:
    """A target URL as it may be saved: http(s), a host, no user name or password (the secret has its own
    field and is stored sealed; a URL is shown back), no query string or fragment (a base URL has paths
    appended), and a host the policy allows. Messages never repeat the URL: it may hold a password."""
    parts = _split(url, what)
    if parts.scheme not in ("http", "https"):
        raise Invalid(f"the {what} must be an http(s) URL")
    if "@" in parts.netloc:
        raise Invalid(f"the {what} must not contain a user name or password: put {secret_field} in its own field")
    if not parts.hostname:
        raise Invalid(f"the {what} has no host")
    # What httpx (control characters, which urlsplit silently drops or keeps) or the resolver (a DNS label
    # over 63 characters) cannot use is refused now: saved, it was a 500 at every connection.
    try:
        httpx.URL(url.strip())
        parts.hostname.encode("idna")
    except (httpx.InvalidURL, UnicodeError):
        raise Invalid(f"the {what} is not a valid URL") from None
    if parts.query or parts.fragment or url.strip().endswith(("?", "#")):
        raise Invalid(f"the {what} must not carry a query string or fragment: put {secret_field} in its own field")
    if policy is not None:
        policy.check_host(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    return url.strip().rstrip("/")


def check_hostname(host: str, what: str) -> str:
    """A bare host name or IP address (an IMAP server): no user, password, port or path in it."""
    value = host.strip()
    try:
        ipaddress.ip_address(value.strip("[]"))
        return value.strip("[]")
    except ValueError:
        pass
    if "@" in value:
        raise Invalid(f"the {what} must not contain a user name or password: put the password in its own field")
    if not _HOSTNAME.match(value):
        raise Invalid(f"the {what} must be a host name or IP address (the port has its own field)")
    return value


def origin(url: str) -> tuple[str, str, int]:
    """RFC 6454 origin (scheme, host, port) — what a stored secret is bound to."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").rstrip("."), parts.port or (443 if scheme == "https" else 80)


def redact_url(url: str) -> str:
    """The URL as it may be shown (API, CLI, logs, reports): without user name and password, and with every
    query value replaced (tokens and signatures travel there: ``?access_token=…``, ``sig=…``)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "(a URL that cannot be parsed)"
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{port}" if port is not None else "")
    query = urlencode([(k, "REDACTED") for k, _ in parse_qsl(parts.query, keep_blank_values=True)], safe="")
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
