"""Outbound provisioning's commands: ``tenantry provisioning …`` (apps, assignments, roles, configuration,
cycles, status and logs)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from tenantry.cli_kit import Cli, JsonOpt, TenantOpt, console, fail, print_json, print_rows, progress_bar, sub_app
from tenantry.provisioning.results import CycleInfo, CycleReport, CycleStatus, Result, ScopeMode
from tenantry.provisioning.service import ProvisioningService

app = sub_app("Outbound provisioning into downstream SCIM apps.")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="provisioning")


AppArg = Annotated[str, typer.Argument(metavar="APP")]
RoleArg = Annotated[str, typer.Argument(help="The role's id, display name or value.")]
GroupOpt = Annotated[bool, typer.Option("--group", help="The principal is a group id.")]
# Issue #12's shape for the CLI: the operator may act as a named administrator, whose role is then checked
# (Application Administrator) and who is named in the app's change log. Without it the operator acts.
AsOpt = Annotated[str | None, typer.Option("--as", help="Act as this administrator (userName or id); needs the "
                                                        "Application Administrator role.")]
MemberTypesOpt = Annotated[str | None, typer.Option(
    "--member-types", help="Who may be assigned the role: users, groups, or users,groups.")]


@dataclass(frozen=True)
class _On:
    """What a command about one app works on: the app in its tenant, and who acts (None: the operator)."""

    cli: Cli
    tenant: str
    app: str
    actor: str | None

    @property
    def service(self) -> ProvisioningService:
        return self.cli.services.provisioning


def _on(ctx: typer.Context, tenant: str | None, app_ref: str, as_: str | None = None) -> _On:
    cli = Cli.of(ctx)
    t, app_id = cli.named(tenant, cli.services.provisioning.find_app, app_ref)
    return _On(cli, t, app_id, _actor(cli, t, as_))


def _actor(cli: Cli, tenant: str, who: str | None) -> str | None:
    return None if who is None else cli.user_id(tenant, who)


@app.command("app-add")
def provisioning_app_add(ctx: typer.Context, name: str, tenant_url: str,
                         token_stdin: Annotated[bool, typer.Option("--token-stdin", help="Read the app's token.")]
                         = False,
                         scope: Annotated[str, typer.Option(help="assigned or all")] = ScopeMode.ASSIGNED,
                         notify: Annotated[str | None, typer.Option(help="E-mail for failures.")] = None,
                         tenant: TenantOpt = None, as_: AsOpt = None) -> None:
    """Add a downstream SCIM app (tenant URL + secret token, stored sealed), then test the connection."""
    cli = Cli.of(ctx)
    t = cli.tenant(tenant)
    actor = _actor(cli, t, as_)
    token = sys.stdin.readline().strip() if token_stdin else ""
    provisioning = cli.services.provisioning
    info = provisioning.create_app(t, name=name, tenant_url=tenant_url, token=token, notification_email=notify,
                                   scope=scope, actor=actor)
    result = provisioning.test_connection(t, info.id)
    console.print(f"app {name} ({info.id}) added; test connection: {result.message}")
    if not result.ok:
        raise typer.Exit(1)


@app.command("app-update")
def provisioning_app_update(ctx: typer.Context, app_ref: AppArg,
                            tenant_url: Annotated[str | None, typer.Option()] = None,
                            token_stdin: Annotated[bool, typer.Option("--token-stdin",
                                                                      help="Read a new token.")] = False,
                            scope: Annotated[str | None, typer.Option(help="assigned or all")] = None,
                            notify: Annotated[str | None, typer.Option(help="E-mail for failures.")] = None,
                            tenant: TenantOpt = None, as_: AsOpt = None) -> None:
    """Change an app's URL, token (rotated), scope or notification address. A URL on another host needs
    --token-stdin with it: the stored token is only ever sent to the host it was given for."""
    on = _on(ctx, tenant, app_ref, as_)
    token = sys.stdin.readline().strip() if token_stdin else None
    on.service.update_app(on.tenant, on.app, tenant_url=tenant_url, token=token, scope=scope,
                          notification_email=notify, actor=on.actor)
    console.print("updated")


@app.command("apps")
def provisioning_apps(ctx: typer.Context, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    cli = Cli.of(ctx)
    print_rows(cli.services.provisioning.list_apps(cli.tenant(tenant)),
               ["name", "id", "enabled", "health", "scope", "next_run_at", "tenant_url"], as_json)


@app.command("assign")
def provisioning_assign(ctx: typer.Context, app_ref: AppArg, principal: str, group: GroupOpt = False,
                        role: Annotated[str, typer.Option(help="One of the app's roles (id, display name or "
                                                               "value); see `provisioning roles`.")] = "User",
                        tenant: TenantOpt = None, as_: AsOpt = None) -> None:
    """Assign a user (userName or id) or a group (--group, its id) with one of the app's roles."""
    on = _on(ctx, tenant, app_ref, as_)
    principal_id = principal if group else on.cli.user_id(on.tenant, principal)
    on.service.assign(on.tenant, on.app, "Group" if group else "User", principal_id, role, actor=on.actor)
    console.print("assigned")


