"""The ``tenantry`` command: a thin layer over the same services the server uses."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table

from tenantry.app import Services, bootstrap, build_services, create_app
from tenantry.core.errors import TenantryError
from tenantry.core.private import restrict_process_umask
from tenantry.core.settings import Settings

app = typer.Typer(help="Tenantry: directory, SCIM provisioning, archive and compliance.", no_args_is_help=True)
token_app = typer.Typer(help="Bearer tokens for the SCIM endpoint, the admin API and the operator.",
                        no_args_is_help=True)
tenant_app = typer.Typer(help="Tenants.", no_args_is_help=True)
directory_app = typer.Typer(help="Users, groups, domains, licences and role groups.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(token_app, name="token")
app.add_typer(tenant_app, name="tenant")
app.add_typer(directory_app, name="directory")
app.add_typer(db_app, name="db")
connector_app = typer.Typer(help="Message archive connectors (WhatsApp exports, archiver feeds).", no_args_is_help=True)
archive_app = typer.Typer(help="Mailboxes and archived items.", no_args_is_help=True)
app.add_typer(connector_app, name="connector")
app.add_typer(archive_app, name="archive")
hold_app = typer.Typer(help="Litigation holds.", no_args_is_help=True)
retention_app = typer.Typer(help="Retention policies.", no_args_is_help=True)
case_app = typer.Typer(help="eDiscovery cases: custodians, holds, searches, exports.", no_args_is_help=True)
app.add_typer(hold_app, name="hold")
app.add_typer(retention_app, name="retention")
app.add_typer(case_app, name="case")
provisioning_app = typer.Typer(help="Outbound provisioning into downstream SCIM apps.", no_args_is_help=True)
app.add_typer(provisioning_app, name="provisioning")
scim_app = typer.Typer(help="The SCIM endpoint identity providers provision into: its request log.",
                       no_args_is_help=True)
app.add_typer(scim_app, name="scim")

console = Console()
err = Console(stderr=True)

TenantOpt = Annotated[str | None, typer.Option("--tenant", "-t", help="Tenant id (default: the default tenant).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _services() -> Services:
    return build_services(Settings())


def _tenant(services: Services, tenant: str | None) -> str:
    """The tenant a command works on; one that does not exist is a clear error (not a constraint message)."""
    chosen = tenant or services.settings.default_tenant
    if chosen not in {t["id"] for t in services.directory.list_tenants()}:
        hint = ("`tenantry serve` creates it on its first start, or `tenantry tenant create "
                f"{chosen}`") if chosen == services.settings.default_tenant else f"`tenantry tenant create {chosen}`"
        _fail(f"no tenant {chosen!r}: {hint}")
    return chosen


def _fail(message: str, code: int = 1) -> None:
    # Messages quote names and files the user handed in: their brackets are text, not rich markup.
    err.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(code)


def _run(func: Any) -> Any:
    """Run a service call; a domain or SCIM error becomes a message and a non-zero exit."""
    from scim2_models import SCIMException

    try:
        return func()
    except TenantryError as exc:
        _fail(exc.message)
    except SCIMException as exc:
        _fail(f"{exc.scim_type or exc.status}: {exc.detail}")


@contextmanager
def _progress_bar(label: str) -> Iterator[Callable[[int, int | None], None]]:
    """A rich progress bar on stderr; yields the ``progress(done, total)`` callback a service takes."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _print(rows: list[dict[str, Any]], columns: list[str], as_json: bool) -> None:
    if as_json:
        console.print_json(json.dumps(rows, default=str))
        return
    table = Table(*columns)
    for row in rows:
        table.add_row(*[str(row.get(c, "")) for c in columns])
    console.print(table)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    scheduler: Annotated[bool, typer.Option("--scheduler/--no-scheduler",
                                            help="Run due connectors from this process.")] = True,
) -> None:
    """Run the server (SCIM at /scim/v2, admin API at /api/v1) on the configured database."""
    import uvicorn

    from tenantry.jobs import Scheduler, make_jobs

    settings = Settings()
    services = build_services(settings)
    issued = bootstrap(services)
    if issued:
        console.print("[bold]First run: these tokens are shown once. Keep them now.[/bold]")
        for scope, secret in issued.items():
            console.print(f"  {scope} token: {secret}")
    bind_host = host or settings.host
    bind_port = port or settings.port
    console.print(f"Tenantry on http://{bind_host}:{bind_port}  (SCIM: /scim/v2, database: "
                  f"{services.db.engine.url.render_as_string(hide_password=True)})")
    background = Scheduler(services, make_jobs(services), settings.scheduler_interval) if scheduler else None
    if background:
        background.start()
    try:
        uvicorn.run(create_app(settings, services), host=bind_host, port=bind_port, log_level="warning")
    finally:
        if background:
            background.stop()


@app.command()
def worker(concurrency: Annotated[int, typer.Option(help="Jobs run at once by this worker.")] = 1) -> None:
    """Run a Celery worker for Tenantry's jobs (needs TENANTRY_BROKER_URL, e.g. redis://127.0.0.1:6379/0)."""
    from tenantry.jobs import make_celery

    settings = Settings()
    if not settings.broker_url:
        _fail("set TENANTRY_BROKER_URL to the broker (redis://… or amqp://…) first")
    bootstrap(build_services(settings))  # migrate and repair the index before taking jobs
    celery_app = make_celery(settings, build_services)
    celery_app.worker_main(["worker", "--loglevel=WARNING", f"--concurrency={concurrency}", "--pool=threads",
                            "-Q", settings.broker_queue, "--without-gossip", "--without-mingle"])


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the migrations (the server also does this on start)."""
    services = _services()
    console.print(f"schema up to date: {services.db.engine.url.render_as_string(hide_password=True)}")


@tenant_app.command("create")
def tenant_create(tenant_id: str, name: Annotated[str | None, typer.Option()] = None) -> None:
    services = _services()
    _run(lambda: services.directory.create_tenant(tenant_id, name or tenant_id))
    console.print(f"tenant {tenant_id} created; SCIM at /tenants/{tenant_id}/scim/v2")


@tenant_app.command("list")
def tenant_list(as_json: JsonOpt = False) -> None:
    _print(_services().directory.list_tenants(), ["id", "name", "created_at"], as_json)


@token_app.command("create")
def token_create(
    tenant: TenantOpt = None,
    scope: Annotated[str, typer.Option(help="scim (a tenant's SCIM endpoint), admin (a tenant's admin API) or "
                                           "operator (lists and creates tenants; installation-wide)")] = "scim",
    name: Annotated[str, typer.Option(help="A label to recognise it by.")] = "default",
) -> None:
    """Issue a token; the secret is printed once and stored only as a hash."""
    services = _services()
    if scope == "operator" and tenant not in (None, services.settings.default_tenant):
        _fail("an operator token is for the installation, not a tenant: leave out --tenant")
    issued = _run(lambda: services.directory.issue_token(_tenant(services, tenant), scope, name))
    err.print(f"token {issued.id} ({issued.scope}, tenant {issued.tenant_id}); the secret follows, shown once:")
    print(issued.secret)


@token_app.command("rotate")
def token_rotate(token_id: str) -> None:
    """Revoke a token and issue its successor (same tenant, scope and name)."""
    services = _services()
    issued = _run(lambda: services.directory.rotate_token(token_id))
    err.print(f"token {token_id} revoked; new token {issued.id}; the secret follows, shown once:")
    print(issued.secret)


@token_app.command("revoke")
def token_revoke(token_id: str) -> None:
    services = _services()
    _run(lambda: services.directory.revoke_token(token_id))
    console.print(f"token {token_id} revoked")


@token_app.command("list")
def token_list(tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    services = _services()
    rows = [t.__dict__ for t in services.directory.list_tokens(tenant)]
    _print(rows, ["id", "tenant_id", "scope", "name", "created_at", "revoked_at"], as_json)


@directory_app.command("users")
def users(
    tenant: TenantOpt = None,
    filter: Annotated[str | None, typer.Option("--filter", "-f", help='SCIM filter, e.g. userName sw "a"')] = None,
    count: int = 100,
    as_json: JsonOpt = False,
) -> None:
    """List users (SCIM filter syntax)."""
    services = _services()
    page = _run(lambda: services.scim.search(_tenant(services, tenant), "User", filter_text=filter, count=count))
    rows = [{"id": d["id"], "userName": d.get("userName"), "active": d.get("active", True),
             "displayName": d.get("displayName", "")} for d in page.resources]
    if as_json:
        console.print_json(json.dumps(page.resources))
    else:
        _print(rows, ["id", "userName", "displayName", "active"], False)
        console.print(f"{len(rows)} of {page.total}")


@directory_app.command("user-add")
def user_add(
    user_name: str,
    tenant: TenantOpt = None,
    email: Annotated[str | None, typer.Option(help="Work e-mail address.")] = None,
    mobile: Annotated[str | None, typer.Option(help="Mobile phone number.")] = None,
    given_name: Annotated[str | None, typer.Option()] = None,
    family_name: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Create a user (the same record SCIM would create)."""
    services = _services()
    payload: dict[str, Any] = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user_name}
    if email:
        payload["emails"] = [{"type": "work", "value": email, "primary": True}]
    if mobile:
        payload["phoneNumbers"] = [{"type": "mobile", "value": mobile}]
    if given_name or family_name:
        payload["name"] = {k: v for k, v in (("givenName", given_name), ("familyName", family_name)) if v}
    doc = _run(lambda: services.scim.create(_tenant(services, tenant), "User", payload))
    console.print(f"user {doc['id']} created")


