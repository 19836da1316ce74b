"""Roles from the credential (issue #12), generated from the route table like the isolation suite.

Every admin route under ``/api/v1/tenants/{tenant_id}`` names the roles that may call it (``core.access.needs``).
For each administrator role, an administrator holding only that role is refused with 403 on every route that does
not name it — the answer names the missing role and the command that grants it — and the database is as it was;
on every route that names it, the role check lets it through (whatever the route then answers to ids that name
nothing). An administrator with no role is refused everywhere.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from tenantry.app import Services, create_app
from tenantry.core.access import ADMIN_ROLES
from tests.conftest import admin_secret
from tests.security.routes import PLACEHOLDERS, fill, route_roles_table

ROLE_WORDS = ("needs the role", "names no role")


@pytest.fixture(scope="module")
def world(backend: Services) -> Iterator[dict[str, Any]]:
    tenant = f"r-{uuid.uuid4().hex[:10]}"
    backend.directory.create_tenant(tenant, "Roles")
    tokens = {role: admin_secret(backend, tenant, role, roles=[role]) for role in ADMIN_ROLES}
    tokens["no role"] = admin_secret(backend, tenant, "none", roles=[])
    with TestClient(create_app(backend.settings, backend)) as client:
        yield {"tenant": tenant, "tokens": tokens, "client": client, "routes": route_roles_table(client.app)}


def _call(world: dict[str, Any], method: str, path: str, token: str) -> Any:
    url = fill(path, {"tenant_id": world["tenant"], **PLACEHOLDERS})
    body = {} if method in ("POST", "PUT", "PATCH") else None
    return world["client"].request(method, url, headers={"Authorization": f"Bearer {token}"}, json=body)


def _state(services: Services) -> str:
    """A digest of every row of every table: what a refused call must not change."""
    digest = hashlib.sha256()
    with services.db.engine.connect() as conn:
        inspector = sa.inspect(conn)
        for name in sorted(inspector.get_table_names()):
            rows = conn.execute(sa.text(f'SELECT * FROM "{name}"')).all()
            digest.update(name.encode())
            for row in sorted(repr(tuple(r)) for r in rows):
                digest.update(row.encode())
    return digest.hexdigest()


def test_every_tenant_route_names_the_roles_that_may_call_it(world: dict[str, Any]) -> None:
    silent = [f"{m} {p}" for m, p, roles in world["routes"] if not roles]
    assert not silent, "name the roles of these routes (core.access.needs): " + ", ".join(silent)
    unknown = [f"{m} {p}: {roles}" for m, p, roles in world["routes"] if set(roles or ()) - set(ADMIN_ROLES)]
    assert not unknown, unknown


@pytest.mark.parametrize("role", [*ADMIN_ROLES, "no role"])
def test_a_role_is_refused_with_403_where_the_route_does_not_name_it_and_nothing_changes(
        world: dict[str, Any], backend: Services, role: str) -> None:
    before = _state(backend)
    wrong = []
    refused = 0
    for method, path, roles in world["routes"]:
        if role in (roles or ()):
            continue
        r = _call(world, method, path, world["tokens"][role])
        refused += 1
        message = r.json().get("message", "") if r.headers.get("content-type", "").startswith("application/json") \
            else ""
        if r.status_code != 403 or r.json().get("error") != "forbidden":
            wrong.append(f"{method} {path}: {r.status_code} {r.text[:160]}")
        elif not any(word in message for word in ROLE_WORDS) or "tenantry directory role-group" not in message:
            wrong.append(f"{method} {path}: the refusal does not name the role and its grant: {message[:200]}")
    assert refused, f"{role} is refused nowhere: the table names it on every route"
    assert not wrong, "\n".join(wrong)
    assert _state(backend) == before, f"a call refused to {role} changed the database"


@pytest.mark.parametrize("role", ADMIN_ROLES)
def test_a_role_passes_the_role_check_where_the_route_names_it(world: dict[str, Any], role: str) -> None:
    wrong = []
    for method, path, roles in world["routes"]:
        if role not in (roles or ()):
            continue
        r = _call(world, method, path, world["tokens"][role])
        if r.status_code == 403 and any(word in r.text for word in ROLE_WORDS):
            wrong.append(f"{method} {path}: {r.text[:160]}")
    assert not wrong, "\n".join(wrong)


# -- the CLI, run --as an administrator ------------------------------------------------------------------------


def _command_paths() -> list[str]:
    import typer.main

    from tenantry.cli import app

    paths: list[str] = []

    def walk(command: Any, prefix: list[str]) -> None:
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                walk(sub, [*prefix, name])
        else:
            paths.append(" ".join(prefix))

    walk(typer.main.get_command(app), [])
    return sorted(paths)


def _principal(roles: list[str]) -> Any:
    from tenantry.core.principals import Principal, PrincipalKind

    return Principal(PrincipalKind.ADMIN, "u", "ann@contoso.com", "t", frozenset(roles), "cli")


def test_every_command_names_its_roles_or_is_the_operators() -> None:
    from tenantry.cli_kit import OPERATOR_ONLY
    from tenantry.domains import registry

    declared = registry().command_roles
    paths = _command_paths()
    silent = [p for p in paths if p not in declared and p not in OPERATOR_ONLY]
    assert not silent, "name the roles of these commands (Registry.add_cli(roles=…)) or make them the " \
                       "operator's: " + ", ".join(silent)
    assert not set(declared) & OPERATOR_ONLY
    assert not set(declared) - set(paths), "roles named for commands that do not exist"


@pytest.mark.parametrize("role", ADMIN_ROLES)
def test_a_command_run_as_an_administrator_needs_one_of_its_roles(role: str) -> None:
    from tenantry.cli_kit import OPERATOR_ONLY, require_command_roles
    from tenantry.core.errors import Forbidden
    from tenantry.domains import registry

    holder = _principal([role])
    for path in _command_paths():
        allowed = role in registry().command_roles.get(path, ())
        if allowed:
            require_command_roles(path, holder)
            continue
        with pytest.raises(Forbidden) as refused:
            require_command_roles(path, holder)
        if path not in OPERATOR_ONLY:
            assert "needs the role" in refused.value.message and "tenantry directory role-group" in \
                refused.value.message, path
    for path in OPERATOR_ONLY:
        with pytest.raises(Forbidden, match="operator's"):
            require_command_roles(path, _principal(list(ADMIN_ROLES)))


def test_a_command_run_as_an_administrator_without_the_role_is_refused_and_changes_nothing(
        backend: Services, tenant: str) -> None:
    from typer.testing import CliRunner

    from tenantry.cli import app as cli_app
    from tenantry.cli_kit import Cli
    from tests.conftest import user_payload

    user = backend.scim.create(tenant, "User", user_payload("carl@contoso.com"))["id"]
    backend.directory.add_role_group_member(tenant, "Compliance Management", user)
    runner = CliRunner()
    refused = runner.invoke(cli_app, ["--as", "carl@contoso.com", "directory", "domain-add", "contoso.com",
                                      "--tenant", tenant], obj=Cli(backend))
    assert refused.exit_code == 1 and "Organization Management" in refused.output
    assert backend.directory.list_domains(tenant) == []
    assert backend.ledger.entries(tenant, action="admin.change") == []
    operator_only = runner.invoke(cli_app, ["--as", "carl@contoso.com", "token", "list"], obj=Cli(backend))
    assert operator_only.exit_code == 1 and "operator's" in operator_only.output
