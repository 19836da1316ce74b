"""Issue #13's acceptance, on both backends: the seed's steps walked from the command line (application account,
partner application, certificate export and upload, the key check), then a partner deposits a conversation with
a token and the administrator finds it in Purges and in an eDiscovery search; and the same with a client no one
here wrote — Authlib's httpx OAuth client against our server on a real socket."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import RSAKey
from typer.testing import CliRunner, Result

from tenantry.app import Services, create_app
from tenantry.archive.compliance import PURGES
from tenantry.cli import app as cli_app
from tenantry.cli_kit import Cli
from tenantry.protocols.s2s.assertion import CLIENT_ASSERTION_TYPE
from tenantry.protocols.s2s.certificates import SigningCertificate, certificate_der
from tests.auth.conftest import AppServer
from tests.conftest import user_payload
from tests.protocols.s2s_support import certificate_now

SFB = "00000004-0000-0ff1-ce00-000000000000"
CONVERSATION = (b"From: alice@contoso.example\r\nTo: bob@contoso.example\r\nSubject: IM with Bob\r\n"
                b"Date: Mon, 30 Nov 2026 10:15:00 +0000\r\nMessage-ID: <conv-1@sfb.contoso.example>\r\n"
                b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
                b"[10:15] Alice: the quokka contract is signed\r\n[10:16] Bob: great\r\n")


def run(backend: Services, *args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(cli_app, list(args), obj=Cli(backend))
    assert result.exit_code == code, result.output
    return result


def _seed_steps(backend: Services, tenant: str, tmp: Path, partner_signing: SigningCertificate) -> dict[str, Any]:
    """Seed 002, steps 2–6, each as the command the seed's cmdlet maps to (docs/trust.md)."""
    t = ("--tenant", tenant)
    domain = f"{tenant.lower()}.contoso.example"
    account = f"sfbonline-applicationaccount@{domain}"
    run(backend, "directory", "domain-add", domain, "--verified", *t)
    # 2. New-MailUser; Set-MailUser -HiddenFromAddressListsEnabled; New-ManagementRoleAssignment ×2
    run(backend, "directory", "mail-user", "new", "SfBOnline-ApplicationAccount", "--address", account, *t)
    run(backend, "directory", "mail-user", "set", account, "--hidden", *t)
    for role in ("UserApplication", "ArchiveApplication"):
        run(backend, "directory", "role-assignment", "new", "--role", role, "--user", account, *t)
    # 3. New-PartnerApplication -Name SfBOnline -ApplicationIdentifier … -Enabled $True -LinkedAccount
    partner = json.loads(run(backend, "partner-app", "new", "SfBOnline", "--app-id", SFB, "--linked-account",
                             account, "--json", *t).stdout)
    # 4. ExportAuthCert.ps1: the current certificate as OAuthCert.cer (DER)
    config = json.loads(run(backend, "auth-config", "show", "--json", *t).stdout)
    cer = tmp / "OAuthCert.cer"
    run(backend, "auth-cert", "export", str(cer), *t)
    # 5. UploadAuthCert.ps1: our certificate on the partner's service principal; and the partner's own signing
    # certificate, which is what verifies its tokens here (docs/trust.md, "What a partner must do").
    run(backend, "service-principal", "credential", "add", "SfBOnline", "--value-file", str(cer), *t)
    partner_cer = tmp / "sfb-signing.cer"
    partner_cer.write_bytes(certificate_der(partner_signing.certificate))
    run(backend, "service-principal", "credential", "add", "SfBOnline", "--value-file", str(partner_cer), *t)
    # 6. Get-MgServicePrincipal: the keys and their dates; the check passes.
    shown = json.loads(run(backend, "service-principal", "show", "SfBOnline", "--json", *t).stdout)
    assert [(k["holder"], k["thumbprint"]) for k in shown["keys"]] == [
        ("ours", config["current_certificate_thumbprint"]), ("partner", partner_signing.descriptor.sha1_hex)]
    assert json.loads(run(backend, "trust", "check", "--json", *t).stdout)["ok"] is True
    user = f"alice@{domain}"
    user_id = backend.scim.create(tenant, "User", user_payload(user, emails=[
        {"type": "work", "value": user, "primary": True}]))["id"]
    return {"realm": config["realm"], "partner": partner, "user": user, "user_id": user_id, "account": account}


