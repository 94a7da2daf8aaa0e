"""The submission store: enqueue, claim under a fenced lease, record outcomes, operate.

No network call ever happens inside one of these transactions; every write is
one short transaction. SQLite (WAL, ``synchronous=FULL``, ``BEGIN IMMEDIATE``)
is the embedded default; PostgreSQL claims with ``FOR UPDATE SKIP LOCKED``.

Writes that arrive together share a commit (:class:`GroupCommit`): the hot writes —
enqueue, claim and recording an outcome — share one transaction, so one commit (one
fsync) serves a burst; a write's failure stays its own, and each caller returns only
after the commit that holds its write. On SQLite, writers from every
process take turns through a lock file beside the database (:class:`WriterTurns`)
instead of SQLite's busy handler, which sleeps up to 100 ms between tries and so made
intake wait behind the delivery worker's writes.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ..proprofs.models import TicketDraft
from .tables import STATES, attempts, incidents, seen_messages, submissions

log = logging.getLogger(__name__)
s = submissions
T = TypeVar("T")
# The hot insert, as driver SQL: no statement is built or compiled per submission.
ENQUEUE_COLUMNS = (
    "id",
    "route",
    "kind",
    "draft",
    "dedup_key",
    "state",
    "attempts",
    "next_attempt_at",
    "lease_token",
    "meta",
    "created_at",
    "updated_at",
)
#: How long a writer waits for its turn before the store counts as unavailable.
WRITE_WAIT = 30.0


class StoreUnavailable(Exception):
    """The store cannot take or change a submission right now (intake answers 503)."""


@dataclass(frozen=True)
class EnqueueResult:
    id: str
    duplicate: bool
    state: str
    ticket_id: str | None = None


@dataclass(frozen=True)
class Submission:
    """A row of the outbox, as operators and the worker see it."""

    id: str
    route: str
    kind: str
    draft: TicketDraft
    dedup_key: str | None
    state: str
    attempts: int
    next_attempt_at: float
    lease_owner: str | None
    lease_token: int
    lease_expires_at: float | None
    claimed_from: str | None
    sent_at: float | None
    ticket_id: str | None
    last_error: str | None
    meta: Mapping[str, Any]
    created_at: float
    updated_at: float
    delivered_at: float | None

    @property
    def ref(self) -> str:
        """The reference written into the ticket's description footer."""
        return self.id

    @classmethod
    def from_row(cls, row: Any) -> Submission:
        return cls(
            id=row["id"],
            route=row["route"],
            kind=row["kind"],
            draft=TicketDraft.from_dict(json.loads(row["draft"])),
            dedup_key=row["dedup_key"],
            state=row["state"],
            attempts=row["attempts"],
            next_attempt_at=row["next_attempt_at"],
            lease_owner=row["lease_owner"],
            lease_token=row["lease_token"],
            lease_expires_at=row["lease_expires_at"],
            claimed_from=row["claimed_from"],
            sent_at=row["sent_at"],
            ticket_id=row["ticket_id"],
            last_error=row["last_error"],
            meta=json.loads(row["meta"] or "{}"),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            delivered_at=row["delivered_at"],
        )


@dataclass(frozen=True)
class Attempt:
    number: int
    kind: str
    outcome: str
    worker: str | None
    started_at: float
    finished_at: float
    http_status: int | None
    ticket_id: str | None
    error: str | None


@dataclass(frozen=True)
class Incident:
    """An alert group's current ticket: its generation and the submission that makes it."""

    route: str
    key: str
    generation: int
    submission: Submission
    ticket_open: bool | None
    checked_at: float | None