@directory_app.command("groups")
def groups(tenant: TenantOpt = None, filter: Annotated[str | None, typer.Option("--filter", "-f")] = None,
           as_json: JsonOpt = False) -> None:
    services = _services()
    page = _run(lambda: services.scim.search(_tenant(services, tenant), "Group", filter_text=filter,
                                             with_members=False))
    _print([{"id": d["id"], "displayName": d.get("displayName")} for d in page.resources],
           ["id", "displayName"], as_json)


@directory_app.command("domain-add")
def domain_add(name: str, tenant: TenantOpt = None, verified: bool = False) -> None:
    services = _services()
    domain = _run(lambda: services.directory.add_domain(_tenant(services, tenant), name, verified=verified))
    console.print(f"domain {domain['name']} added; to verify, publish TXT {domain['verification_txt']}")


@directory_app.command("domain-verify")
def domain_verify(name: str, tenant: TenantOpt = None) -> None:
    """Verify a domain by looking up its TXT records (dnspython)."""
    import dns.exception
    import dns.resolver

    services = _services()
    try:
        answers = dns.resolver.resolve(name, "TXT", lifetime=5)
        records = [b"".join(r.strings).decode() for r in answers]
    except dns.exception.DNSException as exc:
        _fail(f"TXT lookup for {name} failed: {exc}")
        return
    _run(lambda: services.directory.verify_domain(_tenant(services, tenant), name, records))
    console.print(f"domain {name} verified")


@directory_app.command("domain-remove")
def domain_remove(name: str, tenant: TenantOpt = None) -> None:
    services = _services()
    _run(lambda: services.directory.remove_domain(_tenant(services, tenant), name))
    console.print(f"domain {name} removed")


