"""A tenant's single sign-on, configured over the admin API (``/api/v1/tenants/{t}/sign-in/oidc``) and the CLI
(``tenantry sign-in oidc``), on both backends: the client secret is sealed and never shown."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from tenantry.app import create_app
from tenantry.auth.models import OidcProvider
from tenantry.cli import app as cli_app
from tenantry.cli_kit import Cli
from tests.auth.conftest import Console
from tests.conftest import admin_secret

SECRET = "client-secret-value-9f8e7d"
BODY = {"issuer": "https://login.example.com/tenant-1/v2.0", "client_id": "console-client", "client_secret": SECRET,
        "claim": "preferred_username", "match": "userName", "display_name": "Contoso SSO"}


@pytest.fixture()
def api(console: Console) -> tuple[TestClient, dict[str, str], str]:
    token = admin_secret(console.services, console.tenant, "sso")
    return console.client, {"Authorization": f"Bearer {token}"}, f"/api/v1/tenants/{console.tenant}/sign-in/oidc"


class TestAdminApi:
    def test_the_configuration_is_saved_and_shown_without_its_secret(self, api: Any, console: Console) -> None:
        client, headers, url = api
        assert client.get(url, headers=headers).status_code == 404
        r = client.put(url, json=BODY, headers=headers)
        assert r.status_code == 200, r.text
        shown = client.get(url, headers=headers).json()
        assert SECRET not in r.text and SECRET not in str(shown)
        assert shown["client_secret_set"] is True and shown["scopes"] == ["openid", "profile", "email"]
        assert (shown["issuer"], shown["client_id"], shown["claim"], shown["match"], shown["display_name"]) == (
            BODY["issuer"], "console-client", "preferred_username", "userName", "Contoso SSO")
        assert shown["redirect_uri"] == f"http://testserver/auth/oidc/{console.tenant}/callback"

    def test_the_client_secret_is_stored_sealed(self, api: Any, console: Console) -> None:
        client, headers, url = api
        client.put(url, json=BODY, headers=headers)
        with console.services.db.session() as session:
            stored = session.scalar(select(OidcProvider.client_secret).where(
                OidcProvider.tenant_id == console.tenant))
        assert stored and SECRET not in stored and console.services.secrets.open(stored) == SECRET

    def test_a_change_without_a_secret_keeps_the_stored_one(self, api: Any, console: Console) -> None:
        client, headers, url = api
        client.put(url, json=BODY, headers=headers)
        r = client.put(url, json={**BODY, "client_secret": None, "claim": "upn", "scopes": ["profile"]},
                       headers=headers)
        assert r.status_code == 200 and r.json()["claim"] == "upn" and r.json()["scopes"] == ["openid", "profile"]
        with console.services.db.session() as session:
            stored = session.scalar(select(OidcProvider.client_secret).where(
                OidcProvider.tenant_id == console.tenant))
        assert console.services.secrets.open(str(stored)) == SECRET

    @pytest.mark.parametrize(("change", "words"), [
        ({"client_secret": None}, "client secret is required"),
        ({"issuer": "http://idp.example.com"}, "https"),
        ({"issuer": "https://idp.example.com/?tenant=x"}, "query"),
        ({"issuer": "https://169.254.169.254/"}, "metadata"),
        ({"claim": "preferred username"}, "claim"),
        ({"match": "displayName"}, "match"),
        ({"scopes": ['bad"scope']}, "scope"),
    ])
    def test_a_wrong_configuration_is_refused_with_its_reason(self, api: Any, change: dict[str, Any],
                                                               words: str) -> None:
        client, headers, url = api
        r = client.put(url, json={**BODY, **change}, headers=headers)
        assert r.status_code in (400, 422) and words in r.text.lower(), r.text
        assert client.get(url, headers=headers).status_code == 404

    def test_the_redirect_uri_is_under_the_public_url_when_one_is_set(self, console: Console) -> None:
        from tests.auth.conftest import make_signin

        signin = make_signin(console.services, console.clock, public_url="https://tenantry.contoso.com/")
        app = create_app(console.services.settings, dataclasses.replace(console.services, signin=signin))
        token = admin_secret(console.services, console.tenant, "sso")
        with TestClient(app) as client:
            r = client.put(f"/api/v1/tenants/{console.tenant}/sign-in/oidc", json=BODY,
                           headers={"Authorization": f"Bearer {token}", "Host": "attacker.example"})
        assert r.json()["redirect_uri"] == f"https://tenantry.contoso.com/auth/oidc/{console.tenant}/callback"

    def test_removing_single_sign_on_ends_the_sessions_it_signed_in(self, api: Any, console: Console) -> None:
        client, headers, url = api
        client.put(url, json=BODY, headers=headers)
        _cookie, by_oidc = console.signin.sessions.create(console.tenant, console.admin, "oidc")
        _cookie, by_password = console.signin.sessions.create(console.tenant, console.admin, "password")
        assert client.delete(url, headers=headers).status_code == 204
        assert client.delete(url, headers=headers).status_code == 404
        assert [s.id for s in console.signin.sessions.listed(console.tenant)] == [by_password.session_id]
        assert by_oidc.session_id not in [s.id for s in console.signin.sessions.listed(console.tenant)]

    def test_the_login_page_offers_single_sign_on_only_when_configured(self, api: Any, console: Console) -> None:
        client, headers, url = api
        assert "Sign in with" not in client.get("/auth/login", params={"tenant": console.tenant}).text
        client.put(url, json=BODY, headers=headers)
        assert "Sign in with Contoso SSO" in client.get("/auth/login", params={"tenant": console.tenant}).text

    def test_starting_single_sign_on_of_a_tenant_without_it_is_404(self, console: Console) -> None:
        r = console.client.get(f"/auth/oidc/{console.tenant}/start", follow_redirects=False)
        assert r.status_code == 404 and "no single sign-on" in r.text


def run(console: Console, *args: str, input: str | None = None, ok: bool = True) -> str:
    result = CliRunner().invoke(cli_app, list(args), obj=Cli(console.services), input=input)
    assert (result.exit_code == 0) is ok, result.output
    return result.output


class TestCli:
    def test_set_show_and_remove(self, console: Console) -> None:
        t = console.tenant
        out = run(console, "sign-in", "oidc", "set", "--tenant", t, "--issuer", BODY["issuer"], "--client-id",
                  "console-client", "--client-secret-stdin", "--claim", "upn", input=SECRET + "\n")
        assert f"/auth/oidc/{t}/callback" in out
        shown = run(console, "sign-in", "oidc", "show", "--tenant", t, "--json")
        assert '"claim": "upn"' in shown and '"client_secret_set": true' in shown and SECRET not in shown
        run(console, "sign-in", "oidc", "set", "--tenant", t, "--name", "Okta")      # a change keeps the rest
        assert '"display_name": "Okta"' in run(console, "sign-in", "oidc", "show", "--tenant", t, "--json")
        assert console.signin.oidc.config(t).claim == "upn"  # type: ignore[union-attr]
        run(console, "sign-in", "oidc", "remove", "--tenant", t)
        assert "no single sign-on" in run(console, "sign-in", "oidc", "show", "--tenant", t, ok=False)

    def test_a_new_configuration_needs_issuer_and_client(self, console: Console) -> None:
        out = run(console, "sign-in", "oidc", "set", "--tenant", console.tenant, "--issuer", BODY["issuer"],
                  ok=False)
        assert "needs --issuer, --client-id" in out
