"""What every console page module takes from ``pages.build_pages``: the renderer, the guard of every page, the
sign-in redirect, the session and viewer of a request, the job engine's ``enqueue`` — and ``posted``, the one way a
plain form's POST is taken (session, form encoding, CSRF token, roles, then the change)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from tenantry.auth.service import SessionUser, require_csrf
from tenantry.console.service import Viewer
from tenantry.core.errors import Forbidden

Render = Callable[..., HTMLResponse]
Guarded = Callable[[Request, "tuple[str, ...] | None", str, Callable[[Viewer], Response]], Response]
Refused = Callable[[Request, "Viewer | None", int, str, str], HTMLResponse]
# A posted form's text fields. Only application/x-www-form-urlencoded is taken (``Kit.posted``), so no value is a file.
Form = Mapping[str, str]
FORM_ENCODING = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Kit:
    render: Render
    guarded: Guarded
    refused: Refused
    to_sign_in: Callable[[Request], Response]
    session_user: Callable[[Request], SessionUser | None]
    viewer_of: Callable[[SessionUser], Viewer]
    enqueue: Callable[[str], None] | None

    async def session_of(self, request: Request) -> tuple[SessionUser, Viewer] | Response:
        """The request's session and viewer, or the way to the sign-in form."""
        session = await run_in_threadpool(self.session_user, request)
        if session is None:
            return self.to_sign_in(request)
        return session, await run_in_threadpool(self.viewer_of, session)

    async def posted(self, request: Request, roles: tuple[str, ...] | None, what: str,
                     change: Callable[[Viewer, Form], Response]) -> Response:
        """A plain form's POST: a session (else the sign-in form); the form encoding (else 415: these forms carry
        no file, and a multipart body would be spooled to disk before anything is checked); its CSRF token (else
        403); then ``guarded`` — the roles, the domain's errors as pages — around ``change``. Nothing is changed
        before every check has passed."""
        found = await self.session_of(request)
        if isinstance(found, Response):
            return found
        session, viewer = found
        if not request.headers.get("content-type", "").startswith(FORM_ENCODING):
            return self.refused(request, viewer, 415, "Refused", f"this form is sent as {FORM_ENCODING}")
        try:
            await require_csrf(request, session)
        except Forbidden as exc:
            return self.refused(request, viewer, 403, "Refused", exc.message)
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        return await run_in_threadpool(self.guarded, request, roles, what, lambda v: change(v, form))


__all__ = ["FORM_ENCODING", "Form", "Guarded", "Kit", "Refused", "Render"]
