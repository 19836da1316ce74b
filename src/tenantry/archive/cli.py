"""The archive's commands: ``tenantry archive …`` (mailboxes, items, exports, the ledger, the index), and
compliance: ``tenantry search``, ``hold …``, ``retention …`` and ``case …`` (eDiscovery)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from tenantry.cli_kit import (
    ByOpt,
    Cli,
    JsonOpt,
    TenantOpt,
    console,
    print_json,
    print_rows,
    progress_bar,
    sub_app,
    when,
)
from tenantry.core import access
from tenantry.core.access import COMPLIANCE, EDISCOVERY
from tenantry.core.results import plain

app = sub_app("Mailboxes and archived items.")
hold_app = sub_app("Litigation holds.")
retention_app = sub_app("Retention policies.")
case_app = sub_app("eDiscovery cases: custodians, holds, searches, exports.")

RESULT_COLUMNS = ["id", "sent_at", "mailbox", "kind", "from", "subject"]


def register(root: typer.Typer) -> None:
    root.command("search")(search)
    root.command("audit")(archive_audit)
    root.add_typer(app, name="archive")
    root.add_typer(hold_app, name="hold")
    root.add_typer(retention_app, name="retention")
    root.add_typer(case_app, name="case")


# -- archive ------------------------------------------------------------------------------------------


@app.command("mailboxes")
def archive_mailboxes(ctx: typer.Context, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    cli = Cli.of(ctx)
    t = cli.tenant(tenant)
    archive = cli.services.archive
    rows = [{**plain(m), "items": archive.count(t, m.user_id)} for m in archive.mailboxes(t)]
    print_rows(rows, ["address", "user_id", "items"], as_json)


@app.command("items")
def archive_items(ctx: typer.Context, user: str, folder: Annotated[str | None, typer.Option()] = None,
                  count: int = 50, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    cli = Cli.of(ctx)
    t = cli.tenant(tenant)
    items = cli.services.archive.items(t, cli.user_id(t, user), folder, count=count)
    print_rows([{"id": i.id, "sent": i.sent_at.isoformat(), "kind": i.kind, "folder": i.folder, "source": i.source,
                 "from": i.sender, "subject": i.subject} for i in items], ["id", "sent", "kind", "from", "subject"],
               as_json)


@app.command("show")
def archive_show(ctx: typer.Context, item_id: int, tenant: TenantOpt = None) -> None:
    """Write an item's exact bytes to stdout."""
    cli = Cli.of(ctx)
    sys.stdout.buffer.write(cli.services.archive.read(cli.tenant(tenant), item_id))


@app.command("export")
def archive_export(ctx: typer.Context, user: str, out: Path, folder: Annotated[str | None, typer.Option()] = None,
                   fmt: Annotated[str, typer.Option("--format", help="mbox or eml")] = "mbox",
                   tenant: TenantOpt = None) -> None:
    """Export a mailbox folder as one MBOX file or a directory of .eml files."""
    cli = Cli.of(ctx)
    t = cli.tenant(tenant)
    count = cli.services.archive.export(t, cli.user_id(t, user), folder, fmt, out)
    console.print(f"{count} messages written to {out}")


@app.command("verify")
def archive_verify(ctx: typer.Context, tenant: TenantOpt = None) -> None:
    """Prove the archive unchanged: the ledger's chain, every item's digest and bytes. Exit 1 naming changes."""
    cli = Cli.of(ctx)
    report = cli.services.ledger.verify(cli.tenant(tenant))
    for problem in report.problems:
        # A problem quotes stored values, which may hold anything, "[/red]" included: never read as markup.
        console.print(f"[red]changed:[/red] {escape(problem)}")
    console.print(f"{report.entries} ledger entries, {report.items_checked} items checked: "
                  f"{'unchanged' if report.ok else f'{len(report.problems)} problem(s)'}")
    if not report.ok:
        raise typer.Exit(1)


