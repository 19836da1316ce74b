"""The tenant root CA and the gateways' certificates (seed 001, steps 3–4), and the DNS and TLS checks wired to
the configuration (``voice check --dns / --tls``).

- The root CA is made here (``voice ca new``: its key sealed with the installation's secret key, like a
  provisioning app's token) or imported (``voice ca import``: the certificate, and its key when Tenantry is to
  issue with it). It issues gateway certificates (``voice ca issue GATEWAY``): the certificate is recorded on the
  gateway; the gateway's private key is handed out once and never stored — the gateway holds it.
- A gateway's certificate may also be recorded as the administrator has it (``voice gateway certificate``).
- ``dns_hook`` and ``tls_hook`` turn ``voice.dnscheck`` / ``voice.tlscheck`` (pure) into ``VoiceService.check``
  hooks over the configuration: the A record of every site's access edge, the two SRV records of the first SIP
  domain (naming the first site's edge); each TLS gateway's certificate, recorded or fetched live.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import dns.resolver
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from sqlalchemy import select

from tenantry.core.clock import as_utc, utcnow
from tenantry.core.db import Database
from tenantry.core.egress import EgressPolicy
from tenantry.core.errors import Conflict, Invalid, NotFound
from tenantry.core.secrets import SecretBox
from tenantry.voice import dnscheck, tlscheck
from tenantry.voice.models import Gateway, VoiceRootCA
from tenantry.voice.results import CheckLine, VoiceCheck, VoiceConfiguration
from tenantry.voice.service import VoiceService
from tenantry.voice.snapshot import Transport

CheckHook = Callable[[VoiceConfiguration], list[CheckLine]]
ROOT_CA_DAYS = 3650
GATEWAY_CERTIFICATE_DAYS = 730
MAX_PEM_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class RootCaInfo:
    subject: str
    thumbprint: str            # SHA-1, upper-case hex
    not_before: datetime
    not_after: datetime
    can_issue: bool            # its key is held here (made here, or imported with its key)
    certificate_pem: str


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """A gateway certificate just issued: the key is shown this once and is not stored."""

    gateway: str
    certificate_pem: str
    private_key_pem: str
    not_after: datetime


class VoiceCertificates:
    def __init__(self, db: Database, secrets: SecretBox) -> None:
        self.db = db
        self.secrets = secrets

    def new_root_ca(self, tenant: str, *, common_name: str | None = None, days: int = ROOT_CA_DAYS,
                    key_type: tlscheck.KeyType = tlscheck.KeyType.RSA2048, replace: bool = False) -> RootCaInfo:
        """A new self-signed root CA for the tenant's gateways; an existing one is replaced only when asked (every
        gateway certificate it issued stops chaining)."""
        if not 1 <= days <= 36500:
            raise Invalid("a root CA is valid 1 to 36500 days")
        cert_pem, key_pem = tlscheck.new_root_ca(common_name or f"Tenantry Voice Root CA {tenant}", days=days,
                                                 key_type=key_type)
        return self._store(tenant, cert_pem.decode(), self.secrets.seal(key_pem.decode()), replace)

    def import_root_ca(self, tenant: str, certificate_pem: bytes, private_key_pem: bytes | None = None, *,
                       replace: bool = False) -> RootCaInfo:
        """An existing CA (the organisation's own): its certificate, and its key if Tenantry is to issue."""
        if len(certificate_pem) > MAX_PEM_BYTES or len(private_key_pem or b"") > MAX_PEM_BYTES:
            raise Invalid(f"a CA certificate or key is at most {MAX_PEM_BYTES} bytes")
        cert = _certificate(certificate_pem)
        constraints = _basic_constraints(cert)
        if constraints is None or not constraints.ca:
            raise Invalid("the certificate is not a CA certificate (basicConstraints CA:TRUE)")
        sealed = None
        if private_key_pem:
            try:   # issuing a throw-away certificate proves the key is the CA's
                tlscheck.issue_gateway_certificate(certificate_pem, private_key_pem, "check.invalid", days=1)
            except Invalid as exc:
                raise Invalid(f"the key cannot issue with this CA: {exc.message}") from exc
            sealed = self.secrets.seal(private_key_pem.decode())
        return self._store(tenant, certificate_pem.decode(), sealed, replace)

    def root_ca(self, tenant: str) -> RootCaInfo:
        with self.db.session() as session:
            row = session.get(VoiceRootCA, tenant)
            if row is None:
                raise NotFound("the tenant has no voice root CA: tenantry voice ca new (or voice ca import)")
            return _info(row)

    def issue(self, tenant: str, gateway: str, *, days: int = GATEWAY_CERTIFICATE_DAYS, ip: str | None = None,
              key_type: tlscheck.KeyType = tlscheck.KeyType.RSA2048) -> IssuedCertificate:
        """A certificate for the gateway (its FQDN, and its IP when given), recorded on the gateway."""
        with self.db.session() as session:
            ca = session.get(VoiceRootCA, tenant)
            if ca is None:
                raise NotFound("the tenant has no voice root CA: tenantry voice ca new (or voice ca import)")
            if ca.private_key is None:
                raise Conflict("the root CA was imported without its key: it cannot issue here")
            ca_cert, ca_key = ca.certificate_pem.encode(), self.secrets.open(ca.private_key).encode()
        row = self._gateway(tenant, gateway)
        cert_pem, key_pem = tlscheck.issue_gateway_certificate(ca_cert, ca_key, row.name, days=days, ip=ip,
                                                               key_type=key_type)
        self.record(tenant, row.name, cert_pem)
        return IssuedCertificate(row.name, cert_pem.decode(), key_pem.decode(), _certificate(cert_pem)
                                 .not_valid_after_utc)

    def record(self, tenant: str, gateway: str, certificate_pem: bytes) -> str:
        """The certificate a gateway presents (PEM, intermediates after it), as the administrator has it."""
        if len(certificate_pem) > MAX_PEM_BYTES:
            raise Invalid(f"a certificate bundle is at most {MAX_PEM_BYTES} bytes")
        _certificate(certificate_pem)
        found = self._gateway(tenant, gateway)
        with self.db.writing(), self.db.session() as session:
            row = session.get(Gateway, found.id)
            if row is None:   # removed meanwhile
                raise NotFound(f"no gateway {gateway!r}")
            row.certificate_pem = certificate_pem.decode()
            return row.name

    def gateway_certificates(self, tenant: str) -> dict[str, bytes]:
        with self.db.session() as session:
            rows = session.execute(select(Gateway.name, Gateway.certificate_pem).where(
                Gateway.tenant_id == tenant, Gateway.certificate_pem.is_not(None))).all()
        return {name: pem.encode() for name, pem in rows if pem}

    def root_ca_pem(self, tenant: str) -> bytes | None:
        with self.db.session() as session:
            row = session.get(VoiceRootCA, tenant)
            return row.certificate_pem.encode() if row is not None else None

    def _gateway(self, tenant: str, ref: str) -> Gateway:
        with self.db.session() as session:
            row = session.scalar(select(Gateway).where(Gateway.tenant_id == tenant, Gateway.name == ref.lower()))
            if row is None:
                row = session.get(Gateway, ref)
            if row is None or row.tenant_id != tenant:
                raise NotFound(f"no gateway {ref!r}")
            session.expunge(row)
            return row

    def _store(self, tenant: str, cert_pem: str, sealed_key: str | None, replace: bool) -> RootCaInfo:
        with self.db.writing(), self.db.session() as session:
            row = session.get(VoiceRootCA, tenant)
            if row is not None and not replace:
                raise Conflict("the tenant has a voice root CA already: replacing it breaks every gateway "
                               "certificate it issued (--replace to do it anyway)")
            if row is None:
                row = VoiceRootCA(tenant_id=tenant)
                session.add(row)
            row.certificate_pem, row.private_key, row.created_at = cert_pem, sealed_key, utcnow()
            session.flush()
            return _info(row)


def dns_hook(resolver: dns.resolver.Resolver) -> CheckHook:
    """The seed's DNS records: each site's access edge A record; the first SIP domain's `_sip._tls` and
    `_sipfederationtls._tcp` SRV records, naming the first site's edge (the tenant's primary site)."""
    def hook(config: VoiceConfiguration) -> list[CheckLine]:
        if not config.sip_domains:
            return [CheckLine("dns-sip-domain", config.tenant, False, "the tenant has no verified domain",
                              "tenantry directory domain-add <domain> --verified (then domain-verify)")]
        if not config.sites:
            return [CheckLine("dns-sites", config.tenant, False, "no PSTN site: no access edge to check",
                              "tenantry voice site new <name> --edge-fqdn <access edge FQDN>")]
        lines: list[CheckLine] = []
        for index, site in enumerate(config.sites):
            found = dnscheck.check_dns(access_edge_fqdn=site.edge_fqdn, sip_domain=config.sip_domains[0],
                                       expected_ips=None, resolver=resolver)
            lines.extend(found if index == 0 else [line for line in found if line.check == dnscheck.CHECK_EDGE_A])
        return lines

    return hook


def run_checks(voice: VoiceService, certificates: VoiceCertificates, tenant: str, *,
               dns_server: str | None = None, dns: bool = False, tls: bool = False, tls_live: bool = False,
               egress: EgressPolicy | None = None) -> VoiceCheck:
    """``voice check``: the configuration's checks, and the DNS (``dns``, or ``dns_server`` host[:port]) and TLS
    (``tls``: the recorded certificates; ``tls_live``: what each gateway presents now) checks when asked. They are
    asked for, not run by default: they reach the network, and an unreachable resolver costs seconds a record."""
    dns_check = None
    if dns or dns_server:
        if dns_server:
            try:
                host, port = dnscheck.parse_dns_server(dns_server)
                resolver = dnscheck.resolver_for(host, port)
            except ValueError as exc:
                raise Invalid(f"--dns-server: {exc}") from exc
        else:
            resolver = dnscheck.resolver_for()
        dns_check = dns_hook(resolver)
    tls_check = None
    if tls or tls_live:
        tls_check = tls_hook(certificates.root_ca_pem(tenant), certificates.gateway_certificates(tenant),
                             live=tls_live, egress=egress)
    return voice.check(tenant, dns=dns_check, tls=tls_check)


def tls_hook(root_ca_pem: bytes | None, certificates: dict[str, bytes], *, live: bool = False,
             now: datetime | None = None, egress: EgressPolicy | None = None) -> CheckHook:
    """Each TLS gateway's certificate against the tenant root CA: the recorded one, or the one the gateway presents
    now (``live``)."""
    def hook(config: VoiceConfiguration) -> list[CheckLine]:
        gateways = [g for g in config.gateways if g.transport == Transport.TLS]
        if not gateways:
            return []
        if root_ca_pem is None:
            return [CheckLine("tls-root-ca", config.tenant, False, "the tenant has no voice root CA to check "
                              "gateway certificates against", "tenantry voice ca new (or voice ca import "
                              "--cert ca.pem), then voice ca issue <gateway>")]
        when = now or utcnow()
        lines: list[CheckLine] = []
        for gateway in gateways:
            refused = _refused(egress, gateway.name, gateway.port) if live else None
            if refused:
                lines.append(CheckLine("tls-gateway-connect", gateway.name, False, refused,
                                       "TENANTRY_OUTBOUND_* settings (docs/security.md, What leaves the machine)"))
            elif live:
                lines.extend(tlscheck.check_live_gateway(gateway.name, gateway.port, fqdn=gateway.name,
                                                         root_ca_pem=root_ca_pem, now=when))
            elif gateway.name in certificates:
                lines.extend(tlscheck.check_gateway_certificate(certificates[gateway.name], fqdn=gateway.name,
                                                                root_ca_pem=root_ca_pem, now=when))
            else:
                lines.append(CheckLine(
                    "tls-gateway-certificate", gateway.name, False, "no certificate is recorded for this gateway",
                    f"tenantry voice ca issue {gateway.name} (or voice gateway certificate {gateway.name} --file "
                    "cert.pem); or check what it presents: voice check --tls-live"))
        return lines

    return hook


def _refused(egress: EgressPolicy | None, host: str, port: int) -> str | None:
    if egress is None:
        return None
    try:
        egress.check_host(host, port)
    except Invalid as exc:
        return exc.message
    return None


def _certificate(pem: bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise Invalid("not a PEM certificate") from exc


def _basic_constraints(cert: x509.Certificate) -> x509.BasicConstraints | None:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return None


def _info(row: VoiceRootCA) -> RootCaInfo:
    cert = _certificate(row.certificate_pem.encode())
    return RootCaInfo(cert.subject.rfc4514_string(), cert.fingerprint(hashes.SHA1()).hex().upper(),  # noqa: S303
                      as_utc(cert.not_valid_before_utc), as_utc(cert.not_valid_after_utc), row.private_key is not None,
                      row.certificate_pem)
