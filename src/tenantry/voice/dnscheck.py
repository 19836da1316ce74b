"""The DNS part of ``tenantry voice check``: the records a hybrid voice deployment needs, looked up for real.

Seed 001 ("Add DNS records for your Edge") asks for an A record for the access edge and two SIP SRV services,
``_sip._tls`` and ``_sipfederationtls._tcp``. Microsoft documents them as ``_sip._tls.<domain>`` on port 443 and
``_sipfederationtls._tcp.<domain>`` on port 5061. In the Microsoft cloud those SRV records point at Microsoft's
own edge (sipdir/sipfed.online.lync.com). Here Tenantry plays that online side itself, so the only edge a client
or federation partner can reach is the site's access edge: both SRV records must name the access edge FQDN.

Every outcome is a ``CheckLine``, never an exception: the administrator runs the check precisely when DNS is
broken, so an NXDOMAIN, an empty answer, a timeout or a server that refuses must each come back as a line that
says what happened and which record to create.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.rdata
import dns.resolver
from dns.rdtypes.IN.A import A
from dns.rdtypes.IN.SRV import SRV

from tenantry.voice.results import CheckLine

# What Microsoft's Skype for Business hybrid / Cloud Connector documentation gives for the two SRV services:
# priority 100, weight 1, ports 443 (clients) and 5061 (federation), TTL 3600.
SIP_TLS_PORT = 443
SIP_FEDERATION_PORT = 5061
_SRV_PRIORITY = 100
_SRV_WEIGHT = 1
_TTL = 3600

CHECK_EDGE_A = "dns-edge-a"
CHECK_SRV_SIP_TLS = "dns-srv-sip-tls"
CHECK_SRV_FEDERATION = "dns-srv-sipfederationtls"


@dataclass(frozen=True, slots=True)
class _Failure:
    """Why a lookup gave no records, in words for the detail column."""

    detail: str


def resolver_for(nameserver: str | None = None, port: int = 53, *, timeout: float = 2.0,
                 lifetime: float = 5.0) -> dns.resolver.Resolver:
    """A resolver that asks one server (``voice check --dns-server 127.0.0.1:5353``), or the system's when None.

    The timeouts are short on purpose: a check that hangs for the default 30 s on a dead server is worse than one
    that says "timed out" quickly.
    """
    if nameserver is None:
        resolver = dns.resolver.Resolver(configure=True)
    else:
        ipaddress.ip_address(nameserver)        # dnspython wants an address; a name here is a usage error
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [nameserver]
        resolver.port = port
    resolver.timeout = timeout
    resolver.lifetime = lifetime
    return resolver


def parse_dns_server(value: str) -> tuple[str, int]:
    """``"127.0.0.1:5353"``, ``"[::1]:5353"``, ``"192.0.2.53"`` → (address, port); ValueError when malformed."""
    text = value.strip()
    host, port_text = text, ""
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"not an address[:port]: {value!r}")
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    address = str(ipaddress.ip_address(host))
    port = int(port_text) if port_text else 53
    if not 0 < port < 65536:
        raise ValueError(f"port out of range: {port}")
    return address, port


def check_dns(*, access_edge_fqdn: str, sip_domain: str, expected_ips: Sequence[str] | None,
              resolver: dns.resolver.Resolver) -> list[CheckLine]:
    """The access edge A record (to ``expected_ips`` when given) and the two SIP SRV records of ``sip_domain``."""
    edge = _fqdn(access_edge_fqdn)
    domain = _fqdn(sip_domain)
    return [
        _check_edge_a(edge, expected_ips, resolver),
        _check_srv(CHECK_SRV_SIP_TLS, f"_sip._tls.{domain}", edge, SIP_TLS_PORT, resolver),
        _check_srv(CHECK_SRV_FEDERATION, f"_sipfederationtls._tcp.{domain}", edge, SIP_FEDERATION_PORT, resolver),
    ]


def _fqdn(name: str) -> str:
    """Lower case, no trailing dot: how names are compared and shown."""
    return name.strip().rstrip(".").lower()


def _lookup(name: str, rdtype: str, resolver: dns.resolver.Resolver) -> list[dns.rdata.Rdata] | _Failure:
    """The answer's records, or why there are none. Always an absolute name: no search-list surprises."""
    try:
        qname = dns.name.from_text(name)
    except dns.exception.DNSException as exc:
        return _Failure(f"{name!r} is not a valid DNS name ({exc})")
    try:
        answer = resolver.resolve(qname, rdtype, search=False)
    except dns.resolver.NXDOMAIN:
        return _Failure(f"{name} does not exist (NXDOMAIN)")
    except dns.resolver.NoAnswer:
        return _Failure(f"{name} exists but has no {rdtype} record")
    except dns.resolver.LifetimeTimeout:
        return _Failure(f"no answer for {name} {rdtype}: the DNS server timed out ({_servers(resolver)})")
    except dns.resolver.NoNameservers as exc:
        return _Failure(f"no DNS server gave an answer for {name} {rdtype}: {_why_no_server(exc, resolver)}")
    except dns.exception.DNSException as exc:
        return _Failure(f"looking up {name} {rdtype} failed: {exc}")
    return list(answer)