@app.command("unassign")
def provisioning_unassign(ctx: typer.Context, app_ref: AppArg, principal: str, group: GroupOpt = False,
                          tenant: TenantOpt = None, as_: AsOpt = None) -> None:
    on = _on(ctx, tenant, app_ref, as_)
    principal_id = principal if group else on.cli.user_id(on.tenant, principal)
    on.service.unassign(on.tenant, on.app, "Group" if group else "User", principal_id, actor=on.actor)
    console.print("unassigned")


@app.command("scope")
def provisioning_scope(ctx: typer.Context, app_ref: AppArg, tenant: TenantOpt = None) -> None:
    """Who the app provisions, and who is skipped and why."""
    on = _on(ctx, tenant, app_ref)
    decision = on.service.scope(on.tenant, on.app)
    console.print(f"{len(decision.in_scope)} users in scope")
    for user_id, why in decision.skipped.items():
        console.print(f"  skipped {user_id}: {why}")
    for group_id, why in decision.groups_skipped.items():
        console.print(f"  skipped group {group_id}: {why}")


@app.command("roles")
def provisioning_roles(ctx: typer.Context, app_ref: AppArg, tenant: TenantOpt = None,
                       as_json: JsonOpt = False) -> None:
    """The app's roles (Entra's appRoles; Default Access and User are built in) and how many hold each."""
    on = _on(ctx, tenant, app_ref)
    print_rows(on.service.list_roles(on.tenant, on.app),
               ["display_name", "value", "enabled", "allowed_member_types", "assignments", "built_in", "id"], as_json)


@app.command("role-add")
def provisioning_role_add(ctx: typer.Context, app_ref: AppArg, display_name: str,
                          value: Annotated[str | None, typer.Option(help="What the app receives (no spaces); "
                                                                         "default: the display name is sent.")]
                          = None,
                          description: Annotated[str | None, typer.Option()] = None,
                          member_types: MemberTypesOpt = None, tenant: TenantOpt = None, as_: AsOpt = None) -> None:
    """Add a role to the app; assign it with `assign … --role NAME`."""
    on = _on(ctx, tenant, app_ref, as_)
    types = member_types.split(",") if member_types is not None else ["User", "Group"]
    role = on.service.add_role(on.tenant, on.app, display_name=display_name, value=value, description=description,
                               allowed_member_types=types, actor=on.actor)
    console.print(f"role {role.display_name} ({role.id}) added", markup=False, highlight=False)


@app.command("role-update")
def provisioning_role_update(ctx: typer.Context, app_ref: AppArg, role: RoleArg,
                             display_name: Annotated[str | None, typer.Option()] = None,
                             value: Annotated[str | None, typer.Option(help='"" clears it.')] = None,
                             description: Annotated[str | None, typer.Option(help='"" clears it.')] = None,
                             member_types: MemberTypesOpt = None,
                             enabled: Annotated[bool | None, typer.Option(
                                 "--enable/--disable", help="A disabled role is not assigned again; those who "
                                                            "hold it keep it.")] = None,
                             tenant: TenantOpt = None, as_: AsOpt = None) -> None:
    """Change or disable a role (the built-in Default Access and User cannot be changed)."""
    on = _on(ctx, tenant, app_ref, as_)
    types = member_types.split(",") if member_types is not None else None
    changed = on.service.update_role(on.tenant, on.app, role, display_name=display_name, value=value,
                                     description=description, allowed_member_types=types, enabled=enabled,
                                     actor=on.actor)
    console.print(f"role {changed.display_name}: {'enabled' if changed.enabled else 'disabled'}, value "
                  f"{changed.value or '-'}, for {', '.join(changed.allowed_member_types)}",
                  markup=False, highlight=False)


