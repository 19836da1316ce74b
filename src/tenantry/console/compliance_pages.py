"""The console's content search and eDiscovery pages, added to ``build_pages``' router through its ``guarded`` and
``render`` (every page the same guard: session, roles, then the page):

- ``GET /console/search?q=…&start=…``: the query box; the query language's error in place (message, column and
  a caret under it), else the count, per-mailbox counts and a page of hits, newest first;
- ``GET /console/search/items/{item_id}``: a safe preview of one message (``console.compliance.preview_of``);
- ``GET /console/cases``: the cases (and, to the roles that may, the form creating one). A case's page and the
  actions on it are ``console.case_actions``.

The roles are the admin API's for the same data: Compliance Administrator or eDiscovery Manager.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from tenantry.console.case_actions import CHANGE_CASES, most_hits
from tenantry.console.compliance import READ_CASES, READ_SEARCH, SEARCH_PAGE, ComplianceConsole
from tenantry.console.service import Viewer
from tenantry.services import Services

ItemId = Annotated[int, Path(ge=1, le=2**62)]
QueryText = Annotated[str, Query(max_length=4000)]
Start = Annotated[int, Query(ge=1, le=10_000_000)]
Render = Callable[..., HTMLResponse]
Guarded = Callable[[Request, "tuple[str, ...] | None", str, Callable[[Viewer], Response]], Response]
Pager = Callable[..., dict[str, Any]]


def add_compliance_pages(router: APIRouter, services: Services, render: Render, guarded: Guarded,
                         pager: Pager) -> None:
    reads = ComplianceConsole(services)

    @router.get("/console/search")
    def search(request: Request, q: QueryText = "", start: Start = 1) -> Response:
        def show(viewer: Viewer) -> Response:
            outcome = reads.search(viewer.tenant, q, viewer.principal.actor, start)
            total = outcome.result.count if outcome.result else 0
            # 200 with the error in the form, not 400: the page is the form doing its job, and a browser logs a
            # 4xx page load as a console error.
            hits = most_hits(outcome.result.by_mailbox, {}) if outcome.result else []
            return render("search.html", 200, viewer, request, title="Content search", hits=hits,
                          outcome=outcome, pager=pager(request, total, start, SEARCH_PAGE))

        return guarded(request, READ_SEARCH, "searching the mailboxes' content", show)

    @router.get("/console/search/items/{item_id}")
    def item(request: Request, item_id: ItemId) -> Response:
        def show(viewer: Viewer) -> Response:
            preview = reads.preview(viewer.tenant, item_id)
            subject = next((v for k, v in preview.headers if k == "Subject"), "") or f"Item {item_id}"
            return render("item.html", 200, viewer, request, title=subject, item=preview,
                          back=request.query_params.get("q", ""))

        return guarded(request, READ_SEARCH, "reading a mailbox item", show)

    @router.get("/console/cases")
    def cases(request: Request) -> Response:
        return guarded(request, READ_CASES, "reading the eDiscovery cases",
                       lambda v: render("cases.html", 200, v, request, title="eDiscovery cases",
                                        cases=reads.cases(v.tenant), may_create=v.may(CHANGE_CASES)))
