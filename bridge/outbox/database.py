"""The store's database: one engine per process, short transactions, errors as StoreUnavailable.

No network call ever happens inside one of these transactions. SQLite (WAL,
``synchronous=FULL``, ``BEGIN IMMEDIATE``) is the embedded default, its writers taking
turns (:mod:`.sqlite`); PostgreSQL is reached through a pool.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from . import sqlite
from .records import StoreUnavailable


def make_engine(url: str, pool_size: int = 10) -> Engine:
    """An engine set up for the outbox: SQLite pragmas, or a PostgreSQL pool."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(
            url,
            connect_args={"timeout": 30, "check_same_thread": False},
            pool_size=pool_size,
            max_overflow=pool_size,
            poolclass=sa.pool.QueuePool,
        )
        sa.event.listen(engine, "connect", sqlite.pragmas)
        sa.event.listen(engine, "begin", sqlite.begin)
        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=pool_size)


class Database:
    """One database URL; safe to share between threads, re-opened after fork."""

    def __init__(self, url: str, *, pool_size: int = 10, auto_upgrade: bool | None = None) -> None:
        self.url = url
        self.pool_size = pool_size
        self.is_sqlite = url.startswith("sqlite")
        #: The placeholder of driver SQL: sqlite3's qmark, psycopg's format.
        self.mark = "?" if self.is_sqlite else "%s"
        self._engine: Engine | None = None
        self._pid = os.getpid()
        self._auto_upgrade = self.is_sqlite if auto_upgrade is None else auto_upgrade
        self._ready = False
        self._lock = threading.RLock()
        database = sqlite.sqlite_file(url)
        self.turns: sqlite.WriterTurns | None = None
        self.checkpoints: sqlite.Checkpointer | None = None
        if database is not None:
            self.turns = sqlite.WriterTurns(database)
            self.checkpoints = sqlite.Checkpointer(database, self.turns)
        self._leader: Connection | None = None  # a group commit's own connection
        self._leader_pid = 0
        # What the driver itself raises when a statement goes to it directly (known once
        # the engine is made).
        self._driver_error: type[Exception] = sqlite3.Error if self.is_sqlite else SQLAlchemyError
        self._driver_integrity: type[Exception] = (
            sqlite3.IntegrityError if self.is_sqlite else IntegrityError
        )

    def __repr__(self) -> str:
        return f"Database({sa.make_url(self.url).render_as_string(hide_password=True)!r})"

    @property
    def engine(self) -> Engine:
        engine = self._engine
        if engine is not None and self._ready and self._pid == os.getpid():
            return engine
        with self._lock:
            return self._open()

    def _open(self) -> Engine:
        if self._engine is None or self._pid != os.getpid():
            if self._engine is not None:
                # Never use a connection across a fork: drop the parent's pool unclosed.
                self._engine.dispose(close=False)
            self._engine = make_engine(self.url, self.pool_size)
            self._pid = os.getpid()
            dbapi = self._engine.dialect.loaded_dbapi
            self._driver_error, self._driver_integrity = dbapi.Error, dbapi.IntegrityError
        if not self._ready:
            if self._auto_upgrade:
                self._migrate(self._engine)
            self._ready = True
        return self._engine

    def _migrate(self, engine: Engine) -> None:
        from .migrate import upgrade

        try:
            upgrade(engine)
        except (SQLAlchemyError, OSError) as exc:
            raise StoreUnavailable(f"the store cannot be migrated: {type(exc).__name__}") from exc

    def upgrade(self) -> None:
        """Bring the schema to the newest migration (``bridge db upgrade``)."""
        with self._lock:
            self._migrate(self._open())

    def ping(self) -> bool:
        try:
            with self.read() as conn:
                conn.execute(sa.select(sa.literal(1)))
            return True
        except StoreUnavailable:
            return False

    def dispose(self) -> None:
        with self._lock:
            leader, self._leader = self._leader, None
            if leader is not None and self._leader_pid == os.getpid():
                with contextlib.suppress(SQLAlchemyError, OSError):
                    leader.close()
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None
                self._ready = False

    def turn(self) -> contextlib.AbstractContextManager[None]:
        """The writers' turn (SQLite; nothing to wait for on PostgreSQL), with the store
        opened first."""
        # Opened (and, on SQLite, its schema checked: a migration imports Alembic and
        # reads the revision, tens of milliseconds) before the turn, never inside it,
        # where every writer of every process would wait for it.
        self.engine  # noqa: B018
        if self.checkpoints is not None:
            self.checkpoints.ensure_running()
        return self.turns.turn() if self.turns is not None else contextlib.nullcontext()

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One short write transaction, in the writers' turn."""
        with self.turn():
            try:
                with self.engine.begin() as conn:
                    yield conn
            except IntegrityError:
                raise
            except (SQLAlchemyError, OSError) as exc:
                raise StoreUnavailable(f"the store cannot write: {type(exc).__name__}") from exc

    @contextmanager
    def shared_write(self, *, begin: bool = True) -> Iterator[Connection]:
        """The transaction a group commit runs in. Only the group's leader writes here, one
        at a time, so it keeps one connection for itself instead of checking one out of the
        pool (and resetting it, and for PostgreSQL pinging it) for every transaction; the
        connection is dropped after any error and opened afresh by the next leader. Without
        ``begin`` the caller's own statement is its transaction."""
        with self.turn():
            try:
                conn = self._leader if self._leader_pid == os.getpid() else None
                if conn is None or conn.closed or conn.invalidated:
                    conn = self._leader = self.engine.connect()
                    self._leader_pid = os.getpid()
                try:
                    if begin:
                        with conn.begin():
                            yield conn
                    else:
                        yield conn
                except (IntegrityError, self._driver_integrity):
                    raise  # one write's own error; the transaction was rolled back
                except (SQLAlchemyError, OSError, self._driver_error):
                    self._leader = None
                    with contextlib.suppress(SQLAlchemyError, OSError):
                        conn.invalidate()
                    raise
            except (IntegrityError, self._driver_integrity):
                raise
            except (SQLAlchemyError, OSError, self._driver_error) as exc:
                raise StoreUnavailable(f"the store cannot write: {type(exc).__name__}") from exc

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """One read transaction, which never waits for the writers' turn."""
        try:
            with self.engine.connect() as raw:
                conn = raw.execution_options(sqlite_read=True)
                with conn.begin():
                    yield conn
        except (SQLAlchemyError, OSError) as exc:
            raise StoreUnavailable(f"the store cannot read: {type(exc).__name__}") from exc

    def clear_traces(self) -> None:
        """After an erasure, empty SQLite's write-ahead log (see :func:`.sqlite.clear_traces`)."""
        if self.checkpoints is not None:
            sqlite.clear_traces(self.checkpoints.path)
