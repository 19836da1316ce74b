"""The connectors' commands: ``tenantry connector …`` (the wizard, uploads, runs, reports, the schedule) and
``tenantry feed-server`` (the reference archiver feed, for tests and demos)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from tenantry.cli_kit import ByOpt, Cli, JsonOpt, TenantOpt, console, fail, print_json, progress_bar, sub_app
from tenantry.connectors.models import BuiltinSource, RunStatus
from tenantry.connectors.results import RunReport

app = sub_app("Message archive connectors (WhatsApp exports, archiver feeds).")


def register(root: typer.Typer) -> None:
    root.command("feed-server")(feed_server)
    root.add_typer(app, name="connector")


@app.command("create")
def connector_create(
    ctx: typer.Context,
    name: str,
    by: ByOpt = None,
    kind: Annotated[str, typer.Option(help="whatsapp-export or archiver-feed")] = BuiltinSource.WHATSAPP_EXPORT.value,
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
    cli = Cli.of(ctx)
    t = cli.tenant(tenant)
    source: dict[str, Any] = ({"timezone": timezone} if kind == BuiltinSource.WHATSAPP_EXPORT
                              else {"url": url, "username": username})
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    info = cli.services.connectors.create(
        t, name=name, kind=kind, by=cli.principal(t, by), accept_terms=accept_terms, source=source,
        source_password=password, use_directory_mobiles=not no_directory_mobiles, outsider_domain=outsider_domain,
        run_at=run_at, overlap_hours=overlap_hours)
    console.print(f"connector {info.name} ({info.id}) created as a draft; next: mapping, consent, review, enable")


def _find(cli: Cli, tenant: str | None, name: str) -> tuple[str, str]:
    return cli.named(tenant, cli.services.connectors.find, name)


@app.command("mapping")
def connector_mapping(ctx: typer.Context, name: str, csv_file: Path, tenant: TenantOpt = None) -> None:
    """Upload the user-mapping CSV (mobile number, e-mail[, name]); a bad line saves nothing."""
    cli = Cli.of(ctx)
    t = cli.tenant(tenant)
    try:
        text = csv_file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {csv_file}: {exc}")
    saved = cli.services.connectors.upload_mapping(t, cli.services.connectors.find(t, name), text)
    console.print(f"{saved.entries} mapping entries saved")
    for note in saved.notes:   # the CSV's own text: printed without markup
        console.print(f"  note: {note}", markup=False, highlight=False)


@app.command("consent")
def connector_consent(ctx: typer.Context, name: str, by: ByOpt = None, tenant: TenantOpt = None) -> None:
    """Record the organisation's admin consent (the consenting user needs Organization Management)."""
    cli = Cli.of(ctx)
    t, cid = _find(cli, tenant, name)
    cli.services.connectors.consent(t, cid, cli.principal(t, by))
    console.print("consent recorded")


@app.command("review")
def connector_review(ctx: typer.Context, name: str, tenant: TenantOpt = None) -> None:
    cli = Cli.of(ctx)
    info = cli.services.connectors.review(*_find(cli, tenant, name))
    print_json(info)
    if not info.ready:
        raise typer.Exit(1)


@app.command("enable")
def connector_enable(ctx: typer.Context, name: str, tenant: TenantOpt = None) -> None:
    cli = Cli.of(ctx)
    info = cli.services.connectors.enable(*_find(cli, tenant, name))
    console.print(f"enabled; next run {info.next_run_at}")


@app.command("set")
def connector_set(
    ctx: typer.Context,
    name: str,
    run_at: Annotated[str | None, typer.Option(help="Daily run time, UTC HH:MM.")] = None,
    overlap_hours: Annotated[int | None, typer.Option(help="Feeds: hours each run re-reads behind the checkpoint "
                                                           "(48 to 2160).")] = None,
    tenant: TenantOpt = None,
) -> None:
    """Change a connector's daily run time or its feed overlap."""
    cli = Cli.of(ctx)
    t = cli.tenant(tenant)
    if run_at is None and overlap_hours is None:
        fail("nothing to change: give --run-at or --overlap-hours")
    info = cli.services.connectors.configure(t, cli.services.connectors.find(t, name), run_at=run_at,
                                             overlap_hours=overlap_hours)
    overlap = f", overlap {info.overlap_hours} h" if info.overlap_hours is not None else ""
    console.print(f"{info.name}: runs daily at {info.run_at} UTC{overlap}")


@app.command("disable")
def connector_disable(ctx: typer.Context, name: str, tenant: TenantOpt = None) -> None:
    cli = Cli.of(ctx)
    cli.services.connectors.disable(*_find(cli, tenant, name))
    console.print("disabled")


