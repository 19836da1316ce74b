"""Signing certificates for server-to-server OAuth: self-signed RSA-2048 X.509 v3 certificates (RFC 5280),
their DER form (the seed's exported ``.cer`` is DER), and the thumbprints partners match keys by.

- ``x5t`` is "the base64url-encoded SHA-1 thumbprint (a.k.a. digest) of the DER encoding of an X.509
  certificate" (RFC 7515 §4.1.7); ``x5t#S256`` the same with SHA-256 (§4.1.8). The hex SHA-1 thumbprint is
  what Exchange shows as ``CurrentCertificateThumbprint`` and a key credential's custom key identifier.
- ``KeyDescriptor`` is one verification key as a partner registered it: thumbprints, start and end dates (those
  of the key credential, which may differ from the certificate's — the seed's key check warns about that) and the
  public key, with its joserfc form built once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from joserfc.jwk import RSAKey

RSA_KEY_SIZE = 2048
MIN_RSA_KEY_SIZE = 2048  # RFC 7518 §3.3: "A key of size 2048 bits or larger MUST be used"
MAX_CERTIFICATE_BYTES = 16 * 1024


class CertificateError(ValueError):
    """A certificate that cannot be read or is not an RSA signing certificate of at least 2048 bits."""


def b64url(data: bytes) -> str:
    """Base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class SigningCertificate:
    """Our signing certificate with its private key (``private_key`` is None for an imported public one)."""

    certificate: x509.Certificate
    private_key: rsa.RSAPrivateKey | None = field(default=None, repr=False)

    @cached_property
    def descriptor(self) -> KeyDescriptor:
        """Its public half as a verification key over the certificate's dates."""
        return KeyDescriptor.from_certificate(self.certificate)

    @cached_property
    def signing_jwk(self) -> RSAKey:
        """The private key in joserfc's form, built once (importing it costs more than a signature)."""
        if self.private_key is None:
            raise CertificateError("this certificate was imported without its private key: it cannot sign")
        return RSAKey.import_key(self.private_key, {"use": "sig", "kid": self.descriptor.x5t})


def generate_signing_certificate(subject_cn: str, not_before: datetime, not_after: datetime, *,
                                 key_size: int = RSA_KEY_SIZE) -> SigningCertificate:
    """A new RSA key and a self-signed certificate for it (subject = issuer = ``CN=subject_cn``), valid from
    ``not_before`` to ``not_after`` (aware datetimes), marked for digital signatures only."""
    if not_after <= not_before:
        raise CertificateError("the certificate's end date must come after its start date")
    if key_size < MIN_RSA_KEY_SIZE:
        raise CertificateError(f"an RSA signing key must have at least {MIN_RSA_KEY_SIZE} bits")
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before.astimezone(UTC))
        .not_valid_after(not_after.astimezone(UTC))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return SigningCertificate(cert, key)


def certificate_der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(Encoding.DER)


def certificate_base64(certificate: x509.Certificate) -> str:
    """Standard base64 of the DER: the value a service principal's key credential is given (``-Value``)."""
    return base64.b64encode(certificate_der(certificate)).decode("ascii")


def load_certificate_der(data: bytes) -> x509.Certificate:
    """A DER certificate (a ``.cer`` file), refused unless it holds an RSA key of 2048 bits or more."""
    if len(data) > MAX_CERTIFICATE_BYTES:
        raise CertificateError("the certificate is larger than any signing certificate should be")
    try:
        cert = x509.load_der_x509_certificate(data)
        public_key = cert.public_key()
    except ValueError as exc:
        raise CertificateError("the data is not a DER-encoded X.509 certificate") from exc
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise CertificateError("the certificate's key is not an RSA key")
    if public_key.key_size < MIN_RSA_KEY_SIZE:
        raise CertificateError(f"the certificate's RSA key has fewer than {MIN_RSA_KEY_SIZE} bits")
    return cert


def load_certificate_base64(value: str) -> x509.Certificate:
    """The base64 DER value of a key credential (whitespace allowed, as pasted from a script)."""
    try:
        data = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CertificateError("the value is not base64") from exc
    return load_certificate_der(data)


def sha1_thumbprint(certificate: x509.Certificate) -> str:
    """Upper-case hex SHA-1 of the DER, as Windows and Exchange print it."""
    return hashlib.sha1(certificate_der(certificate), usedforsecurity=False).hexdigest().upper()


def sha256_thumbprint(certificate: x509.Certificate) -> str:
    return hashlib.sha256(certificate_der(certificate)).hexdigest().upper()


def x5t(certificate: x509.Certificate) -> str:
    """RFC 7515 §4.1.7: base64url of the SHA-1 digest of the DER."""
    return b64url(hashlib.sha1(certificate_der(certificate), usedforsecurity=False).digest())


def x5t_s256(certificate: x509.Certificate) -> str:
    """RFC 7515 §4.1.8: base64url of the SHA-256 digest of the DER."""
    return b64url(hashlib.sha256(certificate_der(certificate)).digest())


def thumbprint_hex_to_x5t(thumbprint: str) -> str:
    """A hex thumbprint (any case, colons or spaces allowed) as its base64url ``x5t`` / ``x5t#S256`` form."""
    cleaned = "".join(c for c in thumbprint if c not in ": ")
    try:
        return b64url(bytes.fromhex(cleaned))
    except ValueError as exc:
        raise CertificateError("the thumbprint is not hexadecimal") from exc


@dataclass(frozen=True)
class KeyDescriptor:
    """One verification key with the window in which it may be used (``start`` ≤ now ≤ ``end``, aware UTC)."""

    x5t: str
    x5t_s256: str | None
    start: datetime
    end: datetime
    public_key: rsa.RSAPublicKey = field(repr=False, compare=False)
    jwk: RSAKey = field(repr=False, compare=False)

    @classmethod
    def from_certificate(cls, certificate: x509.Certificate, *, start: datetime | None = None,
                         end: datetime | None = None) -> KeyDescriptor:
        """The certificate's key, valid over the certificate's own dates unless the registration says otherwise."""
        public_key = certificate.public_key()
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise CertificateError("the certificate's key is not an RSA key")
        return cls(
            x5t=x5t(certificate),
            x5t_s256=x5t_s256(certificate),
            start=start or certificate.not_valid_before_utc,
            end=end or certificate.not_valid_after_utc,
            public_key=public_key,
            jwk=RSAKey.import_key(public_key, {"use": "sig", "kid": x5t(certificate)}),
        )

    @property
    def sha1_hex(self) -> str:
        return base64.urlsafe_b64decode(self.x5t + "=" * (-len(self.x5t) % 4)).hex().upper()

    @cached_property
    def not_before(self) -> float:
        """``start`` in epoch seconds, computed once: validation compares it on every token."""
        return self.start.timestamp()

    @cached_property
    def not_after(self) -> float:
        return self.end.timestamp()

    def valid_at(self, now: datetime) -> bool:
        return self.start <= now <= self.end

    def public_jwk(self) -> dict[str, object]:
        """The key as a JWK (RFC 7517 §4) for a JWKS: ``kid`` = ``x5t``, with ``x5t`` and ``x5t#S256`` (§4.8–4.9)."""
        data: dict[str, object] = dict(self.jwk.as_dict(private=False))
        data.update({"use": "sig", "alg": "RS256", "kid": self.x5t, "x5t": self.x5t})
        if self.x5t_s256:
            data["x5t#S256"] = self.x5t_s256
        return data
