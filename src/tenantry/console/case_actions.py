"""The console's eDiscovery actions (issue #15): create a case, add custodians, place and release holds, run a
case search (with its hits per custodian as a chart), start an export and download it with its manifest's
hashes shown; and the archive's ledger verification (``tenantry archive verify``).

Each action is the admin API's route for the same change, with its roles (``archive.api``): cases, custodians,
searches and exports to a Compliance Administrator or an eDiscovery Manager; holds to a Compliance Administrator;
verification to a Compliance Administrator or Organization Management. A form posts the session's CSRF token;
a change is written to the ledger as ``admin.change`` with ``via: console`` (the service writes its own entry,
``hold.place``, ``export``…, as it does for the API). Every id is looked up inside the viewer's tenant: another
tenant's case, hold or export is a 404 page. An export is downloaded from the folder the server chose for it,
never from a path the browser names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from tenantry.archive.models import CaseStatus, LedgerAction
from tenantry.archive.results import CaseSearchResult, ExportInfo, HoldInfo
from tenantry.console.compliance import MAX_QUERY, READ_CASES, ComplianceConsole, QueryError
from tenantry.console.kit import Form, Kit
from tenantry.console.service import Viewer
from tenantry.core.access import COMPLIANCE, EDISCOVERY, ORGANIZATION
from tenantry.core.bounds import MAX_DAYS
from tenantry.core.errors import Invalid, NotFound, TenantryError
from tenantry.core.streaming import ClosingStreamingResponse
from tenantry.jobstore import JobState
from tenantry.protocols.query.errors import QuerySyntaxError
from tenantry.services import Services

# The admin API's roles for the same changes (archive/api.py): POST …/cases, …/custodians, …/search, …/export and
# the downloads; POST …/holds and …/holds/{id}/release; GET …/verify.
CHANGE_CASES = (COMPLIANCE, EDISCOVERY)
CHANGE_HOLDS = (COMPLIANCE,)
READ_VERIFY = (COMPLIANCE, ORGANIZATION)

MAX_NAME = 200
MAX_DESCRIPTION = 2000
MAX_CUSTODIANS = 100            # names in one "add custodians" form
MAX_PROBLEMS_SHOWN = 200        # of a verification's problems; the count says how many there are
MANIFEST_SHOWN = 1000           # lines of an export's manifest shown on its page
SEARCH_PREVIEW = 25
CHART_BARS = 30                 # mailboxes or custodians in a hits chart: those with most hits

CaseId = Annotated[str, Path(min_length=1, max_length=64)]
ExportId = Annotated[str, Path(min_length=1, max_length=64)]
HoldId = Annotated[str, Path(min_length=1, max_length=64)]
NO_STORE = {"Cache-Control": "no-store"}


@dataclass(frozen=True, slots=True)
class Problem:
    """Why an action on the case page was refused, shown at its form (``form``: custodians, hold, search, export)."""

    form: str
    error: QueryError


@dataclass(frozen=True, slots=True)
class ExportRow:
    info: ExportInfo

    @property
    def running(self) -> bool:
        return self.info.state in (JobState.QUEUED, JobState.RUNNING)


def field(form: Form, name: str, limit: int, *, required: bool = False, label: str | None = None) -> str:
    """A text field of a posted form, stripped, at most ``limit`` characters (else ``Invalid``)."""
    value = form.get(name, "").strip()
    if len(value) > limit:
        raise Invalid(f"{label or name} is at most {limit} characters")
    if required and not value:
        raise Invalid(f"{label or name} is required")
    return value


def days_field(form: Form) -> int | None:
    text = field(form, "days", 7, label="Days")
    if not text:
        return None
    if not text.isdigit() or not 1 <= int(text) <= MAX_DAYS:
        raise Invalid(f"Days is a whole number from 1 to {MAX_DAYS} (or empty: indefinitely)")
    return int(text)


def checked(form: Form, name: str) -> bool:
    return form.get(name) in ("on", "true", "1")


def query_error(exc: TenantryError) -> QueryError:
    if isinstance(exc, QuerySyntaxError):
        return QueryError(exc.message, exc.column, exc.pointer)
    return QueryError(exc.message, None, None)


def most_hits(counts: dict[str, int], names: dict[str, str]) -> list[tuple[str, list[int]]]:
    """A hits chart's rows: the ``CHART_BARS`` mailboxes (or custodians, by ``names``) with most hits, most first
    (ties by name)."""
    rows = sorted(((names.get(key, key), n) for key, n in counts.items()), key=lambda r: (-r[1], r[0]))
    return [(label, [n]) for label, n in rows[:CHART_BARS]]


class CaseActions:
    """What the case pages read and change, through the services the admin API uses, of one tenant at a time."""

    def __init__(self, services: Services, enqueue: Callable[[str], None] | None) -> None:
        self.services = services
        self.reads = ComplianceConsole(services)
        self.enqueue = enqueue

    def user_ids(self, tenant: str, text: str) -> list[str]:
        """Users named one a line (or by commas) by e-mail address, userName or id, as ``tenantry case custodian``
        takes them; ``NotFound`` naming the first that is not a user of this tenant."""
        names = [n.strip() for line in text.splitlines() for n in line.split(",") if n.strip()]
        if not names:
            raise Invalid("name at least one user (an e-mail address, userName or id)")
        if len(names) > MAX_CUSTODIANS:
            raise Invalid(f"at most {MAX_CUSTODIANS} users at once")
        directory = self.services.directory
        by_mail = directory.find_users_by_email(tenant, names)
        by_id = {u.id for u in directory.users_by_id(tenant, names)}
        ids: list[str] = []
        for name in names:
            found = by_mail.get(name.lower())
            if found:
                ids.append(found[0].id)
            elif name in by_id:
                ids.append(name)
            else:
                raise NotFound(f"no user {name!r} in this tenant")
        return list(dict.fromkeys(ids))

    def exports(self, tenant: str, case_id: str) -> list[ExportRow]:
        return [ExportRow(e) for e in self.services.ediscovery.exports(tenant, case_id)]

    def start_export(self, tenant: str, case_id: str, query: str, actor: str, *, include_purges: bool,
                     deduplicate: bool) -> str:
        if self.enqueue is None:
            raise Invalid("exports need the job engine, which this server was started without")
        job = self.services.ediscovery.start_export(tenant, case_id, query, actor, include_purges=include_purges,
                                                    deduplicate=deduplicate)
        self.enqueue(job.id)
        return job.id

    def user_names(self, tenant: str, ids: list[str]) -> dict[str, str]:
        return {u.id: u.user_name for u in self.services.directory.users_by_id(tenant, ids)}


# Long by design (issue #11): a router factory is its routes, each a few lines over the services.
def add_case_actions(router: APIRouter, services: Services, kit: Kit) -> None:
    render, guarded, posted = kit.render, kit.guarded, kit.posted
    actions = CaseActions(services, kit.enqueue)
    ediscovery, compliance = services.ediscovery, services.compliance

    def audit(viewer: Viewer, operation: str, target: str, **detail: Any) -> None:
        services.ledger.record(viewer.tenant, viewer.principal.actor, LedgerAction.ADMIN_CHANGE, target[:256],
                               via="console", operation=operation, **detail)

    def done(url: str) -> Response:
        return RedirectResponse(url, 303, headers=NO_STORE)

    def case_page(viewer: Viewer, request: Request, case_id: str, *, status: int = 200,
                  problem: Problem | None = None, search: CaseSearchResult | None = None,
                  asked: dict[str, str] | None = None) -> Response:
        detail = actions.reads.case(viewer.tenant, case_id)
        exports = actions.exports(viewer.tenant, case_id)
        names = {c.user_id: c.user_name or c.user_id for c in detail.custodians}
        hits = most_hits(search.by_custodian, names) if search else []
        return render("case.html", status, viewer, request, title=f"Case {detail.case.name}", detail=detail,
                      exports=exports, running=any(e.running for e in exports),
                      open=detail.case.status == CaseStatus.OPEN, may_change=viewer.may(CHANGE_CASES),
                      may_hold=viewer.may(CHANGE_HOLDS), done=request.query_params.get("done"),
                      problem=problem, search=search, hits=hits, asked=asked or {})

    def on_case(request: Request, case_id: str, form_name: str, fields: dict[str, str],
                act: Callable[[], Response]) -> Callable[[Viewer], Response]:
        """An action on the case page whose refusal (a bad query, no custodian yet, a name taken) is shown at its
        form: 200 for a query the language refuses (the form doing its job), else the error's status."""
        def run(viewer: Viewer) -> Response:
            try:
                return act()
            except NotFound:
                raise
            except TenantryError as exc:
                status = 200 if isinstance(exc, QuerySyntaxError) else exc.status_code
                return case_page(viewer, request, case_id, status=status,
                                 problem=Problem(form_name, query_error(exc)), asked=fields)
        return run

    # -- cases --------------------------------------------------------------------------------------------------

    @router.get("/console/cases/{case}")
    def case(request: Request, case: CaseId) -> Response:
        return guarded(request, READ_CASES, "reading an eDiscovery case",
                       lambda v: case_page(v, request, case))

    @router.post("/console/cases")
    async def create_case(request: Request) -> Response:
        def change(viewer: Viewer, form: Form) -> Response:
            name = field(form, "name", MAX_NAME, required=True, label="Name")
            description = field(form, "description", MAX_DESCRIPTION, label="Description")
            created = ediscovery.create_case(viewer.tenant, name, viewer.principal.actor, description)
            audit(viewer, "POST /console/cases", created.id, name=name)
            return done(f"/console/cases/{created.id}?done=created")

        return await posted(request, CHANGE_CASES, "creating an eDiscovery case", change)

    @router.post("/console/cases/{case}/custodians")
    async def add_custodians(request: Request, case: CaseId) -> Response:
        def change(viewer: Viewer, form: Form) -> Response:
            text = field(form, "users", 20_000, label="Users")

            def act() -> Response:
                ediscovery.custodians(viewer.tenant, case)       # another tenant's case: 404 before the names
                ids = actions.user_ids(viewer.tenant, text)
                ediscovery.add_custodians(viewer.tenant, case, ids, viewer.principal.actor)
                audit(viewer, "POST /console/cases/{case}/custodians", case, users=ids)
                return done(f"/console/cases/{case}?done=custodians")

            return on_case(request, case, "custodians", {"users": text}, act)(viewer)

        return await posted(request, CHANGE_CASES, "adding custodians to a case", change)

    @router.post("/console/cases/{case}/holds")
    async def case_hold(request: Request, case: CaseId) -> Response:
        def change(viewer: Viewer, form: Form) -> Response:
            name = field(form, "name", MAX_NAME, label="Name")
            query = field(form, "query", MAX_QUERY, label="Query")
            asked = {"hold_name": name, "hold_query": query, "days": field(form, "days", 7)}

            def act() -> Response:
                hold = ediscovery.hold(viewer.tenant, case, viewer.principal.actor, query=query or None,
                                       duration_days=days_field(form), name=name or None)
                audit(viewer, "POST /console/cases/{case}/holds", hold.id, case=case, query=query or None)
                return done(f"/console/cases/{case}?done=hold")

            return on_case(request, case, "hold", asked, act)(viewer)

        return await posted(request, CHANGE_HOLDS, "placing a hold", change)

    @router.post("/console/cases/{case}/search")
    async def case_search(request: Request, case: CaseId) -> Response:
        def change(viewer: Viewer, form: Form) -> Response:
            query = field(form, "query", MAX_QUERY, required=True, label="Query")
            include_purges = checked(form, "include_purges")
            asked = {"query": query, "include_purges": "on" if include_purges else ""}

            def act() -> Response:
                result = ediscovery.run_search(viewer.tenant, case, query, viewer.principal.actor,
                                               include_purges=include_purges, preview=SEARCH_PREVIEW)
                audit(viewer, "POST /console/cases/{case}/search", case, query=query, count=result.count)
                return case_page(viewer, request, case, search=result, asked=asked)

            return on_case(request, case, "search", asked, act)(viewer)

        return await posted(request, CHANGE_CASES, "searching a case", change)

    # -- exports ------------------------------------------------------------------------------------------------

    @router.post("/console/cases/{case}/export")
    async def start_export(request: Request, case: CaseId) -> Response:
        def change(viewer: Viewer, form: Form) -> Response:
            query = field(form, "query", MAX_QUERY, required=True, label="Query")
            include_purges, deduplicate = checked(form, "include_purges"), checked(form, "deduplicate")
            asked = {"export_query": query}

            def act() -> Response:
                export_id = actions.start_export(viewer.tenant, case, query, viewer.principal.actor,
                                                 include_purges=include_purges, deduplicate=deduplicate)
                audit(viewer, "POST /console/cases/{case}/export", export_id, case=case, query=query)
                return done(f"/console/cases/{case}?done=export#exports")

            return on_case(request, case, "export", asked, act)(viewer)

        return await posted(request, CHANGE_CASES, "exporting from a case", change)

    @router.get("/console/cases/{case}/exports/{export_id}")
    def export_page(request: Request, case: CaseId, export_id: ExportId) -> Response:
        def show(viewer: Viewer) -> Response:
            detail = actions.reads.case(viewer.tenant, case)
            info = ediscovery.export_info(viewer.tenant, case, export_id)
            manifest: list[tuple[str, str]] = []
            files = 0
            if info.available:
                manifest, files = ediscovery.export_manifest(viewer.tenant, case, export_id, MANIFEST_SHOWN)
            return render("export.html", 200, viewer, request, title=f"Export of {detail.case.name}",
                          case=detail.case, export=ExportRow(info), manifest=manifest, files=files)

        return guarded(request, CHANGE_CASES, "reading an export", show)

    @router.get("/console/cases/{case}/exports/{export_id}/download")
    def download(request: Request, case: CaseId, export_id: ExportId) -> Response:
        def send(viewer: Viewer) -> Response:
            # The folder is the server's (<data dir>/exports/<tenant>/<export id>), found from the ids inside the
            # viewer's tenant and case; checked before the first byte, zipped as the browser reads.
            name, chunks = ediscovery.export_download(viewer.tenant, case, export_id, viewer.principal.actor)
            return ClosingStreamingResponse(chunks, media_type="application/zip", headers={
                **NO_STORE, "Content-Disposition": f'attachment; filename="{name}"',
                "X-Content-Type-Options": "nosniff"})

        return guarded(request, CHANGE_CASES, "downloading an export", send)

    # -- holds --------------------------------------------------------------------------------------------------

    @router.get("/console/holds")
    def holds(request: Request, released: bool = False) -> Response:
        def show(viewer: Viewer) -> Response:
            rows = compliance.holds(viewer.tenant, active_only=not released)
            users = actions.user_names(viewer.tenant, sorted({h.user_id for h in rows if h.user_id}))
            cases = {c.id: c.name for c in actions.reads.cases(viewer.tenant)}
            return render("holds.html", 200, viewer, request, title="Holds", holds=rows, users=users, cases=cases,
                          released=released, may_hold=viewer.may(CHANGE_HOLDS),
                          done=request.query_params.get("done"))

        return guarded(request, READ_CASES, "reading the holds", show)

    @router.post("/console/holds")
    async def mailbox_hold(request: Request) -> Response:
        def change(viewer: Viewer, form: Form) -> Response:
            who = field(form, "user", 256, required=True, label="User")
            name = field(form, "name", MAX_NAME, label="Name") or f"Mailbox hold: {who}"
            user_id = actions.user_ids(viewer.tenant, who)[0]
            hold = compliance.place_hold(viewer.tenant, name=name, actor=viewer.principal.actor, user_id=user_id,
                                         duration_days=days_field(form))
            audit(viewer, "POST /console/holds", hold.id, user_id=user_id)
            return done("/console/holds?done=hold")

        return await posted(request, CHANGE_HOLDS, "placing a hold", change)

    @router.post("/console/holds/{hold_id}/release")
    async def release(request: Request, hold_id: HoldId) -> Response:
        def change(viewer: Viewer, form: Form) -> Response:
            hold: HoldInfo = compliance.release_hold(viewer.tenant, hold_id, viewer.principal.actor)
            audit(viewer, "POST /console/holds/{hold_id}/release", hold.id)
            # Back to the page the hold is listed on, chosen from the hold, never from the form.
            return done(f"/console/cases/{hold.case_id}?done=released" if hold.case_id
                        else "/console/holds?done=released")

        return await posted(request, CHANGE_HOLDS, "releasing a hold", change)

    # -- archive verification -----------------------------------------------------------------------------------

    @router.get("/console/verify")
    def verify(request: Request, run: Annotated[bool, Query()] = False) -> Response:
        def show(viewer: Viewer) -> Response:
            report = services.ledger.verify(viewer.tenant) if run else None
            return render("verify.html", 200, viewer, request, title="Archive verification", report=report,
                          shown=MAX_PROBLEMS_SHOWN)

        return guarded(request, READ_VERIFY, "verifying the archive", show)
