"""Single sign-on end to end against a real, certified OpenID provider (npm ``oidc-provider`` on Node, tiny
configuration in ``oidc_provider.mjs``): our server under uvicorn on 127.0.0.1, the browser played by httpx
following redirects through the provider's login and consent forms, on both backends.

The provider signs in whoever is typed at its login form (claims made from the login): a login whose
``preferred_username`` is a directory user's userName is signed in; others are refused.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest

from tenantry.app import Services, create_app
from tests.auth.conftest import (
    AppServer,
    Clock,
    Provider,
    form_of,
    make_signin,
    provider_missing,
    start_provider,
)
from tests.conftest import user_payload

pytestmark = pytest.mark.interop

CLIENT_ID, CLIENT_SECRET = "tenantry-console", "a-client-secret-for-tests-only"
OTHER_CLIENT = "another-relying-party"


@dataclasses.dataclass
class World:
    services: Services
    clock: Clock
    server: AppServer
    provider: Provider
    tenant: str
    ada: str          # directory user id of ada@example.test

    def browser(self) -> httpx.Client:
        return httpx.Client(base_url=self.server.base, follow_redirects=True, timeout=30)

    def configure(self, **changes: Any) -> None:
        settings = {"issuer": self.provider.issuer, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                    "claim": "preferred_username", "match": "userName", "display_name": "Test IdP", **changes}
        self.services.signin.oidc.configure(self.tenant, **settings)


@pytest.fixture(scope="module")
def world(backend: Services) -> Iterator[World]:
    why = provider_missing()
    if why:
        pytest.skip(why)
    clock = Clock()
    services = dataclasses.replace(backend, signin=make_signin(backend, clock))
    tenant = f"sso-{uuid.uuid4().hex[:10]}"
    backend.directory.create_tenant(tenant, "SSO")
    ada = str(backend.scim.create(tenant, "User", user_payload("ada@example.test"))["id"])
    with AppServer(create_app(backend.settings, services)) as server:
        callback = f"{server.base}/auth/oidc/{tenant}/callback"
        provider = start_provider([
            {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": [callback]},
            {"client_id": OTHER_CLIENT, "client_secret": "another-secret", "redirect_uris": [callback]}])
        try:
            world = World(services, clock, server, provider, tenant, ada)
            world.configure()
            yield world
        finally:
            provider.stop()


def through_provider(browser: httpx.Client, world: World, login: str, *, next_path: str = "/auth/session"
                     ) -> tuple[httpx.Response, str | None]:
    """Start the sign-in at our server, type ``login`` at the provider's form, consent; the last answer and the
    callback URL the provider sent the browser to."""
    page = browser.get(f"/auth/oidc/{world.tenant}/start", params={"next": next_path})
    assert page.status_code == 200 and 'name="login"' in page.text, page.text[:500]
    for fields in ({"login": login, "password": "whatever"}, {}):
        action, hidden = form_of(page.text)
        page = browser.post(urljoin(str(page.url), action), data={**hidden, **fields})
        if "/callback" in str(page.url) or not page.text.lstrip().startswith("<!DOCTYPE html>"):
            break
        if 'name="prompt" value="consent"' not in page.text:
            break
    callbacks = [str(r.url) for r in [*page.history, page] if "/callback" in str(r.url)]
    return page, (callbacks[0] if callbacks else None)


def test_a_directory_user_signs_in_with_the_provider(world: World) -> None:
    with world.browser() as browser:
        page, callback = through_provider(browser, world, "ada")
        assert callback is not None and page.status_code == 200, page.text[:500]
        me = page.json()
        assert (me["tenant"], me["user_id"], me["user_name"], me["method"]) == (
            world.tenant, world.ada, "ada@example.test", "oidc")
        assert str(page.url) == f"{world.server.base}/auth/session"
        cookie = next(c for c in page.history if "tenantry_session" in c.headers.get("set-cookie", ""))
        assert "httponly" in cookie.headers["set-cookie"].lower()


def test_replaying_the_callback_is_refused(world: World) -> None:
    with world.browser() as browser:
        page, callback = through_provider(browser, world, "ada")
        assert callback is not None and page.status_code == 200
        first = page.json()["session_id"]
        # The same URL (code, state) again, from the same browser: the pending sign-in was used.
        replay = browser.get(callback)
        assert replay.status_code == 400 and "already used" in replay.text
        # And from another browser that stole the URL: not even started there.
        with world.browser() as thief:
            stolen = thief.get(callback)
            assert stolen.status_code == 400 and "not started in this browser" in stolen.text
            assert thief.get("/auth/session").status_code == 401
        assert browser.get("/auth/session").json()["session_id"] == first


def test_a_provider_user_not_in_the_directory_is_refused(world: World) -> None:
    with world.browser() as browser:
        page, callback = through_provider(browser, world, "mallory")
        assert callback is not None
        assert page.status_code == 403 and "mallory@example.test" in page.text and "no active user" in page.text
        assert "tenantry_session" not in browser.cookies
        assert browser.get("/auth/session").status_code == 401


def test_users_are_matched_by_email_when_so_configured(world: World) -> None:
    grace = str(world.services.scim.create(world.tenant, "User", user_payload(
        "grace.hopper", emails=[{"type": "work", "value": "grace@example.test"}]))["id"])
    world.configure(claim="email", match="emails")
    try:
        with world.browser() as browser:
            page, _ = through_provider(browser, world, "grace")
            assert page.status_code == 200 and page.json()["user_id"] == grace
    finally:
        world.configure()


def test_an_expired_id_token_is_refused(world: World) -> None:
    # Our clock two hours ahead: the provider's ID token (one hour) has expired by the time we read it, while
    # the pending sign-in (started by the same clock) has not.
    world.clock.advance(hours=2)
    try:
        with world.browser() as browser:
            page, callback = through_provider(browser, world, "ada")
            assert callback is not None
            assert page.status_code == 400 and "expired" in page.text
            assert browser.get("/auth/session").status_code == 401
    finally:
        world.clock.advance(hours=-2)


def test_a_code_issued_to_another_client_is_refused(world: World) -> None:
    # Token substitution: our sign-in's state, but the provider's answer is for another relying party of the same
    # provider (a code, and so an ID token, whose audience is not us). We exchange the code as ourselves: refused.
    with world.browser() as browser:
        started = browser.get(f"/auth/oidc/{world.tenant}/start", follow_redirects=False)
        assert started.status_code == 302
        elsewhere = started.headers["location"].replace(f"client_id={CLIENT_ID}", f"client_id={OTHER_CLIENT}")
        page = browser.get(elsewhere)
        for fields in ({"login": "ada", "password": "whatever"}, {}):
            action, hidden = form_of(page.text)
            page = browser.post(urljoin(str(page.url), action), data={**hidden, **fields})
            if "/callback" in str(page.url):
                break
        assert "/callback" in str(page.url), page.text[:300]
        assert page.status_code == 400 and "token endpoint refused the code" in page.text
        assert browser.get("/auth/session").status_code == 401


def test_an_issuer_not_identical_to_the_providers_is_refused_at_discovery(world: World) -> None:
    world.configure(issuer=world.provider.issuer + "/")
    try:
        with world.browser() as browser:
            page = browser.get(f"/auth/oidc/{world.tenant}/start")
            assert page.status_code == 502 and "identical" in page.text
    finally:
        world.configure()


def test_the_login_page_offers_the_tenants_provider(world: World) -> None:
    with world.browser() as browser:
        page = browser.get("/auth/login", params={"tenant": world.tenant})
        assert "Sign in with Test IdP" in page.text
        assert f'href="/auth/oidc/{world.tenant}/start?next=' in page.text
