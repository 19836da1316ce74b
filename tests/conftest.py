"""Shared fixtures: a real database per backend (SQLite file, local PostgreSQL), a fresh tenant per test.

Every storage and SCIM test runs on both backends (``backend`` is parametrised). PostgreSQL tests use a
database created for this session and dropped after it; they skip, saying why, where no server answers.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tenantry.app import Services, build_services, create_app
from tenantry.core.principals import Principal
from tenantry.core.settings import Settings

# The peers tests provision to, import from and deliver to run on 127.0.0.1 (a second Tenantry, scim2-server,
# the feed server, Dovecot). The outbound policy refuses loopback targets unless the operator allows them, so the
# tests allow them here, once: every Settings() a test builds and every server or worker process it starts
# (they inherit the environment) sees it. Tests of the default policy build theirs without it.
os.environ["TENANTRY_OUTBOUND_ALLOW_LOOPBACK"] = "true"

PG_ADMIN_URL = os.environ.get("TENANTRY_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SCIM_JSON = "application/scim+json"


def _pg_database() -> Iterator[str]:
    import sqlalchemy as sa

    try:
        admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text("select 1"))
    except Exception as exc:  # noqa: BLE001 - any failure to reach the server means "absent"
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc.__class__.__name__}: {exc}")
    name = f"tenantry_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def blank_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A new, empty database of either backend (nothing migrated): for tests of migrations."""
    from tenantry.core.db import make_engine

    gen = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'blank.db'}"
    else:
        gen = _pg_database()
        url = next(gen)
    eng = make_engine(url)
    try:
        yield eng
    finally:
        eng.dispose()
        if gen is not None:
            for _ in gen:
                pass


def stop_worker(process: subprocess.Popen[bytes], grace: float = 90.0) -> None:
    """Stops a Celery worker the test started: SIGTERM (Celery's warm shutdown), then SIGKILL if it has not
    exited after ``grace`` seconds. A loaded CI machine can take longer than 20 s to get a worker that is still
    importing to exit; how long it takes is no part of what these tests assert."""
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(30)


def periodic_work_due(services: Services) -> None:
    """As on a new installation: every periodic work (daily retention, SCIM-log sweep) is due at the next tick
    (the session's database keeps earlier tests' claims)."""
    from sqlalchemy import delete

    from tenantry.core.schedule import PeriodicWork

    with services.db.session() as session:
        session.execute(delete(PeriodicWork))


def migrate_to(engine: Any, revision: str, *, down: bool = False) -> None:
    """Run the migrations up (or ``down``) to ``revision`` on ``engine``."""
    from alembic import command

    from tenantry.core.db import alembic_config

    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """The application's services on one real database, migrated, for the whole session."""
    data_dir = tmp_path_factory.mktemp(f"data-{request.param}")
    if request.param == "sqlite":
        settings = Settings(data_dir=data_dir, database_url=None)
        services = build_services(settings)
        yield services
        services.db.dispose()
        return
    gen = _pg_database()
    url = next(gen)
    settings = Settings(data_dir=data_dir, database_url=url)
    services = build_services(settings)
    try:
        yield services
    finally:
        services.db.dispose()
        for _ in gen:
            pass


@pytest.fixture()
def tenant(backend: Services) -> str:
    """A new tenant: tests share a database but never see each other's data."""
    tenant_id = f"t-{uuid.uuid4().hex[:12]}"
    backend.directory.create_tenant(tenant_id, "Test tenant")
    return tenant_id


class ScimClient:
    """A TestClient bound to one tenant's SCIM base path and token."""

    def __init__(self, client: TestClient, tenant: str, token: str) -> None:
        self.client = client
        self.tenant = tenant
        self.base = f"/tenants/{tenant}/scim/v2"
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": SCIM_JSON}

    def request(self, method: str, path: str, json: Any = None, headers: dict[str, str] | None = None,
                **kwargs: Any) -> Any:
        return self.client.request(method, self.base + path, json=json,
                                   headers={**self.headers, **(headers or {})}, **kwargs)

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.request("POST", path, json, **kw)

    def put(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.request("PUT", path, json, **kw)

    def patch(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.request("PATCH", path, json, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.request("DELETE", path, **kw)


@pytest.fixture()
def app_client(backend: Services) -> Iterator[TestClient]:
    with TestClient(create_app(backend.settings, backend)) as client:
        yield client


@pytest.fixture()
def scim(app_client: TestClient, backend: Services, tenant: str) -> ScimClient:
    token = backend.directory.issue_token(tenant, "scim", "test").secret
    return ScimClient(app_client, tenant, token)


def user_payload(user_name: str | None = None, **extra: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name or f"user-{uuid.uuid4().hex[:8]}@contoso.com",
    }
    payload.update(extra)
    return payload


IMPORTERS = "Importers"


def grant_import_role(services: Services, tenant: str, user_id: str) -> None:
    """Give a user "Mailbox Import Export" the way an administrator must (seed 000: no role group has it by
    default): through a role group of its own, created on first use."""
    if not any(g.name == IMPORTERS for g in services.directory.list_role_groups(tenant)):
        services.directory.create_role_group(tenant, IMPORTERS, ["Mailbox Import Export"])
    services.directory.add_role_group_member(tenant, IMPORTERS, user_id)


def administrator(services: Services, tenant: str, roles: Iterable[str] | None = None) -> str:
    """The id of a test administrator of the tenant holding exactly ``roles`` (default: every role in the
    catalogue), created on first use through a role group of its own."""
    from tenantry.directory.catalogue import ROLES

    wanted = sorted(ROLES if roles is None else set(roles))
    tag = hashlib.sha256("|".join(wanted).encode()).hexdigest()[:10]
    user_name = f"admin-{tag}@tenantry.test"
    found = services.directory.find_users_by_email(tenant, [user_name]).get(user_name)
    if found:
        return found[0].id
    user_id: str = services.scim.create(tenant, "User", user_payload(user_name))["id"]
    if wanted:
        services.directory.create_role_group(tenant, f"Test administrators {tag}", wanted)
        services.directory.add_role_group_member(tenant, f"Test administrators {tag}", user_id)
    return user_id


def admin_secret(services: Services, tenant: str, name: str = "test", roles: Iterable[str] | None = None) -> str:
    """The secret of a new admin token of the tenant, issued to a test administrator holding ``roles`` (default:
    every role)."""
    return services.directory.issue_token(tenant, "admin", name, user_id=administrator(services, tenant, roles)).secret


def as_admin(services: Services, tenant: str, user_id: str) -> Principal:
    """A directory user of the tenant as the administrator principal a service call acts as (with their roles)."""
    return services.directory.administrator(tenant, user_id, "test")


def importing_admin(services: Services, tenant: str = "default") -> str:
    """admin@contoso.com (Organization Management and Mailbox Import Export) and bob@contoso.com, each with a
    work e-mail, as the CLI and server-process tests of connectors need them; the admin's id."""
    admin: str = services.scim.create(tenant, "User", user_payload(
        "admin@contoso.com", emails=[{"type": "work", "value": "admin@contoso.com"}]))["id"]
    services.scim.create(tenant, "User", user_payload(
        "bob@contoso.com", emails=[{"type": "work", "value": "bob@contoso.com"}]))
    services.directory.add_role_group_member(tenant, "Organization Management", admin)
    grant_import_role(services, tenant, admin)
    return admin


def group_payload(display_name: str | None = None, **extra: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": display_name or f"group-{uuid.uuid4().hex[:8]}",
    }
    payload.update(extra)
    return payload


SAMPLES = Path(__file__).parent / "samples"
