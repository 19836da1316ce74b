"""The console's provisioning pages (issue #15), added to ``build_pages``' router with its guard and renderer, so
each page is checked as every console page is (a session, then the roles, then the page):

- ``GET /console/provisioning``: the apps, each with its status, health and the host its token is sent to;
- ``GET /console/provisioning/{app}``: one app — its connection (the token only as "set", with its host), Test
  Connection, provisioning status, quarantine (with **Release**), what the app holds, the current cycle's
  progress bar (htmx polls ``…/{app}/status`` while a cycle runs) and the actions of its last cycles as a chart;
- ``GET /console/provisioning/{app}/mappings``: attribute mappings, scoping filters, actions, thresholds, roles and
  who is in scope (and who is skipped, why);
- ``GET|POST /console/provisioning/{app}/on-demand``: provision one user now, with the steps Entra shows (import,
  scope, match, action, result);
- ``GET /console/provisioning/{app}/logs``: the app's log with filters (result, action, user, cycle), newest first;
- ``POST …/{app}/test-connection``, ``…/{app}/run``, ``…/{app}/release``: the changes, each with the session's
  CSRF token, each recorded in the ledger (``admin.change``, ``via: console``).

``{app}`` is the app's id or name, looked up in the viewer's tenant only (another tenant's id is a 404 page). The
roles are the admin API's for every provisioning route: Application Administrator or Organization Management; a
viewer who may open these pages may take their actions, so no action is hidden from a viewer who sees the page.
Everything goes through ``ProvisioningService``, the calls the admin API and the CLI make.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from tenantry.archive.models import LedgerAction
from tenantry.console.kit import Form, Kit
from tenantry.console.service import READ_PROVISIONING, Viewer
from tenantry.core.clock import utcnow
from tenantry.core.egress import origin
from tenantry.core.errors import Conflict, Invalid
from tenantry.provisioning.config import AppConfig
from tenantry.provisioning.results import (
    AppHealth,
    AppInfo,
    AppStatus,
    CycleInfo,
    CycleKind,
    CycleReport,
    LogAction,
    LogEntry,
    Result,
)
from tenantry.provisioning.scoping import Operator
from tenantry.services import Services

log = logging.getLogger(__name__)
AppRef = Annotated[str, Path(min_length=1, max_length=128)]
Loose = Annotated[str, Query(max_length=1000)]   # checked below, so a bad value is a page that says why

BASE = "/console/provisioning"
LOG_PAGE = 50
CHART_CYCLES = 10
MAX_USER = 256
MAX_ATTRIBUTE = 256
MAX_VALUE = 1024
MAX_CLAUSES = 50        # per kind of filter (users, groups), all filters together
FILTER_KEYS = {"users": "scoping_filters", "groups": "group_scoping_filters"}
WATCH_SECONDS = 30     # after "Run a cycle now": how long the page waits for the cycle to show up
POLL_STOP = 286        # htmx: this status stops polling (the answer is still swapped in)
CYCLE_ID = re.compile(r"^[0-9A-Za-z-]{1,64}$")
# The chart's series: a cycle's statistics summed over users and groups.
CHART_SERIES = (("created", ("users_created", "groups_created")),
                ("updated", ("users_updated", "groups_updated")),
                ("disabled", ("users_disabled",)),
                ("deleted", ("users_deleted", "groups_deleted")),
                ("failed", ("users_failed", "groups_failed")))


def token_host(info: AppInfo) -> str:
    """The host (and port) the app's secret token is sent to: the stored token belongs to its URL's origin."""
    scheme, host, port = origin(info.tenant_url)
    default = 443 if scheme == "https" else 80
    return host if port == default else f"{host}:{port}"


def chart_rows(cycles: list[CycleInfo]) -> list[tuple[str, list[int]]]:
    """The actions of the last cycles (oldest first), per series of ``CHART_SERIES``; on-demand runs left out."""
    rows = []
    for c in reversed(cycles):
        if c.kind == CycleKind.ON_DEMAND:
            continue
        label = f"{c.started_at[5:16].replace('T', ' ')} {c.kind}"
        rows.append((label, [sum(int(c.stats.get(k, 0)) for k in keys) for _, keys in CHART_SERIES]))
    return rows[-CHART_CYCLES:]


def filters_digest(config: AppConfig) -> str:
    """What the scoping forms were drawn from: a change is made only to the filters the administrator saw."""
    data = {key: config.model_dump(mode="json")[key] for key in FILTER_KEYS.values()}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:32]


def changed_filters(config: AppConfig, form: Form) -> tuple[str, list[list[dict[str, Any]]], str]:
    """The scoping filters after the form's change: (configuration key, the filters, what changed). ``add`` puts a
    clause into filter N (all clauses must hold) or a new filter (any filter may hold); ``remove`` takes clause M
    of filter N out (a filter left empty goes). ``Invalid`` for a form that does not say one of these."""
    kind = form.get("kind", "")
    if kind not in FILTER_KEYS:
        raise Invalid("kind is users or groups")
    key = FILTER_KEYS[kind]
    filters: list[list[dict[str, Any]]] = config.model_dump(mode="json")[key]
    where = form.get("filter", "new")
    if where != "new" and not (where.isdigit() and 1 <= int(where) <= len(filters)):
        raise Invalid(f"filter is a filter's number (1 to {len(filters)}) or new")
    op = form.get("op", "")
    if op == "remove":
        number = form.get("clause", "")
        if where == "new" or not (number.isdigit() and 1 <= int(number) <= len(filters[int(where) - 1])):
            raise Invalid("name the filter and the clause to remove")
        gone = filters[int(where) - 1].pop(int(number) - 1)
        if not filters[int(where) - 1]:
            del filters[int(where) - 1]
        return key, filters, f"{kind} filter {where}: removed {gone['attribute']} {gone['operator']}"
    if op != "add":
        raise Invalid("op is add or remove")
    attribute = checked_text(form.get("attribute", ""), "the attribute", MAX_ATTRIBUTE)
    if not attribute:
        raise Invalid("a clause needs an attribute (userName, department, …)")
    operator = Operator.parse(checked_text(form.get("operator", ""), "the operator", 64))
    value = form.get("value", "")
    if len(value) > MAX_VALUE:
        raise Invalid(f"the value is at most {MAX_VALUE} characters")
    if sum(len(f) for f in filters) >= MAX_CLAUSES:
        raise Invalid(f"at most {MAX_CLAUSES} clauses in the {kind}' scoping filters")
    clause = {"attribute": attribute, "operator": operator.value, "value": value if value != "" else None}
    if where == "new":
        filters.append([clause])
    else:
        filters[int(where) - 1].append(clause)
    return key, filters, f"{kind} filter {where}: added {attribute} {operator.value}"


def checked_text(value: str, what: str, limit: int) -> str:
    text = value.strip()
    if len(text) > limit or any(ord(ch) < 0x20 for ch in text):
        raise Invalid(f"{what} is at most {limit} characters, without control characters")
    return text


# Long by design (issue #11): a router factory is its routes, each a few lines over the service.
def add_provisioning_pages(router: APIRouter, services: Services, kit: Kit) -> None:
    render, guarded = kit.render, kit.guarded
    provisioning = services.provisioning

    def app_of(viewer: Viewer, ref: str) -> str:
        return provisioning.find_app(viewer.tenant, ref)     # NotFound (a 404 page) outside the viewer's tenant

    def user_of(tenant: str, text: str) -> str | None:
        """A user of ``tenant`` named by id, userName or e-mail address (as the CLI's ``on-demand`` names one: a
        disabled user too, whom on-demand provisioning disables in the app); None for none, or for several."""
        directory = services.directory
        if directory.users_by_id(tenant, [text]):
            return text
        found = directory.find_users_by_email(tenant, [text]).get(text.strip().lower(), [])
        return found[0].id if len(found) == 1 else None

    def audit(viewer: Viewer, app_id: str, operation: str, **detail: Any) -> None:
        services.ledger.record(viewer.tenant, viewer.principal.actor, LedgerAction.ADMIN_CHANGE, app_id,
                               via="console", operation=f"POST {BASE}/{{app}}/{operation}", **detail)

    def watching(status: AppStatus, ran: str) -> bool:
        """Poll the status: a cycle runs, or one was asked for (``ran``: when, in epoch milliseconds) and has not
        shown up yet (the thread that runs it may not have taken the app's lease when the page is drawn)."""
        if status.running:
            return True
        if not ran.isdigit() or len(ran) > 15:
            return False
        asked = datetime.fromtimestamp(int(ran) / 1000, UTC)
        if utcnow() - asked > timedelta(seconds=WATCH_SECONDS):
            return False
        return not status.cycles or datetime.fromisoformat(status.cycles[0].started_at) < asked

    def app_context(viewer: Viewer, app_id: str, ran: str = "") -> dict[str, Any]:
        status = provisioning.status(viewer.tenant, app_id, cycles=CHART_CYCLES)
        return {"app": status, "token_host": token_host(status), "watch": watching(status, ran), "ran": ran,
                "rows": chart_rows(status.cycles), "series": [name for name, _ in CHART_SERIES],
                "base": f"{BASE}/{status.id}"}

    def show_app(viewer: Viewer, request: Request, app_id: str, status_code: int = 200, **extra: Any) -> Response:
        context = app_context(viewer, app_id, request.query_params.get("ran", "")[:15])
        return render("prov_app.html", status_code, viewer, request, title=context["app"].name, tab="overview",
                      done=request.query_params.get("done", ""), **context, **extra)

    async def action(request: Request, ref: str, what: str,
                     change: Callable[[Viewer, str, Form], Response]) -> Response:
        """A POST of the app's page (``Kit.posted``), with the app found in the viewer's tenant (another's: 404)."""
        return await kit.posted(request, READ_PROVISIONING, what, lambda v, form: change(v, app_of(v, ref), form))

    @router.get(BASE)
    def apps(request: Request) -> Response:
        def show(viewer: Viewer) -> Response:
            listed = provisioning.list_apps(viewer.tenant)
            return render("provisioning.html", 200, viewer, request, title="Provisioning", apps=listed,
                          hosts={a.id: token_host(a) for a in listed})

        return guarded(request, READ_PROVISIONING, "reading the provisioning apps", show)

    @router.get(BASE + "/{app}")
    def app_page(request: Request, app: AppRef) -> Response:
        return guarded(request, READ_PROVISIONING, "reading a provisioning app",
                       lambda v: show_app(v, request, app_of(v, app)))

    @router.get(BASE + "/{app}/status")
    def app_status(request: Request, app: AppRef, ran: Annotated[str, Query(max_length=15)] = "") -> Response:
        """The status part of the app's page, for htmx's polling; 286 (stop polling) once nothing runs."""
        def show(viewer: Viewer) -> Response:
            context = app_context(viewer, app_of(viewer, app), ran)
            if not request.headers.get("HX-Request"):
                return RedirectResponse(context["base"], 303, headers={"Cache-Control": "no-store"})
            return render("_prov_status.html", 200 if context["watch"] else POLL_STOP, viewer, request, **context)

        return guarded(request, READ_PROVISIONING, "reading a provisioning app's status", show)

    @router.post(BASE + "/{app}/test-connection")
    async def test_connection(request: Request, app: AppRef) -> Response:
        def change(viewer: Viewer, app_id: str, _form: Form) -> Response:
            result = provisioning.test_connection(viewer.tenant, app_id)
            audit(viewer, app_id, "test-connection", ok=result.ok)
            # 200 either way: the test ran, and its answer (a failure too) is what the page shows.
            return show_app(viewer, request, app_id, connection=result)

        return await action(request, app, "testing a provisioning app's connection", change)

    @router.post(BASE + "/{app}/run")
    async def run(request: Request, app: AppRef) -> Response:
        def change(viewer: Viewer, app_id: str, _form: Form) -> Response:
            if provisioning.status(viewer.tenant, app_id, cycles=0).running:
                raise Conflict("a cycle of this app is running: its progress is on the app's page")
            asked = int(utcnow().timestamp() * 1000)
            # As the admin API's run with allow_deletions: the cycle runs on a thread of this process, and the
            # page follows it through the app's status (its lease, its cycle row).
            threading.Thread(target=_run_quietly, args=(services, viewer.tenant, app_id), daemon=True).start()
            audit(viewer, app_id, "run")
            return RedirectResponse(f"{BASE}/{app_id}?done=run&ran={asked}", 303,
                                    headers={"Cache-Control": "no-store"})

        return await action(request, app, "running a provisioning cycle", change)

    @router.post(BASE + "/{app}/release")
    async def release(request: Request, app: AppRef) -> Response:
        def change(viewer: Viewer, app_id: str, _form: Form) -> Response:
            before = provisioning.status(viewer.tenant, app_id, cycles=0)
            if before.health != AppHealth.QUARANTINED:
                raise Invalid(f"{before.name} is not in quarantine (its health is {before.health})")
            # Releasing is starting it again: health healthy, quarantine cleared, the next cycle due now (the
            # admin API's POST …/start, the CLI's provisioning start); logged in the app's log by name.
            provisioning.set_enabled(viewer.tenant, app_id, True, actor=viewer.principal.id)
            audit(viewer, app_id, "release", quarantined_since=before.quarantined_at)
            return RedirectResponse(f"{BASE}/{app_id}?done=released", 303, headers={"Cache-Control": "no-store"})

        return await action(request, app, "releasing a provisioning app from quarantine", change)

    def mappings_page(viewer: Viewer, request: Request, app_id: str, *, error: str = "",
                      form: Form | None = None) -> Response:
        info = provisioning.status(viewer.tenant, app_id, cycles=0)
        config = provisioning.config(viewer.tenant, app_id)
        scope = provisioning.scope(viewer.tenant, app_id)
        named = {u.id: u.user_name for u in services.directory.users_by_id(
            viewer.tenant, [*scope.in_scope[:LOG_PAGE], *list(scope.skipped)[:LOG_PAGE]])}
        return render("prov_mappings.html", 200, viewer, request, title=f"{info.name}: mappings and scoping",
                      app=info, tab="mappings", base=f"{BASE}/{app_id}", config=config,
                      roles=provisioning.list_roles(viewer.tenant, app_id), scope=scope, named=named,
                      shown=LOG_PAGE, digest=filters_digest(config), operators=[o.value for o in Operator],
                      error=error, form=form or {}, done=request.query_params.get("done", ""))

    @router.get(BASE + "/{app}/mappings")
    def mappings(request: Request, app: AppRef) -> Response:
        return guarded(request, READ_PROVISIONING, "reading a provisioning app's mappings",
                       lambda v: mappings_page(v, request, app_of(v, app)))

    @router.post(BASE + "/{app}/scoping")
    async def scoping(request: Request, app: AppRef) -> Response:
        def change(viewer: Viewer, app_id: str, form: Form) -> Response:
            config = provisioning.config(viewer.tenant, app_id)
            if form.get("digest") != filters_digest(config):
                raise Conflict("the scoping filters were changed meanwhile (by someone else, or in another "
                               "window): open the page again and repeat the change")
            try:
                key, filters, what = changed_filters(config, form)
                # The admin API's PATCH …/config: validated (a bad regular expression or operator is refused,
                # the old filters stay), the app's log names the administrator, the next cycle compares everyone.
                provisioning.configure(viewer.tenant, app_id, {key: filters}, actor=viewer.principal.id)
            except Invalid as exc:   # the form doing its job: said in place, the form kept
                return mappings_page(viewer, request, app_id, error=exc.message, form=form)
            audit(viewer, app_id, "scoping", change=what)
            return RedirectResponse(f"{BASE}/{app_id}/mappings?done=scoping#scoping", 303,
                                    headers={"Cache-Control": "no-store"})

        return await action(request, app, "changing a provisioning app's scoping filters", change)

    def on_demand_page(viewer: Viewer, request: Request, app_id: str, *, user: str = "", error: str = "",
                       report: CycleReport | None = None, user_id: str = "") -> Response:
        info = provisioning.status(viewer.tenant, app_id, cycles=0)
        return render("prov_on_demand.html", 200, viewer, request, title=f"{info.name}: provision on demand",
                      app=info, tab="on-demand", base=f"{BASE}/{app_id}", user=user, error=error, report=report,
                      user_id=user_id)

    @router.get(BASE + "/{app}/on-demand")
    def on_demand_form(request: Request, app: AppRef) -> Response:
        return guarded(request, READ_PROVISIONING, "provisioning a user on demand",
                       lambda v: on_demand_page(v, request, app_of(v, app)))

    @router.post(BASE + "/{app}/on-demand")
    async def on_demand(request: Request, app: AppRef) -> Response:
        def change(viewer: Viewer, app_id: str, form: Form) -> Response:
            text = form.get("user", "").strip()
            if not text or len(text) > MAX_USER or any(ord(ch) < 0x20 for ch in text):
                # The form doing its job: said in place (200), not as a failed page load.
                return on_demand_page(viewer, request, app_id, user=text[:MAX_USER],
                                      error=f"name a user: a userName, e-mail address or id (at most {MAX_USER} "
                                            "characters)")
            user_id = user_of(viewer.tenant, text)
            if user_id is None:
                return on_demand_page(viewer, request, app_id, user=text,
                                      error=f"no user {text!r} in this tenant (a userName, e-mail address or id)")
            report = provisioning.provision_on_demand(viewer.tenant, app_id, user_id)
            audit(viewer, app_id, "on-demand", user_id=user_id, status=str(report.status))
            return on_demand_page(viewer, request, app_id, user=text, report=report, user_id=user_id)

        return await action(request, app, "provisioning a user on demand", change)

    @router.get(BASE + "/{app}/logs")
    def logs(request: Request, app: AppRef, result: Loose = "", action: Loose = "", user: Loose = "",
             cycle: Loose = "", before: Loose = "") -> Response:
        def show(viewer: Viewer) -> Response:
            app_id = app_of(viewer, app)
            if result and result not in set(Result):
                raise Invalid(f"result is one of {', '.join(Result)}, not {result[:40]!r}")
            if action and action not in set(LogAction):
                raise Invalid(f"action is one of {', '.join(LogAction)}, not {action[:40]!r}")
            if cycle and not CYCLE_ID.match(cycle):
                raise Invalid("cycle is a cycle's id (letters, digits and dashes, at most 64)")
            if before and not (before.isdigit() and 0 < int(before) < 2**62):
                raise Invalid("before is a log entry's number")
            who = checked_text(user, "user", MAX_USER)
            source = (user_of(viewer.tenant, who) or who) if who else None
            rows: list[LogEntry] = provisioning.logs(
                viewer.tenant, app_id, source_id=source, result=result or None, cycle_id=cycle or None,
                action=action or None, limit=LOG_PAGE + 1, before=int(before) if before else None)
            more = len(rows) > LOG_PAGE
            rows = rows[:LOG_PAGE]
            params = {k: v for k, v in request.query_params.items() if k != "before"}
            older = None
            if more:
                older = f"{request.url.path}?{urlencode({**params, 'before': str(rows[-1].id)})}"
            info = provisioning.status(viewer.tenant, app_id, cycles=0)
            return render("prov_logs.html", 200, viewer, request, title=f"{info.name}: provisioning logs", app=info,
                          tab="logs", base=f"{BASE}/{app_id}", rows=rows, older=older, newest=bool(before),
                          results=list(Result), actions=list(LogAction),
                          f={"result": result, "action": action, "user": who, "cycle": cycle})

        return guarded(request, READ_PROVISIONING, "reading a provisioning app's logs", show)


def _run_quietly(services: Services, tenant: str, app_id: str) -> None:
    """A cycle asked for in the console; a second one while another runs is refused by the lease, and that
    refusal has no one to answer (the page shows the cycle that runs)."""
    try:
        services.provisioning.run_cycle(tenant, app_id)
    except Conflict as exc:
        log.info("provisioning cycle asked for in the console not run: %s", exc.message)
