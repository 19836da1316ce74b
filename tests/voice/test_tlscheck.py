"""Gateway certificate checks and the tenant root CA that issues gateway certificates."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tenantry.core.errors import Invalid
from tenantry.voice.results import CheckLine
from tenantry.voice.tlscheck import (
    CHECK_CHAIN,
    CHECK_CONNECT,
    CHECK_DATES,
    CHECK_NAME,
    CHECK_PARSE,
    CHECK_USAGE,
    KeyType,
    TenantRootCA,
    check_gateway_certificate,
    check_live_gateway,
    fetch_certificate,
    issue_gateway_certificate,
    name_matches,
    new_root_ca,
)

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
GW = "gw1.contoso.com"


@pytest.fixture(scope="module")
def ca() -> TenantRootCA:
    return TenantRootCA.new("Contoso Voice Root CA", days=3650, key_type=KeyType.EC_P256, now=NOW)


@pytest.fixture(scope="module")
def other_ca() -> TenantRootCA:
    return TenantRootCA.new("Fabrikam Root CA", days=3650, key_type=KeyType.EC_P256, now=NOW)


def by_check(lines: list[CheckLine]) -> dict[str, CheckLine]:
    return {line.check: line for line in lines}


def issue(ca: TenantRootCA, fqdn: str = GW, ip: str | None = None) -> bytes:
    cert, _key = ca.issue(fqdn, days=365, key_type=KeyType.EC_P256, now=NOW, ip=ip)
    return cert


# --- a hand-made certificate, for what our CA would never issue

Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def make_cert(subject_cn: str, *, issuer: tuple[x509.Certificate, Key] | None = None, ca: bool = False,
              san: list[str] | None = None, eku: list[x509.ObjectIdentifier] | None = None,
              start: dt.datetime = NOW - dt.timedelta(days=1), end: dt.datetime = NOW + dt.timedelta(days=30),
              issuer_name: x509.Name | None = None) -> tuple[x509.Certificate, Key]:
    key: Key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)])
    signer_key = issuer[1] if issuer else key
    builder = (x509.CertificateBuilder().subject_name(name)
               .issuer_name(issuer_name or (issuer[0].subject if issuer else name))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(end)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if san is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in san]), critical=False)
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    return builder.sign(signer_key, hashes.SHA256()), key


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


# --- the tenant root CA and what it issues


def test_the_root_ca_is_a_self_signed_ca_that_only_issues_end_entities() -> None:
    cert_pem, key_pem = new_root_ca("Contoso Voice Root CA", days=30, now=NOW)
    cert = x509.load_pem_x509_certificate(cert_pem)
    key = serialization.load_pem_private_key(key_pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048          # RSA-2048 unless told otherwise
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    assert cert.subject == cert.issuer
    cert.verify_directly_issued_by(cert)
    assert cert.not_valid_after_utc == NOW + dt.timedelta(days=30)


def test_an_issued_gateway_certificate_passes_every_check(ca: TenantRootCA) -> None:
    lines = ca.check(issue(ca), fqdn=GW, now=NOW)
    assert [line.check for line in lines] == [CHECK_NAME, CHECK_CHAIN, CHECK_DATES, CHECK_USAGE]
    assert all(line.ok and line.fix is None for line in lines), lines
    found = by_check(lines)
    assert found[CHECK_NAME].detail == f"subjectAltName names {GW} ({GW})"
    assert found[CHECK_CHAIN].detail == "issued by CN=Contoso Voice Root CA, signature verified"
    assert found[CHECK_DATES].detail.endswith("(365 days left)")


def test_the_gateway_certificate_has_cn_and_san_mutual_tls_usages_and_is_not_a_ca(ca: TenantRootCA) -> None:
    cert_pem, key_pem = issue_gateway_certificate(ca.cert_pem, ca.key_pem, "GW1.Contoso.com.", days=90, now=NOW)
    cert = x509.load_pem_x509_certificate(cert_pem)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == GW
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [GW]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    key = serialization.load_pem_private_key(key_pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    assert cert.public_key().public_bytes(*spki) == key.public_key().public_bytes(*spki)
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    cert.verify_directly_issued_by(ca_cert)
    assert all(line.ok for line in ca.check(cert_pem, fqdn=GW, now=NOW))


def test_an_ec_p256_gateway_key_when_asked(ca: TenantRootCA) -> None:
    _cert, key_pem = ca.issue(GW, days=30, key_type=KeyType.EC_P256, now=NOW)
    key = serialization.load_pem_private_key(key_pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"


def test_a_gateway_ip_goes_into_the_san_and_a_gateway_known_by_ip_passes(ca: TenantRootCA) -> None:
    cert_pem = issue(ca, ip="192.0.2.20")
    san = x509.load_pem_x509_certificate(cert_pem).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert [str(ip) for ip in san.value.get_values_for_type(x509.IPAddress)] == ["192.0.2.20"]
    assert by_check(ca.check(cert_pem, fqdn="192.0.2.20", now=NOW))[CHECK_NAME].ok
    line = by_check(ca.check(cert_pem, fqdn="192.0.2.21", now=NOW))[CHECK_NAME]
    assert not line.ok and "an IP address entry" in (line.fix or "")


def test_a_certificate_never_outlives_its_root_ca() -> None:
    root = TenantRootCA.new("Short Root", days=10, key_type=KeyType.EC_P256, now=NOW)
    cert = x509.load_pem_x509_certificate(root.issue(GW, days=365, key_type=KeyType.EC_P256, now=NOW)[0])
    assert cert.not_valid_after_utc == x509.load_pem_x509_certificate(root.cert_pem).not_valid_after_utc


@pytest.mark.parametrize("fqdn", ["*.contoso.com", "gw1", "gw_1.contoso.com", "-gw.contoso.com", "", "a..b"])
def test_issuing_refuses_what_is_not_a_single_gateway_fqdn(ca: TenantRootCA, fqdn: str) -> None:
    with pytest.raises(Invalid):
        ca.issue(fqdn, days=30, key_type=KeyType.EC_P256, now=NOW)


def test_issuing_refuses_a_key_that_is_not_the_cas_and_a_ca_that_is_not_a_ca(ca: TenantRootCA,
                                                                             other_ca: TenantRootCA) -> None:
    with pytest.raises(Invalid, match="does not belong"):
        issue_gateway_certificate(ca.cert_pem, other_ca.key_pem, GW, days=30, now=NOW)
    leaf_pem, leaf_key = ca.issue(GW, days=30, key_type=KeyType.EC_P256, now=NOW)
    with pytest.raises(Invalid, match="not a CA"):
        issue_gateway_certificate(leaf_pem, leaf_key, "gw2.contoso.com", days=30, now=NOW)
    with pytest.raises(Invalid, match="not an IP"):
        ca.issue(GW, days=30, ip="gw1", now=NOW)
    with pytest.raises(Invalid):
        ca.issue(GW, days=0, now=NOW)


# --- name


@pytest.mark.parametrize(("pattern", "name", "expected"), [
    ("gw1.contoso.com", "GW1.contoso.com.", True),
    ("*.contoso.com", "gw1.contoso.com", True),
    ("*.contoso.com", "a.gw1.contoso.com", False),      # one label only
    ("*.contoso.com", "contoso.com", False),            # not the parent
    ("gw*.contoso.com", "gw1.contoso.com", False),      # no partial-label wildcards
    ("*.com", "contoso.com", False),                    # not over a single-label suffix
    ("gw1.*.com", "gw1.contoso.com", False),            # left-most label only
    ("*.*.com", "a.b.com", False),
])
def test_wildcards_follow_rfc_6125_one_left_most_label(pattern: str, name: str, expected: bool) -> None:
    assert name_matches(pattern, name) is expected


def test_a_certificate_for_another_name_fails_naming_what_it_holds(ca: TenantRootCA) -> None:
    line = by_check(ca.check(issue(ca, "gw2.contoso.com"), fqdn=GW, now=NOW))[CHECK_NAME]
    assert not line.ok
    assert line.detail == f"subjectAltName holds gw2.contoso.com, not {GW}"
    assert line.fix is not None and f"{GW} as a DNS name in subjectAltName" in line.fix


def test_a_wildcard_certificate_names_one_level_of_gateways(ca: TenantRootCA) -> None:
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    cert, _ = make_cert("*.contoso.com", issuer=(ca_cert, ca_key), san=["*.contoso.com"])
    assert by_check(ca.check(pem(cert), fqdn=GW, now=NOW))[CHECK_NAME].ok
    assert not by_check(ca.check(pem(cert), fqdn="a.gw1.contoso.com", now=NOW))[CHECK_NAME].ok


def test_the_cn_counts_only_when_there_is_no_san(ca: TenantRootCA) -> None:
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    cn_only, _ = make_cert(GW, issuer=(ca_cert, ca_key))
    line = by_check(ca.check(pem(cn_only), fqdn=GW, now=NOW))[CHECK_NAME]
    assert line.ok and line.detail.startswith("subject CN (no subjectAltName) names")
    cn_and_other_san, _ = make_cert(GW, issuer=(ca_cert, ca_key), san=["gw9.contoso.com"])
    assert not by_check(ca.check(pem(cn_and_other_san), fqdn=GW, now=NOW))[CHECK_NAME].ok


# --- chain


def test_a_certificate_from_another_ca_fails_the_chain_saying_who_issued_it(ca: TenantRootCA,
                                                                           other_ca: TenantRootCA) -> None:
    line = by_check(ca.check(issue(other_ca), fqdn=GW, now=NOW))[CHECK_CHAIN]
    assert not line.ok
    assert line.detail == ("CN=gw1.contoso.com is issued by CN=Fabrikam Root CA, which is neither the configured "
                           "root CA (CN=Contoso Voice Root CA) nor an intermediate in the bundle")
    assert line.fix is not None and "tenant root CA" in line.fix


def test_a_ca_with_the_same_name_but_another_key_fails_on_the_signature(ca: TenantRootCA) -> None:
    impostor = TenantRootCA.new("Contoso Voice Root CA", days=3650, key_type=KeyType.EC_P256, now=NOW)
    line = by_check(ca.check(issue(impostor), fqdn=GW, now=NOW))[CHECK_CHAIN]
    assert not line.ok
    assert "the signature does not verify with its key" in line.detail


def test_a_self_signed_gateway_certificate_fails_the_chain(ca: TenantRootCA) -> None:
    cert, _ = make_cert(GW, san=[GW])
    line = by_check(ca.check(pem(cert), fqdn=GW, now=NOW))[CHECK_CHAIN]
    assert not line.ok and line.detail == f"self-signed (CN={GW}), not issued by the configured root CA"


def test_a_chain_bundle_with_an_intermediate_passes_and_without_it_fails() -> None:
    root, root_key = make_cert("Root", ca=True, end=NOW + dt.timedelta(days=3650))
    inter, inter_key = make_cert("Voice Issuing CA", issuer=(root, root_key), ca=True)
    leaf, _ = make_cert(GW, issuer=(inter, inter_key), san=[GW])
    lines = check_gateway_certificate(pem(leaf) + pem(inter), fqdn=GW, root_ca_pem=pem(root), now=NOW)
    assert all(line.ok for line in lines), lines
    assert by_check(lines)[CHECK_CHAIN].detail == "issued by CN=Root via CN=Voice Issuing CA, signature verified"
    alone = by_check(check_gateway_certificate(pem(leaf), fqdn=GW, root_ca_pem=pem(root), now=NOW))[CHECK_CHAIN]
    assert not alone.ok and "nor an intermediate in the bundle" in alone.detail


def test_an_intermediate_that_is_not_a_ca_does_not_count() -> None:
    root, root_key = make_cert("Root", ca=True)
    not_ca, not_ca_key = make_cert("Pretend CA", issuer=(root, root_key), ca=False)
    leaf, _ = make_cert(GW, issuer=(not_ca, not_ca_key), san=[GW])
    line = by_check(check_gateway_certificate(pem(leaf) + pem(not_ca), fqdn=GW, root_ca_pem=pem(root),
                                              now=NOW))[CHECK_CHAIN]
    assert not line.ok


def test_any_of_several_configured_roots_will_do(ca: TenantRootCA, other_ca: TenantRootCA) -> None:
    lines = check_gateway_certificate(issue(other_ca), fqdn=GW, root_ca_pem=ca.cert_pem + other_ca.cert_pem, now=NOW)
    assert by_check(lines)[CHECK_CHAIN].ok


# --- dates


def test_an_expired_certificate_fails_with_its_end_date(ca: TenantRootCA) -> None:
    later = NOW + dt.timedelta(days=400)
    line = by_check(ca.check(issue(ca), fqdn=GW, now=later))[CHECK_DATES]
    assert not line.ok
    assert line.detail == "the certificate expired on 2027-06-01 12:00 UTC"
    assert line.fix == "issue the gateway a new certificate and import it on the gateway"


def test_a_certificate_not_yet_valid_fails_and_points_at_the_clocks(ca: TenantRootCA) -> None:
    earlier = NOW - dt.timedelta(days=1)
    line = by_check(ca.check(issue(ca), fqdn=GW, now=earlier))[CHECK_DATES]
    assert not line.ok
    assert line.detail.startswith("the certificate is not valid until 2026-06-01 11:55 UTC")
    assert line.fix is not None and line.fix.startswith("check the clocks")


def test_an_expired_intermediate_fails_the_dates_even_when_the_leaf_is_in_date() -> None:
    root, root_key = make_cert("Root", ca=True, end=NOW + dt.timedelta(days=3650))
    inter, inter_key = make_cert("Old Issuing CA", issuer=(root, root_key), ca=True, end=NOW - dt.timedelta(days=1))
    leaf, _ = make_cert(GW, issuer=(inter, inter_key), san=[GW])
    line = by_check(check_gateway_certificate(pem(leaf) + pem(inter), fqdn=GW, root_ca_pem=pem(root),
                                              now=NOW))[CHECK_DATES]
    assert not line.ok and line.detail.startswith("intermediate CN=Old Issuing CA expired")


def test_a_naive_now_is_taken_as_utc(ca: TenantRootCA) -> None:
    naive = NOW.replace(tzinfo=None)
    assert by_check(ca.check(issue(ca), fqdn=GW, now=naive))[CHECK_DATES].ok


# --- usage, input forms


def test_a_certificate_without_client_auth_fails_usage_for_mutual_tls(ca: TenantRootCA) -> None:
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    cert, _ = make_cert(GW, issuer=(ca_cert, ca_key), san=[GW], eku=[ExtendedKeyUsageOID.SERVER_AUTH])
    line = by_check(ca.check(pem(cert), fqdn=GW, now=NOW))[CHECK_USAGE]
    assert not line.ok and line.detail == "extended key usage lacks clientAuth"


def test_der_input_is_accepted(ca: TenantRootCA) -> None:
    der = x509.load_pem_x509_certificate(issue(ca)).public_bytes(serialization.Encoding.DER)
    assert all(line.ok for line in ca.check(der, fqdn=GW, now=NOW))


def test_garbage_is_one_failed_line_not_an_exception(ca: TenantRootCA) -> None:
    lines = ca.check(b"not a certificate", fqdn=GW, now=NOW)
    assert len(lines) == 1 and lines[0].check == CHECK_PARSE and not lines[0].ok
    bad_root = check_gateway_certificate(issue(ca), fqdn=GW, root_ca_pem=b"nope", now=NOW)
    assert len(bad_root) == 1 and "root CA is not a PEM certificate" in bad_root[0].detail


# --- a live gateway over TLS


@pytest.fixture
def tls_gateway(ca: TenantRootCA, tmp_path: Path) -> Iterator[int]:
    """A TLS server on 127.0.0.1 presenting a certificate our CA issued, as a gateway would."""
    cert_pem, key_pem = ca.issue(GW, days=365, key_type=KeyType.EC_P256)
    (tmp_path / "gw.pem").write_bytes(cert_pem + key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "gw.pem")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.settimeout(2)
                    tls.recv(1)
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def test_a_live_gateways_certificate_is_fetched_and_checked(ca: TenantRootCA, other_ca: TenantRootCA,
                                                            tls_gateway: int) -> None:
    fetched = fetch_certificate("127.0.0.1", tls_gateway)
    assert x509.load_pem_x509_certificate(fetched).subject.rfc4514_string() == f"CN={GW}"
    now = dt.datetime.now(dt.UTC)
    lines = check_live_gateway("127.0.0.1", tls_gateway, fqdn=GW, root_ca_pem=ca.cert_pem, now=now)
    assert all(line.ok for line in lines), lines
    wrong_root = check_live_gateway("127.0.0.1", tls_gateway, fqdn=GW, root_ca_pem=other_ca.cert_pem, now=now)
    assert not by_check(wrong_root)[CHECK_CHAIN].ok


def test_an_unreachable_gateway_is_one_failed_line() -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    lines = check_live_gateway("127.0.0.1", port, fqdn=GW, root_ca_pem=b"", now=NOW, timeout=2)
    assert len(lines) == 1 and lines[0].check == CHECK_CONNECT and not lines[0].ok
    assert lines[0].detail.startswith(f"no TLS handshake with 127.0.0.1:{port}")
