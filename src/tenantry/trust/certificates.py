"""The X.509 work of trust, with ``cryptography``: a self-signed RSA-2048 signing certificate, its DER form
and thumbprints, and reading a certificate an administrator hands us (DER, PEM, or base64 DER as the seed's
``[Convert]::ToBase64String($cer.GetRawCertData())`` gives). To move to ``protocols/s2s`` later."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tenantry.core.errors import Invalid

KEY_BITS = 2048


@dataclass(frozen=True, slots=True)
class Generated:
    """A new certificate and its private key (PKCS#8 PEM, unencrypted: the caller seals it)."""

    certificate: x509.Certificate
    private_key_pem: str


def generate(common_name: str, not_before: datetime, days: int) -> Generated:
    """A self-signed RSA-2048 certificate valid ``days`` from ``not_before`` (whole seconds: X.509 times are)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    start = not_before.astimezone(UTC).replace(microsecond=0)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return Generated(cert, pem)


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def sha1_thumbprint(cert: x509.Certificate) -> str:
    """Upper-case hex SHA-1 of the DER, as Windows (and ``Get-AuthConfig``'s CurrentCertificateThumbprint) shows."""
    return cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - a thumbprint names a certificate, it signs nothing


def sha256_thumbprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex().upper()


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