@app.command("reindex")
def archive_reindex(ctx: typer.Context, tenant: TenantOpt = None,
                    full: Annotated[bool, typer.Option("--full")] = False) -> None:
    """Index what the search index lacks (after a crash), or everything again with --full."""
    cli = Cli.of(ctx)
    t = cli.tenant(tenant)
    indexer = cli.services.indexer
    console.print(f"{indexer.reindex_all(t) if full else indexer.catch_up(t)} items indexed")


@app.command("delete")
def archive_delete(ctx: typer.Context, item_ids: list[int], by: ByOpt = None, tenant: TenantOpt = None) -> None:
    """Delete items (held or retained ones go to Purges and stay searchable by eDiscovery)."""
    cli = Cli.of(ctx)
    counts = cli.services.compliance.delete_items(cli.tenant(tenant), item_ids, _compliance_as(cli, tenant, by))
    console.print(f"deleted {counts.deleted}, kept in Purges {counts.moved_to_purges}")


@app.command("remove-mailbox")
def archive_remove_mailbox(ctx: typer.Context, user: str, by: ByOpt = None, tenant: TenantOpt = None) -> None:
    cli = Cli.of(ctx)
    t = cli.tenant(tenant)
    counts = cli.services.compliance.remove_mailbox(t, cli.user_id(t, user), _compliance_as(cli, tenant, by))
    console.print(f"deleted {counts.deleted}, kept (held or retained) {counts.moved_to_purges}")


@app.command("audit")
def archive_audit(
        ctx: typer.Context, tenant: TenantOpt = None,
        action: Annotated[str | None, typer.Option(help="Only this action (admin.change, hold.place, export…).")]
        = None,
        actor: Annotated[str | None, typer.Option(help="Only entries whose actor contains this: a user name, a "
                                                       "user, token or session id, 'operator'.")] = None,
        since: Annotated[str | None, typer.Option(help="From this time (ISO 8601) or age (30m, 24h, 7d).")] = None,
        until: Annotated[str | None, typer.Option(help="Before this time (ISO 8601) or age.")] = None,
        target: Annotated[str | None, typer.Option(help="Only this target (an id).")] = None,
        limit: Annotated[int, typer.Option(min=1, max=1000)] = 50, as_json: JsonOpt = False) -> None:
    """The audit trail (newest first): every change made through the API or the CLI (admin.change, with who made
    it), every delivery batch, hold, release, search, export and deletion."""
    cli = Cli.of(ctx)
    rows = cli.services.ledger.entries(cli.tenant(tenant), action=action, limit=limit, actor=actor,
                                       since=when("--since", since), until=when("--until", until), target=target)
    if as_json:
        print_json(rows)
        return
    print_rows([{**plain(r), "detail": json.dumps(r.detail)[:80]} for r in rows],
               ["number", "at", "actor", "action", "target", "detail"])


# -- search, holds, retention ---------------------------------------------------------------------------


