"""What each domain brings to the application: its routers, its commands, its jobs and its scheduled work.

Warehouse's ``includeme`` is the model (STYLE.md): a domain package has a ``register(registry)`` that says what
it contributes, and the application lists the domains (``tenantry.domains``) instead of naming every router,
command and task itself. The web application includes the routers and the ``tenantry`` command adds the
commands; the job engines (``tenantry.jobs``) run the tasks; the scheduler asks each domain for its due work and
claims periodic work in the database. A new part (trust, voice) is one more package with a ``register`` and one
more line in ``tenantry.domains``.

The registry knows nothing of the services' concrete type (``Any`` here): ``core`` sits below the domains.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import typer
from fastapi import APIRouter

# A job: (services, keyword arguments) → its result, a JSON-able dict with an "id".
Task = Callable[[Any, dict[str, Any]], dict[str, Any]]
# A job of the ``jobs`` table (started over the admin API): (services, job id, tenant, params, progress) → result.
Tracked = Callable[[Any, str, str, dict[str, Any], Callable[[int, int | None], None]], dict[str, Any]]
# Due work a domain keeps on its own rows (connector runs, provisioning cycles): claims what is due at ``now``
# and answers the jobs to submit, as (task name, keyword arguments).
DueWork = Callable[[Any, datetime], list[tuple[str, dict[str, Any]]]]


@dataclass(frozen=True)
class Periodic:
    """Work every ``every``, claimed in the database (``core.schedule.claim_periodic``), so one scheduler of
    any number runs it once: ``jobs(services)`` answers the jobs to submit."""

    name: str
    every: timedelta
    jobs: Callable[[Any], list[tuple[str, dict[str, Any]]]]


@dataclass(frozen=True)
class RouteContext:
    """What a domain's routers are built from."""

    services: Any
    tenant_of: Callable[..., str]           # the admin guard's tenant check (directory.api.admin_guard)
    submit: Callable[..., str]              # hand a job to the engine: submit(task name, **kwargs) → job id
    enqueue: Callable[[str], None]          # hand a row of the jobs table to the engine


@dataclass
class Registry:
    routers: list[Callable[[RouteContext], APIRouter]] = field(default_factory=list)
    pages: list[Callable[[RouteContext], APIRouter]] = field(default_factory=list)
    cli: list[Callable[[typer.Typer], None]] = field(default_factory=list)
    # Command path ("hold place") → the roles an administrator acting with --as needs (issue #12).
    command_roles: dict[str, tuple[str, ...]] = field(default_factory=dict)
    tasks: dict[str, Task] = field(default_factory=dict)
    tracked: dict[str, Tracked] = field(default_factory=dict)
    due: list[DueWork] = field(default_factory=list)
    periodic: list[Periodic] = field(default_factory=list)

    def add_router(self, build: Callable[[RouteContext], APIRouter]) -> None:
        """A router of ``/api/v1``, included behind the credential guard."""
        self.routers.append(build)

    def add_pages(self, build: Callable[[RouteContext], APIRouter]) -> None:
        """A router outside the admin API, included as it is: no ``/api/v1`` prefix and no admin guard, its
        routes answering to their own credential — browser pages (``/auth/…``) to a session cookie or to nobody
        (the sign-in form), partner endpoints (``/trust/{realm}/…``) to a partner's token."""
        self.pages.append(build)

    def add_cli(self, add_commands: Callable[[typer.Typer], None],
                roles: dict[str, tuple[str, ...]] | None = None) -> None:
        """A function that adds the part's typer sub-apps and commands to the root ``tenantry`` command, and the
        roles each of those commands needs when run ``--as`` an administrator (as its routes name theirs)."""
        self.cli.append(add_commands)
        for path, needed in (roles or {}).items():
            if path in self.command_roles:
                raise ValueError(f"two parts give the roles of `tenantry {path}`")
            self.command_roles[path] = needed

    def add_task(self, name: str, task: Task) -> None:
        if name in self.tasks:
            raise ValueError(f"two domains register the task {name!r}")
        self.tasks[name] = task

    def add_tracked(self, kind: str, task: Tracked) -> None:
        if kind in self.tracked:
            raise ValueError(f"two domains register the tracked job {kind!r}")
        self.tracked[kind] = task

    def add_due(self, work: DueWork) -> None:
        self.due.append(work)

    def add_periodic(self, periodic: Periodic) -> None:
        if any(p.name == periodic.name for p in self.periodic):
            raise ValueError(f"two domains register the periodic work {periodic.name!r}")
        self.periodic.append(periodic)
