"""The TLS part of ``tenantry voice check``: a gateway's certificate, and the tenant root CA that issues them.

Seed 001 has the gateway's certificate issued by the Cloud Connector's own certification authority, with the
gateway's FQDN as the subject's common name and as a DNS name in the subject alternative names, and that CA's root
certificate imported on the gateway: the mediation server and the gateway speak mutual TLS, each trusting the
tenant's root. So the checks are: the certificate names the gateway (SAN dNSName; the CN only when there is no SAN,
RFC 6125), it chains to the configured root CA (signatures verified, not just names compared), it is in date, and
its extended key usage allows both TLS server and TLS client (a gateway is both in mutual TLS).

Everything here is pure: PEM in, lines or PEM out. Where the root CA's key is kept is the caller's business.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from enum import StrEnum

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tenantry.core.errors import Invalid
from tenantry.voice.results import CheckLine

CHECK_PARSE = "tls-gateway-certificate"
CHECK_NAME = "tls-gateway-name"
CHECK_CHAIN = "tls-gateway-chain"
CHECK_DATES = "tls-gateway-dates"
CHECK_USAGE = "tls-gateway-usage"
CHECK_CONNECT = "tls-gateway-connect"

_MAX_CHAIN = 8                       # intermediates followed before giving up (a loop, or a silly bundle)
_BACKDATE = dt.timedelta(minutes=5)  # clock skew between us and the gateway on the first day


class KeyType(StrEnum):
    """RSA-2048 by default: every SBC and PSTN gateway we know imports it; ECDSA P-256 where the gateway can."""

    RSA2048 = "rsa2048"
    EC_P256 = "ec-p256"


# ---------------------------------------------------------------------------------------------- the checks


def check_gateway_certificate(cert_pem_or_der: bytes, *, fqdn: str, root_ca_pem: bytes,
                              now: dt.datetime) -> list[CheckLine]:
    """Name, chain, dates and key usage of a gateway's certificate, one line each.

    ``cert_pem_or_der`` is the gateway's certificate (DER or PEM) or a PEM bundle: the gateway's certificate first,
    then any intermediates, as gateways are configured. ``root_ca_pem`` may hold several roots (during a CA
    change-over); a chain to any of them passes.
    """
    subject = _norm(fqdn)
    try:
        certs = _load_certificates(cert_pem_or_der)
    except ValueError as exc:
        return [CheckLine(CHECK_PARSE, subject, False, f"not a certificate in PEM or DER: {exc}",
                          "export the gateway's certificate (PEM or DER) and check it again")]
    try:
        roots = x509.load_pem_x509_certificates(root_ca_pem)
    except ValueError as exc:
        return [CheckLine(CHECK_PARSE, subject, False, f"the configured root CA is not a PEM certificate: {exc}",
                          "configure the tenant's root CA certificate (PEM)")]
    leaf, intermediates = certs[0], certs[1:]
    path, chain_line = _check_chain(subject, leaf, intermediates, roots)
    return [_check_name(subject, leaf), chain_line, _check_dates(subject, path, _utc(now)), _check_usage(subject, leaf)]


def _load_certificates(data: bytes) -> list[x509.Certificate]:
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_certificates(data)
    return [x509.load_der_x509_certificate(data)]


def _norm(name: str) -> str:
    return name.strip().rstrip(".").lower()


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def _name_of(cert: x509.Certificate, which: str = "subject") -> str:
    return (cert.subject if which == "subject" else cert.issuer).rfc4514_string() or "(empty name)"


# --- name


def presented_names(cert: x509.Certificate) -> tuple[list[str], list[str], str]:
    """(DNS names, IP addresses, where from): the SAN when it has one, else the subject's CN (RFC 6125 §6.4.4)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        cns = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        return [_norm(cn) for cn in cns], [], "subject CN (no subjectAltName)"
    dns_names = [_norm(name) for name in san.get_values_for_type(x509.DNSName)]
    ips = [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    return dns_names, ips, "subjectAltName"


def name_matches(pattern: str, fqdn: str) -> bool:
    """RFC 6125 §6.4.3 as browsers apply it: exact (case-insensitive), or ``*`` as the whole left-most label
    standing for exactly one label; never a partial-label wildcard, never a wildcard over a public suffix-like
    single label (``*.com``), never the bare parent (``*.contoso.com`` does not name ``contoso.com``)."""
    pattern, fqdn = _norm(pattern), _norm(fqdn)
    if "*" not in pattern:
        return pattern == fqdn
    first, _, rest = pattern.partition(".")
    if first != "*" or "*" in rest or rest.count(".") < 1:
        return False
    label, _, fqdn_rest = fqdn.partition(".")
    return bool(label) and fqdn_rest == rest


def _check_name(subject: str, leaf: x509.Certificate) -> CheckLine:
    dns_names, ips, source = presented_names(leaf)
    try:
        wanted_ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(subject)
    except ValueError:
        wanted_ip = None
    ok = str(wanted_ip) in ips if wanted_ip is not None else any(name_matches(n, subject) for n in dns_names)
    shown = ", ".join([*dns_names, *(f"IP {ip}" for ip in ips)]) or "no names"
    if ok:
        return CheckLine(CHECK_NAME, subject, True, f"{source} names {subject} ({shown})", None)
    kind = "an IP address entry" if wanted_ip is not None else "a DNS name"
    return CheckLine(CHECK_NAME, subject, False, f"{source} holds {shown}, not {subject}",
                     f"issue the gateway a certificate with {subject} as {kind} in subjectAltName "
                     f"(and as the subject CN), from the tenant root CA")


# --- chain


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> str | None:
    """None when ``issuer`` names and signed ``cert``, else why not."""
    try:
        cert.verify_directly_issued_by(issuer)
    except ValueError:
        return f"issuer {_name_of(cert, 'issuer')} is not {_name_of(issuer)}"
    except InvalidSignature:
        return (f"the issuer's name matches {_name_of(issuer)} but the signature does not verify with its key "
                "(a different CA of the same name)")
    except TypeError as exc:
        return f"the signature cannot be checked: {exc}"
    return None


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _check_chain(subject: str, leaf: x509.Certificate, intermediates: list[x509.Certificate],
                 roots: list[x509.Certificate]) -> tuple[list[x509.Certificate], CheckLine]:
    """Walk leaf → intermediates → a configured root, verifying each signature. Returns the path walked (for the
    date check) and the line."""
    fix = ("issue the gateway's certificate from the tenant root CA (or add the missing intermediate to the "
           "gateway's certificate bundle), and import the root CA's certificate on the gateway")
    path = [leaf]
    current = leaf
    for _ in range(_MAX_CHAIN):
        reasons = []
        for root in roots:
            why = _signed_by(current, root)
            if why is None:
                via = "".join(f" via {_name_of(c)}" for c in path[1:])
                return path, CheckLine(CHECK_CHAIN, subject, True,
                                       f"issued by {_name_of(root)}{via}, signature verified", None)
            reasons.append(why)
        step = next((c for c in intermediates if c not in path and _is_ca(c) and _signed_by(current, c) is None),
                    None)
        if step is None:
            if current is leaf and leaf.issuer == leaf.subject and _signed_by(leaf, leaf) is None:
                detail = f"self-signed ({_name_of(leaf)}), not issued by the configured root CA"
            elif any(r.subject == current.issuer for r in roots):
                detail = "; ".join(dict.fromkeys(reasons))
            else:
                roots_shown = ", ".join(_name_of(r) for r in roots)
                detail = (f"{_name_of(current)} is issued by {_name_of(current, 'issuer')}, which is neither the "
                          f"configured root CA ({roots_shown}) nor an intermediate in the bundle")
            return path, CheckLine(CHECK_CHAIN, subject, False, detail, fix)
        path.append(step)
        current = step
    return path, CheckLine(CHECK_CHAIN, subject, False, f"no root CA reached after {_MAX_CHAIN} intermediates", fix)


# --- dates, usage


def _check_dates(subject: str, path: list[x509.Certificate], now: dt.datetime) -> CheckLine:
    """Every certificate on the path must be in date: an expired intermediate breaks the chain as surely."""
    fix_leaf = "issue the gateway a new certificate and import it on the gateway"
    for index, cert in enumerate(path):
        what = "the certificate" if index == 0 else f"intermediate {_name_of(cert)}"
        start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
        if now < start:
            return CheckLine(CHECK_DATES, subject, False, f"{what} is not valid until {start:%Y-%m-%d %H:%M} UTC "
                             f"(now {now:%Y-%m-%d %H:%M} UTC)",
                             "check the clocks of the issuing CA and of this server, or wait; " + fix_leaf)
        if now > end:
            return CheckLine(CHECK_DATES, subject, False, f"{what} expired on {end:%Y-%m-%d %H:%M} UTC",
                             fix_leaf if index == 0 else "renew the intermediate CA and reissue the bundle")
    leaf_end = path[0].not_valid_after_utc
    days = (leaf_end - now).days
    return CheckLine(CHECK_DATES, subject, True,
                     f"valid from {path[0].not_valid_before_utc:%Y-%m-%d} until {leaf_end:%Y-%m-%d} ({days} days left)",
                     None)


def _check_usage(subject: str, leaf: x509.Certificate) -> CheckLine:
    """Mutual TLS between mediation server and gateway: the gateway presents this certificate as server and as
    client, so an extended key usage, when present, must allow both."""
    try:
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return CheckLine(CHECK_USAGE, subject, True, "no extended key usage: any use allowed", None)
    missing = [label for oid, label in ((ExtendedKeyUsageOID.SERVER_AUTH, "serverAuth"),
                                        (ExtendedKeyUsageOID.CLIENT_AUTH, "clientAuth")) if oid not in eku]
    if not missing:
        return CheckLine(CHECK_USAGE, subject, True, "extended key usage allows serverAuth and clientAuth", None)
    return CheckLine(CHECK_USAGE, subject, False, f"extended key usage lacks {' and '.join(missing)}",
                     "reissue the certificate with both serverAuth and clientAuth (mutual TLS with the mediation "
                     "server needs both)")


# ---------------------------------------------------------------------------------------------- the tenant root CA


def _new_key(key_type: KeyType) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    if key_type is KeyType.EC_P256:
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _key_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def new_root_ca(common_name: str, *, days: int, key_type: KeyType = KeyType.RSA2048,
                now: dt.datetime | None = None) -> tuple[bytes, bytes]:
    """A self-signed tenant root CA: (certificate PEM, unencrypted PKCS#8 key PEM; the caller stores it safely).

    Path length 0: it issues gateway certificates directly, never intermediates.
    """
    if not common_name.strip():
        raise Invalid("the root CA needs a common name")
    if days < 1:
        raise Invalid("the root CA must be valid for at least one day")
    start = _utc(now or dt.datetime.now(dt.UTC)) - _BACKDATE
    key = _new_key(key_type)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name.strip())])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + _BACKDATE + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def _gateway_fqdn(fqdn: str) -> str:
    """A gateway's own name: a host name of LDH labels, no wildcard (one certificate per gateway, as the seed)."""
    name = _norm(fqdn)
    labels = name.split(".")
    if (len(name) > 253 or len(labels) < 2 or
            not all(0 < len(lbl) <= 63 and lbl.replace("-", "").isalnum() and lbl.isascii()
                    and not lbl.startswith("-") and not lbl.endswith("-") for lbl in labels)):
        raise Invalid(f"not a gateway FQDN: {fqdn!r}")
    return name


