"""Console sessions on both backends: the cookie's flags and signature, the idle and absolute timeouts (an
injected clock), sign-out with and without the CSRF token, the login form's double-submit token, ``next``."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request

from tenantry.app import create_app
from tenantry.auth.pages import safe_next
from tenantry.auth.service import require_csrf
from tenantry.core.errors import Forbidden
from tests.auth.conftest import ADMIN, PASSWORD, Console, make_signin, set_cookie_headers, sign_in
from tests.conftest import admin_secret


@pytest.fixture()
def signed_in(console: Console) -> Console:
    console.signin.set_password(console.tenant, ADMIN, PASSWORD)
    assert sign_in(console.client, console.tenant, ADMIN, PASSWORD).status_code == 303
    return console


def _me(console: Console) -> int:
    return int(console.client.get("/auth/session").status_code)


def _use(console: Console, cookie: str) -> None:
    """Make the browser send this session cookie (in place of the one the server set)."""
    console.client.cookies.delete("tenantry_session")
    console.client.cookies.set("tenantry_session", cookie)


class TestSessionCookie:
    def test_the_session_cookie_is_httponly_samesite_lax_path_root(self, console: Console) -> None:
        console.signin.set_password(console.tenant, ADMIN, PASSWORD)
        r = sign_in(console.client, console.tenant, ADMIN, PASSWORD)
        [cookie] = set_cookie_headers(r, "tenantry_session")
        flags = [f.strip().lower() for f in cookie.split(";")[1:]]
        assert "httponly" in flags and "samesite=lax" in flags and "path=/" in flags
        assert "secure" not in flags           # TENANTRY_COOKIE_SECURE=false, as the tests run plain http

    def test_the_session_cookie_is_secure_by_default(self, console: Console) -> None:
        secure = make_signin(console.services, console.clock, cookie_secure=True)
        app = create_app(console.services.settings, dataclasses.replace(console.services, signin=secure))
        with TestClient(app, base_url="https://testserver") as client:
            secure.set_password(console.tenant, ADMIN, PASSWORD)
            r = sign_in(client, console.tenant, ADMIN, PASSWORD)
            [cookie] = set_cookie_headers(r, "tenantry_session")
            assert "secure" in [f.strip().lower() for f in cookie.split(";")]
            client.cookies.clear()
            [csrf] = set_cookie_headers(client.get("/auth/login"), "tenantry_csrf")
            assert "secure" in [f.strip().lower() for f in csrf.split(";")]

    def test_the_database_holds_a_hash_of_the_cookie_not_the_cookie(self, signed_in: Console) -> None:
        cookie = signed_in.client.cookies["tenantry_session"]
        [listed] = [s for s in signed_in.signin.sessions.listed(signed_in.tenant)]
        secret = cookie.partition(".")[0]
        assert secret not in listed.id and len(listed.id) == 64
        assert signed_in.client.get("/auth/session").json()["session_id"] == listed.id

    def test_a_tampered_cookie_is_not_signed_in(self, signed_in: Console) -> None:
        cookie = signed_in.client.cookies["tenantry_session"]
        secret, _, signature = cookie.partition(".")
        flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
        for forged in (f"{secret}.{flipped}", f"{secret[:-1]}x.{signature}", secret, "", "a.b.c", "x" * 4000):
            _use(signed_in, forged)
            assert _me(signed_in) == 401, forged
        _use(signed_in, cookie)
        assert _me(signed_in) == 200

    def test_a_cookie_signed_by_another_installation_is_not_signed_in(self, signed_in: Console) -> None:
        from cryptography.fernet import Fernet

        from tenantry.auth.cookies import Signer
        from tenantry.core.secrets import SecretBox

        other = Signer(SecretBox(Fernet.generate_key()).derive("console-session"), "session")
        secret = signed_in.client.cookies["tenantry_session"].partition(".")[0]
        _use(signed_in, other.sign(secret))
        assert _me(signed_in) == 401


class TestExpiry:
    def test_a_session_idle_for_30_minutes_is_signed_out(self, signed_in: Console) -> None:
        signed_in.clock.advance(minutes=29)
        assert _me(signed_in) == 200           # used: the idle time starts again
        signed_in.clock.advance(minutes=29)
        assert _me(signed_in) == 200
        signed_in.clock.advance(minutes=30)
        assert _me(signed_in) == 401

    def test_a_session_ends_12_hours_after_sign_in_however_busy(self, signed_in: Console) -> None:
        for _ in range(12 * 3 - 1):
            signed_in.clock.advance(minutes=20)
            assert _me(signed_in) == 200
        signed_in.clock.advance(minutes=20)
        assert _me(signed_in) == 401

    def test_session_user_says_when_the_session_ends(self, signed_in: Console) -> None:
        me = signed_in.client.get("/auth/session").json()
        assert me["expires_at"] == (signed_in.clock() + signed_in.signin.settings.idle).isoformat()

    def test_the_sweep_deletes_sessions_ended_a_day_ago_and_is_idempotent(self, signed_in: Console) -> None:
        signed_in.clock.advance(days=2)
        assert signed_in.signin.sweep()["sessions"] >= 1
        assert signed_in.signin.sweep()["sessions"] == 0
        assert signed_in.signin.sessions.listed(signed_in.tenant, include_ended=True) == []

    def test_a_deactivated_user_is_signed_out_at_once(self, signed_in: Console) -> None:
        signed_in.services.scim.patch(signed_in.tenant, "User", signed_in.admin, {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": False}]})
        assert _me(signed_in) == 401


class TestSignOut:
    def test_sign_out_without_the_csrf_token_is_403_and_the_session_stays(self, signed_in: Console) -> None:
        r = signed_in.client.post("/auth/logout", follow_redirects=False)
        assert r.status_code == 403 and "CSRF" in r.text
        r = signed_in.client.post("/auth/logout", data={"csrf_token": "not-the-token"}, follow_redirects=False)
        assert r.status_code == 403
        r = signed_in.client.post("/auth/logout", headers={"X-CSRF-Token": "not-the-token"}, follow_redirects=False)
        assert r.status_code == 403
        assert _me(signed_in) == 200

    def test_sign_out_with_the_csrf_token_revokes_the_session(self, signed_in: Console) -> None:
        cookie = signed_in.client.cookies["tenantry_session"]
        token = signed_in.client.get("/auth/session").json()["csrf_token"]
        r = signed_in.client.post("/auth/logout", data={"csrf_token": token}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/auth/login"
        assert set_cookie_headers(r, "tenantry_session")      # cleared in the browser …
        _use(signed_in, cookie)
        assert _me(signed_in) == 401                           # … and ended on the server: the old cookie is dead

    def test_sign_out_takes_the_token_as_a_header_too(self, signed_in: Console) -> None:
        token = signed_in.client.get("/auth/session").json()["csrf_token"]
        r = signed_in.client.post("/auth/logout", headers={"X-CSRF-Token": token}, follow_redirects=False)
        assert r.status_code == 303
        assert _me(signed_in) == 401

    def test_signing_in_again_ends_the_browsers_earlier_session(self, signed_in: Console) -> None:
        first = signed_in.client.get("/auth/session").json()["session_id"]
        assert sign_in(signed_in.client, signed_in.tenant, ADMIN, PASSWORD).status_code == 303
        second = signed_in.client.get("/auth/session").json()["session_id"]
        assert first != second
        assert [s.id for s in signed_in.signin.sessions.listed(signed_in.tenant)] == [second]


class TestRequireCsrf:
    """``require_csrf``: the check the console's guard runs on every unsafe request made with the cookie."""

    @staticmethod
    def _request(method: str, headers: dict[str, str], body: bytes = b"") -> Request:
        scope = {"type": "http", "method": method, "path": "/console/x", "query_string": b"",
                 "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
        sent = False

        async def receive() -> dict[str, object]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        return Request(scope, receive)

    def test_unsafe_methods_need_the_token_and_safe_ones_do_not(self, signed_in: Console) -> None:
        session = signed_in.signin.sessions.listed(signed_in.tenant)[0]
        user = signed_in.signin.sessions.find(signed_in.client.cookies["tenantry_session"])
        assert user is not None and user.session_id == session.id
        form = {"content-type": "application/x-www-form-urlencoded"}
        asyncio.run(require_csrf(self._request("GET", {}), user))
        asyncio.run(require_csrf(self._request("POST", {"X-CSRF-Token": user.csrf_token}), user))
        asyncio.run(require_csrf(self._request("DELETE", form, f"csrf_token={user.csrf_token}".encode()), user))
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            with pytest.raises(Forbidden):
                asyncio.run(require_csrf(self._request(method, {}), user))
            with pytest.raises(Forbidden):
                asyncio.run(require_csrf(self._request(method, form, b"csrf_token=guess"), user))


class TestLoginForm:
    def test_a_login_post_without_the_double_submit_token_is_403(self, console: Console) -> None:
        console.signin.set_password(console.tenant, ADMIN, PASSWORD)
        fields = {"tenant": console.tenant, "username": ADMIN, "password": PASSWORD}
        fresh = TestClient(console.client.app)
        r = fresh.post("/auth/login", data=fields, follow_redirects=False)
        assert r.status_code == 403 and not set_cookie_headers(r, "tenantry_session")
        # A token in the form but no cookie (another site's form), or a cookie we did not sign: refused too.
        token = console.client.get("/auth/login").cookies.get("tenantry_csrf") or \
            console.client.cookies["tenantry_csrf"]
        assert fresh.post("/auth/login", data={**fields, "csrf_token": token},
                          follow_redirects=False).status_code == 403
        fresh.cookies.set("tenantry_csrf", "planted.value", path="/auth")
        assert fresh.post("/auth/login", data={**fields, "csrf_token": "planted.value"},
                          follow_redirects=False).status_code == 403
        assert fresh.get("/auth/session").status_code == 401

    def test_the_login_page_is_not_cached_framed_or_scripted(self, console: Console) -> None:
        r = console.client.get("/auth/login")
        assert r.headers["cache-control"] == "no-store" and r.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        [cookie] = set_cookie_headers(r, "tenantry_csrf")
        assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()

    def test_the_login_page_escapes_what_it_repeats(self, console: Console) -> None:
        r = console.client.get("/auth/login", params={"tenant": '"><script>alert(1)</script>'})
        assert "<script>" not in r.text and "&lt;script&gt;" in r.text

    def test_a_login_post_over_the_body_limit_is_refused_unread(self, console: Console) -> None:
        settings = console.services.settings.model_copy(update={"admin_body_max_bytes": 4096})
        with TestClient(create_app(settings, console.services)) as client:
            r = client.post("/auth/login", content=b"password=" + b"x" * 5000,
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
            assert r.status_code == 413

    def test_next_only_leads_to_a_path_of_this_site(self) -> None:
        home = "/auth/session"
        assert safe_next("/console/holds?x=1", home) == "/console/holds?x=1"
        for bad in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "\\\\evil", "javascript:x",
                    "/ok\r\nSet-Cookie: x", "", None, "console", "/" + "a" * 2000, "/\tx"):
            assert safe_next(bad, home) == home, bad

    def test_a_sign_in_with_an_offsite_next_lands_home(self, console: Console) -> None:
        console.signin.set_password(console.tenant, ADMIN, PASSWORD)
        r = sign_in(console.client, console.tenant, ADMIN, PASSWORD, next_path="https://evil.example/phish")
        assert r.status_code == 303 and r.headers["location"] == "/console/"


def test_the_session_endpoint_is_401_without_a_session_and_ignores_bearer_tokens(console: Console) -> None:
    admin_token = admin_secret(console.services, console.tenant, "t")
    assert console.client.get("/auth/session").status_code == 401
    r = console.client.get("/auth/session", headers={"Authorization": f"Bearer {admin_token}"})
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"



def test_a_console_session_calls_the_admin_api_as_its_administrator_with_their_roles_and_csrf(
        console: Console) -> None:
    """Issue #12: the admin API takes a console session as well as a bearer token; the session's administrator
    is the principal (their roles are checked), and a write without the session's CSRF token is refused."""
    console.signin.set_password(console.tenant, ADMIN, PASSWORD)
    assert sign_in(console.client, console.tenant, ADMIN, PASSWORD).status_code == 303
    base = f"/api/v1/tenants/{console.tenant}"
    # No role yet: the directory is closed to them, and the refusal names the roles.
    r = console.client.get(f"{base}/users")
    assert r.status_code == 403 and "needs the role" in r.json()["message"], r.text
    console.services.directory.add_role_group_member(console.tenant, "Organization Management", console.admin)
    assert console.client.get(f"{base}/users").status_code == 200
    assert console.client.get(f"/api/v1/tenants/{console.tenant}-other/users").status_code == 403
    csrf = console.client.get("/auth/session").json()["csrf_token"]
    r = console.client.post(f"{base}/domains", json={"name": "fabrikam.com"})
    assert r.status_code == 403 and "CSRF" in r.json()["message"]
    assert console.services.directory.list_domains(console.tenant) == []
    r = console.client.post(f"{base}/domains", json={"name": "fabrikam.com"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201, r.text
    # Signed out: the cookie opens nothing.
    console.client.post("/auth/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert console.client.get(f"{base}/users").status_code == 401