def new_submission_id() -> str:
    """An unguessable id that doubles as the ticket reference: ``pb-`` + 20 hex digits."""
    return "pb-" + secrets.token_hex(10)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
    cursor = dbapi_connection.cursor()
    for pragma in (
        "journal_mode=WAL",
        "synchronous=FULL",
        "busy_timeout=30000",
        "foreign_keys=ON",
        # No checkpoint inside a writer's commit: Checkpointer does it beside the writers.
        "wal_autocheckpoint=0",
        # A restarted log is written over in place, which syncs faster than a log that
        # grows; after a burst it is cut back to this size (64 MiB).
        "journal_size_limit=67108864",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    # Writes take the write lock up front (no deadlock-prone upgrade); reads stay deferred.
    read = conn.get_execution_options().get("sqlite_read", False)
    driver: Any = conn.connection.driver_connection
    driver.execute("BEGIN" if read else "BEGIN IMMEDIATE")


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
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        sa.event.listen(engine, "begin", _sqlite_begin)
        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=pool_size)


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
    """Copies the SQLite write-ahead log back into the database beside the writers.

    SQLite's automatic checkpoint runs inside the commit that crosses its threshold, and so
    held one intake answer — and every writer waiting for its turn — for hundreds of
    milliseconds every few thousand submissions. Here one thread per process checkpoints
    about once a second instead: first PASSIVE beside the writers (no lock; they go on),
    then once more in a writer's turn (RESTART), which copies just the frames written
    meanwhile and makes the next commit write the log from its start again, so it does not
    grow under steady load. The log is not truncated: a commit that overwrites the file in
    place costs a plain data sync, one that grows it costs a metadata sync too (about
    twice as slow on ext4).
    """

    def __init__(self, path: Path, turns: WriterTurns, interval: float = 1.0) -> None:
        self.path = path
        self.turns = turns
        self.interval = interval
        self._pid = 0
        self._lock = threading.Lock()

    def ensure_running(self) -> None:
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
                conn = conn or sqlite3.connect(self.path, timeout=1.0)
                self.checkpoint(conn)
            except (sqlite3.Error, StoreUnavailable) as exc:  # an outage: a new connection
                log.debug("WAL checkpoint skipped: %s", exc)
                if conn is not None:
                    conn.close()
                conn = None

    def checkpoint(self, conn: sqlite3.Connection) -> None:
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

    @contextmanager
    def turn(self) -> Iterator[None]:
        if not self._thread.acquire(timeout=WRITE_WAIT):
            raise StoreUnavailable("the store is busy: no turn to write in time")
        try:
            if self._depth == 0:
                self._file_lock()
            self._depth += 1
            try:
                yield
            finally:
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
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except OSError as exc:
            raise StoreUnavailable(f"cannot lock {self.path.name}: {exc.strerror}") from None


@dataclass(eq=False)
class _Write(Generic[T]):
    work: Callable[[Connection], T]
    ready: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None
    done: bool = False
    leads: bool = False


class GroupCommit:
    """Writes that arrive while another is committing share the next transaction.

    The first writer leads: it commits everything queued so far in one transaction, then
    hands the lead to the first writer still waiting, and returns. Nobody returns before
    the commit that holds their write. When a shared transaction fails, nothing of it was
    committed: if the store failed (:class:`StoreUnavailable`), every write in it fails;
    otherwise each write is tried again alone, so one write's error is its own. Writes must
    therefore be safe to run again after a rollback (every one here is).
    """

    def __init__(self, transaction: Callable[[], Any]) -> None:
        self._transaction = transaction
        self._lock = threading.Lock()
        self._queue: list[_Write[Any]] = []
        self._leading = False

    def run(self, work: Callable[[Connection], T]) -> T:
        write: _Write[T] = _Write(work)
        with self._lock:
            self._queue.append(write)
            if not self._leading:
                self._leading = write.leads = True
        while not write.leads:
            write.ready.wait()
            write.ready.clear()
            if write.done:
                break
        if not write.done:
            self._lead()
        if write.error is not None:
            raise write.error
        return write.result  # type: ignore[no-any-return]

    def _lead(self) -> None:
        with self._lock:
            batch, self._queue = self._queue, []
        try:
            self._commit(batch)
        finally:
            for done in batch:
                done.done = True
                done.ready.set()
            with self._lock:
                if self._queue:
                    successor = self._queue[0]
                    successor.leads = True
                    successor.ready.set()
                else:
                    self._leading = False

    def _commit(self, batch: list[_Write[Any]]) -> None:
        try:
            with self._transaction() as conn:
                results = [write.work(conn) for write in batch]
        except BaseException as exc:  # nothing in this transaction was committed
            if len(batch) == 1 or isinstance(exc, StoreUnavailable):
                for write in batch:  # the store itself failed: it fails every write alike
                    write.error = exc
                return
            # One write's failure must not be the others': each goes again on its own.
            for write in batch:
                self._commit([write])
            return
        for write, result in zip(batch, results, strict=True):
            write.result = result


