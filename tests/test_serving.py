"""``tenantry serve --workers N``: refused where several processes are not safe, before anything is touched;
each worker's application built from the environment over the migrated database."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tenantry.app import build_services
from tenantry.cli import app
from tenantry.core.settings import Settings
from tenantry.serving import several_processes_refused, worker_app

NOWHERE_PG = "postgresql+psycopg://nobody@127.0.0.1:1/nothing"   # refused before any connection is tried


@pytest.fixture(autouse=True)
def thawed() -> Iterator[None]:
    """A worker app freezes the process's objects (``freeze_start_heap``): this test process thaws them after."""
    yield
    gc.unfreeze()


@pytest.fixture()
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    monkeypatch.setenv("TENANTRY_DATA_DIR", str(data))
    for name in ("TENANTRY_DATABASE_URL", "TENANTRY_SEARCH_BACKEND", "TENANTRY_BROKER_URL"):
        monkeypatch.delenv(name, raising=False)
    return data


def test_serve_with_two_workers_on_sqlite_is_refused_before_the_data_folder_is_made(env: Path) -> None:
    result = CliRunner().invoke(app, ["serve", "--workers", "2"])
    assert result.exit_code == 1
    assert "--workers 2 needs PostgreSQL" in result.output and "TENANTRY_SEARCH_BACKEND=postgres" in result.output
    assert not env.exists()


def test_serve_with_two_workers_and_the_tantivy_index_is_refused_on_postgresql(
        env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENANTRY_DATABASE_URL", NOWHERE_PG)
    result = CliRunner().invoke(app, ["serve", "--workers", "2"])
    assert result.exit_code == 1
    assert "needs the shared search index: set TENANTRY_SEARCH_BACKEND=postgres" in result.output
    assert "one writer" in result.output


def test_serve_workers_below_one_or_above_the_bound_are_refused(env: Path) -> None:
    for workers in ("0", "65"):
        result = CliRunner().invoke(app, ["serve", "--workers", workers])
        assert result.exit_code == 2, result.output
    assert not env.exists()


def test_several_processes_are_allowed_on_postgresql_with_its_search_backend_and_one_anywhere() -> None:
    assert several_processes_refused(Settings(database_url=NOWHERE_PG, search_backend="postgres"), 4) is None
    assert several_processes_refused(Settings(), 1) is None
    assert several_processes_refused(Settings(), 2) is not None


def test_a_worker_app_serves_from_the_environment_over_the_migrated_database(env: Path) -> None:
    build_services(Settings()).db.dispose()   # what the supervising process does first: migrate
    application = worker_app()
    with TestClient(application) as client:
        assert client.get("/healthz").json()["status"] == "ok"
        assert client.get("/scim/v2/Users").status_code == 401   # the whole application, its guard included
    application.state.services.db.dispose()


def test_a_worker_app_does_not_migrate(env: Path) -> None:
    # The supervisor migrates once; N workers each running alembic on start would race on a fresh database.
    application = worker_app()
    from sqlalchemy import inspect

    assert "alembic_version" not in inspect(application.state.services.db.engine).get_table_names()
    application.state.services.db.dispose()


def test_a_worker_app_puts_what_starting_made_out_of_the_collectors_reach(env: Path) -> None:
    build_services(Settings()).db.dispose()
    gc.unfreeze()
    application = worker_app()
    # The application, its routes and its services are frozen: full collections no longer walk them.
    assert gc.get_freeze_count() > 10_000
    assert not any(gc.is_tracked(o) and o is application for o in gc.get_objects(generation=2))
    application.state.services.db.dispose()
