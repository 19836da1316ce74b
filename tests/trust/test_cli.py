"""The seed's steps from the command line, on both backends: partner application → export the certificate → add
its base64 DER to the partner's service principal → check; rotation; refusals with a message and exit 1."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from typer.testing import CliRunner, Result

from tenantry.app import Services
from tenantry.cli import app
from tenantry.cli_kit import Cli
from tests.conftest import user_payload

SFB = "00000004-0000-0ff1-ce00-000000000000"


def run(backend: Services, *args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(app, list(args), obj=Cli(backend))
    assert result.exit_code == code, result.output
    return result


def _partner(backend: Services, tenant: str) -> str:
    account = backend.scim.create(tenant, "User", user_payload("sfbonline-applicationaccount@contoso.example"))
    out = run(backend, "partner-app", "new", "SfBOnline", "--app-id", SFB, "--linked-account",
              "sfbonline-applicationaccount@contoso.example", "--tenant", tenant, "--json").stdout
    made = json.loads(out)
    assert made["linked_account"] == account["id"] and made["enabled"] is True
    return "SfBOnline"


def test_the_seeds_steps_end_with_a_check_that_passes(backend: Services, tenant: str, tmp_path: Path) -> None:
    partner = _partner(backend, tenant)
    cer = tmp_path / "OAuthCert.cer"
    run(backend, "auth-cert", "export", str(cer), "--tenant", tenant)
    cert = x509.load_der_x509_certificate(cer.read_bytes())
    cred_value = tmp_path / "credValue.txt"     # [System.Convert]::ToBase64String($cer.GetRawCertData())
    cred_value.write_text(base64.b64encode(cer.read_bytes()).decode())
    run(backend, "service-principal", "credential", "add", partner, "--value-file", str(cred_value),
        "--tenant", tenant)
    shown = json.loads(run(backend, "service-principal", "show", SFB, "--tenant", tenant, "--json").stdout)
    assert [(k["type"], k["usage"]) for k in shown["keys"]] == [("AsymmetricX509Cert", "Verify")]
    assert shown["keys"][0]["start_date"].startswith(cert.not_valid_before_utc.isoformat()[:19])
    out = run(backend, "trust", "check", "--tenant", tenant).stdout
    assert "SfBOnline" in out and "OK" in out
    assert "SfBOnline" in run(backend, "partner-app", "list", "--tenant", tenant).stdout


def test_check_reports_mismatched_dates_and_exits_1(backend: Services, tenant: str, tmp_path: Path) -> None:
    partner = _partner(backend, tenant)
    cer = tmp_path / "OAuthCert.cer"
    run(backend, "auth-cert", "export", str(cer), "--tenant", tenant)
    run(backend, "service-principal", "credential", "add", partner, "--value-file", str(cer),
        "--start", "2026-01-01", "--end", "2027-01-01", "--tenant", tenant)
    result = run(backend, "trust", "check", "--tenant", tenant, code=1)
    assert "DATES DIFFER" in result.stdout and "what to do" in result.stdout
    checked = json.loads(run(backend, "trust", "check", "--tenant", tenant, "--json", code=1).stdout)
    assert checked["partners"][0]["key_found"] is True and checked["partners"][0]["dates_match"] is False


def test_check_without_a_key_names_the_export_and_add_commands(backend: Services, tenant: str) -> None:
    _partner(backend, tenant)
    out = run(backend, "trust", "check", "--tenant", tenant, code=1).stdout
    assert "NO KEY" in out and "auth-cert export" in out and "credential add" in out


def test_a_file_that_is_no_certificate_is_refused_with_a_message(backend: Services, tenant: str,
                                                                 tmp_path: Path) -> None:
    partner = _partner(backend, tenant)
    bogus = tmp_path / "notes.txt"
    bogus.write_text("this is not a certificate")
    result = run(backend, "service-principal", "credential", "add", partner, "--value-file", str(bogus),
                 "--tenant", tenant, code=1)
    assert "certificate" in result.output
    assert json.loads(run(backend, "service-principal", "show", partner, "--tenant", tenant,
                          "--json").stdout)["keys"] == []


def test_rotation_from_the_command_line(backend: Services, tenant: str, tmp_path: Path) -> None:
    first = json.loads(run(backend, "auth-config", "show", "--tenant", tenant, "--json").stdout)
    effective = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    published = json.loads(run(backend, "auth-cert", "rotate", "publish-next", "--effective", effective,
                               "--tenant", tenant, "--json").stdout)
    assert published["next_certificate_thumbprint"] and published["next_certificate_effective_date"].startswith(
        effective)
    refused = run(backend, "auth-cert", "rotate", "switch", "--tenant", tenant, code=1)
    assert "effective from" in refused.output
    switched = json.loads(run(backend, "auth-cert", "rotate", "switch", "--force", "--tenant", tenant,
                              "--json").stdout)
    assert switched["current_certificate_thumbprint"] == published["next_certificate_thumbprint"]
    assert switched["previous_certificate_thumbprint"] == first["current_certificate_thumbprint"]
    out = run(backend, "auth-cert", "rotate", "retire-previous", "--tenant", tenant).stdout
    assert "PreviousCertificateThumbprint" not in out and "CurrentCertificateThumbprint" in out


def test_a_disabled_partner_is_shown_disabled(backend: Services, tenant: str) -> None:
    _partner(backend, tenant)
    run(backend, "partner-app", "disable", "SfBOnline", "--tenant", tenant)
    assert json.loads(run(backend, "partner-app", "list", "--tenant", tenant, "--json").stdout)[0]["enabled"] is False
    run(backend, "partner-app", "enable", "SfBOnline", "--tenant", tenant)
    assert json.loads(run(backend, "partner-app", "list", "--tenant", tenant, "--json").stdout)[0]["enabled"] is True
