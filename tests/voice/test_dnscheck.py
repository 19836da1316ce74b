"""The voice DNS checks against a real authoritative server (nsd on 127.0.0.1), one zone per configuration."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tenantry.voice.dnscheck import (
    CHECK_EDGE_A,
    CHECK_SRV_FEDERATION,
    CHECK_SRV_SIP_TLS,
    check_dns,
    parse_dns_server,
    resolver_for,
)
from tenantry.voice.results import CheckLine
from tests.voice import dns_support

pytestmark = pytest.mark.timeout(60)
against_nsd = pytest.mark.interop          # the tests that need the real server; the quick lane leaves them out

EDGE_IP = "203.0.113.10"

GOOD = f"""\
ap IN A {EDGE_IP}
_sip._tls IN SRV 100 1 443 ap
_sipfederationtls._tcp IN SRV 100 1 5061 ap
"""

ZONES = {
    # Everything as required.
    "contoso.test": GOOD,
    # The SRV records are right but the access edge has no A record (its name exists: it has a TXT).
    "missing-a.test": """\
ap IN TXT "no address yet"
_sip._tls IN SRV 100 1 443 ap
_sipfederationtls._tcp IN SRV 100 1 5061 ap
""",
    # Client SRV points at another host; federation SRV is right.
    "wrong-target.test": f"""\
ap IN A {EDGE_IP}
sip IN A 203.0.113.99
_sip._tls IN SRV 100 1 443 sip
_sipfederationtls._tcp IN SRV 100 1 5061 ap
""",
    # Both SRV records at the access edge, on swapped ports.
    "wrong-port.test": f"""\
ap IN A {EDGE_IP}
_sip._tls IN SRV 100 1 5061 ap
_sipfederationtls._tcp IN SRV 100 1 443 ap
""",
    # No SRV at all: _sip._tls does not exist (NXDOMAIN); the federation name exists with only a TXT (no answer).
    "missing-srv.test": f"""\
ap IN A {EDGE_IP}
_sipfederationtls._tcp IN TXT "not an SRV"
""",
    # A right record plus a stray one in the same SRV set.
    "extra-srv.test": f"""\
ap IN A {EDGE_IP}
old IN A 203.0.113.50
_sip._tls IN SRV 100 1 443 ap
_sip._tls IN SRV 200 1 443 old
_sipfederationtls._tcp IN SRV 100 1 5061 ap
""",
    # The access edge has two addresses.
    "two-ips.test": f"""\
