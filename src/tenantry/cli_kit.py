"""What every ``tenantry`` command is made of: the per-run context, the shared options, output and errors.

Each part's commands live beside the part (``directory/cli.py``, ``archive/cli.py``, …); this module is what
they share, so that a command reads as a line or two over its service (the shape of Flask's ``ScriptInfo``):

- ``Cli``, the context object in ``ctx.obj``: the settings, and the services built on first use. ``--help`` and
  commands that need no database (``case verify-export``, ``feed-server``) never run the migrations.
- ``CliGroup``, the one place a domain error (``core.errors``) or a SCIM error becomes a red message on stderr
  and exit code 1, whichever command raised it.
- Options every part uses (``--tenant``, ``--json``, ``--by``), tables, JSON and progress bars.

It imports the composition root (``tenantry.app``) only when the services are built, so that a domain's CLI
module can be imported by whatever registers the domain without an import circle.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from scim2_models import SCIMException
from typer.core import TyperCommand, TyperGroup

from tenantry.core.errors import TenantryError
from tenantry.core.principals import Principal, operator
from tenantry.core.results import plain
from tenantry.core.settings import Settings

if TYPE_CHECKING:
    from tenantry.app import Services

console = Console()
err = Console(stderr=True)

TenantOpt = Annotated[str | None, typer.Option("--tenant", "-t", help="Tenant id (default: the default tenant).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
# Act as this administrator for this one command (as the root's ``--as``); without either, as the operator.
ByOpt = Annotated[str | None, typer.Option("--by", "--as", help="Act as this administrator (e-mail or id): their "
                                           "roles are checked and the audit trail names them.")]

Progress = Callable[[int, int | None], None]


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    # Messages quote names and files the user handed in: their brackets are text, not rich markup.
    err.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)   # one line: logs and scripts grep it
    raise typer.Exit(code)


class CliGroup(TyperGroup):
    """A command group that turns the errors services raise into a message and a non-zero exit."""

    # ``ctx`` is typer's vendored click Context, which typer does not export under a public name.
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except TenantryError as exc:
            fail(exc.message)
        except SCIMException as exc:
            fail(f"{exc.scim_type or exc.status}: {exc.detail}")


# Commands that change nothing (or whose service records what they read, as searches and exports do): the rest
# leave an ``admin.change`` entry in the tenant's ledger when they succeed (issue #12). A command missing here is
# recorded, never the other way round.
READS = frozenset({
    "admin sessions", "archive audit", "archive export", "archive items", "archive mailboxes", "archive show",
    "archive verify", "audit", "case search", "case verify-export", "connector list", "connector report",
    "connector review", "connector schedule", "db upgrade", "directory domains", "directory groups",
    "directory licences", "directory role-groups", "directory users", "feed-server", "hold list",
    "partner-app list", "provisioning apps", "provisioning logs", "provisioning roles", "provisioning scope",
    "provisioning status", "retention list", "scim log", "search", "serve", "service-principal show",
    "sign-in oidc show", "tenant list", "token list", "worker",
    # voicecore: voice's reads
    "voice check", "voice federation show", "voice gateway list", "voice hybrid-config show",
    "voice mediation-server list", "voice site list", "voice trunk list", "voice user list",
    "voice user pstn-site show", "voice user show", "voice ca show", "voice route", "voice serve"})
# Parameters never written to the ledger.
_UNRECORDED = ("password", "secret", "token_stdin")


# The installation's own commands: the operator's on the machine, never an administrator's (``--as`` is refused).
OPERATOR_ONLY = frozenset({
    "serve", "worker", "db upgrade", "tenant create", "tenant list", "token create", "token rotate", "token revoke",
    "token list", "admin password set", "admin unlock", "admin sessions", "connector schedule", "feed-server",
    "voice serve"})


class AuditedCommand(TyperCommand):
    """A command run as a principal: ``--as``/``--by`` an administrator is refused unless they hold one of the
    roles the command's part gives it (``Registry.add_cli(roles=…)``), as its route would; when it succeeds and
    changes something, it leaves an ``admin.change`` entry naming who ran it in the tenant's ledger."""

    def invoke(self, ctx: Any) -> Any:
        _check_acting(ctx)
        result = super().invoke(ctx)
        _record_change(ctx)
        return result