class SubmissionStore:
    """The outbox over one database URL; safe to share between threads, re-opened after fork."""

    def __init__(
        self,
        url: str,
        *,
        lease_seconds: float = 120.0,
        pool_size: int = 10,
        auto_upgrade: bool | None = None,
    ) -> None:
        self.url = url
        self.lease_seconds = lease_seconds
        self.pool_size = pool_size
        self.is_sqlite = url.startswith("sqlite")
        self._engine: Engine | None = None
        self._pid = os.getpid()
        self._auto_upgrade = self.is_sqlite if auto_upgrade is None else auto_upgrade
        self._ready = False
        self._lock = threading.RLock()
        database = sqlite_file(url)
        self._turns: WriterTurns | None = None
        self._checkpoints: Checkpointer | None = None
        if database is not None:
            self._turns = WriterTurns(database)
            self._checkpoints = Checkpointer(database, self._turns)
        self._group = GroupCommit(self._shared_write)
        self._leader: Connection | None = None  # the group's own connection, see below
        # What the driver itself raises when a statement goes to it directly (known once
        # the engine is made).
        self._driver_error: type[Exception] = sqlite3.Error if self.is_sqlite else SQLAlchemyError
        self._driver_integrity: type[Exception] = (
            sqlite3.IntegrityError if self.is_sqlite else IntegrityError
        )
        self._leader_pid = 0
        mark = "?" if self.is_sqlite else "%s"  # sqlite3's qmark, psycopg's format
        self._enqueue_sql = (
            f"INSERT INTO {s.name} ({', '.join(ENQUEUE_COLUMNS)}) "
            f"VALUES ({', '.join([mark] * len(ENQUEUE_COLUMNS))}) ON CONFLICT DO NOTHING"
        )

    def __repr__(self) -> str:
        return f"SubmissionStore({sa.make_url(self.url).render_as_string(hide_password=True)!r})"

    # --- connections -------------------------------------------------------------------------

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

    def __enter__(self) -> SubmissionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.dispose()

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        if self._checkpoints is not None:
            self._checkpoints.ensure_running()
        with self._turns.turn() if self._turns is not None else contextlib.nullcontext():
            try:
                with self.engine.begin() as conn:
                    yield conn
            except IntegrityError:
                raise
            except (SQLAlchemyError, OSError) as exc:
                raise StoreUnavailable(f"the store cannot write: {type(exc).__name__}") from exc

    @contextmanager
    def _shared_write(self) -> Iterator[Connection]:
        """The transaction a group commit runs in. Only the group's leader writes here, one
        at a time, so it keeps one connection for itself instead of checking one out of the
        pool (and resetting it, and for PostgreSQL pinging it) for every transaction; the
        connection is dropped after any error and opened afresh by the next leader."""
        if self._checkpoints is not None:
            self._checkpoints.ensure_running()
        with self._turns.turn() if self._turns is not None else contextlib.nullcontext():
            try:
                conn = self._leader if self._leader_pid == os.getpid() else None
                if conn is None or conn.closed or conn.invalidated:
                    conn = self._leader = self.engine.connect()
                    self._leader_pid = os.getpid()
                try:
                    with conn.begin():
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
    def _read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as raw:
                conn = raw.execution_options(sqlite_read=True)
                with conn.begin():
                    yield conn
        except (SQLAlchemyError, OSError) as exc:
            raise StoreUnavailable(f"the store cannot read: {type(exc).__name__}") from exc

    def upgrade(self) -> None:
        """Bring the schema to the newest migration (``bridge db upgrade``)."""
        with self._lock:
            self._open()
            assert self._engine is not None
            self._migrate(self._engine)

    def ping(self) -> bool:
        try:
            with self._read() as conn:
                conn.execute(sa.select(sa.literal(1)))
            return True
        except StoreUnavailable:
            return False

    # --- intake ------------------------------------------------------------------------------

    def enqueue(
        self,
        route: str,
        kind: str,
        draft: TicketDraft,
        *,
        dedup_key: str | None = None,
        meta: Mapping[str, Any] | None = None,
        submission_id: str | None = None,
        now: float | None = None,
    ) -> EnqueueResult:
        """Store one submission in one transaction; a repeated dedup key is a no-op."""
        now = time.time() if now is None else now
        sid = submission_id or new_submission_id()
        row = (
            sid,
            route,
            kind,
            json.dumps(draft.to_dict()),
            dedup_key,
            "pending",
            0,
            now,
            0,
            json.dumps(dict(meta or {})),
            now,
            now,
        )
        # A repeated dedup key inserts nothing (rowcount 0) instead of failing the shared
        # transaction; the submission that holds the key is looked up after the commit.
        inserted = self._group.run(
            lambda conn: conn.exec_driver_sql(self._enqueue_sql, row).rowcount
        )
        if inserted == 1:
            return EnqueueResult(sid, False, "pending")
        if dedup_key is None:
            raise StoreUnavailable("the store refused the submission")
        existing = self.find_by_dedup(route, dedup_key)
        if existing is None:  # deleted in between: very unlikely; the sender may retry
            raise StoreUnavailable("the store changed while deduplicating")
        return EnqueueResult(existing.id, True, existing.state, existing.ticket_id)

    def _insert(self, conn: Connection, row: tuple[Any, ...]) -> int:
        """The one hot statement, straight through the driver: SQLAlchemy's execution
        machinery cost as much per submission as the insert itself."""
        driver: Any = conn.connection.driver_connection
        cursor = driver.cursor()
        try:
            cursor.execute(self._enqueue_sql, row)
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def _insert_with(
        self, conn: Connection, row: tuple[Any, ...], attachments: Sequence[Attachment]
    ) -> int:
        inserted = self._insert(conn, row)
        if inserted == 1:
            conn.execute(files_table.insert(), [_attachment_row(a) for a in attachments])
        return inserted

    def find_by_dedup(self, route: str, dedup_key: str) -> Submission | None:
        with self._read() as conn:
            row = (
                conn.execute(s.select().where(s.c.route == route, s.c.dedup_key == dedup_key))
                .mappings()
                .first()
            )
        return Submission.from_row(row) if row else None

    # --- delivery ----------------------------------------------------------------------------

    def claim(self, owner: str, limit: int, *, now: float | None = None) -> list[Submission]:
        """Lease up to ``limit`` due submissions: pending, unknown to re-check, or leases lost.

        Each claim bumps ``lease_token`` (the fencing token); ``claimed_from`` says
        what the claimer must do: ``pending`` → send; ``unknown``/``in_flight`` → reconcile.
        """
        now = time.time() if now is None else now
        due = sa.or_(
            sa.and_(s.c.state.in_(("pending", "unknown")), s.c.next_attempt_at <= now),
            sa.and_(s.c.state == "in_flight", s.c.lease_expires_at < now),
        )
        pick = sa.select(s.c.id).where(due).order_by(s.c.next_attempt_at).limit(limit)
        if not self.is_sqlite:
            pick = pick.with_for_update(skip_locked=True)
        sending = s.c.state == "pending"
        stmt = (
            s.update()
            .where(s.c.id.in_(pick.scalar_subquery()))
            .values(
                state="in_flight",
                claimed_from=s.c.state,
                lease_owner=owner,
                lease_token=s.c.lease_token + 1,
                lease_expires_at=now + self.lease_seconds,
                attempts=sa.case((sending, s.c.attempts + 1), else_=s.c.attempts),
                sent_at=sa.case((sending, now), else_=s.c.sent_at),
                updated_at=now,
            )
            .returning(*s.c)
        )
        rows = self._group.run(lambda conn: conn.execute(stmt).mappings().all())
        return [Submission.from_row(r) for r in rows]

    def _finish(
        self, claim: Submission, values: dict[str, Any], attempt: dict[str, Any], now: float | None
    ) -> bool:
        """Apply an outcome only if this claim still holds the lease (fencing)."""
        now = time.time() if now is None else now

        def finish(conn: Connection) -> bool:
            result = conn.execute(
                s.update()
                .where(
                    s.c.id == claim.id,
                    s.c.lease_token == claim.lease_token,
                    s.c.state == "in_flight",
                )
                .values(lease_owner=None, lease_expires_at=None, updated_at=now, **values)
            )
            if result.rowcount != 1:
                return False  # our lease was taken over: the new holder decides
            conn.execute(
                attempts.insert().values(
                    submission_id=claim.id,
                    number=claim.attempts,
                    worker=claim.lease_owner,
                    finished_at=now,
                    **attempt,
                )
            )
            return True

        return self._group.run(finish)

    def mark_delivered(
        self,
        claim: Submission,
        ticket_id: str,
        *,
        kind: str,
        started_at: float,
        http_status: int | None = None,
        now: float | None = None,
    ) -> bool:
        now = time.time() if now is None else now
        return self._finish(
            claim,
            {"state": "delivered", "ticket_id": ticket_id, "delivered_at": now, "last_error": None},
            {
                "kind": kind,
                "outcome": "delivered",
                "started_at": started_at,
                "http_status": http_status,
                "ticket_id": ticket_id,
            },
            now,
        )

    def mark_retry(
        self,
        claim: Submission,
        delay: float,
        error: str,
        *,
        kind: str,
        started_at: float,
        http_status: int | None = None,
        now: float | None = None,
    ) -> bool:
        now = time.time() if now is None else now
        return self._finish(
            claim,
            {"state": "pending", "next_attempt_at": now + delay, "last_error": error},
            {
                "kind": kind,
                "outcome": "retry",
                "started_at": started_at,
                "http_status": http_status,
                "error": error,
            },
            now,
        )

    def mark_dead(
        self,
        claim: Submission,
        error: str,
        *,
        kind: str,
        started_at: float,
        http_status: int | None = None,
        now: float | None = None,
    ) -> bool:
        return self._finish(
            claim,
            {"state": "dead", "last_error": error},
            {
                "kind": kind,
                "outcome": "dead",
                "started_at": started_at,
                "http_status": http_status,
                "error": error,
            },
            now,
        )

    def mark_unknown(
        self,
        claim: Submission,
        recheck_at: float,
        error: str,
        *,
        kind: str,
        started_at: float,
        now: float | None = None,
    ) -> bool:
        return self._finish(
            claim,
            {"state": "unknown", "next_attempt_at": recheck_at, "last_error": error},
            {"kind": kind, "outcome": "unknown", "started_at": started_at, "error": error},
            now,
        )

    def release(self, claim: Submission, *, now: float | None = None) -> bool:
        """Give a claim back untouched (graceful stop before sending)."""
        now = time.time() if now is None else now
        back = claim.claimed_from if claim.claimed_from in ("pending", "unknown") else "unknown"
        values: dict[str, Any] = {
            "state": back,
            "lease_owner": None,
            "lease_expires_at": None,
            "updated_at": now,
        }
        if back == "pending" and claim.claimed_from == "pending":
            values["attempts"] = max(0, claim.attempts - 1)  # it was never sent
        with self._write() as conn:
            result = conn.execute(
                s.update()
                .where(
                    s.c.id == claim.id,
                    s.c.lease_token == claim.lease_token,
                    s.c.state == "in_flight",
                )
                .values(**values)
            )
        return result.rowcount == 1

    # --- operators ---------------------------------------------------------------------------

    def get(self, submission_id: str) -> Submission | None:
        with self._read() as conn:
            row = conn.execute(s.select().where(s.c.id == submission_id)).mappings().first()
        return Submission.from_row(row) if row else None

    def attempts_for(self, submission_id: str) -> list[Attempt]:
        with self._read() as conn:
            rows = (
                conn.execute(
                    sa.select(attempts)
                    .where(attempts.c.submission_id == submission_id)
                    .order_by(attempts.c.id)
                )
                .mappings()
                .all()
            )
        return [Attempt(**{k: r[k] for k in Attempt.__dataclass_fields__}) for r in rows]

    def list(
        self,
        *,
        state: str | None = None,
        route: str | None = None,
        search: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Submission]:
        """Newest first; ``search`` matches an id, or text in the ticket draft."""
        query = s.select().order_by(s.c.created_at.desc()).limit(limit).offset(offset)
        if state:
            query = query.where(s.c.state == state)
        if route:
            query = query.where(s.c.route == route)
        if search:
            escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(
                sa.or_(
                    s.c.id == search,
                    s.c.ticket_id == search,
                    s.c.draft.like(f"%{escaped}%", escape="\\"),
                )
            )
        with self._read() as conn:
            rows = conn.execute(query).mappings().all()
        return [Submission.from_row(r) for r in rows]

    def counts(self) -> dict[str, int]:
        with self._read() as conn:
            rows = conn.execute(sa.select(s.c.state, sa.func.count()).group_by(s.c.state)).all()
        found = {state: int(n) for state, n in rows}
        return {state: found.get(state, 0) for state in STATES}

    def oldest_waiting_age(self, *, now: float | None = None) -> float:
        """Seconds since the oldest submission not yet delivered (or dead) was accepted."""
        now = time.time() if now is None else now
        with self._read() as conn:
            oldest = conn.execute(
                sa.select(sa.func.min(s.c.created_at)).where(
                    s.c.state.in_(("pending", "in_flight", "unknown"))
                )
            ).scalar()
        return 0.0 if oldest is None else max(0.0, now - float(oldest))

    def replay(self, submission_id: str, *, now: float | None = None) -> bool:
        """Send a dead submission again from a fresh schedule."""
        now = time.time() if now is None else now
        with self._write() as conn:
            result = conn.execute(
                s.update()
                .where(s.c.id == submission_id, s.c.state == "dead")
                .values(state="pending", attempts=0, next_attempt_at=now, updated_at=now)
            )
        return result.rowcount == 1

    def replay_all_dead(self, *, route: str | None = None, now: float | None = None) -> int:
        now = time.time() if now is None else now
        stmt = s.update().where(s.c.state == "dead")
        if route:
            stmt = stmt.where(s.c.route == route)
        with self._write() as conn:
            result = conn.execute(
                stmt.values(state="pending", attempts=0, next_attempt_at=now, updated_at=now)
            )
        return int(result.rowcount)

    def purge(self, *, older_than: float, state: str, now: float | None = None) -> int:
        """Delete submissions in ``state`` last changed more than ``older_than`` seconds ago."""
        if state not in ("delivered", "dead", "suppressed"):
            raise ValueError("only delivered, dead or suppressed submissions can be purged")
        cutoff = (time.time() if now is None else now) - older_than
        with self._write() as conn:
            doomed = sa.select(s.c.id).where(s.c.state == state, s.c.updated_at < cutoff)
            conn.execute(attempts.delete().where(attempts.c.submission_id.in_(doomed)))
            result = conn.execute(s.delete().where(s.c.state == state, s.c.updated_at < cutoff))
        return int(result.rowcount)

    # --- alert incidents ----------------------------------------------------------------------

    def incident(self, route: str, key: str) -> Incident | None:
        """The incident of an alert group, with its current submission."""
        i = incidents
        query = (
            sa.select(i.c.generation, i.c.ticket_open, i.c.checked_at, s)
            .join(s, s.c.id == i.c.submission_id)
            .where(i.c.route == route, i.c.key == key)
        )
        with self._read() as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            return None
        return Incident(
            route,
            key,
            row["generation"],
            Submission.from_row(row),
            row["ticket_open"],
            row["checked_at"],
        )

    def open_incident(
        self,
        route: str,
        kind: str,
        key: str,
        generation: int,
        draft: TicketDraft,
        *,
        submission_id: str,
        meta: Mapping[str, Any] | None = None,
        now: float | None = None,
    ) -> EnqueueResult:
        """Start generation ``generation`` of an incident and enqueue its ticket, atomically.

        Two replicas racing for the same generation meet a primary key or the
        submissions' unique dedup key: one stores, the other gets ``duplicate``.
        """
        now = time.time() if now is None else now
        row = {
            "id": submission_id,
            "route": route,
            "kind": kind,
            "draft": json.dumps(draft.to_dict()),
            "dedup_key": f"{key}#{generation}",
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "lease_token": 0,
            "meta": json.dumps(dict(meta or {})),
            "created_at": now,
            "updated_at": now,
        }
        try:
            with self._write() as conn:
                if generation == 1:
                    conn.execute(
                        incidents.insert().values(
                            route=route,
                            key=key,
                            generation=1,
                            submission_id=submission_id,
                            ticket_open=None,
                            checked_at=None,
                            created_at=now,
                            updated_at=now,
                        )
                    )
                else:
                    moved = conn.execute(
                        incidents.update()
                        .where(
                            incidents.c.route == route,
                            incidents.c.key == key,
                            incidents.c.generation == generation - 1,
                        )
                        .values(
                            generation=generation,
                            submission_id=submission_id,
                            ticket_open=None,
                            checked_at=None,
                            updated_at=now,
                        )
                    )
                    if moved.rowcount != 1:
                        raise _Lost()
                conn.execute(s.insert().values(**row))
            return EnqueueResult(submission_id, False, "pending")
        except (IntegrityError, _Lost):
            current = self.incident(route, key)
            if current is None:
                raise StoreUnavailable("the incident changed while opening it") from None
            sub = current.submission
            return EnqueueResult(sub.id, True, sub.state, sub.ticket_id)

    def record_ticket_check(
        self, route: str, key: str, generation: int, is_open: bool, *, now: float | None = None
    ) -> None:
        """Cache what the list API said about the incident's ticket."""
        now = time.time() if now is None else now
        with self._write() as conn:
            conn.execute(
                incidents.update()
                .where(
                    incidents.c.route == route,
                    incidents.c.key == key,
                    incidents.c.generation == generation,
                )
                .values(ticket_open=is_open, checked_at=now, updated_at=now)
            )

    # --- replay guard -------------------------------------------------------------------------

    def begin_message(
        self,
        route: str,
        message_id: str,
        *,
        keep: float = 3600.0,
        stale: float = 60.0,
        now: float | None = None,
    ) -> MessageSighting:
        """Take ``message_id`` on ``route`` for processing, or say how it was answered before.

        A sender's message id is an idempotency key (Standard Webhooks): the first sighting
        is processed; a repeat gets the earlier answer once that is recorded, or is told to
        come back while it is still in progress. An attempt that never recorded an answer
        (it failed, or its process died) is taken over once ``stale`` seconds have passed.
        """
        now = time.time() if now is None else now
        m = seen_messages
        key = (m.c.route == route) & (m.c.message_id == message_id)
        try:
            with self._write() as conn:
                conn.execute(m.delete().where(m.c.seen_at < now - keep))
                row = conn.execute(sa.select(m.c.seen_at, m.c.answer).where(key)).first()
                if row is None:
                    conn.execute(m.insert().values(route=route, message_id=message_id, seen_at=now))
                    return MessageSighting("new")
                if row.answer is not None:
                    return MessageSighting("answered", json.loads(row.answer))
                if now - row.seen_at < stale:
                    return MessageSighting("in_progress")
                conn.execute(m.update().where(key).values(seen_at=now))
                return MessageSighting("new")
        except IntegrityError:  # another instance took it a moment ago (PostgreSQL)
            return MessageSighting("in_progress")

    def finish_message(self, route: str, message_id: str, answer: Mapping[str, Any] | None) -> None:
        """Record the 2xx a message was given, or (``None``) forget it so a retry is processed."""
        m = seen_messages
        key = (m.c.route == route) & (m.c.message_id == message_id)
        with self._write() as conn:
            if answer is None:
                conn.execute(m.delete().where(key & m.c.answer.is_(None)))
            else:
                conn.execute(m.update().where(key).values(answer=json.dumps(dict(answer))))


@dataclass(frozen=True)
class MessageSighting:
    """What :meth:`SubmissionStore.begin_message` found: ``new``, ``in_progress`` or
    ``answered`` (with the answer given then)."""

    state: str
    answer: Mapping[str, Any] | None = None


class _Lost(Exception):
    """Another replica opened this incident generation first."""