ap IN A {EDGE_IP}
ap IN A 203.0.113.11
_sip._tls IN SRV 100 1 443 ap
_sipfederationtls._tcp IN SRV 100 1 5061 ap
""",
}


@pytest.fixture(scope="module")
def nsd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dns_support.Nsd]:
    reason = dns_support.available()
    if reason:
        pytest.skip(reason)
    zones = {origin: dns_support.zone_text(origin, records) for origin, records in ZONES.items()}
    server = dns_support.start(tmp_path_factory.mktemp("nsd"), zones)
    try:
        yield server
    finally:
        dns_support.stop(server)


def run(nsd: dns_support.Nsd, domain: str, expected_ips: list[str] | None = None) -> dict[str, CheckLine]:
    lines = check_dns(access_edge_fqdn=f"ap.{domain}", sip_domain=domain, expected_ips=expected_ips,
                      resolver=resolver_for("127.0.0.1", nsd.port))
    assert [line.check for line in lines] == [CHECK_EDGE_A, CHECK_SRV_SIP_TLS, CHECK_SRV_FEDERATION]
    return {line.check: line for line in lines}


@against_nsd
def test_a_correct_zone_passes_every_check_with_no_fix(nsd: dns_support.Nsd) -> None:
    lines = run(nsd, "contoso.test", [EDGE_IP])
    assert all(line.ok and line.fix is None for line in lines.values()), lines
    assert lines[CHECK_EDGE_A].detail == f"ap.contoso.test resolves to {EDGE_IP} as expected"
    assert lines[CHECK_SRV_SIP_TLS].subject == "_sip._tls.contoso.test"
    assert "100 1 443 ap.contoso.test." in lines[CHECK_SRV_SIP_TLS].detail
    assert "100 1 5061 ap.contoso.test." in lines[CHECK_SRV_FEDERATION].detail


@against_nsd
def test_names_compare_without_case_or_trailing_dot(nsd: dns_support.Nsd) -> None:
    lines = check_dns(access_edge_fqdn="AP.Contoso.Test.", sip_domain="CONTOSO.test", expected_ips=None,
                      resolver=resolver_for("127.0.0.1", nsd.port))
    assert all(line.ok for line in lines), lines


@against_nsd
def test_without_expected_ips_any_address_passes_and_is_shown(nsd: dns_support.Nsd) -> None:
    line = run(nsd, "two-ips.test")[CHECK_EDGE_A]
    assert line.ok
    assert line.detail == f"ap.two-ips.test resolves to {EDGE_IP}, 203.0.113.11"


@against_nsd
def test_a_missing_a_record_fails_saying_no_record_and_gives_the_record_to_create(nsd: dns_support.Nsd) -> None:
    lines = run(nsd, "missing-a.test", [EDGE_IP])
    line = lines[CHECK_EDGE_A]
    assert not line.ok
    assert line.detail == "ap.missing-a.test exists but has no A record"
    assert line.fix == f"create `ap.missing-a.test. 3600 IN A {EDGE_IP}`"
    assert lines[CHECK_SRV_SIP_TLS].ok and lines[CHECK_SRV_FEDERATION].ok


@against_nsd
def test_an_edge_name_that_does_not_exist_is_nxdomain(nsd: dns_support.Nsd) -> None:
    line = check_dns(access_edge_fqdn="edge.contoso.test", sip_domain="contoso.test", expected_ips=None,
                     resolver=resolver_for("127.0.0.1", nsd.port))[0]
    assert not line.ok
    assert line.detail == "edge.contoso.test does not exist (NXDOMAIN)"
    assert line.fix == "create `edge.contoso.test. 3600 IN A <public IP of the access edge>`"


@against_nsd
def test_an_a_record_with_other_addresses_than_expected_fails_naming_both(nsd: dns_support.Nsd) -> None:
    line = run(nsd, "contoso.test", ["198.51.100.7"])[CHECK_EDGE_A]
    assert not line.ok
    assert line.detail == f"ap.contoso.test resolves to {EDGE_IP}; expected 198.51.100.7"
    assert line.fix == f"remove the A record(s) for {EDGE_IP}; add `ap.contoso.test. 3600 IN A 198.51.100.7`"


@against_nsd
def test_an_extra_address_beyond_the_expected_ones_fails(nsd: dns_support.Nsd) -> None:
    line = run(nsd, "two-ips.test", [EDGE_IP])[CHECK_EDGE_A]
    assert not line.ok
    assert line.fix == "remove the A record(s) for 203.0.113.11"


@against_nsd
def test_several_expected_addresses_pass_in_any_order(nsd: dns_support.Nsd) -> None:
    assert run(nsd, "two-ips.test", ["203.0.113.11", EDGE_IP])[CHECK_EDGE_A].ok


def test_expected_ips_that_are_not_ipv4_addresses_fail_without_raising(nsd: dns_support.Nsd) -> None:
    assert "not IP addresses" in run(nsd, "contoso.test", ["not-an-ip"])[CHECK_EDGE_A].detail
    assert "is IPv6" in run(nsd, "contoso.test", ["2001:db8::1"])[CHECK_EDGE_A].detail


@against_nsd
def test_an_srv_record_to_another_host_fails_with_what_was_found_and_the_record(nsd: dns_support.Nsd) -> None:
    lines = run(nsd, "wrong-target.test", [EDGE_IP])
    line = lines[CHECK_SRV_SIP_TLS]
    assert not line.ok
    assert line.detail == ("_sip._tls.wrong-target.test → 100 1 443 sip.wrong-target.test.: "
                           "target sip.wrong-target.test is not the access edge ap.wrong-target.test")
    assert line.fix == ("replace the SRV record(s) of _sip._tls.wrong-target.test with "
                        "`_sip._tls.wrong-target.test. 3600 IN SRV 100 1 443 ap.wrong-target.test.`")
    assert lines[CHECK_SRV_FEDERATION].ok and lines[CHECK_EDGE_A].ok


@against_nsd
def test_srv_records_on_the_wrong_ports_fail_each_naming_the_port(nsd: dns_support.Nsd) -> None:
    lines = run(nsd, "wrong-port.test")
    assert not lines[CHECK_SRV_SIP_TLS].ok
    assert lines[CHECK_SRV_SIP_TLS].detail.endswith("port 5061 is not 443")
    assert not lines[CHECK_SRV_FEDERATION].ok
    assert lines[CHECK_SRV_FEDERATION].detail.endswith("port 443 is not 5061")
    assert "IN SRV 100 1 5061 ap.wrong-port.test." in (lines[CHECK_SRV_FEDERATION].fix or "")


@against_nsd
def test_missing_srv_records_fail_as_nxdomain_or_no_answer_with_the_record_to_create(nsd: dns_support.Nsd) -> None:
    lines = run(nsd, "missing-srv.test")
    assert lines[CHECK_SRV_SIP_TLS].detail == "_sip._tls.missing-srv.test does not exist (NXDOMAIN)"
    assert lines[CHECK_SRV_SIP_TLS].fix == (
        "create `_sip._tls.missing-srv.test. 3600 IN SRV 100 1 443 ap.missing-srv.test.`")
    assert lines[CHECK_SRV_FEDERATION].detail == "_sipfederationtls._tcp.missing-srv.test exists but has no SRV record"
    assert not lines[CHECK_SRV_FEDERATION].ok
    assert lines[CHECK_EDGE_A].ok


@against_nsd
def test_a_stray_record_in_the_srv_set_fails_even_beside_a_right_one(nsd: dns_support.Nsd) -> None:
    line = run(nsd, "extra-srv.test")[CHECK_SRV_SIP_TLS]
    assert not line.ok
    assert "100 1 443 ap.extra-srv.test.; 200 1 443 old.extra-srv.test." in line.detail
    assert "target old.extra-srv.test is not the access edge" in line.detail


@against_nsd
def test_a_server_that_does_not_serve_the_zone_is_reported_as_refused(nsd: dns_support.Nsd) -> None:
    lines = run(nsd, "fabrikam.test")
    assert not any(line.ok for line in lines.values())
    assert f"127.0.0.1:{nsd.port} REFUSED (it does not serve this zone" in lines[CHECK_EDGE_A].detail
    assert lines[CHECK_EDGE_A].fix == "create `ap.fabrikam.test. 3600 IN A <public IP of the access edge>`"


def test_a_server_that_never_answers_is_a_timeout_not_an_exception() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:      # receives, never answers
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        started = time.monotonic()
        lines = check_dns(access_edge_fqdn="ap.contoso.test", sip_domain="contoso.test", expected_ips=None,
                          resolver=resolver_for("127.0.0.1", port, timeout=0.2, lifetime=0.4))
    assert time.monotonic() - started < 5
    assert [line.ok for line in lines] == [False, False, False]
    assert lines[0].detail == f"no answer for ap.contoso.test A: the DNS server timed out (127.0.0.1:{port})"


def test_a_port_with_nothing_listening_is_reported_unreachable() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    done = threading.Event()
    lines: list[CheckLine] = []

    def go() -> None:
        lines.extend(check_dns(access_edge_fqdn="ap.contoso.test", sip_domain="contoso.test", expected_ips=None,
                               resolver=resolver_for("127.0.0.1", port, timeout=0.3, lifetime=0.6)))
        done.set()

    threading.Thread(target=go, daemon=True).start()
    assert done.wait(10)
    assert not lines[0].ok
    # Linux reports the closed UDP port (ICMP port unreachable) at once; elsewhere it may only time out.
    assert "unreachable" in lines[0].detail or "timed out" in lines[0].detail


def test_an_invalid_name_is_a_failed_line_not_an_exception() -> None:
    long_label = "a" * 70
    lines = check_dns(access_edge_fqdn=f"ap.{long_label}.test", sip_domain=f"{long_label}.test", expected_ips=None,
                      resolver=resolver_for("127.0.0.1", 9))
    assert [line.ok for line in lines] == [False, False, False]
    assert all("is not a valid DNS name" in line.detail for line in lines)


def test_dns_server_option_parses_address_and_port() -> None:
    assert parse_dns_server("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert parse_dns_server("192.0.2.53") == ("192.0.2.53", 53)
    assert parse_dns_server("[::1]:5353") == ("::1", 5353)
    assert parse_dns_server("::1") == ("::1", 53)
    for bad in ("ns1.example.com:53", "127.0.0.1:0", "127.0.0.1:x", "[::1"):
        with pytest.raises(ValueError):
            parse_dns_server(bad)


def test_resolver_for_asks_only_the_given_server_and_defaults_to_the_system() -> None:
    resolver = resolver_for("127.0.0.1", 5353)
    assert resolver.nameservers == ["127.0.0.1"] and resolver.port == 5353
    with pytest.raises(ValueError):
        resolver_for("ns1.example.com")
    if Path("/etc/resolv.conf").exists():
        assert resolver_for().port == 53


@against_nsd
def test_the_server_answers_over_tcp_too(nsd: dns_support.Nsd) -> None:
    import dns.message
    import dns.query

    response = dns.query.tcp(dns.message.make_query("_sip._tls.contoso.test.", "SRV"), "127.0.0.1",
                             port=nsd.port, timeout=2)
    assert "443 ap.contoso.test." in response.answer[0].to_text()
