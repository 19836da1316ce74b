"""A write asked not to wait (``Database.at_once``) runs now or gives way before it has read or written
anything (or, inside its first transaction, by ``give_way``: rolled back, nothing kept); the SCIM routes use it
to write one user on the event loop when the write lock is free, and hand the write to a worker thread, which
may wait, when it is not (issue #16: each thread hop cost more CPU than the write's SQL). SQLite only: on
PostgreSQL every write goes to a thread.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select

from tenantry.core.db import BUSY_TIMEOUT_MS, Database, WriterBusy, give_way
from tests.conftest import _pg_database

META = MetaData()
NOTES = Table("notes", META, Column("id", Integer, primary_key=True), Column("text", String(64)))


@pytest.fixture()
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'w.db'}")
    META.create_all(database.engine)
    yield database
    database.dispose()


def texts(db: Database) -> list[str]:
    with db.session() as session:
        return list(session.scalars(select(NOTES.c.text).order_by(NOTES.c.id)))


class OtherProcess:
    """SQLite's write lock held by a connection of its own, as another process holds it."""

    def __init__(self, db: Database) -> None:
        self.connection = sqlite3.connect(str(db.engine.url.database), isolation_level=None, check_same_thread=False)

    def __enter__(self) -> OtherProcess:
        self.connection.execute("BEGIN IMMEDIATE")
        self.connection.execute("INSERT INTO notes (text) VALUES ('other process')")
        return self

    def release(self) -> None:
        if self.connection.in_transaction:
            self.connection.execute("COMMIT")

    def __exit__(self, *exc: object) -> None:
        self.release()
        self.connection.close()


def hold_writing(db: Database, seconds: float) -> tuple[threading.Thread, threading.Event]:
    """Another thread of this process holds ``db.writing()`` for ``seconds``; the event is set once it does."""
    holding = threading.Event()

    def hold() -> None:
        with db.writing():
            holding.set()
            time.sleep(seconds)

    thread = threading.Thread(target=hold)
    thread.start()
    assert holding.wait(10)
    return thread, holding


def test_a_write_at_once_gives_way_while_another_thread_of_the_process_writes(db: Database) -> None:
    thread, _ = hold_writing(db, 0.5)
    try:
        with pytest.raises(WriterBusy), db.at_once():
            db.insert_rows(NOTES, [{"text": "not now"}])
    finally:
        thread.join()
    assert texts(db) == []
    with db.at_once():   # the lock free again: written at once
        db.insert_rows(NOTES, [{"text": "now"}])
    assert texts(db) == ["now"]


def test_a_write_at_once_gives_way_without_waiting_while_another_process_holds_the_lock(db: Database) -> None:
    with OtherProcess(db):
        started = time.monotonic()
        with pytest.raises(WriterBusy), db.at_once(), db.writing(), db.session() as session:
            session.execute(insert(NOTES).values(text="not now"))
        with pytest.raises(WriterBusy), db.at_once():
            db.insert_rows(NOTES, [{"text": "not now either"}])
        # Not SQLite's busy timeout (30 s): the attempt gave way at once.
        assert time.monotonic() - started < BUSY_TIMEOUT_MS / 1000 / 3
    assert texts(db) == ["other process"]


def test_after_giving_way_the_connection_waits_for_the_lock_again(db: Database) -> None:
    """The busy timeout set to 0 for the attempt is put back on the pooled connection: an ordinary write that
    then meets another process's lock waits for it and succeeds."""
    other = OtherProcess(db)
    with other:
        with pytest.raises(WriterBusy), db.at_once(), db.writing(), db.session() as session:
            session.execute(insert(NOTES).values(text="not now"))
        with db.engine.connect() as conn:   # the same pooled connection: the pool holds only that one
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == BUSY_TIMEOUT_MS
        releaser = threading.Timer(0.3, other.release)
        releaser.start()
        with db.writing(), db.session() as session:
            session.execute(insert(NOTES).values(text="waited"))
        releaser.join()
    assert texts(db) == ["other process", "waited"]


def test_only_the_first_write_transaction_of_an_at_once_block_may_give_way(db: Database) -> None:
    """A second transaction could not give way once the first had committed (the caller would redo it), so it
    waits for the lock as any write does."""
    with db.at_once():
        db.insert_rows(NOTES, [{"text": "first"}])
        thread, _ = hold_writing(db, 0.3)
        try:
            db.insert_rows(NOTES, [{"text": "second, after waiting"}])
        finally:
            thread.join()
    assert texts(db) == ["first", "second, after waiting"]


def test_a_write_that_fails_at_once_for_another_reason_raises_that_error(db: Database) -> None:
    with pytest.raises(Exception) as raised, db.at_once(), db.writing(), db.session() as session:
        session.execute(insert(NOTES).values(id=1, text="one"))
        session.execute(insert(NOTES).values(id=1, text="one again"))
    assert not isinstance(raised.value, WriterBusy)
    assert "UNIQUE" in str(raised.value)
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(NOTES)) == 0