def search(ctx: typer.Context, query: str, by: ByOpt = None,
           user: Annotated[list[str] | None, typer.Option(help="Only these mailboxes.")] = None,
           purges: Annotated[bool, typer.Option("--purges", help="Include Recoverable Items/Purges.")] = False,
           start: int = 0, count: int = 20, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Content search over all (or some) mailboxes, in the query language of docs/search.md."""
    cli = Cli.of(ctx)
    t = cli.tenant(tenant)
    users = [cli.user_id(t, u) for u in user or []] or None
    result = cli.services.ediscovery.content_search(t, query, _cases_as(cli, tenant, by), users=users,
                                                    include_purges=purges, start=start, count=count)
    if as_json:
        print_json(result)
        return
    console.print(f"{result.count} items")
    _print_counts(result.by_mailbox, sort=True)
    print_rows(result.results, RESULT_COLUMNS)


def _print_counts(counts: dict[str, int], *, sort: bool = False) -> None:
    for name, n in sorted(counts.items()) if sort else counts.items():
        console.print(f"  {name}: {n}")


@hold_app.command("place")
def hold_place(ctx: typer.Context, name: str, by: ByOpt = None,
               user: Annotated[str | None, typer.Option(help="Hold this user's whole mailbox.")] = None,
               case: Annotated[str | None, typer.Option(help="Hold in this case (its custodians).")] = None,
               query: Annotated[str | None, typer.Option(help="Only what this query finds (case holds).")] = None,
               days: Annotated[int | None, typer.Option(help="Hold items for N days from their date.")] = None,
               tenant: TenantOpt = None) -> None:
    cli = Cli.of(ctx)
    t = cli.tenant(tenant)
    user_id = cli.user_id(t, user) if user else None
    case_id = cli.services.ediscovery.find_case(t, case) if case else None
    hold = cli.services.compliance.place_hold(t, name=name, actor=_compliance_as(cli, tenant, by), user_id=user_id,
                                              case_id=case_id, query=query, duration_days=days)
    console.print(f"hold {hold.id} placed")


@hold_app.command("release")
def hold_release(ctx: typer.Context, hold_id: str, by: ByOpt = None, tenant: TenantOpt = None) -> None:
    cli = Cli.of(ctx)
    cli.services.compliance.release_hold(cli.tenant(tenant), hold_id, _compliance_as(cli, tenant, by))
    console.print(f"hold {hold_id} released")


@hold_app.command("list")
def hold_list(ctx: typer.Context, tenant: TenantOpt = None,
              all_holds: Annotated[bool, typer.Option("--all")] = False, as_json: JsonOpt = False) -> None:
    cli = Cli.of(ctx)
    rows = cli.services.compliance.holds(cli.tenant(tenant), active_only=not all_holds)
    print_rows(rows, ["id", "name", "user_id", "case_id", "query", "duration_days", "released_at"], as_json)


@retention_app.command("create")
def retention_create(ctx: typer.Context, name: str, by: ByOpt = None,
                     retain_days: Annotated[int | None, typer.Option()] = None,
                     delete_after_days: Annotated[int | None, typer.Option()] = None,
                     user: Annotated[list[str] | None, typer.Option(help="Limit to these users.")] = None,
                     folder: Annotated[list[str] | None, typer.Option()] = None,
                     kind: Annotated[list[str] | None, typer.Option()] = None,
                     tenant: TenantOpt = None) -> None:
    cli = Cli.of(ctx)
    t = cli.tenant(tenant)
    users = [cli.user_id(t, u) for u in user or []]
    cli.services.compliance.create_policy(t, name=name, actor=_compliance_as(cli, tenant, by), retain_days=retain_days,
                                          delete_after_days=delete_after_days, users=users, folders=folder or [],
                                          kinds=kind or [])
    console.print(f"retention policy {name} created")


@retention_app.command("list")
def retention_list(ctx: typer.Context, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    cli = Cli.of(ctx)
    print_rows(cli.services.compliance.policies(cli.tenant(tenant)),
               ["name", "retain_days", "delete_after_days", "users", "folders", "kinds", "enabled"], as_json)


@retention_app.command("apply")
def retention_apply(ctx: typer.Context, tenant: TenantOpt = None) -> None:
    """Run the retention job now, here, with a progress bar (it also runs daily from the scheduler)."""
    cli = Cli.of(ctx)
    t = cli.tenant(tenant)
    with progress_bar("retention") as progress:
        counts = cli.services.compliance.apply_retention(t, progress=progress)
    console.print(", ".join(f"{k}: {v}" for k, v in plain(counts).items()))


@retention_app.command("disable")
def retention_disable(ctx: typer.Context, name: str, by: ByOpt = None, tenant: TenantOpt = None) -> None:
    cli = Cli.of(ctx)
    cli.services.compliance.disable_policy(cli.tenant(tenant), name, _compliance_as(cli, tenant, by))
    console.print(f"retention policy {name} disabled")


# -- eDiscovery cases -----------------------------------------------------------------------------------


def _case(cli: Cli, tenant: str | None, case: str) -> tuple[str, str]:
    return cli.named(tenant, cli.services.ediscovery.find_case, case)


@case_app.command("create")
def case_create(ctx: typer.Context, name: str, by: ByOpt = None, tenant: TenantOpt = None) -> None:
    cli = Cli.of(ctx)
    case = cli.services.ediscovery.create_case(cli.tenant(tenant), name, _cases_as(cli, tenant, by))
    console.print(f"case {case.name} ({case.id}) created")


@case_app.command("custodian")
def case_custodian(ctx: typer.Context, case: str, users: list[str], by: ByOpt = None, tenant: TenantOpt = None) -> None:
    cli = Cli.of(ctx)
    t = cli.tenant(tenant)
    ids = [cli.user_id(t, u) for u in users]
    ediscovery = cli.services.ediscovery
    custodians = ediscovery.add_custodians(t, ediscovery.find_case(t, case), ids, _cases_as(cli, tenant, by))
    console.print(f"{len(custodians)} custodian(s)")


@case_app.command("hold")
def case_hold(ctx: typer.Context, case: str, by: ByOpt = None,
              query: Annotated[str | None, typer.Option()] = None, days: Annotated[int | None, typer.Option()] = None,
              tenant: TenantOpt = None) -> None:
    cli = Cli.of(ctx)
    hold = cli.services.ediscovery.hold(*_case(cli, tenant, case), _cases_as(cli, tenant, by), query=query,
                                        duration_days=days)
    console.print(f"hold {hold.id} placed on the case's custodians" + (f" for {query!r}" if query else ""))


@case_app.command("search")
def case_search(ctx: typer.Context, case: str, query: str, by: ByOpt = None,
                no_purges: Annotated[bool, typer.Option("--no-purges")] = False,
                save: Annotated[str | None, typer.Option("--save", help="Keep the search in the case as NAME.")]
                = None,
                tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Count, per-custodian statistics and a preview of the first results."""
    cli = Cli.of(ctx)
    t, cid = _case(cli, tenant, case)
    ediscovery = cli.services.ediscovery
    if save:
        ediscovery.save_search(t, cid, save, query, _cases_as(cli, tenant, by), include_purges=not no_purges)
    result = ediscovery.run_search(t, cid, query, _cases_as(cli, tenant, by), include_purges=not no_purges)
    if as_json:
        print_json(result)
        return
    console.print(f"{result.count} items ({result.total_size} bytes)")
    _print_counts(result.by_custodian)
    print_rows(result.preview, RESULT_COLUMNS)


@case_app.command("close")
def case_close(ctx: typer.Context, case: str, by: ByOpt = None, tenant: TenantOpt = None) -> None:
    """Close a case: its holds are released (their items fall under retention again)."""
    cli = Cli.of(ctx)
    cli.services.ediscovery.close_case(*_case(cli, tenant, case), _cases_as(cli, tenant, by))
    console.print(f"case {case} closed; its holds are released")


@case_app.command("export")
def case_export(ctx: typer.Context, case: str, query: str, out: Path, by: ByOpt = None,
                dedupe: Annotated[bool, typer.Option("--dedupe")] = False, tenant: TenantOpt = None) -> None:
    """Export what a query finds into the new folder OUT (run by the operator, on this machine): EML per item,
    MBOX per custodian, load file, summary, manifest. OUT must not exist, or be an empty folder."""
    cli = Cli.of(ctx)
    t, cid = _case(cli, tenant, case)
    with progress_bar("exporting") as progress:
        summary = cli.services.ediscovery.export(t, cid, query, out, _cases_as(cli, tenant, by), deduplicate=dedupe,
                                                  progress=progress)
    console.print(f"{summary.exported} items exported to {out} ({len(summary.errors)} errors)")
    if summary.errors:
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


def _compliance_as(cli: Cli, tenant: str | None, by: str | None) -> str:
    return _actor(cli, tenant, by, COMPLIANCE)


def _cases_as(cli: Cli, tenant: str | None, by: str | None) -> str:
    return _actor(cli, tenant, by, COMPLIANCE, EDISCOVERY)


def _actor(cli: Cli, tenant: str | None, by: str | None, *roles: str) -> str:
    """Who the audit trail names for this command: the operator, or ``--as``/``--by`` an administrator of the
    tenant holding one of ``roles`` (checked as over HTTP)."""
    principal = cli.principal(cli.tenant(tenant), by)
    access.require(principal, roles, "this command")
    return principal.actor
