"""The tenant root CA and gateway certificates (seed 001 steps 3–4), and ``voice check --dns / --tls`` wired to
the configuration: from the CLI and the API, on both backends; DNS against a real nsd."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from tenantry.app import Services
from tenantry.cli import app
from tenantry.cli_kit import Cli
from tenantry.voice import tlscheck
from tests.conftest import admin_secret
from tests.voice import dns_support

GW = "gw1.sea.contoso.example"


def run(backend: Services, *args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(app, list(args), obj=Cli(backend))
    assert result.exit_code == code, result.output
    return result


def _site(backend: Services, tenant: str) -> None:
    backend.directory.add_domain(tenant, "contoso.example", verified=True)
    backend.voice.create_site(tenant, name="Seattle", edge_fqdn="ap.contoso.example")
    backend.voice.create_mediation_server(tenant, fqdn="ms1.sea.contoso.example", site="Seattle", ip="10.0.1.11")
    backend.voice.create_gateway(tenant, name=GW, site="Seattle")
    backend.voice.set_federation(tenant, shared_sip_address_space=True)   # the rest of the configuration passes


def _lines(result: Result) -> dict[str, bool]:
    return {line["check"]: line["ok"] for line in json.loads(result.stdout)["lines"]}


def test_ca_issues_a_gateway_certificate_that_passes_the_tls_check(backend: Services, tenant: str,
                                                                   tmp_path: Path) -> None:
    _site(backend, tenant)
    t = ("--tenant", tenant)
    # Without a root CA the TLS check says what to do.
    lines = _lines(run(backend, "voice", "check", "--tls", "--json", *t, code=1))
    assert lines["tls-root-ca"] is False
    run(backend, "voice", "ca", "new", *t)
    assert "BEGIN CERTIFICATE" in run(backend, "voice", "ca", "show", "--pem", *t).stdout
    lines = _lines(run(backend, "voice", "check", "--tls", "--json", *t, code=1))
    assert lines["tls-gateway-certificate"] is False                     # nothing recorded yet
    run(backend, "voice", "ca", "issue", GW, "--cert-out", str(tmp_path / "gw.pem"), "--key-out",
        str(tmp_path / "gw.key"), *t)
    cert = x509.load_pem_x509_certificate((tmp_path / "gw.pem").read_bytes())
    assert cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName) == [GW]
    assert (tmp_path / "gw.key").stat().st_mode & 0o077 == 0             # the key: its owner's only
    lines = _lines(run(backend, "voice", "check", "--tls", "--json", *t))
    assert all(lines[c] for c in ("tls-gateway-name", "tls-gateway-chain", "tls-gateway-dates", "tls-gateway-usage"))
    # Issuing over an existing file is refused, and nothing is written.
    run(backend, "voice", "ca", "issue", GW, "--cert-out", str(tmp_path / "gw.pem"), "--key-out",
        str(tmp_path / "other.key"), *t, code=1)
    assert not (tmp_path / "other.key").exists()


def test_a_certificate_from_another_ca_fails_the_chain_check(backend: Services, tenant: str, tmp_path: Path) -> None:
    _site(backend, tenant)
    t = ("--tenant", tenant)
    run(backend, "voice", "ca", "new", *t)
    other_cert, other_key = tlscheck.new_root_ca("Someone Else", days=30)
    foreign, _ = tlscheck.issue_gateway_certificate(other_cert, other_key, GW, days=30)
    (tmp_path / "foreign.pem").write_bytes(foreign)
    run(backend, "voice", "gateway", "certificate", GW, "--file", str(tmp_path / "foreign.pem"), *t)
    lines = _lines(run(backend, "voice", "check", "--tls", "--json", *t, code=1))
    assert lines["tls-gateway-chain"] is False and lines["tls-gateway-name"] is True


def test_replacing_or_importing_a_root_ca(backend: Services, tenant: str, tmp_path: Path) -> None:
    _site(backend, tenant)
    t = ("--tenant", tenant)
    run(backend, "voice", "ca", "new", *t)
    assert "replacing it breaks" in run(backend, "voice", "ca", "new", *t, code=1).output
    cert, key = tlscheck.new_root_ca("Contoso Voice CA", days=365)
    (tmp_path / "ca.pem").write_bytes(cert)
    (tmp_path / "ca.key").write_bytes(key)
    made = json.loads(run(backend, "voice", "ca", "import", "--cert", str(tmp_path / "ca.pem"), "--replace",
                          "--json", *t).stdout)
    assert made["can_issue"] is False and made["subject"] == "CN=Contoso Voice CA"
    assert "cannot issue" in run(backend, "voice", "ca", "issue", GW, "--cert-out", str(tmp_path / "c"),
                                 "--key-out", str(tmp_path / "k"), *t, code=1).output
    other, _ = tlscheck.new_root_ca("Other", days=365)
    (tmp_path / "other.pem").write_bytes(other)
    refused = run(backend, "voice", "ca", "import", "--cert", str(tmp_path / "other.pem"), "--key",
                  str(tmp_path / "ca.key"), "--replace", *t, code=1)
    assert "cannot issue with this CA" in refused.output
    leaf, _ = tlscheck.issue_gateway_certificate(cert, key, GW, days=30)
    (tmp_path / "leaf.pem").write_bytes(leaf)
    assert "not a CA certificate" in run(backend, "voice", "ca", "import", "--cert", str(tmp_path / "leaf.pem"),
                                         "--replace", *t, code=1).output


def test_root_ca_and_gateway_certificates_over_the_api(app_client: TestClient, backend: Services,
                                                       tenant: str) -> None:
    _site(backend, tenant)
    h = {"Authorization": f"Bearer {admin_secret(backend, tenant, 'voice', roles=['Voice Administrator'])}"}
    api = f"/api/v1/tenants/{tenant}/voice"
    assert app_client.get(api + "/root-ca", headers=h).status_code == 404
    r = app_client.post(api + "/root-ca", json={"days": 365}, headers=h)
    assert r.status_code == 201 and r.json()["can_issue"] is True
    r = app_client.post(api + f"/gateways/{GW}/certificate", json={}, headers=h)
    assert r.status_code == 201 and "PRIVATE KEY" in r.json()["private_key_pem"]
    issued = r.json()["certificate_pem"]
    assert app_client.get(api + "/check", params={"tls": "true"}, headers=h).json()["ok"] is True
    r = app_client.put(api + f"/gateways/{GW}/certificate", json={"certificate_pem": "not a certificate"},
                       headers=h)
    assert r.status_code == 400
    assert app_client.put(api + "/gateways/nowhere.example/certificate", json={"certificate_pem": issued},
                          headers=h).status_code == 404
    r = app_client.put(api + f"/gateways/{GW}/certificate", json={"certificate_pem": issued}, headers=h)
    assert r.status_code == 200 and r.json() == {"gateway": GW}


@pytest.fixture(scope="module")
def nsd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dns_support.Nsd]:
    why = dns_support.available()
    if why:
        pytest.skip(why)
    zones = {"contoso.example": ("ap IN A 203.0.113.10\n_sip._tls IN SRV 100 1 443 ap\n"
                                 "_sipfederationtls._tcp IN SRV 100 1 5061 ap\n"),
             "fabrikam.example": 'ap IN TXT "no address yet"\n'}
    server = dns_support.start(tmp_path_factory.mktemp("nsd"),
                               {origin: dns_support.zone_text(origin, records) for origin, records in zones.items()})
    yield server
    dns_support.stop(server)


@pytest.mark.interop
def test_voice_check_dns_server_asks_the_zones_own_server(backend: Services, tenant: str,
                                                          nsd: dns_support.Nsd) -> None:
    _site(backend, tenant)
    t = ("--tenant", tenant, "--dns-server", f"127.0.0.1:{nsd.port}", "--json")
    lines = _lines(run(backend, "voice", "check", *t))
    assert lines == {**lines, "dns-edge-a": True, "dns-srv-sip-tls": True, "dns-srv-sipfederationtls": True}
    # A second site on a domain whose records are wrong: its edge has no A record in the zone.
    backend.voice.create_site(tenant, name="Berlin", edge_fqdn="ap.fabrikam.example")
    out = json.loads(run(backend, "voice", "check", *t, code=1).stdout)["lines"]
    edge_a = {line["subject"]: line["ok"] for line in out if line["check"] == "dns-edge-a"}
    assert edge_a == {"ap.contoso.example": True, "ap.fabrikam.example": False}
    assert run(backend, "voice", "check", "--tenant", tenant, "--dns-server", "not a server", code=1).output


def test_dns_check_without_a_verified_domain_says_so(backend: Services, tenant: str) -> None:
    backend.voice.create_site(tenant, name="Seattle", edge_fqdn="ap.contoso.example")
    lines = _lines(run(backend, "voice", "check", "--tenant", tenant, "--dns-server", "127.0.0.1:9", "--json",
                       code=1))
    assert lines["dns-sip-domain"] is False
