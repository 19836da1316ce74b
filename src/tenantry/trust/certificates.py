"""The X.509 work of trust, with ``cryptography``: a self-signed RSA-2048 signing certificate, its DER form
and thumbprints, and reading a certificate an administrator hands us (DER, PEM, or base64 DER as the seed's
``[Convert]::ToBase64String($cer.GetRawCertData())`` gives). Generation, DER and thumbprints are
``protocols.s2s.certificates``; what is here is the service's reading and its error messages."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tenantry.core.errors import Invalid
from tenantry.protocols.s2s import certificates as s2s


@dataclass(frozen=True, slots=True)
class Generated:
    """A new certificate and its private key (PKCS#8 PEM, unencrypted: the caller seals it)."""

    certificate: x509.Certificate
    private_key_pem: str


def generate(common_name: str, not_before: datetime, days: int) -> Generated:
    """A self-signed RSA-2048 certificate valid ``days`` from ``not_before`` (whole seconds: X.509 times are),
    made by ``protocols.s2s`` (the certificate tokens are signed and checked with)."""
    start = not_before.astimezone(UTC).replace(microsecond=0)
    made = s2s.generate_signing_certificate(common_name, start, start + timedelta(days=days))
    assert made.private_key is not None   # generated here, so it has its key
    pem = made.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()).decode()
    return Generated(made.certificate, pem)


der = s2s.certificate_der
sha1_thumbprint = s2s.sha1_thumbprint       # upper-case hex, as Get-AuthConfig's CurrentCertificateThumbprint
sha256_thumbprint = s2s.sha256_thumbprint


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def not_before(cert: x509.Certificate) -> datetime:
    return cert.not_valid_before_utc


def not_after(cert: x509.Certificate) -> datetime:
    return cert.not_valid_after_utc


def load_pem(text: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(text.encode())


def read(data: bytes) -> x509.Certificate:
    """A certificate from DER, PEM or base64 DER bytes; ``Invalid`` for anything else (a key, text, garbage)."""
    # DER first, as it is: stripping "whitespace" off binary would cut a signature that ends in 0x20 or 0x0a.
    raw = data
    if not raw.startswith(b"\x30"):
        text = raw.strip()
        if text.startswith(b"-----BEGIN"):
            try:
                return x509.load_pem_x509_certificate(text)
            except ValueError as exc:
                raise Invalid("the PEM value is not an X.509 certificate") from exc
        try:   # anything else may be its base64
            raw = base64.b64decode(b"".join(text.split()), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise Invalid("the value is neither a DER certificate nor its base64 (the seed's $credValue)") from exc
    try:
        return x509.load_der_x509_certificate(raw)
    except ValueError as exc:
        raise Invalid("the value is not an X.509 certificate (DER): give the .cer the partner exported, or its "
                      "base64") from exc
