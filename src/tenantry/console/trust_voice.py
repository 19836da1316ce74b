"""The console's trust and voice pages (issue #15, a later slice), added to ``build_pages``' router with its guard
and renderer, so each page is checked as every console page is (a session, then the roles, then the page):

- ``GET /console/trust``: the partner applications, the authorisation configuration's certificates (current, next,
  previous: thumbprints and dates) and ``trust check`` as a list of passes and failures, each failure with what to
  do. Organization Management, as the admin API's ``…/trust/…`` routes.
- ``GET /console/voice``: sites, gateways with their trunks, mediation servers, users' voice settings and the
  configuration checks with their fixes (never DNS or TLS: those reach the network from a page load; the CLI's
  ``voice check --dns --tls`` runs them), and a "route this call" form. Voice Administrator or Organization
  Management, as ``…/voice/…``.

The route tester is a GET form: it reads the configuration and changes nothing, so it carries no CSRF token (the
session cookie is SameSite, and a GET here has no effect to forge).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from tenantry.console.service import READ_TRUST, READ_VOICE, VOICE_USERS_SHOWN, ConsoleService, Viewer
from tenantry.core.errors import TenantryError
from tenantry.voice.identities import MAX_IDENTITY

Guard = Callable[[Request, tuple[str, ...] | None, str, Callable[[Viewer], Response]], Response]
Render = Callable[..., HTMLResponse]


def add_trust_and_voice(router: APIRouter, console: ConsoleService, guarded: Guard, render: Render) -> None:
    @router.get("/console/trust")
    def trust(request: Request) -> Response:
        return guarded(request, READ_TRUST, "reading the trust configuration",
                       lambda v: render("trust.html", 200, v, request, title="Trust", view=console.trust(v.tenant)))

    @router.get("/console/voice")
    def voice(request: Request, identity: Annotated[str, Query(max_length=MAX_IDENTITY)] = "",
              caller: Annotated[str, Query(max_length=MAX_IDENTITY)] = "",
              number: Annotated[str, Query(max_length=64)] = "", conference: bool = False) -> Response:
        def show(viewer: Viewer) -> Response:
            errors: dict[str, str] = {}
            try:
                view = console.voice(viewer.tenant, identity)
            except TenantryError as exc:     # the identity box names no user: say so, show everyone
                errors["identity"] = exc.message
                view = console.voice(viewer.tenant)
            answer: Any = None
            if caller or number:
                try:
                    answer = console.route_call(viewer.tenant, caller, number, conference=conference)
                except TenantryError as exc:
                    errors["route"] = exc.message
            return render("voice.html", 400 if errors else 200, viewer, request, title="Voice", view=view,
                          errors=errors, shown=VOICE_USERS_SHOWN, answer=answer,
                          f={"identity": identity, "caller": caller, "number": number, "conference": conference})

        return guarded(request, READ_VOICE, "reading the voice configuration", show)