def _found_by_the_administrator(backend: Services, tenant: str, user: str) -> None:
    """The deposit, as the administrator finds it from the CLI: in Purges, and by an eDiscovery case search (not
    by a content search that leaves Recoverable Items out)."""
    t = ("--tenant", tenant)
    items = json.loads(run(backend, "archive", "items", user, "--folder", PURGES, "--json", *t).stdout)
    assert [i["subject"] for i in items] == ["IM with Bob"]
    run(backend, "case", "create", "Contract review", *t)
    run(backend, "case", "custodian", "Contract review", user, *t)
    found = json.loads(run(backend, "case", "search", "Contract review", "quokka", "--json", *t).stdout)
    assert found["count"] == 1
    assert json.loads(run(backend, "case", "search", "Contract review", "quokka", "--no-purges", "--json",
                          *t).stdout)["count"] == 0


def test_the_seeds_steps_from_the_cli_then_a_deposit_found_in_purges_and_by_ediscovery(
        app_client: TestClient, backend: Services, tenant: str, tmp_path: Path) -> None:
    signing = certificate_now("sfb-e2e")
    seed = _seed_steps(backend, tenant, tmp_path, signing)
    # The hidden application account is in no listing, yet it is the partner's linked account.
    listed = json.loads(run(backend, "directory", "users", "--json", "--tenant", tenant).stdout)
    assert seed["account"] not in [u["userName"] for u in listed]
    token_url = f"http://testserver/trust/{seed['realm']}/token"
    now = int(time.time())
    assertion = jwt.encode({"alg": "RS256", "kid": signing.descriptor.x5t},
                           {"iss": SFB, "sub": SFB, "aud": token_url, "iat": now, "exp": now + 300,
                            "jti": str(uuid.uuid4())}, RSAKey.import_key(signing.private_key))
    r = app_client.post(f"/trust/{seed['realm']}/token", data={
        "grant_type": "client_credentials", "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": assertion})
    assert r.status_code == 200, r.text
    r = app_client.post(f"/trust/{seed['realm']}/mailboxes/{seed['user']}/purges", content=CONVERSATION,
                        headers={"Authorization": f"Bearer {r.json()['access_token']}",
                                 "Content-Type": "message/rfc822"})
    assert r.status_code == 201, r.text
    _found_by_the_administrator(backend, tenant, seed["user"])
    audit = json.loads(run(backend, "audit", "--action", "partner.call", "--json", "--tenant", tenant).stdout)
    assert [(e["actor"].split(" (")[0], e["detail"]["outcome"]) for e in audit] == [("SfBOnline", "stored")]


@pytest.mark.interop
def test_authlib_httpx_client_gets_a_token_with_private_key_jwt_and_deposits(
        backend: Services, tenant: str, tmp_path: Path) -> None:
    """Authlib's own OAuth 2 client, unchanged: client credentials, ``private_key_jwt`` client authentication
    (its PrivateKeyJWT signs the assertion; no kid in the header, so every key of the partner is tried), then a
    call with the token — over a real socket to our server under uvicorn."""
    signing = certificate_now("sfb-authlib")
    seed = _seed_steps(backend, tenant, tmp_path, signing)
    pem = signing.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption())
    with AppServer(create_app(backend.settings, backend)) as server:
        token_url = f"{server.base}/trust/{seed['realm']}/token"
        metadata = httpx.get(f"{server.base}/trust/{seed['realm']}/.well-known/oauth-authorization-server").json()
        assert metadata["token_endpoint"] == token_url
        with OAuth2Client(client_id=SFB, client_secret=pem.decode(),
                          token_endpoint_auth_method=PrivateKeyJWT(token_url)) as client:
            token = client.fetch_token(token_url, grant_type="client_credentials")
            assert token["token_type"] == "Bearer" and token["expires_in"] == 600
            r = client.post(f"{server.base}/trust/{seed['realm']}/mailboxes/{seed['user']}/purges",
                            content=CONVERSATION, headers={"Content-Type": "message/rfc822"})
            assert r.status_code == 201, r.text
            # The same assertion twice is a replay: Authlib makes a fresh one (new jti) per request, so this works.
            assert client.fetch_token(token_url, grant_type="client_credentials")["access_token"]
    _found_by_the_administrator(backend, tenant, seed["user"])