def issue_gateway_certificate(ca_cert_pem: bytes, ca_key_pem: bytes, fqdn: str, *, days: int,
                              ip: str | None = None, key_type: KeyType = KeyType.RSA2048,
                              now: dt.datetime | None = None) -> tuple[bytes, bytes]:
    """A gateway certificate from the tenant root CA: (certificate PEM, key PEM).

    As the seed asks: the FQDN as subject CN and as SAN dNSName (plus the gateway's IP as a SAN iPAddress when
    given); serverAuth and clientAuth, since SBCs use the same certificate both ways in mutual TLS. Never longer
    than the CA itself is valid.
    """
    name = _gateway_fqdn(fqdn)
    if days < 1:
        raise Invalid("a gateway certificate must be valid for at least one day")
    try:
        ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
        ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise Invalid(f"the root CA certificate or key is not usable PEM: {exc}") from exc
    if not isinstance(ca_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise Invalid("the root CA key must be RSA or EC")
    if ca_key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) \
            != ca_cert.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo):
        raise Invalid("the root CA key does not belong to the root CA certificate")
    if not _is_ca(ca_cert):
        raise Invalid("the root CA certificate is not a CA (basicConstraints cA is not set)")
    sans: list[x509.GeneralName] = [x509.DNSName(name)]
    if ip is not None:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(ip)))
        except ValueError as exc:
            raise Invalid(f"not an IP address: {ip!r}") from exc
    start = _utc(now or dt.datetime.now(dt.UTC)) - _BACKDATE
    end = min(start + _BACKDATE + dt.timedelta(days=days), ca_cert.not_valid_after_utc)
    if end <= start:
        raise Invalid("the root CA has expired: make a new one before issuing")
    key = _new_key(key_type)
    rsa_key = isinstance(key, rsa.RSAPrivateKey)
    try:
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
            ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value)
    except x509.ExtensionNotFound:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=rsa_key,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(aki, critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


@dataclass(frozen=True, slots=True)
class TenantRootCA:
    """A tenant's root CA as the caller holds it (certificate and key PEM); the functions above, bound."""

    cert_pem: bytes
    key_pem: bytes

    @classmethod
    def new(cls, common_name: str, *, days: int, key_type: KeyType = KeyType.RSA2048,
            now: dt.datetime | None = None) -> TenantRootCA:
        return cls(*new_root_ca(common_name, days=days, key_type=key_type, now=now))

    def issue(self, fqdn: str, *, days: int, ip: str | None = None, key_type: KeyType = KeyType.RSA2048,
              now: dt.datetime | None = None) -> tuple[bytes, bytes]:
        return issue_gateway_certificate(self.cert_pem, self.key_pem, fqdn, days=days, ip=ip, key_type=key_type,
                                         now=now)

    def check(self, cert_pem_or_der: bytes, *, fqdn: str, now: dt.datetime) -> list[CheckLine]:
        return check_gateway_certificate(cert_pem_or_der, fqdn=fqdn, root_ca_pem=self.cert_pem, now=now)


# ---------------------------------------------------------------------------------------------- a live gateway


def fetch_certificate(host: str, port: int, *, server_name: str | None = None, timeout: float = 5.0) -> bytes:
    """The certificate a TLS server presents (PEM), fetched without verifying it: verifying is the checks' job,
    and they say why it fails where a handshake would only say "certificate verify failed".

    Only the server's own certificate: Python 3.11's ``ssl`` does not expose the intermediates it sent.
    Raises OSError (and ssl.SSLError, a subclass) when the gateway cannot be reached or will not talk TLS.
    """
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=timeout) as raw, \
            context.wrap_socket(raw, server_hostname=server_name or _sni(host)) as tls:
        der = tls.getpeercert(binary_form=True)
    if not der:
        raise ssl.SSLError("the server presented no certificate")
    return ssl.DER_cert_to_PEM_cert(der).encode()


def _sni(host: str) -> str | None:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host
    return None


def check_live_gateway(host: str, port: int, *, fqdn: str, root_ca_pem: bytes, now: dt.datetime,
                       intermediates_pem: bytes = b"", timeout: float = 5.0) -> list[CheckLine]:
    """Connect to the gateway, fetch what it presents and check it; an unreachable gateway is one failed line."""
    try:
        pem = fetch_certificate(host, port, server_name=_sni(_norm(fqdn)), timeout=timeout)
    except OSError as exc:
        return [CheckLine(CHECK_CONNECT, _norm(fqdn), False, f"no TLS handshake with {host}:{port}: {exc}",
                          "check that the gateway listens for TLS on that port and that it can be reached from here")]
    return check_gateway_certificate(pem + intermediates_pem, fqdn=fqdn, root_ca_pem=root_ca_pem, now=now)
