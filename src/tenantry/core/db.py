"""Database engine, sessions and migrations.

SQLite (WAL) is the embedded default; PostgreSQL through psycopg 3 when ``TENANTRY_DATABASE_URL`` says so.
Alembic migrations are applied on start, so a fresh data folder and an old one reach the same schema.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar, cast

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    Connection,
    Engine,
    Executable,
    MetaData,
    Table,
    TextClause,
    TextualSelect,
    create_engine,
    event,
    insert,
    select,
    text,
)
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import DeclarativeBase, InstrumentedAttribute, Session, sessionmaker
from sqlalchemy.pool import QueuePool
from sqlalchemy.sql import ClauseElement

from tenantry.core.errors import Conflict

log = logging.getLogger("tenantry.db")
_T = TypeVar("_T")

# Named constraints keep migrations portable between SQLite and PostgreSQL (STYLE habit 10).
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# The PostgreSQL advisory lock migrations hold (any constant the installation's other code does not use).
MIGRATION_LOCK = 0x54454E414E545259   # "TENANTRY"


def make_engine(url: str) -> Engine:
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    else:
        kwargs["pool_size"] = 10
        kwargs["max_overflow"] = 20
        kwargs["pool_pre_ping"] = True
    engine = create_engine(url, **kwargs)
    if url.startswith("sqlite"):
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        event.listen(engine, "commit", _sqlite_commit)
    return engine


# ``with_for_update`` argument for the row a read-modify-write changes: SELECT … FOR NO KEY UPDATE on PostgreSQL
# (a second writer waits, then reads the committed row; rows that merely reference this one by foreign key are
# not blocked); SQLite renders nothing, its write transactions being serialised by ``Database.writing``.
FOR_WRITE: dict[str, Any] = {"key_share": True}


class WriterBusy(Exception):
    """A write asked not to wait (``Database.at_once``) found the write lock taken, or gave way (``give_way``);
    nothing of it is stored. ``here``: the lock is held by another thread of this process
    (``Database.writer_released`` says when it lets go), not by another process, nor given way."""

    def __init__(self, message: str, *, here: bool) -> None:
        super().__init__(message)
        self.here = here


class _WriteScope:
    """One ``Database.writing()`` block: the connection (SQLAlchemy's) whose transaction holds the write lock;
    ``at_once``: its BEGIN IMMEDIATE must not wait for another process's writer either; ``gives_way``: the block
    is the first of a ``Database.at_once`` block and its first transaction has not committed, so ``give_way`` may
    still hand its work to a thread."""

    __slots__ = ("at_once", "gives_way", "holder")

    def __init__(self, at_once: bool = False) -> None:
        self.holder: Any = None
        self.at_once = self.gives_way = at_once


class _AtOnce:
    """One ``Database.at_once()`` block: ``used`` once its one non-waiting write transaction has begun."""

    __slots__ = ("used",)

    def __init__(self) -> None:
        self.used = False


# Set while ``Database.writing()`` is held by this thread (or task): the transactions it begins will write.
_WRITING: ContextVar[_WriteScope | None] = ContextVar("tenantry_writing", default=None)
# Set inside ``Database.at_once()``: the first ``writing()`` block raises WriterBusy rather than wait.
_AT_ONCE: ContextVar[_AtOnce | None] = ContextVar("tenantry_at_once", default=None)


def _sqlite_begin(conn: Any) -> None:
    """Open a write transaction with ``BEGIN IMMEDIATE`` (SQLAlchemy's documented pysqlite recipe).

    pysqlite runs a SELECT outside any transaction and sends its own deferred BEGIN only before the first
    INSERT/UPDATE/DELETE, so a read-modify-write reads a snapshot another process may change before the write
    lock is taken: the write then silently overwrites it. BEGIN IMMEDIATE takes SQLite's write lock first
    (waiting up to busy_timeout for another process's writer), so what a write transaction reads is what it
    overwrites. Read-only work outside ``writing()`` keeps pysqlite's behaviour and never waits (WAL).
    """
    scope = _WRITING.get()
    if scope is None:
        return
    holder = scope.holder
    if holder is not None and not holder.closed and holder.in_transaction():
        # A second session opened inside the block while the first still holds the lock: it can only read
        # (a second writer would wait for the first forever), and a reader must not wait for its own writer.
        return
    if scope.at_once:
        _begin_at_once(conn.connection.driver_connection)
        scope.at_once = False   # begun: a later transaction of the block waits for the lock
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    scope.holder = conn


def _sqlite_commit(_conn: Any) -> None:
    """A transaction of a ``writing()`` block committed: a later one of the block can no longer give way (the caller
    would run the whole block again, and what this one committed twice)."""
    scope = _WRITING.get()
    if scope is not None:
        scope.gives_way = False


# PostgreSQL's deadlock_detected and serialization_failure: it rolled the transaction back, which may simply run again.
RETRIED_STATES = ("40P01", "40001")


def rolled_back_by_server(exc: BaseException) -> bool:
    """Whether ``exc`` is PostgreSQL ending a transaction to break a deadlock or a serialization failure: nothing of
    it was kept, and running it again is the remedy."""
    return isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) in RETRIED_STATES


def give_way(reason: str) -> None:
    """Inside the write transaction a ``Database.at_once`` block began (a write on the event loop): raise WriterBusy,
    so that transaction rolls back with whatever it wrote and ``run_at_once`` hands the work to a thread, which
    runs it from the start. Anywhere else, nothing: the work goes on where it is. For what a write finds costly only
    once it has read the stored row (a big stored user, issue #16)."""
    scope = _WRITING.get()
    if scope is not None and scope.gives_way:
        raise WriterBusy(reason, here=False)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _begin_at_once(driver: Any) -> None:
    """``BEGIN IMMEDIATE`` on a pysqlite connection without waiting: WriterBusy if another process (or a
    connection of this one outside ``writing``) holds SQLite's write lock. The busy timeout is back at once."""
    driver.execute("PRAGMA busy_timeout=0")
    try:
        driver.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if driver.in_transaction:
            driver.rollback()
        raise WriterBusy(str(exc), here=False) from exc
    finally:
        driver.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets readers run beside the one writer; NORMAL sync is durable across process crashes in WAL mode.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    # The WAL is moved into the database file by Database's checkpointer thread, not by whichever commit crosses
    # SQLite's 1,000 pages (that commit then waited for the copy and its fsync: ~8 ms, a PATCH's p99). This is
    # the backstop, for a WAL the thread has not kept up with (or a process whose writes it does not see).
    cur.execute(f"PRAGMA wal_autocheckpoint={WAL_BACKSTOP_PAGES}")
    cur.close()


# How long a write waits for another process's writer before SQLite says "database is locked".
BUSY_TIMEOUT_MS = 30_000
# A writer checkpoints by itself only past this many WAL pages (4 KiB each); below it the checkpointer does.
WAL_BACKSTOP_PAGES = 10_000
# How long a write on an event loop (``run_at_once``) waits for another thread's write before it goes to a thread.
AT_ONCE_WAIT_SECONDS = 0.05
# How long the checkpointer lets writes gather after the first one before it checkpoints them.
CHECKPOINT_EVERY_SECONDS = 0.2
# How often an idle checkpointer looks whether its Database still exists.
IDLE_CHECK_SECONDS = 30.0


class _Checkpointer:
    """A daemon thread that checkpoints SQLite's WAL (``PRAGMA wal_checkpoint(PASSIVE)``) soon after writes, on a
    connection of its own, so that no commit of a request has to.

    A PASSIVE checkpoint neither waits for nor blocks readers or writers: it copies what it can, and the next one
    copies the rest. The sqlite3 module lets go of the GIL while SQLite works, so the copy and its fsync run beside
    the requests, on the other core. Woken by writes (``Database.wrote``); idle when nothing is written. One per
    process: a forked child starts its own on its first write.
    """

    def __init__(self, db: Database) -> None:
        self.pid = os.getpid()
        self.wake = threading.Event()
        self.stop = threading.Event()
        # Only a weak reference: a Database dropped without dispose() ends its thread within IDLE_CHECK_SECONDS.
        owner = weakref.ref(db)
        self.thread = threading.Thread(target=self._run, args=(str(db.engine.url.database), owner), daemon=True,
                                       name="tenantry-sqlite-checkpoint")
        self.thread.start()

    def _run(self, path: str, owner: weakref.ref[Database]) -> None:
        # Its own connection, opened here and not from the engine's pool: the first write of a process starts the
        # thread from inside a commit, which must never wait for a pooled connection. A PASSIVE checkpoint needs
        # no pragma of the engine's (the file is in WAL mode already) and waits for no lock.
        connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        try:
            while owner() is not None:
                if not self.wake.wait(IDLE_CHECK_SECONDS):
                    continue
                if self.stop.wait(CHECKPOINT_EVERY_SECONDS):
                    break
                self.wake.clear()
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except Exception:   # noqa: BLE001 - the next one, or the backstop, does it; never kill the thread
                    log.warning("SQLite checkpoint failed; the next write retries it", exc_info=True)
        finally:
            with suppress(Exception):
                connection.close()

    def close(self) -> None:
        self.stop.set()
        self.wake.set()
        self.thread.join(5)


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent)."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # Several processes starting at once on one database (servers, workers, machines): one migrates, the
            # others wait here for its transaction and then find the schema at head. Without it the second's
            # CREATE TABLE failed on the first's. (SQLite: the first DDL takes the file's write lock.)
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


class Database:
    """The engine and a session factory; created once by the composition root."""

    def __init__(self, url: str) -> None:
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer at a time; threads that race for it fall into its busy handler, which sleeps
        # in growing steps (hundreds of ms under load). Queueing writers here, in order, is fairer and faster.
        self._write_lock = threading.Lock() if url.startswith("sqlite") else None
        # Event-loop writes waiting for it (``writer_released``): (their loop, the future to settle).
        self._release_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._release_waiters_lock = threading.Lock()
        # read_rows' connection of each thread (SQLite), and every one opened, for dispose().
        self._readers = threading.local()
        self._readers_lock = threading.Lock()
        self._reader_connections: dict[int, tuple[int, Any]] = {}   # thread ident → (pid, connection)
        # insert_rows' statement of each table (its SQL and conversions: _plan).
        self._inserts: dict[str, Any] = {}
        # SQLite on a file: the WAL checkpointer, started by the first write of this process.
        self._checkpointer: _Checkpointer | None = None
        self._checkpoints = self.is_sqlite and self.engine.url.database not in (None, "", ":memory:")
        self._checkpointer_lock = threading.Lock()
        if self._checkpoints:
            event.listen(self.engine, "commit", lambda _conn: self.wrote())

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def migrate(self) -> None:
        migrate(self.engine)

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold while a transaction that reads and then writes runs; open its session inside.

        SQLite: writers of this process queue on a lock, and the transaction starts with BEGIN IMMEDIATE,
        so it holds the database's write lock (against other processes too) before it reads anything.
        PostgreSQL: free; the transaction locks the rows it will change (``SELECT … FOR UPDATE``).
        """
        if self._write_lock is None:
            yield
            return
        once = _AT_ONCE.get()
        at_once = once is not None and not once.used
        if at_once:
            assert once is not None
            once.used = True   # one transaction: a second could not give way once the first had committed
            if not self._pool_has_room():
                # Every pooled connection is out (threads' reads): the checkout would wait, on the event loop.
                raise WriterBusy("no pooled connection is free", here=False)
            if not self._write_lock.acquire(blocking=False):
                raise WriterBusy("another write of this process holds the write lock", here=True)
        else:
            self._write_lock.acquire()
        try:
            token = _WRITING.set(_WriteScope(at_once))
            try:
                yield
            finally:
                _WRITING.reset(token)
                self.wrote()
        finally:
            self._write_lock.release()
            if self._release_waiters:
                self._wake_release_waiters()

    def _pool_has_room(self) -> bool:
        """Whether a connection can be checked out of the pool without waiting (a QueuePool's: one checked in, or
        overflow left); other pools never make a caller wait."""
        pool = self.engine.pool
        if not isinstance(pool, QueuePool):
            return True
        return pool.checkedin() > 0 or pool.overflow() < pool._max_overflow

    async def run_at_once(self, fn: Callable[..., _T], *args: Any) -> tuple[bool, _T | None]:
        """``(True, fn(*args))`` run on the calling thread (an event loop's) under ``at_once``; while another thread of
        this process writes, it waits for it to let go (``writer_released``) and tries again, as long as less than
        ``AT_ONCE_WAIT_SECONDS`` have passed since the first try. ``(False, None)``, nothing done, when another
        process holds SQLite's lock, no pooled connection is free, the wait ran out, or ``fn`` gave way
        (``give_way``): the caller hands the work to a thread, which waits as long as it takes."""
        deadline = time.monotonic() + AT_ONCE_WAIT_SECONDS
        while True:
            try:
                with self.at_once():
                    return True, fn(*args)
            except WriterBusy as busy:
                if not busy.here or time.monotonic() >= deadline:
                    return False, None
            await self.writer_released()

    async def writer_released(self) -> None:
        """Return once this process's write lock is free (at once if it is): what a write on the event loop that
        gave way to another thread's (``WriterBusy.here``) awaits before it tries again, instead of going to a
        thread itself. With a write of a group or a Bulk request on a thread, the event loop's writes that went
        to threads too kept one another there: user PATCHes at 8 connections fell from ~900 to ~450 req/s beside
        ten group PATCHes a second (issue #16)."""
        lock = self._write_lock
        if lock is None or not lock.locked():
            return
        loop = asyncio.get_running_loop()
        released: asyncio.Future[None] = loop.create_future()
        with self._release_waiters_lock:
            self._release_waiters.append((loop, released))
        if not lock.locked():   # let go before the waiter was listed: no one will wake it
            return
        await released

    def _wake_release_waiters(self) -> None:
        with self._release_waiters_lock:
            waiters, self._release_waiters = self._release_waiters, []
        for loop, released in waiters:
            with suppress(RuntimeError):   # its event loop has closed
                loop.call_soon_threadsafe(_settle, released)

    @contextmanager
    def at_once(self) -> Iterator[None]:
        """The first write transaction inside runs now or not at all: if this process's other writers or another
        process hold the write lock, ``writing()`` (or its BEGIN IMMEDIATE) raises WriterBusy before anything is
        read or written, and the caller hands the work to a thread that may wait (the SCIM routes on the event
        loop, issue #16). Inside that first transaction, until it commits, ``give_way`` raises WriterBusy too (the
        transaction rolls back). SQLite only; elsewhere, and for later transactions in the block, writes wait as
        usual and nothing gives way."""
        token = _AT_ONCE.set(_AtOnce())
        try:
            yield
        finally:
            _AT_ONCE.reset(token)

    def wrote(self) -> None:
        """A write was committed (or tried): wake the checkpointer, starting it in this process if need be."""
        if not self._checkpoints:
            return
        checkpointer = self._checkpointer
        if checkpointer is None or checkpointer.pid != os.getpid():
            with self._checkpointer_lock:
                checkpointer = self._checkpointer
                if checkpointer is None or checkpointer.pid != os.getpid():
                    checkpointer = self._checkpointer = _Checkpointer(self)
        checkpointer.wake.set()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed on success, rolled back on any error."""
        with self.sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def read_rows(self, statement: TextClause | TextualSelect, params: dict[str, Any]) -> Sequence[Sequence[Any]]:
        """The rows of one read-only textual statement, outside any write transaction.

        SQLite: straight through the driver (SQLite's own parameters are ``:name``, as ``text()``'s), so the columns
        are what SQLite returns — a datetime is its text, which ``parse_when`` reads. For a one-row look-up
        SQLAlchemy's execution and result processing cost five times the query (the filtered GET, issue #16).
        Elsewhere through SQLAlchemy, with the statement's column types applied.
        """
        if self.is_sqlite:
            clause = cast(TextClause, statement.element if isinstance(statement, TextualSelect) else statement)
            rows: list[tuple[Any, ...]] = self._reader().execute(clause.text, params).fetchall()
            return rows
        # Autocommit: a read-only statement needs no transaction, and psycopg's BEGIN and the pool's ROLLBACK on
        # return were two of its five round trips to the server (the pool's ping and the query are the others).
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            return conn.execute(statement, params).all()

    def insert_rows(self, table: Table, rows: Sequence[dict[str, Any]]) -> None:
        """INSERT ``rows`` (each a dict of the same columns) in a transaction of their own, queued with this
        process's other writers (``writing``).

        SQLite: on the driver's connection (``BEGIN IMMEDIATE``, one ``executemany``, ``COMMIT``), each value
        through its column type's own conversion, so the row reads back as if SQLAlchemy had written it; a
        one-row transaction through the ORM session cost seven times as much CPU (the SCIM request log's row,
        written for every SCIM write, issue #16). PostgreSQL: SQLAlchemy Core, one row without a transaction (a
        statement is atomic), more in one. Either way all the rows or none,
        and a database's refusal is SQLAlchemy's error (``IntegrityError`` for a constraint).
        """
        if not rows:
            return
        if not self.is_sqlite:
            statement = self._inserts.get(table.name)
            if statement is None:
                statement = self._inserts[table.name] = insert(table)
            if len(rows) == 1:
                # One statement is atomic by itself: no transaction around it. psycopg's BEGIN and COMMIT were two
                # of its four round trips (the pool's ping and the INSERT are the others): a SCIM write's log row.
                with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(statement, rows[0])
                return
            with self.session() as session:
                session.connection().execute(statement, list(rows))
            return
        statement = self._inserts.get(table.name)
        if statement is None:
            statement = self._inserts[table.name] = insert(table)
        plan = _plan(self.engine.dialect, statement, tuple(rows[0]))
        if plan is None:   # a column default the rows do not give: SQLAlchemy fills it
            with self.writing(), self.session() as session:
                session.connection().execute(statement, list(rows))
            return
        sql, params = plan[0], _values(plan, rows)
        with self.writing():
            raw = self.engine.raw_connection()
            try:
                driver: Any = raw.driver_connection
                scope = _WRITING.get()
                if scope is not None and scope.at_once:
                    _begin_at_once(driver)
                    scope.at_once = False
                else:
                    driver.execute("BEGIN IMMEDIATE")
                try:
                    driver.executemany(sql, params)
                    driver.commit()
                except BaseException as exc:
                    driver.rollback()
                    if isinstance(exc, self.engine.dialect.loaded_dbapi.Error):
                        # As SQLAlchemy would raise it (IntegrityError for a constraint), whatever the path.
                        raise DBAPIError.instance(sql, None, exc, self.engine.dialect.loaded_dbapi.Error) from exc
                    raise
            finally:
                raw.close()

    def _reader(self) -> Any:
        """This thread's SQLite connection for ``read_rows``, opened once (with the engine's pragmas) and kept out
        of the pool: checking one out of the pool and back cost as much as the query. It never opens a
        transaction, so each statement reads the newest commit (WAL). A forked process opens its own."""
        held = getattr(self._readers, "held", None)
        pid = os.getpid()
        if held is None or held[0] != pid:
            raw = self.engine.raw_connection()
            held = self._readers.held = (pid, raw.driver_connection)
            raw.detach()   # ours now: the pool neither reuses nor resets it
            with self._readers_lock:
                # Worker threads come and go (the thread pool's idle ones exit): their connections are closed
                # when a new one is opened, so there are never more than threads. One opened before a fork is
                # the parent's: forgotten here, never closed.
                alive = {t.ident for t in threading.enumerate()}
                for ident in [i for i, (p, _) in self._reader_connections.items() if i not in alive or p != pid]:
                    owner, connection = self._reader_connections.pop(ident)
                    if owner == pid:
                        with suppress(Exception):
                            connection.close()
                reused = self._reader_connections.get(threading.get_ident())   # a dead thread's ident, reused
                if reused is not None and reused[0] == pid:
                    with suppress(Exception):
                        reused[1].close()
                self._reader_connections[threading.get_ident()] = held
        return held[1]

    def dispose(self) -> None:
        with self._checkpointer_lock:
            checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None and checkpointer.pid == os.getpid():
            checkpointer.close()
        with self._readers_lock:
            readers, self._reader_connections = list(self._reader_connections.values()), {}
        for owner, connection in readers:
            if owner != os.getpid():
                continue
            with suppress(Exception):   # closed already
                connection.close()
        self._readers = threading.local()
        self.engine.dispose()


# run_prebuilt's plans: (statement, parameter names) → the SQL, its parameters in order, their conversions.
_PLANS: dict[tuple[int, tuple[str, ...]], tuple[str, tuple[str, ...], dict[str, Any]] | None] = {}


def run_prebuilt(conn: Connection, statement: Executable, params: dict[str, Any] | list[dict[str, Any]]
                 ) -> list[tuple[Any, ...]]:
    """Run a statement built once at import (``select``/``insert``/``update``/``delete`` with bound parameters) in
    ``conn``'s transaction; its rows, if it returns any.

    SQLite: compiled once per set of parameter names and run on the driver's connection of the same transaction,
    each parameter through its type's own conversion, so what is written is what SQLAlchemy writes; the rows are
    what SQLite returns (a datetime is its text: ``parse_when``). SQLAlchemy's execution of each statement cost more
    than SQLite's (the simple PATCH's five statements, issue #16). A driver error is raised as SQLAlchemy raises it
    (``IntegrityError`` for a constraint). Elsewhere, and for a statement whose SQL needs more than the parameters
    given (an expanding IN, a column default), SQLAlchemy runs it.
    """
    many = isinstance(params, list)
    batch: list[dict[str, Any]] = params if isinstance(params, list) else [params]
    if not batch:
        return []
    plan = _plan(conn.dialect, statement, tuple(batch[0])) if conn.dialect.name == "sqlite" else None
    if plan is None:
        result = conn.execute(statement, params)
        return [tuple(r) for r in result.all()] if result.returns_rows else []
    sql, values = plan[0], _values(plan, batch)
    driver: Any = conn.connection.driver_connection
    loaded = conn.dialect.loaded_dbapi
    try:
        if many:
            driver.executemany(sql, values)
            return []
        return list(driver.execute(sql, values[0]).fetchall())
    except loaded.Error as exc:
        raise DBAPIError.instance(sql, None, exc, loaded.Error) from exc


def _plan(dialect: Any, statement: Executable, keys: tuple[str, ...]
          ) -> tuple[str, tuple[str, ...], dict[str, Any]] | None:
    """A statement compiled for ``keys``: its SQL, its parameters in order and their conversions; None where the SQL
    needs more than the parameters given (an expanding IN, a column default)."""
    key = (id(statement), keys)
    if key not in _PLANS:
        compiled: Any = cast(ClauseElement, statement).compile(dialect=dialect, column_keys=list(keys))
        names = tuple(compiled.positiontup or ())
        _PLANS[key] = None if (compiled.post_compile_params or not set(names) <= set(keys)) else (
            compiled.string, names,
            {n: f for n in set(names)
             if (f := compiled.binds[n].type.dialect_impl(dialect).bind_processor(dialect)) is not None})
    return _PLANS[key]


def _values(plan: tuple[str, tuple[str, ...], dict[str, Any]], rows: Sequence[dict[str, Any]]) -> list[list[Any]]:
    """Each row's parameters in the plan's order, converted as SQLAlchemy would."""
    _, names, convert = plan
    return [[convert[n](row[n]) if n in convert else row[n] for n in names] for row in rows]


def parse_when(value: datetime | str) -> datetime:
    """A datetime column as ``Database.read_rows`` returns it: as it is, or SQLite's text of it (UTC, naive)."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def add_named(session: Session, row: Any, name: InstrumentedAttribute[Any], tenant: InstrumentedAttribute[Any],
              what: str) -> None:
    """Add ``row``, whose name is unique in its tenant: ``Conflict`` ("a <what> named … exists") when the name is
    taken — found by the look-up, or by the unique constraint when a concurrent add won the race."""
    taken = Conflict(f"a {what} named {getattr(row, name.key)!r} exists")
    if session.scalar(select(name).where(tenant == getattr(row, tenant.key), name == getattr(row, name.key))):
        raise taken
    session.add(row)
    try:
        session.flush()
    except IntegrityError as exc:  # the unique constraint decides a race the look-up lost
        raise taken from exc
