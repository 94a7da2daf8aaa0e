"""SQLite specifics: connection pragmas, one writer's turn at a time, checkpoints beside it.

Writers from every process take turns through a lock file beside the database
(:class:`WriterTurns`) instead of SQLite's busy handler, which sleeps up to 100 ms
between tries and so made intake wait behind the delivery worker's writes.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .records import StoreUnavailable

log = logging.getLogger(__name__)
#: How long a writer waits for its turn before the store counts as unavailable.
WRITE_WAIT = 30.0


def pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Set up each new SQLite connection."""
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
    cursor = dbapi_connection.cursor()
    for pragma in (
        "journal_mode=WAL",
        "synchronous=FULL",
        "busy_timeout=30000",
        "foreign_keys=ON",
        # Deleted and rewritten content is zeroed, not left in free space: erasure means gone.
        "secure_delete=ON",
        # No checkpoint inside a writer's commit: Checkpointer does it beside the writers.
        "wal_autocheckpoint=0",
        # A restarted log is written over in place, which syncs faster than a log that
        # grows; after a burst it is cut back to this size (64 MiB).
        "journal_size_limit=67108864",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def begin(conn: Connection) -> None:
    # Writes take the write lock up front (no deadlock-prone upgrade); reads stay deferred.
    """Begin each transaction the way it will be used."""
    read = conn.get_execution_options().get("sqlite_read", False)
    driver: Any = conn.connection.driver_connection
    driver.execute("BEGIN" if read else "BEGIN IMMEDIATE")


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite store URL; ``None`` for other engines and for
    in-memory or URI-named databases, which have no file of their own."""
    if not url.startswith("sqlite"):
        return None
    database = sa.make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).resolve()


def sqlite_problem(url: str) -> str | None:
    """Why a SQLite store at ``url`` cannot be written by this process, or ``None``.

    SQLite creates its journal files next to the database, so the directory must be
    writable as well as the file; a read-only directory (a container's read-only root
    filesystem, a mount gone read-only) otherwise ends in "unable to open database file".
    """
    path = sqlite_file(url)
    if path is None:
        return None
    directory = path.parent
    if not directory.is_dir():
        return f"the directory {directory} for the SQLite store does not exist"
    if not os.access(directory, os.W_OK | os.X_OK):
        return (
            f"the directory {directory} is read-only for this user, and SQLite needs to "
            "create its journal files there; point store: at a writable directory"
        )
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        return f"the SQLite store {path} is read-only for this user"
    return None


class Checkpointer:
    """Copies the SQLite write-ahead log back into the database beside the writers, about
    once a second: PASSIVE without a lock, then RESTART in a writer's turn. (SQLite's own
    checkpoint runs inside a writer's commit and held intake up; see docs/benchmarks.md.)
    """

    def __init__(self, path: Path, turns: WriterTurns, interval: float = 1.0) -> None:
        self.path = path
        self.turns = turns
        self.interval = interval
        self._pid = 0
        self._lock = threading.Lock()

    def ensure_running(self) -> None:
        """Start this process's checkpoint thread once."""
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid != os.getpid():
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="wal-checkpoint", daemon=True).start()

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        while True:
            time.sleep(self.interval)
            try:
                conn = conn or self.connect()
                self.checkpoint(conn)
            except (sqlite3.Error, StoreUnavailable) as exc:  # an outage: a new connection
                log.debug("WAL checkpoint skipped: %s", exc)
                if conn is not None:
                    conn.close()
                conn = None

    def connect(self) -> sqlite3.Connection:
        """The checkpointer's own connection, which never waits for a lock: a RESTART that a
        reader holds up gives up at once and is tried again a second later, instead of
        sleeping in SQLite's busy handler (5, 10, … 100 ms at a time) in a writer's turn,
        while every writer waits for that turn."""
        return sqlite3.connect(self.path, timeout=0)

    def checkpoint(self, conn: sqlite3.Connection) -> None:
        """One round: PASSIVE beside the writers, then RESTART in a writer's turn."""
        _, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if frames > 0:
            # In a writer's turn nothing new arrives: copy the rest and empty the log.
            with self.turns.turn():
                conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()


class WriterTurns:
    """One SQLite writer at a time across threads and processes, each woken as soon as the
    one before it is done: a thread lock in the process, then ``flock`` on a file beside
    the database. Re-entrant within a thread."""

    def __init__(self, database: Path) -> None:
        self.path = database.with_name(database.name + "-writer.lock")
        self._thread = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        self._pid = os.getpid()
        #: When a turn last had to wait for another process (monotonic seconds).
        self.waited_at = -float("inf")

    def turn(self) -> WriterTurns:
        """The turn, as a context manager (the turns themselves: entered once per
        transaction, a class's enter and exit cost less than a generator's)."""
        return self

    def __enter__(self) -> None:
        if not self._thread.acquire(timeout=WRITE_WAIT):
            raise StoreUnavailable("the store is busy: no turn to write in time")
        if self._depth == 0:
            try:
                self._file_lock()
            except BaseException:
                self._thread.release()
                raise
        self._depth += 1

    def __exit__(self, *exc: object) -> None:
        try:
            self._depth -= 1
            if self._depth == 0 and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread.release()

    def _file_lock(self) -> None:
        if self._fd is None or self._pid != os.getpid():
            try:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as exc:
                raise StoreUnavailable(f"cannot open {self.path.name}: {exc.strerror}") from None
            self._pid = os.getpid()
        # Blocking, and woken by the kernel the moment the holder lets go. Only one thread
        # per process waits here (the others wait on the thread lock, with a deadline), and
        # a holder keeps it for one transaction, which SQLite's own busy timeout bounds.
        try:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.waited_at = time.monotonic()
                fcntl.flock(self._fd, fcntl.LOCK_EX)
        except OSError as exc:
            raise StoreUnavailable(f"cannot lock {self.path.name}: {exc.strerror}") from None

    def crowded(self, within: float = 1.0) -> bool:
        """Whether another process has been writing too: a turn had to wait for one
        within the last ``within`` seconds."""
        return time.monotonic() - self.waited_at < within


def clear_traces(path: Path) -> None:
    """After an erasure: no copy of what was removed stays in the write-ahead log (the
    database file zeroes freed space itself, ``secure_delete``). Readers holding an old
    snapshot hold the log up; it is tried again for a few seconds."""
    with contextlib.closing(sqlite3.connect(path, timeout=5)) as conn:
        for _ in range(50):
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                return
            time.sleep(0.1)
    log.warning("erasure: the write-ahead log could not be emptied; readers held it")