@directory_app.command("domains")
def domains(tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    services = _services()
    _print(services.directory.list_domains(_tenant(services, tenant)),
           ["name", "verified", "default", "verification_txt"], as_json)


@directory_app.command("licence-assign")
def licence_assign(user_id: str, sku: str, tenant: TenantOpt = None) -> None:
    services = _services()
    _run(lambda: services.directory.assign_licence(_tenant(services, tenant), user_id, sku))
    console.print(f"{sku.upper()} assigned to {user_id}")


@directory_app.command("licence-remove")
def licence_remove(user_id: str, sku: str, tenant: TenantOpt = None) -> None:
    services = _services()
    _run(lambda: services.directory.remove_licence(_tenant(services, tenant), user_id, sku))
    console.print(f"{sku.upper()} removed from {user_id}")


@directory_app.command("licences")
def licences(user_id: str, tenant: TenantOpt = None) -> None:
    services = _services()
    for sku in _run(lambda: services.directory.licences_of(_tenant(services, tenant), user_id)):
        console.print(sku)


@directory_app.command("role-groups")
def role_groups(tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    services = _services()
    _print(services.directory.list_role_groups(_tenant(services, tenant)), ["name", "roles", "members"], as_json)


@directory_app.command("role-group-add")
def role_group_add(name: str, role: Annotated[list[str], typer.Option("--role", "-r")],
                   tenant: TenantOpt = None) -> None:
    services = _services()
    _run(lambda: services.directory.create_role_group(_tenant(services, tenant), name, role))
    console.print(f"role group {name} created")


@directory_app.command("role-group-member")
def role_group_member(name: str, user_id: str, tenant: TenantOpt = None,
                      remove: Annotated[bool, typer.Option("--remove")] = False) -> None:
    services = _services()
    t = _tenant(services, tenant)
    if remove:
        _run(lambda: services.directory.remove_role_group_member(t, name, user_id))
    else:
        _run(lambda: services.directory.add_role_group_member(t, name, user_id))
    console.print("done")


# -- connectors -----------------------------------------------------------------------------------


def _user_id(services: Services, tenant: str, who: str) -> str:
    found = services.directory.find_users_by_email(tenant, [who]).get(who.strip().lower())
    if found:
        return found[0].id
    if services.directory.users_by_id(tenant, [who]):
        return who
    _fail(f"no user {who!r} in tenant {tenant!r}")
    raise AssertionError


@connector_app.command("create")
def connector_create(
    name: str,
    by: Annotated[str, typer.Option("--by", help="The user creating it (needs Mailbox Import Export).")],
    kind: Annotated[str, typer.Option(help="whatsapp-export or archiver-feed")] = "whatsapp-export",
    accept_terms: Annotated[bool, typer.Option("--accept-terms", help="Accept the terms of service.")] = False,
    timezone: Annotated[str, typer.Option(help="Time zone of the exporting phones (exports).")] = "UTC",
    url: Annotated[str | None, typer.Option(help="Archiver feed URL.")] = None,
    username: Annotated[str | None, typer.Option(help="Archiver feed user name.")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the feed password from stdin.")]
    = False,
    no_directory_mobiles: Annotated[bool, typer.Option("--no-directory-mobiles")] = False,
    outsider_domain: Annotated[str, typer.Option()] = "whatsapp.invalid",
    run_at: Annotated[str, typer.Option(help="Daily run time, UTC HH:MM.")] = "02:00",
    overlap_hours: Annotated[int, typer.Option(help="Feeds: hours each run re-reads behind the checkpoint "
                                                    "(48 to 2160), for messages that reach the archiver late.")]
    = 48,
    tenant: TenantOpt = None,
) -> None:
    """Step 1 of the wizard: create a draft connector (the source is tested before it is saved)."""
    services = _services()
    t = _tenant(services, tenant)
    source: dict[str, Any] = {"timezone": timezone} if kind == "whatsapp-export" else {"url": url, "username": username}
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    info = _run(lambda: services.connectors.create(
        t, name=name, kind=kind, created_by=_user_id(services, t, by), accept_terms=accept_terms, source=source,
        source_password=password, use_directory_mobiles=not no_directory_mobiles, outsider_domain=outsider_domain,
        run_at=run_at, overlap_hours=overlap_hours))
    console.print(f"connector {info['name']} ({info['id']}) created as a draft; next: mapping, consent, review, enable")


@connector_app.command("mapping")
def connector_mapping(name: str, csv_file: Path, tenant: TenantOpt = None) -> None:
    """Upload the user-mapping CSV (mobile number, e-mail[, name]); a bad line saves nothing."""
    services = _services()
    t = _tenant(services, tenant)
    try:
        text = csv_file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"cannot read {csv_file}: {exc}")
        return
    saved = _run(lambda: services.connectors.upload_mapping(t, services.connectors.find(t, name), text))
    console.print(f"{saved.entries} mapping entries saved")
    for note in saved.notes:   # the CSV's own text: printed without markup
        console.print(f"  note: {note}", markup=False, highlight=False)


@connector_app.command("consent")
def connector_consent(name: str, by: Annotated[str, typer.Option("--by")], tenant: TenantOpt = None) -> None:
    """Record the organisation's admin consent (the consenting user needs Organization Management)."""
    services = _services()
    t = _tenant(services, tenant)
    _run(lambda: services.connectors.consent(t, services.connectors.find(t, name), _user_id(services, t, by)))
    console.print("consent recorded")


@connector_app.command("review")
def connector_review(name: str, tenant: TenantOpt = None) -> None:
    services = _services()
    t = _tenant(services, tenant)
    info = _run(lambda: services.connectors.review(t, services.connectors.find(t, name)))
    console.print_json(json.dumps(info, default=str))
    if not info["ready"]:
        raise typer.Exit(1)


@connector_app.command("enable")
def connector_enable(name: str, tenant: TenantOpt = None) -> None:
    services = _services()
    t = _tenant(services, tenant)
    info = _run(lambda: services.connectors.enable(t, services.connectors.find(t, name)))
    console.print(f"enabled; next run {info['next_run_at']}")


@connector_app.command("set")
def connector_set(
    name: str,
    run_at: Annotated[str | None, typer.Option(help="Daily run time, UTC HH:MM.")] = None,
    overlap_hours: Annotated[int | None, typer.Option(help="Feeds: hours each run re-reads behind the checkpoint "
                                                           "(48 to 2160).")] = None,
    tenant: TenantOpt = None,
) -> None:
    """Change a connector's daily run time or its feed overlap."""
    services = _services()
    t = _tenant(services, tenant)
    if run_at is None and overlap_hours is None:
        _fail("nothing to change: give --run-at or --overlap-hours")
    info = _run(lambda: services.connectors.configure(t, services.connectors.find(t, name), run_at=run_at,
                                                      overlap_hours=overlap_hours))
    overlap = f", overlap {info['overlap_hours']} h" if info["overlap_hours"] is not None else ""
    console.print(f"{info['name']}: runs daily at {info['run_at']} UTC{overlap}")


@connector_app.command("disable")
def connector_disable(name: str, tenant: TenantOpt = None) -> None:
    services = _services()
    t = _tenant(services, tenant)
    _run(lambda: services.connectors.disable(t, services.connectors.find(t, name)))
    console.print("disabled")


@connector_app.command("list")
def connector_list(tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """The Data connectors page: each connector, its state and its last run's progress."""
    services = _services()
    rows = services.connectors.list_connectors(_tenant(services, tenant))
    if as_json:
        console.print_json(json.dumps(rows, default=str))
        return
    table = Table("name", "kind", "status", "last run", "seen", "imported", "skipped", "next run")
    for r in rows:
        last = r["last_run"] or {}
        table.add_row(r["name"], r["kind"], r["status"], str(last.get("status", "-")), str(last.get("seen", "")),
                      str(last.get("imported", "")), str(last.get("skipped", "")), str(r["next_run_at"] or "-"))
    console.print(table)


@connector_app.command("upload")
def connector_upload(name: str, export_file: Path,
                     owner: Annotated[str, typer.Option(help="The user whose phone exported the chat.")],
                     chat_name: Annotated[str | None, typer.Option()] = None,
                     run_now: Annotated[bool, typer.Option("--run/--no-run", help="Import it now.")] = True,
                     tenant: TenantOpt = None) -> None:
    """Hand a WhatsApp export (.txt or .zip) to a connector."""
    services = _services()
    t = _tenant(services, tenant)
    if not export_file.is_file():
        _fail(f"cannot read {export_file}: not a file")
        return
    cid = _run(lambda: services.connectors.find(t, name))
    # The path, not its bytes: the service copies the file to the data folder in chunks (bounded memory).
    try:
        added = _run(lambda: services.connectors.add_export(t, cid, export_file, export_file.name, owner,
                                                             chat_name))
    except OSError as exc:
        _fail(f"cannot read {export_file}: {exc}")
        return
    console.print(f"{export_file.name}: {'added' if added['new'] else 'already handed in'} (sha256 {added['sha256']})")
    if run_now:
        _connector_run(services, t, cid)


def _connector_run(services: Services, tenant: str, cid: str) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed} items"),
                  TimeElapsedColumn(), console=err) as bar:
        task = bar.add_task("importing", total=None)
        report = _run(lambda: services.connectors.run(
            tenant, cid, progress=lambda done, _total: bar.update(task, completed=done)))
    _print_report(report.as_dict())
    if report.status != "succeeded":
        raise typer.Exit(1)


def _print_report(r: dict[str, Any]) -> None:
    console.print(f"run {r['id']}: {r['status']}  seen {r['seen']}  imported {r['imported']} "
                  f"({r['already_archived']} of them already archived; {r['copies']} new copies, "
                  f"{r['duplicates']} already there)  skipped {r['skipped']}  in {r['duration_seconds']} s")
    for kind, n in sorted(r["imported_by_kind"].items()):
        console.print(f"  imported {kind}: {n}")
    for reason, n in sorted(r["skipped_by_reason"].items()):
        console.print(f"  skipped, {reason}: {n}")
    for u in r.get("unmapped_participants", []):
        # Participants who map to no user (issue #10, item 2); names are the source's text, so no markup.
        console.print(f"  unmapped, {u['participant']}: {u['messages']} messages ({u['rule']})",
                      markup=False, highlight=False)
    if r.get("unmapped_not_listed"):
        console.print(f"  unmapped, further participants not listed: {r['unmapped_not_listed']} messages")
    if r["error"]:
        console.print(f"[red]error:[/red] {escape(r['error'])}")


@connector_app.command("run")
def connector_run(name: str, tenant: TenantOpt = None) -> None:
    """Run a connector now, with a progress bar; prints the run report."""
    services = _services()
    t = _tenant(services, tenant)
    _connector_run(services, t, _run(lambda: services.connectors.find(t, name)))


@connector_app.command("report")
def connector_report(run_id: str, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """A run's report: counts, and every item not imported with its reason."""
    services = _services()
    report = _run(lambda: services.connectors.report(_tenant(services, tenant), run_id, issue_limit=1_000_000))
    doc = report.as_dict()
    if as_json:
        console.print_json(json.dumps(doc, default=str))
        return
    _print_report(doc)
    for issue in doc["issues"]:
        # The report has escaped control bytes already; the text is still the source's, so no markup either.
        console.print(f"  {issue['reason']}: {issue['location'] or issue['source_id']}: {issue['detail']}",
                      markup=False, highlight=False)


@connector_app.command("schedule")
def connector_schedule(once: Annotated[bool, typer.Option("--once", help="Run what is due, then stop.")] = False,
                       interval: Annotated[int, typer.Option(help="Seconds between checks.")] = 60) -> None:
    """Run connectors when they are due (the server does this too, unless started with --no-scheduler)."""
    import time

    from tenantry.jobs import Scheduler, make_jobs

    services = _services()
    scheduler = Scheduler(services, make_jobs(services), interval)
    services.connectors.recover_interrupted()
    while True:
        for job in scheduler.tick():
            console.print(f"submitted run {job}")
        if once:
            return
        time.sleep(interval)


@app.command("feed-server")
def feed_server(items: Path, username: str, password: str, host: str = "127.0.0.1", port: int = 8090) -> None:
    """Serve a reference archiver feed from a JSON file of items (tests and demos)."""
    import uvicorn

    from tenantry.connectors.feed_server import create_feed_app, load_items

    uvicorn.run(create_feed_app(load_items(items), username, password), host=host, port=port, log_level="warning")


# -- archive ------------------------------------------------------------------------------------------


@archive_app.command("mailboxes")
def archive_mailboxes(tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    services = _services()
    t = _tenant(services, tenant)
    rows = [{**m, "items": services.archive.count(t, m["user_id"])} for m in services.archive.mailboxes(t)]
    _print(rows, ["address", "user_id", "items"], as_json)


@archive_app.command("items")
def archive_items(user: str, folder: Annotated[str | None, typer.Option()] = None, count: int = 50,
                  tenant: TenantOpt = None) -> None:
    services = _services()
    t = _tenant(services, tenant)
    items = _run(lambda: services.archive.items(t, _user_id(services, t, user), folder, count=count))
    _print([{"id": i.id, "sent": i.sent_at.isoformat(), "kind": i.kind, "from": i.sender, "subject": i.subject}
            for i in items], ["id", "sent", "kind", "from", "subject"], False)


@archive_app.command("show")
def archive_show(item_id: int, tenant: TenantOpt = None) -> None:
    """Write an item's exact bytes to stdout."""
    services = _services()
    raw = _run(lambda: services.archive.read(_tenant(services, tenant), item_id))
    sys.stdout.buffer.write(raw)


@archive_app.command("export")
def archive_export(user: str, out: Path, folder: Annotated[str | None, typer.Option()] = None,
                   fmt: Annotated[str, typer.Option("--format", help="mbox or eml")] = "mbox",
                   tenant: TenantOpt = None) -> None:
    """Export a mailbox folder as one MBOX file or a directory of .eml files."""
    services = _services()
    t = _tenant(services, tenant)
    count = _run(lambda: services.archive.export(t, _user_id(services, t, user), folder, fmt, out))
    console.print(f"{count} messages written to {out}")


@archive_app.command("verify")
def archive_verify(tenant: TenantOpt = None) -> None:
    """Prove the archive unchanged: the ledger's chain, every item's digest and bytes. Exit 1 naming changes."""
    services = _services()
    report = services.ledger.verify(_tenant(services, tenant))
    for problem in report.problems:
        # A problem quotes stored values, which may hold anything, "[/red]" included: never read as markup.
        console.print(f"[red]changed:[/red] {escape(problem)}")
    console.print(f"{report.entries} ledger entries, {report.items_checked} items checked: "
                  f"{'unchanged' if report.ok else f'{len(report.problems)} problem(s)'}")
    if not report.ok:
        raise typer.Exit(1)


@archive_app.command("reindex")
def archive_reindex(tenant: TenantOpt = None, full: Annotated[bool, typer.Option("--full")] = False) -> None:
    """Index what the search index lacks (after a crash), or everything again with --full."""
    services = _services()
    t = _tenant(services, tenant)
    if full:
        from sqlalchemy import select

        from tenantry.archive.models import Item

        with services.db.session() as session:
            ids = list(session.scalars(select(Item.id).where(Item.tenant_id == t).order_by(Item.id)))
        count = services.indexer.reindex(t, ids)
    else:
        count = services.indexer.catch_up(t)
    console.print(f"{count} items indexed")


@archive_app.command("delete")
def archive_delete(item_ids: list[int], by: Annotated[str, typer.Option("--by")], tenant: TenantOpt = None) -> None:
    """Delete items (held or retained ones go to Purges and stay searchable by eDiscovery)."""
    services = _services()
    counts = _run(lambda: services.compliance.delete_items(_tenant(services, tenant), item_ids, by))
    console.print(f"deleted {counts['deleted']}, kept in Purges {counts['moved_to_purges']}")


@archive_app.command("remove-mailbox")
def archive_remove_mailbox(user: str, by: Annotated[str, typer.Option("--by")], tenant: TenantOpt = None) -> None:
    services = _services()
    t = _tenant(services, tenant)
    counts = _run(lambda: services.compliance.remove_mailbox(t, _user_id(services, t, user), by))
    console.print(f"deleted {counts['deleted']}, kept (held or retained) {counts['moved_to_purges']}")


@archive_app.command("audit")
def archive_audit(tenant: TenantOpt = None, action: Annotated[str | None, typer.Option()] = None,
                  limit: int = 50, as_json: JsonOpt = False) -> None:
    """The audit trail (newest first): every delivery batch, hold, release, search, export and deletion."""
    services = _services()
    rows = services.ledger.entries(_tenant(services, tenant), action=action, limit=limit)
    if as_json:
        console.print_json(json.dumps(rows))
        return
    _print([{**r, "detail": json.dumps(r["detail"])[:80]} for r in rows],
           ["number", "at", "actor", "action", "target", "detail"], False)


@app.command("search")
def search(query: str, by: Annotated[str, typer.Option("--by", help="Who searches (audited).")],
           user: Annotated[list[str] | None, typer.Option(help="Only these mailboxes.")] = None,
           purges: Annotated[bool, typer.Option("--purges", help="Include Recoverable Items/Purges.")] = False,
           start: int = 0, count: int = 20, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Content search over all (or some) mailboxes, in the query language of docs/search.md."""
    services = _services()
    t = _tenant(services, tenant)
    users = [_user_id(services, t, u) for u in user or []] or None
    result = _run(lambda: services.ediscovery.content_search(t, query, by, users=users, include_purges=purges,
                                                            start=start, count=count))
    if as_json:
        console.print_json(json.dumps(result, default=str))
        return
    console.print(f"{result['count']} items")
    for mailbox, n in sorted(result["by_mailbox"].items()):
        console.print(f"  {mailbox}: {n}")
    _print(result["results"], ["id", "sent_at", "mailbox", "kind", "from", "subject"], False)


@hold_app.command("place")
def hold_place(name: str, by: Annotated[str, typer.Option("--by")],
               user: Annotated[str | None, typer.Option(help="Hold this user's whole mailbox.")] = None,
               case: Annotated[str | None, typer.Option(help="Hold in this case (its custodians).")] = None,
               query: Annotated[str | None, typer.Option(help="Only what this query finds (case holds).")] = None,
               days: Annotated[int | None, typer.Option(help="Hold items for N days from their date.")] = None,
               tenant: TenantOpt = None) -> None:
    services = _services()
    t = _tenant(services, tenant)
    user_id = _user_id(services, t, user) if user else None
    case_id = _run(lambda: services.ediscovery.find_case(t, case)) if case else None
    hold = _run(lambda: services.compliance.place_hold(t, name=name, actor=by, user_id=user_id, case_id=case_id,
                                                       query=query, duration_days=days))
    console.print(f"hold {hold['id']} placed")


@hold_app.command("release")
def hold_release(hold_id: str, by: Annotated[str, typer.Option("--by")], tenant: TenantOpt = None) -> None:
    services = _services()
    _run(lambda: services.compliance.release_hold(_tenant(services, tenant), hold_id, by))
    console.print(f"hold {hold_id} released")


@hold_app.command("list")
def hold_list(tenant: TenantOpt = None, all_holds: Annotated[bool, typer.Option("--all")] = False,
              as_json: JsonOpt = False) -> None:
    services = _services()
    rows = services.compliance.holds(_tenant(services, tenant), active_only=not all_holds)
    _print(rows, ["id", "name", "user_id", "case_id", "query", "duration_days", "released_at"], as_json)


@retention_app.command("create")
def retention_create(name: str, by: Annotated[str, typer.Option("--by")],
                     retain_days: Annotated[int | None, typer.Option()] = None,
                     delete_after_days: Annotated[int | None, typer.Option()] = None,
                     user: Annotated[list[str] | None, typer.Option(help="Limit to these users.")] = None,
                     folder: Annotated[list[str] | None, typer.Option()] = None,
                     kind: Annotated[list[str] | None, typer.Option()] = None,
                     tenant: TenantOpt = None) -> None:
    services = _services()
    t = _tenant(services, tenant)
    users = [_user_id(services, t, u) for u in user or []]
    _run(lambda: services.compliance.create_policy(t, name=name, actor=by, retain_days=retain_days,
                                                   delete_after_days=delete_after_days, users=users,
                                                   folders=folder or [], kinds=kind or []))
    console.print(f"retention policy {name} created")


@retention_app.command("list")
def retention_list(tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    services = _services()
    _print(services.compliance.policies(_tenant(services, tenant)),
           ["name", "retain_days", "delete_after_days", "users", "folders", "kinds", "enabled"], as_json)


@retention_app.command("apply")
def retention_apply(tenant: TenantOpt = None) -> None:
    """Run the retention job now, here, with a progress bar (it also runs daily from the scheduler)."""
    services = _services()
    t = _tenant(services, tenant)
    with _progress_bar("retention") as report:
        counts = _run(lambda: services.compliance.apply_retention(t, progress=report))
    console.print(", ".join(f"{k}: {v}" for k, v in counts.items()))


@case_app.command("create")
def case_create(name: str, by: Annotated[str, typer.Option("--by")], tenant: TenantOpt = None) -> None:
    services = _services()
    case = _run(lambda: services.ediscovery.create_case(_tenant(services, tenant), name, by))
    console.print(f"case {case['name']} ({case['id']}) created")


@case_app.command("custodian")
def case_custodian(case: str, users: list[str], by: Annotated[str, typer.Option("--by")],
                   tenant: TenantOpt = None) -> None:
    services = _services()
    t = _tenant(services, tenant)
    ids = [_user_id(services, t, u) for u in users]
    cid = _run(lambda: services.ediscovery.find_case(t, case))
    custodians = _run(lambda: services.ediscovery.add_custodians(t, cid, ids, by))
    console.print(f"{len(custodians)} custodian(s)")


@case_app.command("hold")
def case_hold(case: str, by: Annotated[str, typer.Option("--by")],
              query: Annotated[str | None, typer.Option()] = None, days: Annotated[int | None, typer.Option()] = None,
              tenant: TenantOpt = None) -> None:
    services = _services()
    t = _tenant(services, tenant)
    cid = _run(lambda: services.ediscovery.find_case(t, case))
    hold = _run(lambda: services.ediscovery.hold(t, cid, by, query=query, duration_days=days))
    console.print(f"hold {hold['id']} placed on the case's custodians" + (f" for {query!r}" if query else ""))


@case_app.command("search")
def case_search(case: str, query: str, by: Annotated[str, typer.Option("--by")],
                no_purges: Annotated[bool, typer.Option("--no-purges")] = False,
                save: Annotated[str | None, typer.Option("--save", help="Keep the search in the case as NAME.")]
                = None,
                tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Count, per-custodian statistics and a preview of the first results."""
    services = _services()
    t = _tenant(services, tenant)
    cid = _run(lambda: services.ediscovery.find_case(t, case))
    if save:
        _run(lambda: services.ediscovery.save_search(t, cid, save, query, by, include_purges=not no_purges))
    result = _run(lambda: services.ediscovery.run_search(t, cid, query, by, include_purges=not no_purges))
    if as_json:
        console.print_json(json.dumps(result, default=str))
        return
    console.print(f"{result['count']} items ({result['total_size']} bytes)")
    for user, n in result["by_custodian"].items():
        console.print(f"  {user}: {n}")
    _print(result["preview"], ["id", "sent_at", "mailbox", "kind", "from", "subject"], False)


@case_app.command("close")
def case_close(case: str, by: Annotated[str, typer.Option("--by")], tenant: TenantOpt = None) -> None:
    """Close a case: its holds are released (their items fall under retention again)."""
    services = _services()
    t = _tenant(services, tenant)
    cid = _run(lambda: services.ediscovery.find_case(t, case))
    _run(lambda: services.ediscovery.close_case(t, cid, by))
    console.print(f"case {case} closed; its holds are released")


@retention_app.command("disable")
def retention_disable(name: str, by: Annotated[str, typer.Option("--by")], tenant: TenantOpt = None) -> None:
    services = _services()
    _run(lambda: services.compliance.disable_policy(_tenant(services, tenant), name, by))
    console.print(f"retention policy {name} disabled")


@case_app.command("export")
def case_export(case: str, query: str, out: Path, by: Annotated[str, typer.Option("--by")],
                dedupe: Annotated[bool, typer.Option("--dedupe")] = False, tenant: TenantOpt = None) -> None:
    """Export what a query finds into the new folder OUT (run by the operator, on this machine): EML per item,
    MBOX per custodian, load file, summary, manifest. OUT must not exist, or be an empty folder."""
    services = _services()
    t = _tenant(services, tenant)
    cid = _run(lambda: services.ediscovery.find_case(t, case))
    with _progress_bar("exporting") as report:
        summary = _run(lambda: services.ediscovery.export(t, cid, query, out, by, deduplicate=dedupe,
                                                          progress=report))
    console.print(f"{summary['exported']} items exported to {out} ({len(summary['errors'])} errors)")
    if summary["errors"]:
        raise typer.Exit(1)


@case_app.command("verify-export")
def case_verify_export(folder: Path) -> None:
    """Re-hash an export against its manifest and load file."""
    from tenantry.archive.ediscovery import verify_export

    problems = verify_export(folder)
    for problem in problems:
        console.print(f"[red]{problem}[/red]")
    console.print("export intact" if not problems else f"{len(problems)} problem(s)")
    if problems:
        raise typer.Exit(1)


def _app(services: Services, tenant: str, app_ref: str) -> str:
    return str(_run(lambda: services.provisioning.find_app(tenant, app_ref)))


# Issue #12's shape for the CLI: the operator may act as a named administrator, whose role is then checked
# (Application Administrator) and who is named in the app's change log. Without it the operator acts.
AsOpt = Annotated[str | None, typer.Option("--as", help="Act as this administrator (userName or id); needs the "
                                                        "Application Administrator role.")]


def _actor(services: Services, tenant: str, who: str | None) -> str | None:
    return None if who is None else _user_id(services, tenant, who)


@provisioning_app.command("app-add")
def provisioning_app_add(name: str, tenant_url: str,
                         token_stdin: Annotated[bool, typer.Option("--token-stdin", help="Read the app's token.")]
                         = False,
                         scope: Annotated[str, typer.Option(help="assigned or all")] = "assigned",
                         notify: Annotated[str | None, typer.Option(help="E-mail for failures.")] = None,
                         tenant: TenantOpt = None, as_: AsOpt = None) -> None:
    """Add a downstream SCIM app (tenant URL + secret token, stored sealed), then test the connection."""
    services = _services()
    t = _tenant(services, tenant)
    actor = _actor(services, t, as_)
    token = sys.stdin.readline().strip() if token_stdin else ""
    info = _run(lambda: services.provisioning.create_app(t, name=name, tenant_url=tenant_url, token=token,
                                                         notification_email=notify, scope=scope, actor=actor))
    result = services.provisioning.test_connection(t, info["id"])
    console.print(f"app {name} ({info['id']}) added; test connection: {result.message}")
    if not result.ok:
        raise typer.Exit(1)


@provisioning_app.command("app-update")
def provisioning_app_update(app_ref: Annotated[str, typer.Argument(metavar="APP")],
                            tenant_url: Annotated[str | None, typer.Option()] = None,
                            token_stdin: Annotated[bool, typer.Option("--token-stdin",
                                                                      help="Read a new token.")] = False,
                            scope: Annotated[str | None, typer.Option(help="assigned or all")] = None,
                            notify: Annotated[str | None, typer.Option(help="E-mail for failures.")] = None,
                            tenant: TenantOpt = None, as_: AsOpt = None) -> None:
    """Change an app's URL, token (rotated), scope or notification address. A URL on another host needs
    --token-stdin with it: the stored token is only ever sent to the host it was given for."""
    services = _services()
    t = _tenant(services, tenant)
    app_id = _app(services, t, app_ref)
    token = sys.stdin.readline().strip() if token_stdin else None
    actor = _actor(services, t, as_)
    _run(lambda: services.provisioning.update_app(t, app_id, tenant_url=tenant_url, token=token, scope=scope,
                                                  notification_email=notify, actor=actor))
    console.print("updated")


@provisioning_app.command("apps")
def provisioning_apps(tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    services = _services()
    _print(services.provisioning.list_apps(_tenant(services, tenant)),
           ["name", "id", "enabled", "health", "scope", "next_run_at", "tenant_url"], as_json)


@provisioning_app.command("assign")
def provisioning_assign(app_ref: Annotated[str, typer.Argument(metavar="APP")], principal: str,
                        group: Annotated[bool, typer.Option("--group", help="The principal is a group id.")] = False,
                        role: Annotated[str, typer.Option(help="One of the app's roles (id, display name or "
                                                               "value); see `provisioning roles`.")] = "User",
                        tenant: TenantOpt = None, as_: AsOpt = None) -> None:
    """Assign a user (userName or id) or a group (--group, its id) with one of the app's roles."""
    services = _services()
    t = _tenant(services, tenant)
    app_id = _app(services, t, app_ref)
    principal_id = principal if group else _user_id(services, t, principal)
    actor = _actor(services, t, as_)
    _run(lambda: services.provisioning.assign(t, app_id, "Group" if group else "User", principal_id, role,
                                              actor=actor))
    console.print("assigned")


@provisioning_app.command("unassign")
def provisioning_unassign(app_ref: Annotated[str, typer.Argument(metavar="APP")], principal: str,
                          group: Annotated[bool, typer.Option("--group", help="The principal is a group id.")]
                          = False, tenant: TenantOpt = None, as_: AsOpt = None) -> None:
    services = _services()
    t = _tenant(services, tenant)
    app_id = _app(services, t, app_ref)
    principal_id = principal if group else _user_id(services, t, principal)
    actor = _actor(services, t, as_)
    _run(lambda: services.provisioning.unassign(t, app_id, "Group" if group else "User", principal_id,
                                                actor=actor))
    console.print("unassigned")


@provisioning_app.command("scope")
def provisioning_scope(app_ref: Annotated[str, typer.Argument(metavar="APP")], tenant: TenantOpt = None) -> None:
    """Who the app provisions, and who is skipped and why."""
    services = _services()
    t = _tenant(services, tenant)
    decision = _run(lambda: services.provisioning.scope(t, _app(services, t, app_ref)))
    console.print(f"{len(decision.in_scope)} users in scope")
    for user_id, why in decision.skipped.items():
        console.print(f"  skipped {user_id}: {why}")
    for group_id, why in decision.groups_skipped.items():
        console.print(f"  skipped group {group_id}: {why}")


MemberTypesOpt = Annotated[str | None, typer.Option(
    "--member-types", help="Who may be assigned the role: users, groups, or users,groups.")]


@provisioning_app.command("roles")
def provisioning_roles(app_ref: Annotated[str, typer.Argument(metavar="APP")], tenant: TenantOpt = None,
                       as_json: JsonOpt = False) -> None:
    """The app's roles (Entra's appRoles; Default Access and User are built in) and how many hold each."""
    services = _services()
    t = _tenant(services, tenant)
    rows = _run(lambda: services.provisioning.list_roles(t, _app(services, t, app_ref)))
    _print(rows, ["display_name", "value", "enabled", "allowed_member_types", "assignments", "built_in", "id"],
           as_json)


@provisioning_app.command("role-add")
def provisioning_role_add(app_ref: Annotated[str, typer.Argument(metavar="APP")], display_name: str,
                          value: Annotated[str | None, typer.Option(help="What the app receives (no spaces); "
                                                                         "default: the display name is sent.")]
                          = None,
                          description: Annotated[str | None, typer.Option()] = None,
                          member_types: MemberTypesOpt = None, tenant: TenantOpt = None, as_: AsOpt = None) -> None:
    """Add a role to the app; assign it with `assign … --role NAME`."""
    services = _services()
    t = _tenant(services, tenant)
    app_id = _app(services, t, app_ref)
    actor = _actor(services, t, as_)
    types = member_types.split(",") if member_types is not None else ["User", "Group"]
    role = _run(lambda: services.provisioning.add_role(t, app_id, display_name=display_name, value=value,
                                                       description=description, allowed_member_types=types,
                                                       actor=actor))
    console.print(f"role {role['display_name']} ({role['id']}) added", markup=False, highlight=False)


@provisioning_app.command("role-update")
def provisioning_role_update(app_ref: Annotated[str, typer.Argument(metavar="APP")],
                             role: Annotated[str, typer.Argument(help="The role's id, display name or value.")],
                             display_name: Annotated[str | None, typer.Option()] = None,
                             value: Annotated[str | None, typer.Option(help='"" clears it.')] = None,
                             description: Annotated[str | None, typer.Option(help='"" clears it.')] = None,
                             member_types: MemberTypesOpt = None,
                             enabled: Annotated[bool | None, typer.Option(
                                 "--enable/--disable", help="A disabled role is not assigned again; those who "
                                                            "hold it keep it.")] = None,
                             tenant: TenantOpt = None, as_: AsOpt = None) -> None:
    """Change or disable a role (the built-in Default Access and User cannot be changed)."""
    services = _services()
    t = _tenant(services, tenant)
    app_id = _app(services, t, app_ref)
    actor = _actor(services, t, as_)
    types = member_types.split(",") if member_types is not None else None
    changed = _run(lambda: services.provisioning.update_role(
        t, app_id, role, display_name=display_name, value=value, description=description,
        allowed_member_types=types, enabled=enabled, actor=actor))
    console.print(f"role {changed['display_name']}: {'enabled' if changed['enabled'] else 'disabled'}, value "
                  f"{changed['value'] or '-'}, for {', '.join(changed['allowed_member_types'])}",
                  markup=False, highlight=False)


@provisioning_app.command("role-delete")
def provisioning_role_delete(app_ref: Annotated[str, typer.Argument(metavar="APP")],
                             role: Annotated[str, typer.Argument(help="The role's id, display name or value.")],
                             tenant: TenantOpt = None, as_: AsOpt = None) -> None:
    """Delete a role no assignment holds (one in use is refused: reassign them, or disable it)."""
    services = _services()
    t = _tenant(services, tenant)
    app_id = _app(services, t, app_ref)
    actor = _actor(services, t, as_)
    _run(lambda: services.provisioning.delete_role(t, app_id, role, actor=actor))
    console.print("deleted")


@provisioning_app.command("config")
def provisioning_config(app_ref: Annotated[str, typer.Argument(metavar="APP")],
                        set_: Annotated[list[str] | None, typer.Option(
                            "--set", help="key=value (value is JSON, or a plain string), e.g. concurrency=8, "
                                          "actions.delete=false, deletion_threshold=null")] = None,
                        file: Annotated[Path | None, typer.Option(help="A JSON object of settings to apply "
                                                                       "(mappings, scoping_filters, …).")] = None,
                        tenant: TenantOpt = None, as_: AsOpt = None) -> None:
    """Show the app's configuration; with --set/--file, change it (validated before it is saved)."""
    services = _services()
    t = _tenant(services, tenant)
    app_id = _app(services, t, app_ref)
    changes: dict[str, Any] = {}
    if file is not None:
        try:
            loaded = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            _fail(f"cannot read {file}: {exc}")
        if not isinstance(loaded, dict):
            _fail(f"{file} must hold a JSON object")
        changes.update(loaded)
    for item in set_ or []:
        key, sep, raw = item.partition("=")
        if not sep:
            _fail(f"--set takes key=value, not {item!r}")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        if key.startswith("actions."):
            changes.setdefault("actions", {})[key.removeprefix("actions.")] = value
        else:
            changes[key] = value
    actor = _actor(services, t, as_)
    config = _run(lambda: services.provisioning.configure(t, app_id, changes, actor=actor) if changes
                  else services.provisioning.config(t, app_id))
    console.print_json(config.model_dump_json())


@provisioning_app.command("start")
def provisioning_start(app_ref: Annotated[str, typer.Argument(metavar="APP")], tenant: TenantOpt = None,
                       as_: AsOpt = None) -> None:
    """Provisioning status On: the scheduler runs a cycle now, then every interval."""
    _set_enabled(app_ref, tenant, True, as_)


@provisioning_app.command("stop")
def provisioning_stop(app_ref: Annotated[str, typer.Argument(metavar="APP")], tenant: TenantOpt = None,
                      as_: AsOpt = None) -> None:
    """Provisioning status Off: no more scheduled cycles (run and on-demand still work)."""
    _set_enabled(app_ref, tenant, False, as_)


def _set_enabled(app_ref: str, tenant: str | None, on: bool, as_: str | None) -> None:
    services = _services()
    t = _tenant(services, tenant)
    actor = _actor(services, t, as_)
    _run(lambda: services.provisioning.set_enabled(t, _app(services, t, app_ref), on, actor=actor))
    console.print(f"provisioning {'on' if on else 'off'}")


@provisioning_app.command("restart")
def provisioning_restart(app_ref: Annotated[str, typer.Argument(metavar="APP")], tenant: TenantOpt = None,
                         as_: AsOpt = None) -> None:
    """Forget what the app holds and the watermark: the next cycle matches everything again."""
    services = _services()
    t = _tenant(services, tenant)
    actor = _actor(services, t, as_)
    _run(lambda: services.provisioning.restart(t, _app(services, t, app_ref), actor=actor))
    console.print("restarted: the next cycle is an initial cycle")


@provisioning_app.command("run")
def provisioning_run(app_ref: Annotated[str, typer.Argument(metavar="APP")],
                     allow_deletions: Annotated[bool, typer.Option(
                         "--allow-deletions", help="Go past the accidental-deletion threshold, this once.")] = False,
                     tenant: TenantOpt = None) -> None:
    """Run a cycle now, in this process, with a progress bar; exit 1 unless it succeeded."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    services = _services()
    t = _tenant(services, tenant)
    app_id = _app(services, t, app_ref)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err) as bar:
        task = bar.add_task("provisioning", total=None)
        report = _run(lambda: services.provisioning.run_cycle(
            t, app_id, allow_deletions=allow_deletions,
            progress=lambda done, total: bar.update(task, completed=done, total=total or None)))
    _print_cycle(report.as_dict())
    if report.status != "succeeded":
        raise typer.Exit(1)


def _print_cycle(c: dict[str, Any]) -> None:
    console.print(f"cycle {c['id']} ({c['kind']}): {c['status']}  {c['done']}/{c['total']} objects")
    for key, value in sorted(c["stats"].items()):
        console.print(f"  {key}: {value}")
    if c.get("reason"):
        console.print(f"  reason: {c['reason']}")


@provisioning_app.command("on-demand")
def provisioning_on_demand(app_ref: Annotated[str, typer.Argument(metavar="APP")], user: str,
                           tenant: TenantOpt = None) -> None:
    """Provision one user now and show every step."""
    services = _services()
    t = _tenant(services, tenant)
    app_id = _app(services, t, app_ref)
    user_id = user if services.directory.users_by_id(t, [user]) else _user_id(services, t, user)
    report = _run(lambda: services.provisioning.provision_on_demand(t, app_id, user_id))
    for entry in report.logs:
        console.print(f"{entry['object_type']} {entry['display'] or entry['source_id']}: {entry['action']} "
                      f"{entry['result']} {entry['reason'] or ''}")
        for step in entry["steps"]:
            console.print(f"  {step['step']:<7} {step['result']:<8} {step['detail']}")
    if not report.logs:
        console.print("nothing to do: the user is not in scope and the app does not hold it")
    if any(e["result"] == "failure" for e in report.logs):
        raise typer.Exit(1)


@provisioning_app.command("status")
def provisioning_status(app_ref: Annotated[str, typer.Argument(metavar="APP")], tenant: TenantOpt = None,
                        as_json: JsonOpt = False) -> None:
    """Health, what the app holds, the running cycle's progress and the last cycles' statistics."""
    services = _services()
    t = _tenant(services, tenant)
    status = _run(lambda: services.provisioning.status(t, _app(services, t, app_ref)))
    if as_json:
        console.print_json(json.dumps(status, default=str))
        return
    console.print(f"{status['name']}: {'on' if status['enabled'] else 'off'}, {status['health']}"
                  + (f" ({status['health_reason']})" if status["health_reason"] else "")
                  + (", a cycle is running" if status["running"] else ""))
    console.print(f"users held: {status['users'] or 0}; groups: {status['groups']}; "
                  f"objects failing: {status['objects_failing']}; next cycle: {status['next_run_at'] or '-'}")
    for c in status["cycles"]:
        _print_cycle(c)


@provisioning_app.command("logs")
def provisioning_logs(app_ref: Annotated[str, typer.Argument(metavar="APP")],
                      user: Annotated[str | None, typer.Option(help="Only this user (id or e-mail).")] = None,
                      result: Annotated[str | None, typer.Option(help="success, failure or skipped")] = None,
                      cycle: Annotated[str | None, typer.Option(help="Only this cycle id.")] = None,
                      limit: Annotated[int, typer.Option()] = 50,
                      steps: Annotated[bool, typer.Option("--steps", help="Show each entry's steps.")] = False,
                      tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Per-object provisioning logs, newest first."""
    services = _services()
    t = _tenant(services, tenant)
    app_id = _app(services, t, app_ref)
    source_id = None
    if user:
        source_id = user if services.directory.users_by_id(t, [user]) else None
        if source_id is None:
            found = services.directory.find_users_by_email(t, [user]).get(user.strip().lower())
            source_id = found[0].id if found else user   # a deleted user: its id
    rows = _run(lambda: services.provisioning.logs(t, app_id, source_id=source_id, result=result, cycle_id=cycle,
                                                   limit=limit))
    if as_json:
        console.print_json(json.dumps(rows, default=str))
        return
    table = Table("at", "object", "action", "result", "reason")
    for r in rows:
        table.add_row(r["at"][:19], f"{r['object_type']} {r['display'] or r['source_id'] or ''}", r["action"],
                      r["result"], r["reason"] or "")
        if steps:
            for step in r["steps"]:
                table.add_row("", f"  {step['step']}", "", step["result"], step["detail"])
    console.print(table)


_RELATIVE = re.compile(r"^(\d{1,6})\s*([mhd])$")


def _when(option: str, text: str | None) -> datetime | None:
    """An ISO 8601 date or time (UTC unless it names a zone), or an age: 30m, 24h, 7d."""
    if text is None:
        return None
    relative = _RELATIVE.match(text.strip().lower())
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2)
        return datetime.now(UTC) - timedelta(**{{"m": "minutes", "h": "hours", "d": "days"}[unit]: amount})
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        _fail(f"{option} {text!r}: give an ISO date or time (2026-03-01, 2026-03-01T09:00+01:00) or an age "
              "(30m, 24h, 7d)")
        raise  # unreachable: _fail exits
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@scim_app.command("log")
def scim_log(since: Annotated[str | None, typer.Option(help="From this time (ISO 8601) or age (30m, 24h, 7d).")] = None,
             until: Annotated[str | None, typer.Option(help="Before this time (ISO 8601) or age.")] = None,
             failed: Annotated[bool, typer.Option("--failed", help="Only writes that failed (status 400 or more).")]
             = False,
             method: Annotated[str | None, typer.Option(help="POST, PUT, PATCH or DELETE.")] = None,
             resource_type: Annotated[str | None, typer.Option(help="User, Group or Bulk.")] = None,
             resource_id: Annotated[str | None, typer.Option(help="Only this resource id.")] = None,
             name: Annotated[str | None, typer.Option(help="Only this userName, displayName or externalId.")] = None,
             token: Annotated[str | None, typer.Option(help="Only this SCIM token (id or name).")] = None,
             status: Annotated[int | None, typer.Option(help="Only this HTTP status.")] = None,
             limit: Annotated[int, typer.Option(min=0, max=1000)] = 50,
             offset: Annotated[int, typer.Option(min=0)] = 0,
             tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Inbound SCIM writes (who, what, the result), newest first; kept TENANTRY_SCIM_LOG_DAYS days."""
    services = _services()
    t = _tenant(services, tenant)
    rows = _run(lambda: services.scim_log.entries(
        t, since=_when("--since", since), until=_when("--until", until), method=method,
        resource_type=resource_type, resource_id=resource_id, outcome="failure" if failed else None,
        status=status, token=token, name=name, offset=offset, limit=limit))
    if as_json:
        console.print_json(json.dumps(rows))
        return
    from tenantry.connectors.items import printable

    table = Table("token", "request", "result")
    table.columns.insert(0, Column("at (UTC)", no_wrap=True))
    table.add_column("ms", justify="right", no_wrap=True)
    for r in rows:
        who = r["user_name"] or r["display_name"] or r["external_id"] or r["resource_id"] or ""
        request = f"{r['method']} {r['resource_type'] or ''} {who}".strip()
        if r["bulk_index"]:
            request += f" (bulk #{r['bulk_index']})"
        result = f"{r['status']} {r['scim_type'] or ''}".strip()
        # The IdP's values are quoted as text: escaped for the terminal (controls) and for rich (brackets).
        cells = [r["at"][:19].replace("T", " "), escape(printable(r["token_name"] or r["token_id"] or "")),
                 "\n".join(escape(printable(v)) for v in (request, r["operation"]) if v),
                 "\n".join(escape(printable(v)) for v in (result, r["detail"]) if v), str(r["duration_ms"])]
        table.add_row(*cells, style="red" if r["status"] >= 400 else None)
    console.print(table)
    console.print(f"{len(rows)} entries" + (" (more with --offset)" if len(rows) == limit and limit else ""))


def main() -> None:
    # Before anything is created: every file this process (or SQLite, tantivy) makes is owner-only.
    restrict_process_umask()
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