@app.command("role-delete")
def provisioning_role_delete(ctx: typer.Context, app_ref: AppArg, role: RoleArg, tenant: TenantOpt = None,
                             as_: AsOpt = None) -> None:
    """Delete a role no assignment holds (one in use is refused: reassign them, or disable it)."""
    on = _on(ctx, tenant, app_ref, as_)
    on.service.delete_role(on.tenant, on.app, role, actor=on.actor)
    console.print("deleted")


@app.command("config")
def provisioning_config(ctx: typer.Context, app_ref: AppArg,
                        set_: Annotated[list[str] | None, typer.Option(
                            "--set", help="key=value (value is JSON, or a plain string), e.g. concurrency=8, "
                                          "actions.delete=false, deletion_threshold=null")] = None,
                        file: Annotated[Path | None, typer.Option(help="A JSON object of settings to apply "
                                                                       "(mappings, scoping_filters, …).")] = None,
                        tenant: TenantOpt = None, as_: AsOpt = None) -> None:
    """Show the app's configuration; with --set/--file, change it (validated before it is saved)."""
    on = _on(ctx, tenant, app_ref, as_)
    changes = config_changes(file, set_ or [])
    config = (on.service.configure(on.tenant, on.app, changes, actor=on.actor) if changes
              else on.service.config(on.tenant, on.app))
    console.print_json(config.model_dump_json())


def config_changes(file: Path | None, assignments: list[str]) -> dict[str, Any]:  # dict: as merge_config takes
    """The changes ``--file`` (a JSON object) and ``--set key=value`` ask for; ``actions.X`` sets one action."""
    changes: dict[str, Any] = {}
    if file is not None:
        try:
            loaded = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            fail(f"cannot read {file}: {exc}")
        if not isinstance(loaded, dict):
            fail(f"{file} must hold a JSON object")
        changes.update(loaded)
    for item in assignments:
        key, sep, raw = item.partition("=")
        if not sep:
            fail(f"--set takes key=value, not {item!r}")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        if key.startswith("actions."):
            changes.setdefault("actions", {})[key.removeprefix("actions.")] = value
        else:
            changes[key] = value
    return changes


@app.command("start")
def provisioning_start(ctx: typer.Context, app_ref: AppArg, tenant: TenantOpt = None, as_: AsOpt = None) -> None:
    """Provisioning status On: the scheduler runs a cycle now, then every interval."""
    _set_enabled(_on(ctx, tenant, app_ref, as_), True)


@app.command("stop")
def provisioning_stop(ctx: typer.Context, app_ref: AppArg, tenant: TenantOpt = None, as_: AsOpt = None) -> None:
    """Provisioning status Off: no more scheduled cycles (run and on-demand still work)."""
    _set_enabled(_on(ctx, tenant, app_ref, as_), False)


def _set_enabled(on: _On, enabled: bool) -> None:
    on.service.set_enabled(on.tenant, on.app, enabled, actor=on.actor)
    console.print(f"provisioning {'on' if enabled else 'off'}")


@app.command("restart")
def provisioning_restart(ctx: typer.Context, app_ref: AppArg, tenant: TenantOpt = None, as_: AsOpt = None) -> None:
    """Forget what the app holds and the watermark: the next cycle matches everything again."""
    on = _on(ctx, tenant, app_ref, as_)
    on.service.restart(on.tenant, on.app, actor=on.actor)
    console.print("restarted: the next cycle is an initial cycle")


