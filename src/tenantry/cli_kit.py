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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from scim2_models import SCIMException
from typer.core import TyperGroup

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
    err.print(f"[red]error:[/red] {escape(message)}")
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


def sub_app(help: str) -> typer.Typer:
    """A part's command group (``tenantry directory …``): errors translated, its help shown when called bare."""
    return typer.Typer(cls=CliGroup, help=help, no_args_is_help=True)


class Cli:
    """The context of one ``tenantry`` run (``ctx.obj``): settings from the environment, services built once.

    A test may hand one in (``CliRunner().invoke(app, args, obj=Cli(services))``) to run commands over
    services it built itself.
    """

    def __init__(self, services: Services | None = None, *, acting_as: str | None = None) -> None:
        self._services = services
        self._settings = services.settings if services else None
        self.acting_as = acting_as   # ``tenantry --as <user>``: act as that administrator of the tenant

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
        account = _os_account()
        who = acting_as or self.acting_as
        if who is None:
            return operator(account, "cli")
        return self.services.directory.administrator(tenant, self.user_id(tenant, who), f"cli, run by {account}")

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