def _acting_as(ctx: Any) -> str | None:
    cli = ctx.find_object(Cli)
    named = ctx.params.get("by") or ctx.params.get("as_") or (cli.acting_as if cli is not None else None)
    return str(named) if named else None


def _check_acting(ctx: Any) -> None:
    who = _acting_as(ctx)
    if who is None:
        return   # the operator, who owns the machine
    path = _command_path(ctx)
    if path in OPERATOR_ONLY:
        fail(f"`tenantry {path}` is the operator's (run it without --as)")
    cli = Cli.of(ctx)
    tenant = str(ctx.params.get("tenant") or cli.settings.default_tenant)
    require_command_roles(path, cli.principal(cli.tenant(tenant), who))


def require_command_roles(path: str, principal: Principal) -> None:
    """Forbidden unless ``principal`` may run ``tenantry <path>``: an operator-only command or one whose part
    names no roles is refused to every administrator."""
    from tenantry.core import access
    from tenantry.core.errors import Forbidden
    from tenantry.domains import registry

    if principal.unrestricted:
        return
    roles = registry().command_roles.get(path)
    if path in OPERATOR_ONLY or roles is None:
        raise Forbidden(f"`tenantry {path}` is the operator's (run it without --as)")
    access.require(principal, roles, f"`tenantry {path}`")


def _command_path(ctx: Any) -> str:
    names = []
    while ctx is not None and ctx.parent is not None:
        names.append(ctx.info_name)
        ctx = ctx.parent
    return " ".join(reversed(names))


def _record_change(ctx: Any) -> None:
    path = _command_path(ctx)
    cli = ctx.find_object(Cli)
    if path in READS or cli is None or cli._services is None:
        return   # nothing of the database was opened: nothing in it changed
    params = {k: str(v) for k, v in ctx.params.items()
              if v is not None and not any(word in k for word in _UNRECORDED)}
    tenant = str(ctx.params.get("tenant_id") if path == "tenant create" else
                 ctx.params.get("tenant") or cli.settings.default_tenant)
    try:
        from tenantry.archive.models import LedgerAction

        principal = cli.principal(tenant, ctx.params.get("by") or ctx.params.get("as_"))
        cli.services.ledger.record(tenant, principal.actor, LedgerAction.ADMIN_CHANGE, "", via="cli",
                                   operation=path, params=params)
    except Exception as exc:  # noqa: BLE001 - the change is made; say that its record is not, and fail
        fail(f"{path}: the change was made, but its audit entry could not be written ({exc}); check it")


class _Typer(typer.Typer):
    """A typer app whose commands are ``AuditedCommand``s unless they say otherwise."""

    def command(self, *args: Any, cls: Any = None, **kwargs: Any) -> Any:
        return super().command(*args, cls=cls or AuditedCommand, **kwargs)


def root_app(help: str) -> typer.Typer:
    """The ``tenantry`` command itself."""
    return _Typer(cls=CliGroup, help=help, no_args_is_help=True)


def sub_app(help: str) -> typer.Typer:
    """A part's command group (``tenantry directory …``): errors translated, its help shown when called bare."""
    return _Typer(cls=CliGroup, help=help, no_args_is_help=True)