@app.command("run")
def provisioning_run(ctx: typer.Context, app_ref: AppArg,
                     allow_deletions: Annotated[bool, typer.Option(
                         "--allow-deletions", help="Go past the accidental-deletion threshold, this once.")] = False,
                     tenant: TenantOpt = None) -> None:
    """Run a cycle now, in this process, with a progress bar; exit 1 unless it succeeded."""
    on = _on(ctx, tenant, app_ref)
    with progress_bar("provisioning") as progress:
        # A cycle reports a total of 0 until it has read the directory: shown as not known yet.
        report = on.service.run_cycle(on.tenant, on.app, allow_deletions=allow_deletions,
                                      progress=lambda done, total: progress(done, total or None))
    _print_cycle(report)
    if report.status != CycleStatus.SUCCEEDED:
        raise typer.Exit(1)


def _print_cycle(c: CycleReport | CycleInfo) -> None:
    console.print(f"cycle {c.id} ({c.kind}): {c.status}  {c.done}/{c.total} objects")
    for key, value in sorted(c.stats.items()):
        console.print(f"  {key}: {value}")
    if c.reason:
        console.print(f"  reason: {c.reason}")


@app.command("on-demand")
def provisioning_on_demand(ctx: typer.Context, app_ref: AppArg, user: str, tenant: TenantOpt = None) -> None:
    """Provision one user now and show every step."""
    on = _on(ctx, tenant, app_ref)
    directory = on.cli.services.directory
    user_id = user if directory.users_by_id(on.tenant, [user]) else on.cli.user_id(on.tenant, user)
    report = on.service.provision_on_demand(on.tenant, on.app, user_id)
    for entry in report.logs:
        console.print(f"{entry.object_type} {entry.display or entry.source_id}: {entry.action} "
                      f"{entry.result} {entry.reason or ''}")
        for step in entry.steps:
            console.print(f"  {step.step:<7} {step.result:<8} {step.detail}")
    if not report.logs:
        console.print("nothing to do: the user is not in scope and the app does not hold it")
    if any(e.result == Result.FAILURE for e in report.logs):
        raise typer.Exit(1)


@app.command("status")
def provisioning_status(ctx: typer.Context, app_ref: AppArg, tenant: TenantOpt = None,
                        as_json: JsonOpt = False) -> None:
    """Health, what the app holds, the running cycle's progress and the last cycles' statistics."""
    on = _on(ctx, tenant, app_ref)
    status = on.service.status(on.tenant, on.app)
    if as_json:
        print_json(status)
        return
    console.print(f"{status.name}: {'on' if status.enabled else 'off'}, {status.health}"
                  + (f" ({status.health_reason})" if status.health_reason else "")
                  + (", a cycle is running" if status.running else ""))
    console.print(f"users held: {status.users or 0}; groups: {status.groups}; "
                  f"objects failing: {status.objects_failing}; next cycle: {status.next_run_at or '-'}")
    for c in status.cycles:
        _print_cycle(c)


@app.command("logs")
def provisioning_logs(ctx: typer.Context, app_ref: AppArg,
                      user: Annotated[str | None, typer.Option(help="Only this user (id or e-mail).")] = None,
                      result: Annotated[str | None, typer.Option(help="success, failure or skipped")] = None,
                      cycle: Annotated[str | None, typer.Option(help="Only this cycle id.")] = None,
                      limit: Annotated[int, typer.Option()] = 50,
                      steps: Annotated[bool, typer.Option("--steps", help="Show each entry's steps.")] = False,
                      tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Per-object provisioning logs, newest first."""
    on = _on(ctx, tenant, app_ref)
    source_id = _logged_user(on, user) if user else None
    rows = on.service.logs(on.tenant, on.app, source_id=source_id, result=result, cycle_id=cycle, limit=limit)
    if as_json:
        print_json(rows)
        return
    table = Table("at", "object", "action", "result", "reason")
    for r in rows:
        table.add_row(r.at[:19], f"{r.object_type} {r.display or r.source_id or ''}", r.action, r.result,
                      r.reason or "")
        if steps:
            for step in r.steps:
                table.add_row("", f"  {step.step}", "", step.result, step.detail)
    console.print(table)


def _logged_user(on: _On, user: str) -> str:
    """The source id logs name ``user`` by: a user's id, one found by e-mail, or else the text (a deleted
    user's id)."""
    directory = on.cli.services.directory
    if directory.users_by_id(on.tenant, [user]):
        return user
    found = directory.find_users_by_email(on.tenant, [user]).get(user.strip().lower())
    return found[0].id if found else user