def test_writes_wait_as_usual_outside_an_at_once_block(db: Database) -> None:
    thread, _ = hold_writing(db, 0.3)
    try:
        db.insert_rows(NOTES, [{"text": "waited"}])
    finally:
        thread.join()
    assert texts(db) == ["waited"]


def test_at_once_changes_nothing_on_postgresql_where_rows_are_locked_instead() -> None:
    """No process-wide write lock on PostgreSQL: ``writing()`` inside ``at_once`` neither waits nor gives way."""
    gen = _pg_database()   # skips when no PostgreSQL server answers
    url = next(gen)
    database = Database(url)
    try:
        META.create_all(database.engine)
        with database.at_once():
            database.insert_rows(NOTES, [{"text": "pg"}])
            with database.writing(), database.session() as session:
                session.execute(insert(NOTES).values(text="pg again"))
        assert texts(database) == ["pg", "pg again"]
    finally:
        database.dispose()
        for _ in gen:
            pass


def test_writer_released_returns_at_once_when_free_and_once_another_thread_lets_go(db: Database) -> None:
    released_at: list[float] = []

    def hold() -> None:
        with db.writing():
            holding.set()
            time.sleep(0.3)
        released_at.append(time.monotonic())

    async def wait() -> tuple[float, bool]:
        await asyncio.wait_for(db.writer_released(), timeout=10)   # free: at once
        thread.start()
        assert holding.wait(10)
        with pytest.raises(WriterBusy) as busy, db.at_once():
            db.insert_rows(NOTES, [{"text": "not now"}])
        assert busy.value.here   # another thread of this process, not another process
        await asyncio.wait_for(db.writer_released(), timeout=10)
        return time.monotonic(), db._write_lock is not None and db._write_lock.locked()

    holding = threading.Event()
    thread = threading.Thread(target=hold)
    returned, locked = asyncio.run(wait())
    thread.join()
    assert released_at and returned >= released_at[0] and not locked


def test_another_process_holding_the_lock_is_not_here(db: Database) -> None:
    with OtherProcess(db), pytest.raises(WriterBusy) as busy, db.at_once():
        db.insert_rows(NOTES, [{"text": "not now"}])
    assert not busy.value.here   # a thread must wait for it: no event-loop wait is woken by another process


def test_a_write_at_once_gives_way_when_every_pooled_connection_is_out(db: Database) -> None:
    """The checkout would wait for a connection, on the event loop: it goes to a thread instead."""
    pool: Any = db.engine.pool
    held = [db.engine.connect() for _ in range(pool.size() + pool._max_overflow)]
    try:
        with pytest.raises(WriterBusy) as busy, db.at_once():
            db.insert_rows(NOTES, [{"text": "not now"}])
        assert not busy.value.here
    finally:
        for conn in held:
            conn.close()
    with db.at_once():
        db.insert_rows(NOTES, [{"text": "now"}])
    assert texts(db) == ["now"]


def test_giving_way_inside_the_first_transaction_of_an_at_once_block_keeps_nothing_it_wrote(db: Database) -> None:
    """What a write learns only once it has read (a big stored user): it hands itself to a thread, and the rows it
    had written in that transaction are rolled back, so the thread's run from the start does not double them."""
    with pytest.raises(WriterBusy) as busy, db.at_once(), db.writing(), db.session() as session:
        session.execute(insert(NOTES).values(text="written, then given way"))
        give_way("too big for the event loop")
    assert not busy.value.here and "too big" in str(busy.value)
    assert texts(db) == []


def test_give_way_does_nothing_outside_at_once_or_after_its_first_transaction(db: Database) -> None:
    with db.writing(), db.session() as session:   # a thread's write: it goes on where it is
        session.execute(insert(NOTES).values(text="on a thread"))
        give_way("ignored")
    with db.at_once():
        db.insert_rows(NOTES, [{"text": "first"}])   # committed: a second transaction cannot give way
        with db.writing(), db.session() as session:
            session.execute(insert(NOTES).values(text="second"))
            give_way("ignored")
    assert texts(db) == ["on a thread", "first", "second"]


def test_a_second_transaction_in_the_same_writing_block_does_not_give_way_once_the_first_committed(
        db: Database) -> None:
    """Giving way there would have the caller run the whole block again on a thread, and the first transaction's
    rows would be stored twice."""
    with db.at_once(), db.writing():
        with db.session() as session:
            session.execute(insert(NOTES).values(text="first, committed"))
        with db.session() as session:
            session.execute(insert(NOTES).values(text="second"))
            give_way("ignored")
    assert texts(db) == ["first, committed", "second"]


def test_run_at_once_reports_a_given_way_write_as_not_done(db: Database) -> None:
    calls: list[str] = []

    def write(text: str) -> str:
        calls.append(text)
        with db.writing(), db.session() as session:
            session.execute(insert(NOTES).values(text=text))
            if text == "big":
                give_way("too big for the event loop")
        return text

    assert asyncio.run(db.run_at_once(write, "small")) == (True, "small")
    assert asyncio.run(db.run_at_once(write, "big")) == (False, None)
    assert calls == ["small", "big"]   # not tried again on the loop: it was not the lock
    assert write("big") == "big"   # what the caller then does, on a thread
    assert texts(db) == ["small", "big"]
