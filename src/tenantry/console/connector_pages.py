"""The console's data connector pages (issue #15), added to ``build_pages``' router with its guard and renderer:

- ``GET /console/connectors``: the connectors with their status and the live state of their runs (the list is
  polled every 2 s, as an htmx fragment, only while a run is queued or running), items imported per day per kind;
- ``GET|POST /console/connectors/new``: the wizard's first steps as seed 000 walks them (terms, then the source's
  credentials with "test the connection"), which create the connector as a draft; the draft *is* the wizard's
  state from then on: ``GET /console/connectors/new/{id}/{mapping|consent|review}`` and their POSTs (the mapping
  CSV with its errors per line, the admin consent, "finish", which enables it);
- ``GET /console/connectors/{id}``: settings, the live run (``…/progress``, polled while active), "run now", an
  export upload, the run history and the chart; ``GET …/runs/{run_id}``: a run's report.

Roles are the admin API's for the same reads and changes: reading READ_CONNECTORS, changing Mailbox Import Export,
consent Organization Management. Every POST carries the session's CSRF token; uploads are read as they arrive
(``console.multipart``), the token checked before the file's first byte is kept. Every change is in the tenant's
ledger (``admin.change``, ``via: console``).
"""

from __future__ import annotations

from collections.abc import Callable
from io import BytesIO
from typing import IO, Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from tenantry.archive.models import LedgerAction
from tenantry.auth.service import csrf_matches
from tenantry.connectors.models import BuiltinSource, ConnectorStatus
from tenantry.console.connectors import CHANGE_CONNECTORS, CONSENT, READ_CONNECTORS, ConnectorsConsole
from tenantry.console.kit import Form, Kit
from tenantry.console.multipart import read_form
from tenantry.console.service import Viewer
from tenantry.core.errors import Forbidden, Invalid, PayloadTooLarge, TenantryError
from tenantry.services import Services

ConnectorId = Annotated[str, Path(min_length=1, max_length=64)]
RunId = Annotated[str, Path(min_length=1, max_length=64)]
STEPS = ("terms", "source", "mapping", "consent", "review")
STEP_TITLES = {"terms": "Terms of service", "source": "Source and credentials", "mapping": "User mapping",
               "consent": "Admin consent", "review": "Review and finish"}
KINDS = {BuiltinSource.WHATSAPP_EXPORT.value: "WhatsApp export files (handed in as they are exported)",
         BuiltinSource.ARCHIVER_FEED.value: "Archiver feed (an archiver's JSON feed, over HTTPS)"}
NO_STORE = {"Cache-Control": "no-store"}


def _see_other(url: str) -> Response:
    return RedirectResponse(url, 303, headers=NO_STORE)