@app.command("list")
def connector_list(ctx: typer.Context, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """The Data connectors page: each connector, its state and its last run's progress."""
    cli = Cli.of(ctx)
    rows = cli.services.connectors.list_connectors(cli.tenant(tenant))
    if as_json:
        print_json(rows)
        return
    table = Table("name", "kind", "status", "last run", "seen", "imported", "skipped", "next run")
    for r in rows:
        last = r.last_run
        table.add_row(r.name, r.kind, str(r.status), str(last.status) if last else "-", str(last.seen) if last else "",
                      str(last.imported) if last else "", str(last.skipped) if last else "", str(r.next_run_at or "-"))
    console.print(table)


@app.command("upload")
def connector_upload(ctx: typer.Context, name: str, export_file: Path,
                     owner: Annotated[str, typer.Option(help="The user whose phone exported the chat.")],
                     chat_name: Annotated[str | None, typer.Option()] = None,
                     run_now: Annotated[bool, typer.Option("--run/--no-run", help="Import it now.")] = True,
                     tenant: TenantOpt = None) -> None:
    """Hand a WhatsApp export (.txt or .zip) to a connector."""
    cli = Cli.of(ctx)
    t = cli.tenant(tenant)
    if not export_file.is_file():
        fail(f"cannot read {export_file}: not a file")
    cid = cli.services.connectors.find(t, name)
    # The path, not its bytes: the service copies the file to the data folder in chunks (bounded memory).
    try:
        added = cli.services.connectors.add_export(t, cid, export_file, export_file.name, owner, chat_name)
    except OSError as exc:
        fail(f"cannot read {export_file}: {exc}")
    console.print(f"{export_file.name}: {'added' if added.new else 'already handed in'} (sha256 {added.sha256})")
    if run_now:
        _run_now(cli, t, cid)


@app.command("run")
def connector_run(ctx: typer.Context, name: str, tenant: TenantOpt = None) -> None:
    """Run a connector now, with a progress bar; prints the run report."""
    cli = Cli.of(ctx)
    _run_now(cli, *_find(cli, tenant, name))


def _run_now(cli: Cli, tenant: str, cid: str) -> None:
    with progress_bar("importing", count="items") as progress:
        report = cli.services.connectors.run(tenant, cid, progress=progress)
    _print_report(report)
    if report.status != RunStatus.SUCCEEDED:
        raise typer.Exit(1)


def _print_report(r: RunReport) -> None:
    console.print(f"run {r.id}: {r.status}  seen {r.seen}  imported {r.imported} "
                  f"({r.already_archived} of them already archived; {r.copies} new copies, "
                  f"{r.duplicates} already there)  skipped {r.skipped}  in {r.duration_seconds} s")
    for kind, n in sorted(r.imported_by_kind.items()):
        console.print(f"  imported {kind}: {n}")
    for reason, n in sorted(r.skipped_by_reason.items()):
        console.print(f"  skipped, {reason}: {n}")
    for u in r.unmapped_participants:
        # Participants who map to no user (issue #10, item 2); names are the source's text, so no markup.
        console.print(f"  unmapped, {u.participant}: {u.messages} messages ({u.rule})",
                      markup=False, highlight=False)
    if r.unmapped_not_listed:
        console.print(f"  unmapped, further participants not listed: {r.unmapped_not_listed} messages")
    if r.error:
        console.print(f"[red]error:[/red] {escape(r.error)}")


@app.command("report")
def connector_report(ctx: typer.Context, run_id: str, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """A run's report: counts, and every item not imported with its reason."""
    cli = Cli.of(ctx)
    report = cli.services.connectors.report(cli.tenant(tenant), run_id, issue_limit=1_000_000)
    if as_json:
        print_json(report)
        return
    _print_report(report)
    for issue in report.issues:
        # The report has escaped control bytes already; the text is still the source's, so no markup either.
        console.print(f"  {issue.reason}: {issue.location or issue.source_id}: {issue.detail}",
                      markup=False, highlight=False)


@app.command("schedule")
def connector_schedule(ctx: typer.Context,
                       once: Annotated[bool, typer.Option("--once", help="Run what is due, then stop.")] = False,
                       interval: Annotated[int, typer.Option(help="Seconds between checks.")] = 60) -> None:
    """Run connectors when they are due (the server does this too, unless started with --no-scheduler)."""
    import time

    from tenantry.jobs import Scheduler, make_jobs

    services = Cli.of(ctx).services
    scheduler = Scheduler(services, make_jobs(services), interval)
    services.connectors.recover_interrupted()
    while True:
        for job in scheduler.tick():
            console.print(f"submitted run {job}")
        if once:
            return
        time.sleep(interval)


def feed_server(items: Path, username: str, password: str, host: str = "127.0.0.1", port: int = 8090) -> None:
    """Serve a reference archiver feed from a JSON file of items (tests and demos)."""
    import uvicorn

    from tenantry.connectors.feed_server import create_feed_app, load_items

    uvicorn.run(create_feed_app(load_items(items), username, password), host=host, port=port, log_level="warning")