def _why_no_server(exc: dns.resolver.NoNameservers, resolver: dns.resolver.Resolver) -> str:
    """Each server's reason, in words: REFUSED (not authoritative for the name, no recursion), SERVFAIL, or
    unreachable (nothing listens on that address and port)."""
    reasons = []
    for server, _tcp, port, error, _response in exc.kwargs.get("errors", []):
        text = str(error)
        if "REFUSED" in text:
            text = "REFUSED (it does not serve this zone and does not recurse)"
        elif "SERVFAIL" in text:
            text = "SERVFAIL (the zone is broken or the server cannot reach it)"
        elif isinstance(error, OSError):
            text = f"unreachable ({error.strerror or error})"
        # dnspython names the server "Do53:127.0.0.1@5353"; show it as address:port.
        address = str(getattr(server, "address", server)).removeprefix("Do53:").split("@")[0]
        reasons.append(f"{address}:{port} {text}")
    return "; ".join(dict.fromkeys(reasons)) or _servers(resolver)


def _servers(resolver: dns.resolver.Resolver) -> str:
    return ", ".join(f"{ns}:{resolver.port}" for ns in resolver.nameservers) or "no servers configured"


def _check_edge_a(edge: str, expected_ips: Sequence[str] | None, resolver: dns.resolver.Resolver) -> CheckLine:
    try:
        parsed = {ipaddress.ip_address(ip.strip()) for ip in expected_ips or ()}
    except ValueError as exc:
        return CheckLine(CHECK_EDGE_A, edge, False, f"the expected addresses are not IP addresses: {exc}",
                         "correct the access edge's expected IP addresses in the site's configuration")
    if any(ip.version != 4 for ip in parsed):
        v6 = ", ".join(sorted(str(ip) for ip in parsed if ip.version != 4))
        return CheckLine(CHECK_EDGE_A, edge, False, f"an A record holds IPv4 addresses; {v6} is IPv6",
                         "give the access edge's public IPv4 address(es) as its expected IPs")
    expected = [str(ip) for ip in sorted(parsed)]
    create = f"create `{edge}. {_TTL} IN A {expected[0] if expected else '<public IP of the access edge>'}`"
    if len(expected) > 1:
        create += " (and one A record per other address: " + ", ".join(expected[1:]) + ")"
    found = _lookup(edge, "A", resolver)
    if isinstance(found, _Failure):
        return CheckLine(CHECK_EDGE_A, edge, False, found.detail, create)
    addresses = sorted({rr.address for rr in found if isinstance(rr, A)}, key=ipaddress.ip_address)
    if not addresses:
        return CheckLine(CHECK_EDGE_A, edge, False, f"{edge} has no A record", create)
    shown = ", ".join(addresses)
    if not expected:
        return CheckLine(CHECK_EDGE_A, edge, True, f"{edge} resolves to {shown}", None)
    if addresses == expected:
        return CheckLine(CHECK_EDGE_A, edge, True, f"{edge} resolves to {shown} as expected", None)
    missing = [ip for ip in expected if ip not in addresses]
    extra = [ip for ip in addresses if ip not in expected]
    fixes = []
    if extra:
        fixes.append("remove the A record(s) for " + ", ".join(extra))
    if missing:
        fixes.append("add " + ", ".join(f"`{edge}. {_TTL} IN A {ip}`" for ip in missing))
    return CheckLine(CHECK_EDGE_A, edge, False,
                     f"{edge} resolves to {shown}; expected {', '.join(expected)}", "; ".join(fixes))


def _check_srv(check: str, owner: str, edge: str, port: int, resolver: dns.resolver.Resolver) -> CheckLine:
    """Every record of the SRV set must send clients to the edge on ``port``: a stray record is a failed call."""
    record = f"`{owner}. {_TTL} IN SRV {_SRV_PRIORITY} {_SRV_WEIGHT} {port} {edge}.`"
    found = _lookup(owner, "SRV", resolver)
    if isinstance(found, _Failure):
        return CheckLine(check, owner, False, found.detail, f"create {record}")
    records = sorted((rr.priority, rr.weight, rr.port, _fqdn(rr.target.to_text())) for rr in found
                     if isinstance(rr, SRV))
    if not records:
        return CheckLine(check, owner, False, f"{owner} has no SRV record", f"create {record}")
    shown = "; ".join(f"{p} {w} {prt} {t}." for p, w, prt, t in records)
    wrong = [(p, w, prt, t) for p, w, prt, t in records if t != edge or prt != port]
    if not wrong:
        return CheckLine(check, owner, True, f"{owner} → {shown}", None)
    problems = []
    for _, _, prt, target in wrong:
        if target != edge:
            problems.append(f"target {target} is not the access edge {edge}")
        if prt != port:
            problems.append(f"port {prt} is not {port}")
    detail = f"{owner} → {shown}: " + ", ".join(dict.fromkeys(problems))
    return CheckLine(check, owner, False, detail, f"replace the SRV record(s) of {owner} with {record}")