# Long by design, as build_pages: a router factory is its routes, each a few lines over the services.
def add_connector_pages(router: APIRouter, services: Services, kit: Kit) -> None:  # noqa: C901, PLR0915
    reads = ConnectorsConsole(services)
    connectors = services.connectors
    render, guarded = kit.render, kit.guarded

    def audit(viewer: Viewer, target: str, operation: str, **detail: Any) -> None:
        services.ledger.record(viewer.tenant, viewer.principal.actor, LedgerAction.ADMIN_CHANGE, target,
                               via="console", operation=operation, **detail)

    def page(viewer: Viewer, request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        return render(template, status, viewer, request, may_change=viewer.may(CHANGE_CONNECTORS),
                      may_consent=viewer.may(CONSENT), **context)

    session_of, posted = kit.session_of, kit.posted

    async def with_file(request: Request, roles: tuple[str, ...], what: str, connector_id: str, file_field: str,
                        file_max: int, sink: IO[bytes],
                        change: Callable[[Viewer, dict[str, str], str | None], Response]) -> Response:
        """A form with a file: the session, the roles and the connector (another tenant's: 404) before the body is
        read; the CSRF token (a field before the file) before the file's first byte is kept; then the change."""
        found = await session_of(request)
        if isinstance(found, Response):
            return found
        session, viewer = found

        def exists(v: Viewer) -> Response:
            connectors.describe(v.tenant, connector_id)     # another tenant's connector: NotFound, a 404 page
            return Response(status_code=204)

        checked = await run_in_threadpool(guarded, request, roles, what, exists)
        if checked.status_code != 204:
            return checked

        def token(fields: dict[str, str]) -> None:
            if not csrf_matches(session.csrf_token, fields.get("csrf_token")):
                raise Forbidden("this request needs the session's CSRF token (form field csrf_token, before the "
                                "file)")

        try:
            form = await read_form(request, file_field=file_field, file_max=file_max, sink=sink, before_file=token,
                                   what="the file")
            token(form.fields)
        except Forbidden as exc:
            return render("message.html", 403, viewer, request, title="Refused", message=exc.message)
        except PayloadTooLarge as exc:
            return refused_upload(viewer, request, connector_id, 413, exc.message)
        except Invalid as exc:
            return refused_upload(viewer, request, connector_id, 400, exc.message)
        return await run_in_threadpool(guarded, request, roles, what, lambda v: change(v, form.fields, form.filename))

    def refused_upload(viewer: Viewer, request: Request, connector_id: str, status: int, message: str, *,
                       kept: bool = False) -> Response:
        return render("connector_refused.html", status, viewer, request, title="Not accepted", message=message,
                      back=f"/console/connectors/{connector_id}", kept=kept)

    # -- the list -------------------------------------------------------------------------------------------

    @router.get("/console/connectors")
    def listing(request: Request) -> Response:
        def show(viewer: Viewer) -> Response:
            rows = reads.listing(viewer.tenant)
            fragment = bool(request.headers.get("HX-Request")) and not request.headers.get("HX-Boosted")
            columns, chart_rows = ([], []) if fragment else reads.chart(viewer.tenant, None)
            active = any(live.active for _, live in rows)
            response = page(viewer, request, "_connector_list.html" if fragment else "connectors.html",
                            title="Data connectors", rows=rows, active=active, columns=columns,
                            chart_rows=chart_rows)
            if fragment and not active:
                response.headers["HX-Refresh"] = "true"    # every run has ended: the chart is drawn again
            return response

        return guarded(request, READ_CONNECTORS, "reading the data connectors", show)

    # -- the wizard -----------------------------------------------------------------------------------------

    def wizard(viewer: Viewer, request: Request, step: str, status: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("f", {})
        context.setdefault("errors", [])
        return page(viewer, request, "connector_wizard.html", status, title="New data connector", step=step,
                    steps=STEPS, step_titles=STEP_TITLES, kinds=KINDS, **context)

    @router.get("/console/connectors/new")
    def new(request: Request) -> Response:
        return guarded(request, CHANGE_CONNECTORS, "creating a data connector",
                       lambda v: wizard(v, request, "terms", f={"kind": BuiltinSource.WHATSAPP_EXPORT.value}))

    @router.post("/console/connectors/new")
    async def new_posted(request: Request) -> Response:
        def change(viewer: Viewer, form: Form) -> Response:
            kind = form.get("kind", "")
            if kind not in KINDS:
                return wizard(viewer, request, "terms", errors=["Choose the kind of source."], f=form)
            accepted = form.get("accept_terms") == "yes"
            if not accepted:
                return wizard(viewer, request, "terms", f=form,
                              errors=["The terms of service must be accepted to create a connector."])
            if form.get("step") == "terms":
                return wizard(viewer, request, "source", f={"kind": kind, "accept_terms": "yes", "run_at": "02:00",
                                                            "timezone": "UTC"})
            return source_step(viewer, request, form, kind)

        return await posted(request, CHANGE_CONNECTORS, "creating a data connector", change)

    def source_step(viewer: Viewer, request: Request, form: Form, kind: str) -> Response:
        name = form.get("name", "").strip()
        if kind == BuiltinSource.ARCHIVER_FEED:
            source = {"url": form.get("url", "").strip(), "username": form.get("username", "").strip()}
        else:
            source = {"timezone": form.get("timezone", "UTC").strip() or "UTC"}
        password = form.get("password") or None
        shown = {k: v for k, v in form.items() if k != "password"}   # a password is never sent back to the page
        if form.get("action") == "test":
            try:
                connectors.test_source(kind, source=source, source_password=password)
            except TenantryError as exc:
                return wizard(viewer, request, "source", f=shown, errors=[exc.message])
            return wizard(viewer, request, "source", f=shown, tested=True)
        if not name or len(name) > 256:
            return wizard(viewer, request, "source", f=shown, errors=["A name of 1 to 256 characters is needed."])
        try:
            info = connectors.create(viewer.tenant, name=name, kind=kind, by=viewer.principal,
                                     accept_terms=form.get("accept_terms") == "yes", source=source,
                                     source_password=password, run_at=form.get("run_at", "02:00").strip())
        except Forbidden:
            raise
        except TenantryError as exc:
            return wizard(viewer, request, "source", f=shown, errors=[exc.message])
        audit(viewer, info.id, "POST /console/connectors/new", name=name, kind=kind, accept_terms=True)
        return _see_other(f"/console/connectors/new/{info.id}/mapping")

    def draft_step(viewer: Viewer, request: Request, connector_id: str, step: str, status: int = 200,
                   **context: Any) -> HTMLResponse:
        review = connectors.review(viewer.tenant, connector_id)
        return wizard(viewer, request, step, status, connector=review, **context)

    def steps_of_a_draft(step: str, roles: tuple[str, ...]) -> None:
        @router.get(f"/console/connectors/new/{{connector}}/{step}", name=f"connector_wizard_{step}")
        def new_step(request: Request, connector: ConnectorId) -> Response:
            return guarded(request, roles, "the connector wizard", lambda v: draft_step(v, request, connector, step))

    steps_of_a_draft("mapping", CHANGE_CONNECTORS)
    steps_of_a_draft("consent", READ_CONNECTORS)
    steps_of_a_draft("review", READ_CONNECTORS)

    @router.post("/console/connectors/new/{connector}/mapping")
    async def mapping(request: Request, connector: ConnectorId) -> Response:
        connector_id = connector
        limit = services.settings.admin_body_max_bytes
        buffer = BytesIO()

        def change(viewer: Viewer, fields: dict[str, str], filename: str | None) -> Response:
            if fields.get("action") == "skip":
                return _see_other(f"/console/connectors/new/{connector}/consent")
            if filename is None:
                return draft_step(viewer, request, connector_id, "mapping", errors=["Choose a CSV file to upload."])
            try:
                text = buffer.getvalue().decode("utf-8")
                saved = connectors.upload_mapping(viewer.tenant, connector_id, text)
            except UnicodeDecodeError:
                return draft_step(viewer, request, connector_id, "mapping", errors=["The CSV must be UTF-8."])
            except Invalid as exc:
                # "the mapping CSV was not saved:" then a line per problem ("line 3: …"): shown as a list, in the
                # form (200: the form doing its job, as the search page's errors).
                lines = exc.message.split("\n")
                return draft_step(viewer, request, connector_id, "mapping", errors=lines[1:] or lines,
                                  error_title=lines[0] if len(lines) > 1 else None)
            audit(viewer, connector_id, "POST /console/connectors/new/{connector}/mapping",
                  entries=saved.entries, filename=filename[:256])
            return draft_step(viewer, request, connector_id, "mapping", saved=saved)

        return await with_file(request, CHANGE_CONNECTORS, "uploading a user mapping", connector_id, "csv", limit,
                               buffer, change)

    @router.post("/console/connectors/new/{connector}/consent")
    async def consent(request: Request, connector: ConnectorId) -> Response:
        connector_id = connector
        def change(viewer: Viewer, _form: Form) -> Response:
            connectors.consent(viewer.tenant, connector_id, viewer.principal)
            audit(viewer, connector_id, "POST /console/connectors/new/{connector}/consent", consent=True)
            return _see_other(f"/console/connectors/new/{connector}/review")

        return await posted(request, CONSENT, "admin consent for a connector", change)

    @router.post("/console/connectors/new/{connector}/finish")
    async def finish(request: Request, connector: ConnectorId) -> Response:
        connector_id = connector
        def change(viewer: Viewer, _form: Form) -> Response:
            try:
                connectors.enable(viewer.tenant, connector_id)
            except Invalid as exc:
                return draft_step(viewer, request, connector_id, "review", 400, errors=[exc.message])
            audit(viewer, connector_id, "POST /console/connectors/new/{connector}/finish", enabled=True)
            return _see_other(f"/console/connectors/{connector_id}?done=created")

        return await posted(request, CHANGE_CONNECTORS, "enabling a connector", change)

    # -- one connector --------------------------------------------------------------------------------------

    @router.get("/console/connectors/{connector}")
    def connector_page(request: Request, connector: ConnectorId) -> Response:
        connector_id = connector
        def show(viewer: Viewer) -> Response:
            detail = reads.detail(viewer.tenant, connector_id)
            columns, rows = reads.chart(viewer.tenant, connector_id)
            return page(viewer, request, "connector.html", title=detail.info.name, d=detail, live=detail.live,
                        columns=columns, chart_rows=rows, done=request.query_params.get("done", "")[:32],
                        draft=detail.info.status == ConnectorStatus.DRAFT)

        return guarded(request, READ_CONNECTORS, "reading a data connector", show)

    @router.get("/console/connectors/{connector}/progress")
    def progress(request: Request, connector: ConnectorId) -> Response:
        connector_id = connector
        def show(viewer: Viewer) -> Response:
            info = connectors.describe(viewer.tenant, connector_id)
            live = reads.live(viewer.tenant, info)
            response = page(viewer, request, "_connector_progress.html", info=info, live=live)
            if request.headers.get("HX-Request") and not live.active:
                # The poll found the run ended: the whole page is loaded again (its chart, its runs), and polls
                # no more.
                response.headers["HX-Refresh"] = "true"
            return response

        return guarded(request, READ_CONNECTORS, "reading a data connector", show)

    @router.post("/console/connectors/{connector}/runs")
    async def run_now(request: Request, connector: ConnectorId) -> Response:
        connector_id = connector
        def change(viewer: Viewer, _form: Form) -> Response:
            start(viewer, connector_id, "POST /console/connectors/{connector}/runs")
            return _see_other(f"/console/connectors/{connector_id}?done=started")

        return await posted(request, CHANGE_CONNECTORS, "running a connector", change)

    def start(viewer: Viewer, connector_id: str, operation: str) -> None:
        if kit.enqueue is None:
            raise Invalid("this server runs no jobs")
        job = reads.start_run(viewer.tenant, connector_id, viewer.principal.actor)
        audit(viewer, connector_id, operation, run="started", job=job.id)
        kit.enqueue(job.id)

    @router.post("/console/connectors/{connector}/exports")
    async def upload(request: Request, connector: ConnectorId) -> Response:
        connector_id = connector
        incoming = connectors.incoming_file()
        try:
            with incoming.open("wb") as sink:
                def change(viewer: Viewer, fields: dict[str, str], filename: str | None) -> Response:
                    try:
                        return hand_in(viewer, fields, filename)
                    except (Invalid, PayloadTooLarge) as exc:
                        return refused_upload(viewer, request, connector_id, exc.status_code, exc.message)

                def hand_in(viewer: Viewer, fields: dict[str, str], filename: str | None) -> Response:
                    if filename is None:
                        raise Invalid("choose the export file (.txt or .zip) to upload")
                    owner = fields.get("owner", "").strip()
                    if not owner:
                        raise Invalid("the owner (the directory user whose phone exported the chat) is needed")
                    sink.close()
                    added = connectors.add_export(viewer.tenant, connector_id, incoming, filename[:512], owner,
                                                  fields.get("chat_name", "").strip()[:512] or None, move=True)
                    audit(viewer, connector_id, "POST /console/connectors/{connector}/exports",
                          filename=filename[:256], sha256=added.sha256, new=added.new)
                    if fields.get("run") == "yes":
                        try:
                            start(viewer, connector_id, "POST /console/connectors/{connector}/exports")
                        except Invalid as exc:
                            return refused_upload(viewer, request, connector_id, 409, "The file was handed in, but "
                                                  f"the run did not start: {exc.message}", kept=True)
                        return _see_other(f"/console/connectors/{connector_id}?done=uploaded-started")
                    return _see_other(f"/console/connectors/{connector_id}?done="
                                      + ("uploaded" if added.new else "uploaded-before"))

                return await with_file(request, CHANGE_CONNECTORS, "uploading an export", connector_id, "file",
                                       connectors.upload_max_bytes, sink, change)
        finally:
            incoming.unlink(missing_ok=True)   # nothing partial is kept; add_export moved a complete file away

    @router.get("/console/connectors/{connector}/runs/{run_id}")
    def run_page(request: Request, connector: ConnectorId, run_id: RunId) -> Response:
        connector_id = connector
        def show(viewer: Viewer) -> Response:
            report = reads.report(viewer.tenant, connector_id, run_id)
            info = connectors.describe(viewer.tenant, connector_id)
            return page(viewer, request, "connector_run.html", title=f"Run of {info.name}", info=info, r=report)

        return guarded(request, READ_CONNECTORS, "reading a run report", show)


__all__ = ["add_connector_pages"]
