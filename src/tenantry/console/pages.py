"""The console's browser pages (``/`` and ``/console/…``), outside the admin API: the session cookie is the
credential (``auth.service.SignIn.session_user``), the viewer's roles decide what each page shows.

- ``GET /``: the home page's address; without a session, the sign-in form (``/auth/login?next=/console/``);
- ``GET /console/``: each part's state at a glance, only the parts the viewer's roles may read;
- ``GET /console/users`` (search, paging, hidden users on request), ``GET /console/users/{id}``,
  ``POST /console/users/{id}/hidden`` (Organization Management, the session's CSRF token), ``GET /console/groups``,
  ``GET /console/scim-log`` (filters): the directory;
- ``GET /console/trust``, ``GET /console/voice`` (with its route tester): trust and voice (``console.trust_voice``);
- ``GET /console/search``, ``GET /console/search/items/{id}``, ``GET /console/cases``: content search with a safe
  message preview, and the eDiscovery cases (``console.compliance_pages``); a case, its actions (custodians, holds,
  search, exports and their download), ``/console/holds`` and ``/console/verify`` (``console.case_actions``);
- ``GET /console/connectors`` and below: the data connectors, their wizard, runs and reports, "run now" and the
  export upload (``console.connector_pages``);
- ``GET /console/provisioning`` and ``/console/provisioning/{app}[/…]``: provisioning apps, Test Connection, status
  with the running cycle's progress, mappings and scoping, provision on demand, logs, quarantine release
  (``console.provisioning_pages``);
- ``GET /console/static/{file}``: the stylesheet and htmx, from the package (no front-end build step).

A page the viewer's roles may not read answers a 403 page, a parameter out of its bounds a 400 page (not the admin
API's JSON 422), and an action they may not take is not offered (and is
refused if sent). htmx asks for the listings' result part only (``HX-Request``); every page also works without
script. Pages are answered ``no-store`` with a Content-Security-Policy that allows this site's scripts and styles
only (no inline script, no eval: htmx's inline indicator style and eval are switched off in the page's
``htmx-config``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, select_autoescape
from scim2_models import SCIMException
from starlette.concurrency import run_in_threadpool
from starlette.staticfiles import StaticFiles

from tenantry import __version__
from tenantry.archive.models import LedgerAction
from tenantry.console.case_actions import READ_VERIFY, add_case_actions
from tenantry.console.compliance import READ_CASES, READ_SEARCH
from tenantry.console.compliance_pages import add_compliance_pages
from tenantry.console.connector_pages import add_connector_pages
from tenantry.console.kit import Form, Kit
from tenantry.console.provisioning_pages import add_provisioning_pages
from tenantry.console.service import (
    CHANGE_DIRECTORY,
    PAGE_SIZE,
    READ_CONNECTORS,
    READ_DIRECTORY,
    READ_PROVISIONING,
    READ_SCIM_LOG,
    READ_TRUST,
    READ_VOICE,
    ConsoleService,
    Viewer,
)
from tenantry.console.trust_voice import add_trust_and_voice
from tenantry.core.access import require
from tenantry.core.errors import Forbidden, Invalid, NotFound, TenantryError
from tenantry.directory.scim_log import METHODS
from tenantry.services import Services

HOME = "/console/"
LOGIN = "/auth/login"
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
LOG_PAGE = 50
UserId = Annotated[str, Path(min_length=1, max_length=64)]
SearchText = Annotated[str, Query(max_length=200)]
Start = Annotated[int, Query(ge=1, le=10_000_000)]


def nav_of(viewer: Viewer) -> list[tuple[str, list[tuple[str, str]]]]:
    """The navigation by part: only the pages the viewer may open."""
    directory = []
    if viewer.may(READ_DIRECTORY):
        directory += [("Users", "/console/users"), ("Groups", "/console/groups")]
    if viewer.may(READ_SCIM_LOG):
        directory.append(("SCIM request log", "/console/scim-log"))
    parts = [("Overview", [("Home", HOME)])]
    if directory:
        parts.append(("Directory", directory))
    hybrid = []
    if viewer.may(READ_TRUST):
        hybrid.append(("Trust", "/console/trust"))
    if viewer.may(READ_VOICE):
        hybrid.append(("Voice", "/console/voice"))
    if hybrid:
        parts.append(("Hybrid", hybrid))
    compliance = []
    if viewer.may(READ_SEARCH):
        compliance.append(("Content search", "/console/search"))
    if viewer.may(READ_CASES):
        compliance.append(("eDiscovery cases", "/console/cases"))
        compliance.append(("Holds", "/console/holds"))
    if viewer.may(READ_VERIFY):
        compliance.append(("Archive verification", "/console/verify"))
    if compliance:
        parts.append(("Compliance", compliance))
    if viewer.may(READ_CONNECTORS):
        parts.append(("Data connectors", [("Connectors", "/console/connectors")]))
    if viewer.may(READ_PROVISIONING):
        parts.append(("Applications", [("Provisioning", "/console/provisioning")]))
    return parts


# Long by design: a router factory is its routes (issue #11), each a few lines over the ConsoleService.
def build_pages(services: Services, enqueue: Callable[[str], None] | None = None) -> APIRouter:
    """``enqueue(job_id)`` hands a job (an export) to the job engine, as for the admin API."""

    class PageRoute(APIRoute):
        """A console route: a parameter out of its bounds is a 400 page, not the admin API's JSON 422."""

        def get_route_handler(self) -> Callable[[Request], Any]:
            handle = super().get_route_handler()

            async def page(request: Request) -> Response:
                try:
                    return await handle(request)
                except RequestValidationError as exc:
                    return await run_in_threadpool(bad_parameter, request, exc)

            return page

    router = APIRouter(include_in_schema=False, route_class=PageRoute)
    console = ConsoleService(services)
    signin = services.signin
    templates = Environment(loader=PackageLoader("tenantry.console", "templates"),
                            autoescape=select_autoescape(["html"]))
    static = StaticFiles(packages=[("tenantry.console", "static")])

    def render(template: str, status: int, viewer: Viewer | None, request: Request, **context: Any) -> HTMLResponse:
        body = templates.get_template(template).render(
            viewer=viewer, nav=nav_of(viewer) if viewer else [], path=request.url.path, version=__version__,
            csrf_token=viewer.session.csrf_token if viewer else "", **context)
        return HTMLResponse(body, status, headers=HEADERS)

    def refused(request: Request, viewer: Viewer | None, status: int, title: str, text: str) -> HTMLResponse:
        return render("message.html", status, viewer, request, title=title, message=text)

    def to_sign_in(request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        url = f"{LOGIN}?" + urlencode({"next": target})
        if request.headers.get("HX-Request"):   # htmx: the whole window goes to the sign-in form
            return Response(status_code=204, headers={"HX-Redirect": url, "Cache-Control": "no-store"})
        return RedirectResponse(url, 303, headers={"Cache-Control": "no-store"})

    def guarded(request: Request, roles: tuple[str, ...] | None, what: str,
                show: Callable[[Viewer], Response]) -> Response:
        """The guard of every page: a session (else the sign-in form), the roles (else a 403 page), then the
        page; the domain's errors become pages (404 for another tenant's id, 400 for bad input)."""
        session = signin.session_user(request)
        if session is None:
            return to_sign_in(request)
        viewer = console.viewer(session)
        try:
            if roles is not None:
                require(viewer.principal, roles, what)
            return show(viewer)
        except Forbidden as exc:
            return refused(request, viewer, 403, "Not allowed", exc.message)
        except NotFound as exc:
            return refused(request, viewer, 404, "Not found", exc.message)
        except TenantryError as exc:
            return refused(request, viewer, exc.status_code, "Cannot show this", exc.message)
        except SCIMException as exc:
            status = exc.status if exc.status in (400, 404) else 400
            return refused(request, viewer, status, "Not found" if status == 404 else "Cannot show this",
                           exc.detail or "invalid request")

    kit = Kit(render, guarded, refused, to_sign_in, signin.session_user, console.viewer, enqueue)

    def bad_parameter(request: Request, exc: RequestValidationError) -> Response:
        session = signin.session_user(request)
        if session is None:
            return to_sign_in(request)
        wrong = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ())[1:])}: {e.get('msg', 'invalid')}"
                          for e in exc.errors()[:5])
        return refused(request, console.viewer(session), 400, "Cannot show this",
                       f"This page's address has a value it cannot take ({wrong}).")

    @router.get("/")
    def root(request: Request) -> Response:
        if signin.session_user(request) is None:
            return RedirectResponse(f"{LOGIN}?" + urlencode({"next": HOME}), 303, headers={"Cache-Control": "no-store"})
        return RedirectResponse(HOME, 303, headers={"Cache-Control": "no-store"})

    @router.get("/console")
    def console_root() -> Response:
        return RedirectResponse(HOME, 308)

    @router.get("/console/static/{name:path}")
    async def static_file(name: Annotated[str, Path(max_length=128)], request: Request) -> Response:
        response = await static.get_response(name, request.scope)
        response.headers["Cache-Control"] = "public, max-age=3600"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    @router.get("/console/")
    def home(request: Request) -> Response:
        return guarded(request, None, "the home page",
                       lambda v: render("home.html", 200, v, request, title="Home", parts=console.home(v)))

    @router.get("/console/users")
    def users(request: Request, q: SearchText = "", start: Start = 1, hidden: bool = False) -> Response:
        def show(viewer: Viewer) -> Response:
            error = None
            try:
                found = console.users(viewer.tenant, q, start, include_hidden=hidden)
            except (TenantryError, SCIMException) as exc:
                error = exc.message if isinstance(exc, TenantryError) else (exc.detail or "invalid search")
                found = None
            fragment = bool(request.headers.get("HX-Request")) and not request.headers.get("HX-Boosted")
            context = {"title": "Users", "q": q, "hidden": hidden, "page": found, "error": error,
                       "pager": pager(request, found.total if found else 0, start, PAGE_SIZE)}
            return render("users_results.html" if fragment else "users.html", 400 if error else 200, viewer,
                          request, **context)

        return guarded(request, READ_DIRECTORY, "reading the directory's users", show)

    @router.get("/console/users/{user_id}")
    def user(request: Request, user_id: UserId) -> Response:
        def show(viewer: Viewer) -> Response:
            doc = console.user(viewer.tenant, user_id)
            return render("user.html", 200, viewer, request, title=doc.get("userName", "User"), user=doc,
                          may_change=viewer.may(CHANGE_DIRECTORY), done=request.query_params.get("done"))

        return guarded(request, READ_DIRECTORY, "reading a user", show)

    @router.post("/console/users/{user_id}/hidden")
    async def set_hidden(request: Request, user_id: UserId) -> Response:
        def change(viewer: Viewer, form: Form) -> Response:
            hide = form.get("hidden") == "true"
            services.directory.set_hidden(viewer.tenant, user_id, hide)
            services.ledger.record(viewer.tenant, viewer.principal.actor, LedgerAction.ADMIN_CHANGE, user_id,
                                   via="console", operation="POST /console/users/{user_id}/hidden",
                                   hidden=hide)
            return RedirectResponse(f"/console/users/{user_id}?done=hidden", 303,
                                    headers={"Cache-Control": "no-store"})

        return await kit.posted(request, CHANGE_DIRECTORY, "hiding a user from address lists", change)

    @router.get("/console/groups")
    def groups(request: Request, q: SearchText = "", start: Start = 1) -> Response:
        def show(viewer: Viewer) -> Response:
            found = console.groups(viewer.tenant, q, start)
            return render("groups.html", 200, viewer, request, title="Groups", q=q, page=found,
                          pager=pager(request, found.total, start, PAGE_SIZE))

        return guarded(request, READ_DIRECTORY, "reading the directory's groups", show)

    @router.get("/console/scim-log")
    def scim_log(request: Request, method: Annotated[str, Query(max_length=16)] = "",
                 outcome: Annotated[str, Query(max_length=16)] = "",
                 resource_type: Annotated[str, Query(max_length=16)] = "",
                 name: Annotated[str, Query(max_length=256)] = "",
                 status: Annotated[str, Query(max_length=3)] = "", start: Start = 1) -> Response:
        # The form sends every field, empty ones too: an empty status is "any".
        def show(viewer: Viewer) -> Response:
            if status and not (status.isdigit() and 100 <= int(status) <= 599):
                raise Invalid(f"status is an HTTP status (100 to 599), not {status!r}")
            rows = services.scim_log.entries(viewer.tenant, method=method or None, outcome=outcome or None,
                                             resource_type=resource_type or None, name=name or None,
                                             status=int(status) if status else None, offset=start - 1,
                                             limit=LOG_PAGE + 1)
            more = len(rows) > LOG_PAGE
            return render("scim_log.html", 200, viewer, request, title="SCIM request log", rows=rows[:LOG_PAGE],
                          methods=METHODS, f={"method": method, "outcome": outcome, "resource_type": resource_type,
                                              "name": name, "status": status},
                          pager=pager(request, None, start, LOG_PAGE, more=more))

        return guarded(request, READ_SCIM_LOG, "reading the SCIM request log", show)

    add_trust_and_voice(router, console, guarded, render)
    add_compliance_pages(router, services, render, guarded, pager)
    add_case_actions(router, services, kit)
    add_connector_pages(router, services, kit)
    add_provisioning_pages(router, services, kit)
    return router


def pager(request: Request, total: int | None, start: int, size: int, *, more: bool = False) -> dict[str, Any]:
    """Previous and next links that keep the page's other query parameters (offset paging, 1-based)."""
    params = {k: v for k, v in request.query_params.items() if k != "start"}

    def link(at: int) -> str:
        return f"{request.url.path}?{urlencode({**params, 'start': str(at)})}"

    has_next = more if total is None else start - 1 + size < total
    return {"total": total, "first": start, "last": None if total is None else min(total, start - 1 + size),
            "prev": link(max(1, start - size)) if start > 1 else None,
            "next": link(start + size) if has_next else None}
