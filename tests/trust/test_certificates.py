"""trust.certificates without a database: reading what an administrator hands us, as DER, PEM or base64 DER."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tenantry.core.errors import Invalid
from tenantry.trust import certificates


def _der_ending_in_whitespace() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ws")])
    now = datetime.now(UTC)
    for serial in range(1, 5000):
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(serial).not_valid_before(now).not_valid_after(now + timedelta(days=1))
                .sign(key, hashes.SHA256()))
        der = certificates.der(cert)
        if der[-1:].isspace():
            return der
    raise AssertionError("no signature ended in a whitespace byte")  # pragma: no cover


def test_der_whose_last_byte_looks_like_whitespace_is_read_whole() -> None:
    der = _der_ending_in_whitespace()
    assert certificates.der(certificates.read(der)) == der


def test_pem_and_base64_with_line_breaks_are_read() -> None:
    made = certificates.generate("t", datetime.now(UTC), 30)
    der = certificates.der(made.certificate)
    wrapped = b"\r\n".join(base64.b64encode(der)[i:i + 64] for i in range(0, len(base64.b64encode(der)), 64))
    assert certificates.read(wrapped + b"\r\n").serial_number == made.certificate.serial_number
    assert certificates.read(certificates.pem(made.certificate).encode()).serial_number == \
        made.certificate.serial_number


def test_thumbprints_are_upper_case_hex_of_the_der() -> None:
    made = certificates.generate("t", datetime.now(UTC), 30)
    assert len(certificates.sha1_thumbprint(made.certificate)) == 40
    assert certificates.sha256_thumbprint(made.certificate) == \
        made.certificate.fingerprint(hashes.SHA256()).hex().upper()


@pytest.mark.parametrize("value", [b"MIIB", b"0\x82garbage",
                                   b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"])
def test_what_is_no_certificate_is_invalid(value: bytes) -> None:
    with pytest.raises(Invalid):
        certificates.read(value)
