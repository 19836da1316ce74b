"""The browser's sign-in pages (``/auth/…``), outside the admin API: no bearer token is read here, the session
cookie is the credential.

- ``GET /auth/login``: the form (tenant, user name, password) with its double-submit token, and "Sign in with …"
  when the tenant has single sign-on; ``POST /auth/login`` signs in with a password;
- ``GET /auth/oidc/{tenant_id}/start`` sends the browser to the tenant's provider, ``…/callback`` takes its answer;
- ``POST /auth/logout`` (with the session's CSRF token) ends the session;
- ``GET /auth/session``: who is signed in (JSON), or 401.

Pages are answered with ``Cache-Control: no-store`` and a Content-Security-Policy that allows no script, no
frame around them (clickjacking) and form posts to this site only. ``next`` only ever leads to a path of this
site (no open redirect).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, urlencode, urlsplit

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from tenantry.auth.cookies import LOGIN_CSRF_COOKIE, OIDC_STATE_COOKIE, SESSION_COOKIE
from tenantry.auth.oidc import LOGIN_TTL, NoMatchingUser
from tenantry.auth.oidc_http import ProviderUnreachable
from tenantry.auth.service import SignIn, SignInRefused, require_csrf
from tenantry.core.errors import Forbidden, NotFound
from tenantry.protocols.oidc.errors import OidcError

LOGIN = "/auth/login"
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
MAX_PARAM = 4096
TenantPath = Annotated[str, Path(min_length=1, max_length=64)]


def safe_next(value: str | None, default: str) -> str:
    """``value`` when it is a path of this site (``/console/x?y``), else ``default``: never a URL of another
    site — no scheme, no ``//host``, no backslash (browsers read ``/\\host`` as ``//host``), no control or white
    space characters."""
    if not value or len(value) > 1024 or not value.startswith("/") or value.startswith("//"):
        return default
    if any(ord(ch) <= 0x20 or ord(ch) == 0x7F or ch == "\\" for ch in value):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value


# Long by design: a router factory is its routes (issue #11), each a few lines over the SignIn service.
def build_pages(signin: SignIn) -> APIRouter:
    router = APIRouter(prefix="/auth", include_in_schema=False)
    templates = Environment(loader=PackageLoader("tenantry.auth", "templates"),
                            autoescape=select_autoescape(["html"]))
    settings = signin.settings
    cookies = signin.cookies

    def page(template: str, status: int, **context: Any) -> HTMLResponse:
        return HTMLResponse(templates.get_template(template).render(**context), status, headers=HEADERS)

    def message(status: int, title: str, text: str, *, back: str = LOGIN) -> HTMLResponse:
        return page("message.html", status, title=title, message=text, back=back)

    def login_page(request: Request, status: int, *, tenant: str, next_path: str, username: str = "",
                   error: str | None = None) -> HTMLResponse:
        token, new = signin.login_token(request)
        sso = signin.oidc.config(tenant) if tenant else None
        sso_url = (f"/auth/oidc/{quote(tenant, safe='')}/start?" + urlencode({"next": next_path})) if sso else None
        response = page("login.html", status, title="Sign in", tenant=tenant, username=username, next=next_path,
                        csrf_token=token, error=error, sso_url=sso_url, sso_name=sso.display_name if sso else None)
        if new:
            cookies.set(response, LOGIN_CSRF_COOKIE, token, path="/auth")
        return response

    def signed_in(request: Request, cookie: str, to: str) -> RedirectResponse:
        # The browser's earlier session (another user, or the same) ends: one browser, one session.
        earlier = signin.session_user(request)
        if earlier is not None:
            signin.sign_out(earlier)
        response = RedirectResponse(to, 303, headers={"Cache-Control": "no-store"})
        cookies.set(response, SESSION_COOKIE, cookie)
        return response

    @router.get("/login")
    def login_form(request: Request, tenant: Annotated[str, Query(max_length=64)] = "",
                   next: Annotated[str, Query(max_length=2048)] = "") -> HTMLResponse:
        return login_page(request, 200, tenant=tenant or settings.default_tenant,
                          next_path=safe_next(next, settings.landing))

    @router.post("/login")
    def login(request: Request, tenant: Annotated[str, Form(max_length=64)] = "",
              username: Annotated[str, Form(max_length=512)] = "",
              password: Annotated[str, Form(max_length=1024)] = "",
              csrf_token: Annotated[str, Form(max_length=512)] = "",
              next: Annotated[str, Form(max_length=2048)] = "") -> Response:
        next_path = safe_next(next, settings.landing)
        if not signin.login_token_ok(request, csrf_token):
            return message(403, "Sign-in refused", "This sign-in form has expired or was not sent by this site "
                                                  "(its security token is missing or wrong). Open the sign-in "
                                                  "page again.")
        try:
            cookie, _session = signin.sign_in_password(tenant, username, password)
        except SignInRefused as exc:
            return login_page(request, 401, tenant=tenant, next_path=next_path, username=username, error=exc.message)
        return signed_in(request, cookie, next_path)

    @router.get("/oidc/{tenant_id}/start")
    def oidc_start(request: Request, tenant_id: TenantPath,
                   next: Annotated[str, Query(max_length=2048)] = "") -> Response:
        back = f"{LOGIN}?" + urlencode({"tenant": tenant_id})
        try:
            started = signin.oidc.start(tenant_id, signin.redirect_uri(request, tenant_id),
                                        safe_next(next, settings.landing))
        except NotFound as exc:
            return message(404, "Single sign-on is not set up", exc.message, back=back)
        except OidcError as exc:
            return message(502, "The identity provider cannot be used", exc.message, back=back)
        response = RedirectResponse(started.url, 302, headers={"Cache-Control": "no-store"})
        cookies.set(response, OIDC_STATE_COOKIE, started.state, path="/auth/oidc",
                    max_age=int(LOGIN_TTL.total_seconds()))
        return response

    @router.get("/oidc/{tenant_id}/callback")
    def oidc_callback(request: Request, tenant_id: TenantPath) -> Response:
        back = f"{LOGIN}?" + urlencode({"tenant": tenant_id})
        params = dict(request.query_params)
        if any(len(v) > MAX_PARAM for v in params.values()) or len(params) > 20:
            return message(400, "Sign-in refused", "The identity provider's answer is too large.", back=back)
        try:
            done = signin.oidc.finish(tenant_id, params, request.cookies.get(OIDC_STATE_COOKIE))
        except NoMatchingUser as exc:
            return message(403, "No such user here", exc.message, back=back)
        except ProviderUnreachable as exc:
            return message(502, "The identity provider cannot be used", exc.message, back=back)
        except OidcError as exc:
            return message(400, "Sign-in refused", exc.message, back=back)
        cookie, _session = signin.sign_in_oidc(done)
        return signed_in(request, cookie, done.next_path)

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        session = await run_in_threadpool(signin.session_user, request)
        response = RedirectResponse(LOGIN, 303, headers={"Cache-Control": "no-store"})
        if session is None:       # nothing to end: the cookie (if any) names no live session
            cookies.clear(response, SESSION_COOKIE)
            return response
        try:
            await require_csrf(request, session)
        except Forbidden as exc:
            return message(403, "Sign-out refused", exc.message, back="/")
        await run_in_threadpool(signin.sign_out, session)
        cookies.clear(response, SESSION_COOKIE)
        return response

    @router.get("/session")
    def current(request: Request) -> JSONResponse:
        session = signin.session_user(request)
        if session is None:
            return JSONResponse({"error": "unauthorized", "message": "not signed in"}, 401,
                                headers={"Cache-Control": "no-store"})
        return JSONResponse({
            "tenant": session.tenant, "user_id": session.user_id,
            "user_name": signin.users.user_name(session.tenant, session.user_id), "method": session.method,
            "session_id": session.session_id, "csrf_token": session.csrf_token,
            "expires_at": session.expires_at.isoformat()}, headers={"Cache-Control": "no-store"})

    return router
