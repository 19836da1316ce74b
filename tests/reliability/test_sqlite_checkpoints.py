"""SQLite's WAL is checkpointed by the Database's own thread soon after writes, so that no request's commit pays
for it (issue #16: those commits were a PATCH's p99); the thread ends with its Database.

SQLite only: PostgreSQL has no WAL file of ours to checkpoint.
"""

from __future__ import annotations

import gc
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from tenantry.core import db as db_module
from tenantry.core.db import Database


def rows_in_the_database_file(path: Path) -> int:
    """Rows of ``t`` in the database file alone, the WAL left unread (``immutable``): what was checkpointed."""
    connection = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        return int(connection.execute("SELECT count(*) FROM t").fetchone()[0])
    except sqlite3.OperationalError:   # not even the table is in the file yet
        return 0
    finally:
        connection.close()


def wait_for(condition, seconds: float = 10.0) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_writes_reach_the_database_file_without_a_writer_checkpointing(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    db = Database(f"sqlite:///{path}")
    try:
        with db.writing(), db.session() as session:
            session.execute(text("CREATE TABLE t (n INTEGER)"))
        for n in range(50):   # far below the backstop: no commit of these checkpoints by itself
            with db.writing(), db.session() as session:
                session.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
        assert wait_for(lambda: rows_in_the_database_file(path) == 50)
    finally:
        db.dispose()


def test_a_writer_checkpoints_by_itself_only_past_the_backstop(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'b.db'}")
    try:
        with db.session() as session:
            pages = session.execute(text("PRAGMA wal_autocheckpoint")).scalar()
        assert pages == db_module.WAL_BACKSTOP_PAGES > 1000   # SQLite's own default is 1,000
    finally:
        db.dispose()


def test_dispose_ends_the_checkpointer_and_a_later_write_starts_another(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'd.db'}")
    with db.writing(), db.session() as session:
        session.execute(text("CREATE TABLE t (n INTEGER)"))
    first = db._checkpointer
    assert first is not None and first.thread.is_alive()
    db.dispose()
    assert not first.thread.is_alive()
    with db.writing(), db.session() as session:
        session.execute(text("INSERT INTO t VALUES (1)"))
    assert db._checkpointer is not None and db._checkpointer is not first and db._checkpointer.thread.is_alive()
    db.dispose()


def test_a_database_dropped_without_dispose_ends_its_checkpointer(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db_module, "IDLE_CHECK_SECONDS", 0.05)
    db = Database(f"sqlite:///{tmp_path / 'e.db'}")
    with db.writing(), db.session() as session:
        session.execute(text("CREATE TABLE t (n INTEGER)"))
    assert db._checkpointer is not None
    thread = db._checkpointer.thread
    db.engine.dispose()
    del db, session
    gc.collect()
    assert wait_for(lambda: not thread.is_alive())


def test_an_in_memory_database_has_no_checkpointer() -> None:
    db = Database("sqlite://")
    with db.writing(), db.session() as session:
        session.execute(text("SELECT 1"))
    assert db._checkpointer is None
    db.dispose()
