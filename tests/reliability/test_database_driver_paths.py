"""``Database.read_rows`` and ``insert_rows``: on SQLite they bypass SQLAlchemy for speed (issue #16), so what
they write and read must be what SQLAlchemy writes and reads, on both backends."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from tenantry.core.clock import as_utc
from tenantry.core.db import parse_when, run_prebuilt
from tenantry.directory.models import ScimRequestLog

WHEN = datetime(2026, 11, 30, 17, 4, 5, 123456, tzinfo=UTC)


def row(tenant: str, n: int, **more: object) -> dict[str, object]:
    return {"tenant_id": tenant, "at": WHEN, "request_id": f"req-{n}", "method": "PATCH", "status": 200,
            "duration_ms": n, "resource_type": "User", "user_name": None, **more}


def test_rows_inserted_on_the_driver_read_back_through_sqlalchemy_as_written(backend, tenant: str) -> None:  # noqa: ANN001
    backend.db.insert_rows(ScimRequestLog.__table__, [row(tenant, 1), row(tenant, 2, user_name="Zoë")])
    with backend.db.session() as session:
        stored = session.scalars(select(ScimRequestLog).where(ScimRequestLog.tenant_id == tenant)
                                 .order_by(ScimRequestLog.duration_ms)).all()
    assert [(r.request_id, r.user_name, r.resource_type) for r in stored] == [
        ("req-1", None, "User"), ("req-2", "Zoë", "User")]
    assert all(as_utc(r.at) == WHEN for r in stored)   # microseconds kept; UTC


def test_a_refused_row_inserts_none_of_its_batch_and_is_sqlalchemys_error(backend, tenant: str) -> None:  # noqa: ANN001
    with pytest.raises(IntegrityError):
        backend.db.insert_rows(ScimRequestLog.__table__, [row(tenant, 1), row(tenant, 2, method=None)])
    with backend.db.session() as session:
        assert session.scalars(select(ScimRequestLog).where(ScimRequestLog.tenant_id == tenant)).all() == []
    backend.db.insert_rows(ScimRequestLog.__table__, [row(tenant, 3)])   # the connection is usable again
    with backend.db.session() as session:
        assert [r.request_id for r in session.scalars(
            select(ScimRequestLog).where(ScimRequestLog.tenant_id == tenant))] == ["req-3"]


def test_read_rows_gives_what_sqlalchemy_reads_once_its_times_are_parsed(backend, tenant: str) -> None:  # noqa: ANN001
    backend.db.insert_rows(ScimRequestLog.__table__, [row(tenant, 7)])
    rows = backend.db.read_rows(text("SELECT request_id, at FROM scim_request_log WHERE tenant_id = :tenant"),
                                {"tenant": tenant})
    assert [(r[0], as_utc(parse_when(r[1]))) for r in rows] == [("req-7", WHEN)]


def test_read_rows_keeps_no_connection_of_a_thread_that_has_ended(backend, tenant: str) -> None:  # noqa: ANN001
    if not backend.db.is_sqlite:
        pytest.skip("SQLite's own read connections; PostgreSQL reads through the pool")
    statement = text("SELECT count(*) FROM scim_request_log WHERE tenant_id = :tenant")
    for _ in range(20):   # short-lived threads, as the thread pool's idle workers exit
        worker = threading.Thread(target=backend.db.read_rows, args=(statement, {"tenant": tenant}))
        worker.start()
        worker.join()
    assert backend.db.read_rows(statement, {"tenant": tenant}) == [(0,)]
    alive = {t.ident for t in threading.enumerate()}
    # The ended threads' connections were closed as new ones were opened: at most one of them is left over.
    assert len([i for i in backend.db._reader_connections if i not in alive]) <= 1
    backend.db.insert_rows(ScimRequestLog.__table__, [row(tenant, 1)])
    assert backend.db.read_rows(statement, {"tenant": tenant}) == [(1,)]   # the kept connection sees new commits


def test_a_prebuilt_statement_on_the_driver_writes_and_reads_what_sqlalchemy_does(backend, tenant: str) -> None:  # noqa: ANN001
    from tenantry.directory.models import User
    from tenantry.directory.scim_repositories import _UPDATE_USER, _USER_FOR_WRITE
    from tests.conftest import user_payload

    alice = backend.scim.create(tenant, "User", user_payload("alice@contoso.com"))["id"]
    bob = backend.scim.create(tenant, "User", user_payload("bob@contoso.com"))["id"]
    with backend.db.session() as session:
        conn = session.connection()
        run_prebuilt(conn, _UPDATE_USER, {"active": False, "last_modified": WHEN, "version": 7, "row_id": alice})
        (found,) = run_prebuilt(conn, _USER_FOR_WRITE, {"id": alice})
        assert (found[0], found[2], as_utc(parse_when(found[4]))) == (tenant, 7, WHEN)
    with backend.db.session() as session:    # read back by the ORM: the same values, the boolean a boolean
        user = session.get(User, alice)
        assert user is not None and user.active is False and as_utc(user.last_modified) == WHEN
    # A constraint the driver enforces is SQLAlchemy's IntegrityError (the store maps it to 409 uniqueness).
    with pytest.raises(IntegrityError), backend.db.session() as session:
        run_prebuilt(session.connection(), _UPDATE_USER, {"user_name_key": "alice@contoso.com", "row_id": bob})


def test_a_prebuilt_statement_with_an_expanding_list_runs_through_sqlalchemy(backend, tenant: str) -> None:  # noqa: ANN001
    from tenantry.directory.scim_repositories import _GROUPS_OF

    with backend.db.session() as session:
        assert run_prebuilt(session.connection(), _GROUPS_OF, {"tenant": tenant, "ids": ["a", "b"]}) == []
        assert run_prebuilt(session.connection(), _GROUPS_OF, []) == []


def test_a_read_leaves_no_pooled_connection_in_autocommit(backend, tenant: str) -> None:  # noqa: ANN001
    # read_rows runs without a transaction on PostgreSQL; the connection it used must go back to the pool as it
    # came, or a later unit of work on it would commit statement by statement and a rollback would keep them.
    statement = text("SELECT count(*) FROM scim_request_log WHERE tenant_id = :tenant")
    for n in range(12):   # more than the connections the pool holds at rest: each is handed out again
        backend.db.read_rows(statement, {"tenant": tenant})
        with pytest.raises(RuntimeError), backend.db.session() as session:
            session.connection().execute(ScimRequestLog.__table__.insert(), [row(tenant, n)])
            raise RuntimeError("rolled back")
    assert backend.db.read_rows(statement, {"tenant": tenant})[0][0] == 0


def test_a_lone_row_refused_is_sqlalchemys_error_and_leaves_no_pooled_connection_in_autocommit(
        backend, tenant: str) -> None:  # noqa: ANN001
    # One row goes in without a transaction on PostgreSQL (a statement is atomic); refused, it is the same error as
    # in a batch, and the connection it used goes back to the pool transactional, as read_rows' does.
    statement = text("SELECT count(*) FROM scim_request_log WHERE tenant_id = :tenant")
    for n in range(12):   # more than the connections the pool holds at rest
        with pytest.raises(IntegrityError):
            backend.db.insert_rows(ScimRequestLog.__table__, [row(tenant, n, method=None)])
        backend.db.insert_rows(ScimRequestLog.__table__, [row(tenant, 100 + n)])
        with pytest.raises(RuntimeError), backend.db.session() as session:
            session.connection().execute(ScimRequestLog.__table__.insert(), [row(tenant, 200 + n)])
            raise RuntimeError("rolled back")
    assert backend.db.read_rows(statement, {"tenant": tenant})[0][0] == 12