class Cli:
    """The context of one ``tenantry`` run (``ctx.obj``): settings from the environment, services built once.

    A test may hand one in (``CliRunner().invoke(app, args, obj=Cli(services))``) to run commands over
    services it built itself.
    """

    def __init__(self, services: Services | None = None, *, acting_as: str | None = None) -> None:
        self._services = services
        self._settings = services.settings if services else None
        self.acting_as = acting_as   # ``tenantry --as <user>``: act as that administrator of the tenant
        self._principals: dict[tuple[str, str | None], Principal] = {}

    @classmethod
    def of(cls, ctx: typer.Context) -> Cli:
        """The run's context; a sub-app invoked on its own gets one too."""
        return ctx.ensure_object(cls)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = Settings()
        return self._settings

    @property
    def services(self) -> Services:
        """The services the server uses, over the configured database (migrated on first use)."""
        if self._services is None:
            from tenantry.app import build_services

            self._services = build_services(self.settings)
        return self._services

    def tenant(self, option: str | None) -> str:
        """The tenant a command works on; one that does not exist is a clear error (not a constraint message)."""
        chosen = option or self.settings.default_tenant
        if chosen not in {t.id for t in self.services.directory.list_tenants()}:
            hint = ("`tenantry serve` creates it on its first start, or `tenantry tenant create "
                    f"{chosen}`") if chosen == self.settings.default_tenant else f"`tenantry tenant create {chosen}`"
            fail(f"no tenant {chosen!r}: {hint}")
        return chosen

    def named(self, option: str | None, find: Callable[[str, str], str], name: str) -> tuple[str, str]:
        """The tenant, and the id ``find(tenant, name)`` gives for a thing named in it (a connector, a case)."""
        tenant = self.tenant(option)
        return tenant, find(tenant, name)

    def principal(self, tenant: str, acting_as: str | None = None) -> Principal:
        """Who this command acts as (issue #12): the operator who runs it on the machine (their OS account named),
        or with ``--as`` (``acting_as``, or the root option) a named administrator of ``tenant``, whose roles are
        then checked as over HTTP."""
        who = acting_as or self.acting_as
        known = self._principals.get((tenant, who))
        if known is None:   # looked up once a run: the role check, the service and the audit entry ask again
            account = _os_account()
            known = operator(account, "cli") if who is None else self.services.directory.administrator(
                tenant, self.user_id(tenant, who), f"cli, run by {account}")
            self._principals[(tenant, who)] = known
        return known

    def user_id(self, tenant: str, who: str) -> str:
        """A user named by e-mail address or id."""
        directory = self.services.directory
        found = directory.find_users_by_email(tenant, [who]).get(who.strip().lower())
        if found:
            return found[0].id
        if directory.users_by_id(tenant, [who]):
            return who
        fail(f"no user {who!r} in tenant {tenant!r}")


def _os_account() -> str:
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except (KeyError, OSError):   # no name for this uid (a container's)
        import os

        user = f"uid {os.getuid()}"
    return f"{user}@{socket.gethostname()}"


_RELATIVE = re.compile(r"^(\d{1,6})\s*([mhd])$")


def when(option: str, text: str | None) -> datetime | None:
    """An ISO 8601 date or time (UTC unless it names a zone), or an age: 30m, 24h, 7d."""
    if text is None:
        return None
    relative = _RELATIVE.match(text.strip().lower())
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2)
        return datetime.now(UTC) - timedelta(**{{"m": "minutes", "h": "hours", "d": "days"}[unit]: amount})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        fail(f"{option} {text!r}: give an ISO date or time (2026-03-01, 2026-03-01T09:00+01:00) or an age "
             "(30m, 24h, 7d)")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def print_json(value: Any) -> None:
    """``value`` (dicts, lists, typed results) as JSON on stdout."""
    console.print_json(json.dumps(plain(value), default=str))


def print_rows(rows: Sequence[Any], columns: list[str], as_json: bool = False) -> None:
    """A table of ``columns``, or the rows as JSON; a row is a dict or a typed result (core.results)."""
    if as_json:
        print_json(rows)
        return
    table = Table(*columns)
    for row in rows:
        cells = plain(row)
        table.add_row(*[str(cells.get(c, "")) for c in columns])
    console.print(table)


@contextmanager
def progress_bar(label: str, *, count: str | None = None) -> Iterator[Progress]:
    """A rich progress bar on stderr; yields the ``progress(done, total)`` callback a service takes.

    It shows done/total, or with ``count`` (``"items"``) a running count, for work whose total is not known.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bar

    done_column = TextColumn(f"{{task.completed}} {count}") if count else MofNCompleteColumn()
    with Bar(TextColumn("{task.description}"), BarColumn(), done_column, TimeElapsedColumn(), console=err) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)
