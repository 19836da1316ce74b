"""Signing certificates for server-to-server OAuth: generation, DER and base64 round trips, thumbprints in the
forms Exchange prints and JOSE headers carry (RFC 7515 §4.1.7–4.1.8), and what is refused on import."""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from tenantry.protocols.s2s.certificates import (
    CertificateError,
    KeyDescriptor,
    SigningCertificate,
    certificate_base64,
    certificate_der,
    generate_signing_certificate,
    load_certificate_base64,
    load_certificate_der,
    sha1_thumbprint,
    sha256_thumbprint,
    thumbprint_hex_to_x5t,
    x5t,
    x5t_s256,
)
from tests.protocols.s2s_support import NOW_DT, certificate


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _self_signed(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "odd")])
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(NOW_DT).not_valid_after(NOW_DT + timedelta(days=1))
            .sign(key, hashes.SHA256()))


def test_generated_certificate_is_self_signed_rsa_2048_with_the_given_subject_and_dates() -> None:
    start, end = NOW_DT - timedelta(days=1), NOW_DT + timedelta(days=730)
    signing = generate_signing_certificate("exchange-oauth.contoso.com", start, end)
    cert = signing.certificate
    assert cert.subject == cert.issuer
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "exchange-oauth.contoso.com"
    assert (cert.not_valid_before_utc, cert.not_valid_after_utc) == (start, end)
    public_key = cert.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size == 2048
    public_key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), hashes.SHA256())
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature


def test_end_date_before_start_date_is_refused() -> None:
    with pytest.raises(CertificateError):
        generate_signing_certificate("x", NOW_DT, NOW_DT - timedelta(seconds=1))


def test_key_smaller_than_2048_bits_is_refused_when_generating() -> None:
    with pytest.raises(CertificateError):
        generate_signing_certificate("x", NOW_DT, NOW_DT + timedelta(days=1), key_size=1024)


def test_der_round_trip_gives_the_same_certificate_and_thumbprints() -> None:
    cert = certificate("partner").certificate
    loaded = load_certificate_der(certificate_der(cert))
    assert loaded == cert
    assert (x5t(loaded), x5t_s256(loaded), sha1_thumbprint(loaded)) == (x5t(cert), x5t_s256(cert),
                                                                        sha1_thumbprint(cert))


def test_base64_value_round_trips_even_with_line_breaks_pasted_in() -> None:
    cert = certificate("partner").certificate
    value = certificate_base64(cert)
    assert base64.b64decode(value) == certificate_der(cert)
    wrapped = "\n".join(value[i:i + 64] for i in range(0, len(value), 64))
    assert load_certificate_base64(wrapped) == cert


def test_thumbprints_are_digests_of_the_der_in_hex_and_base64url() -> None:
    cert = certificate("partner").certificate
    der = certificate_der(cert)
    assert sha1_thumbprint(cert) == hashlib.sha1(der).hexdigest().upper()
    assert sha256_thumbprint(cert) == hashlib.sha256(der).hexdigest().upper()
    assert x5t(cert) == _b64url(hashlib.sha1(der).digest())
    assert x5t_s256(cert) == _b64url(hashlib.sha256(der).digest())
    assert "=" not in x5t(cert) and "+" not in x5t(cert) and "/" not in x5t(cert)


def test_hex_thumbprint_as_printed_by_windows_converts_to_x5t() -> None:
    cert = certificate("partner").certificate
    hex_with_colons = ":".join(sha1_thumbprint(cert).lower()[i:i + 2] for i in range(0, 40, 2))
    assert thumbprint_hex_to_x5t(hex_with_colons) == x5t(cert)
    with pytest.raises(CertificateError):
        thumbprint_hex_to_x5t("not-hex")


def test_descriptor_uses_the_certificate_dates_unless_the_registration_gives_its_own() -> None:
    cert = certificate("partner").certificate
    own = KeyDescriptor.from_certificate(cert)
    assert (own.start, own.end) == (cert.not_valid_before_utc, cert.not_valid_after_utc)
    assert own.sha1_hex == sha1_thumbprint(cert)
    registered = KeyDescriptor.from_certificate(cert, start=NOW_DT, end=NOW_DT + timedelta(days=7))
    assert (registered.start, registered.end) == (NOW_DT, NOW_DT + timedelta(days=7))
    assert registered.valid_at(NOW_DT + timedelta(days=1))
    assert not registered.valid_at(NOW_DT + timedelta(days=8))


def test_public_jwk_names_the_key_by_x5t_and_holds_no_private_part() -> None:
    descriptor = certificate("partner").descriptor
    jwk = descriptor.public_jwk()
    assert jwk["kty"] == "RSA" and jwk["kid"] == jwk["x5t"] == descriptor.x5t
    assert jwk["x5t#S256"] == descriptor.x5t_s256
    assert jwk["use"] == "sig" and jwk["alg"] == "RS256"
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(jwk)


def test_data_that_is_not_der_is_refused() -> None:
    with pytest.raises(CertificateError):
        load_certificate_der(b"-----BEGIN CERTIFICATE-----\nnot der\n")
    with pytest.raises(CertificateError):
        load_certificate_base64("%%% not base64 %%%")


def test_certificate_with_a_1024_bit_rsa_key_is_refused_on_import() -> None:
    weak = _self_signed(rsa.generate_private_key(public_exponent=65537, key_size=1024))
    with pytest.raises(CertificateError, match="2048"):
        load_certificate_der(certificate_der(weak))


def test_certificate_with_an_ec_key_is_refused_on_import() -> None:
    with pytest.raises(CertificateError, match="RSA"):
        load_certificate_der(certificate_der(_self_signed(ec.generate_private_key(ec.SECP256R1()))))


def test_imported_certificate_without_its_private_key_cannot_sign() -> None:
    imported = SigningCertificate(load_certificate_der(certificate_der(certificate("partner").certificate)))
    with pytest.raises(CertificateError, match="private key"):
        _ = imported.signing_jwk
