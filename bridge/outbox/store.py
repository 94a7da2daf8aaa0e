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
import functools
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from .. import randomness
from ..attachments import WRITE_GRACE, Attachment, FileStore
from ..proprofs.models import TicketDraft
from .access import AccessStore
from .tables import (
    STATES,
    attempts,
    captures,
    heartbeats,
    incident_events,
    incidents,
    quarantine,
    route_pauses,
    seen_messages,
    storm_groups,
    storm_windows,
    submissions,
)
from .tables import attachments as files_table

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
class Quarantined:
    """A submission held back as likely spam."""

    id: str
    route: str
    kind: str
    draft: TicketDraft
    score: float
    reasons: list[str]
    meta: dict[str, Any]
    created_at: float
    expires_at: float

    @classmethod
    def from_row(cls, row: Any) -> Quarantined:
        return cls(
            id=row["id"],
            route=row["route"],
            kind=row["kind"],
            draft=TicketDraft.from_dict(json.loads(row["draft"])),
            score=float(row["score"]),
            reasons=list(json.loads(row["reasons"])),
            meta=json.loads(row["meta"] or "{}"),
            created_at=row["created_at"],
            expires_at=row["expires_at"],
        )


@dataclass(frozen=True)
class Incident:
    """An alert group's current ticket: its generation and the submission that makes it."""

    route: str
    key: str
    generation: int
    submission: Submission
    ticket_open: bool | None
    checked_at: float | None
    created_at: float = 0.0
    muted: bool = False  # staff's wontfix label
    snoozed_until: float | None = None  # staff's snooze label
    snooze_label: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)  # the group's, last seen
    resolved_at: float | None = None


@dataclass(frozen=True)
class IncidentEvent:
    """One notification of an alert group, and what the bridge did with it."""

    generation: int
    status: str  # firing | resolved
    outcome: str  # ticket | repeat | resolved | muted | snoozed
    submission_id: str | None
    received_at: float
    ticket_id: str | None = None  # for a ticket: the one it became, once delivered
    state: str | None = None


#: The requester of a scrubbed draft (a ticket draft must have one; this one is no one's).
SCRUBBED_EMAIL = "removed@invalid"


def footer_of(ref: str) -> str:
    """The reference footer of a ticket description (the same text as mapping.footer)."""
    from ..mapping import footer

    return footer(ref)


def describe_erasure(email: str, report: Mapping[str, int]) -> str:
    """What an erasure removed, in words (the CLI and the console say the same)."""
    if not any(report.values()):
        return f"nothing held for {email}"
    return (
        f"erased {email}: {report['scrubbed']} submission(s) scrubbed "
        f"({report['cancelled']} not yet delivered, cancelled), "
        f"{report['quarantine_deleted']} quarantined submission(s) deleted, "
        f"{report.get('files', 0)} attached file(s) removed; "
        "tickets in ProProfs were not touched"
    )


def new_submission_id() -> str:
    """An unguessable id that doubles as the ticket reference: ``pb-`` + 20 hex digits."""
    return "pb-" + randomness.token_hex(10)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
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


class _Write(Generic[T]):
    """One write waiting for, or in, a group commit."""

    __slots__ = ("done", "error", "leads", "result", "row", "waiting", "work")

    def __init__(self, work: Callable[[Connection], T], row: tuple[Any, ...] | None) -> None:
        self.work = work
        #: A submission row to insert (``work`` inserts it alone when it cannot share).
        self.row = row
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = False
        self.leads = False
        #: A writer that does not lead waits on this lock until its write is committed or
        #: it is to lead: released once, by the leader (a bare lock: the cheapest wake-up
        #: there is). A writer that leads at once never waits, and gets none.
        self.waiting: threading.Lock | None = None


@functools.lru_cache(maxsize=64)
def _enqueue_rows_sql(mark: str, count: int) -> str:
    """The insert of ``count`` submission rows (made once per batch size)."""
    values = f"({', '.join([mark] * len(ENQUEUE_COLUMNS))})"
    return (
        f"INSERT INTO {s.name} ({', '.join(ENQUEUE_COLUMNS)}) "
        f"VALUES {', '.join([values] * count)} ON CONFLICT DO NOTHING"
    )


def _due_first(
    limit: int,
    now: sa.ColumnElement[float] | float,
    running: sa.ColumnElement[bool],
    *,
    lock: bool = False,
) -> sa.Select[Any]:
    """The ids of the ``limit`` submissions due first: one walk of an index per state,
    each stopping after ``limit`` rows, then the earliest of those. (One condition over all
    the states cannot follow either index's order, so the database collected and sorted
    every due row to return a few — tens of milliseconds under a backlog of tens of
    thousands; on SQLite, in the write turn that every intake answer waits for.)

    ``lock`` (PostgreSQL): each walk locks the rows it reads and skips those another
    claim holds (``FOR UPDATE SKIP LOCKED``, which a UNION does not take, so each walk is
    a CTE of its own). Rows a walk locked beyond the ``limit`` taken stay locked only
    until this claim commits: another claim meanwhile passes them by, as it would any
    row being claimed."""
    due_in = (
        sa.and_(s.c.state == "pending", s.c.next_attempt_at <= now),
        sa.and_(s.c.state == "unknown", s.c.next_attempt_at <= now),
        sa.and_(s.c.state == "in_flight", s.c.lease_expires_at < now),  # a lease lost
    )
    walks = []
    for n, condition in enumerate(due_in):
        walk = (
            sa.select(s.c.id, s.c.next_attempt_at)
            .where(condition, running)
            .order_by(s.c.next_attempt_at)
            .limit(limit)
        )
        walks.append(
            walk.with_for_update(skip_locked=True).cte(f"due_{n}") if lock else walk.subquery()
        )
    due = sa.union_all(*(sa.select(walk) for walk in walks)).subquery()
    return sa.select(due.c.id).order_by(due.c.next_attempt_at).limit(limit)


@functools.lru_cache(maxsize=64)
def _claim_statement(sqlite: bool, limit: int) -> sa.Update:
    """The claim of up to ``limit`` due submissions, built once per size; the time, the
    owner and the lease's end are bound at each call (``now``, ``owner``, ``expires``).
    Building it and working out its cache key anew for every claim had cost the delivery
    worker more CPU than the claim's own work in the database."""
    now: sa.ColumnElement[float] = sa.bindparam("now", type_=sa.Float)
    # A paused route's submissions wait where they are.
    running = s.c.route.not_in(sa.select(route_pauses.c.route))
    pick = _due_first(limit, now, running, lock=not sqlite)
    sending = s.c.state == "pending"
    return (
        s.update()
        .where(s.c.id.in_(pick.scalar_subquery()))
        .values(
            state="in_flight",
            claimed_from=s.c.state,
            lease_owner=sa.bindparam("owner", type_=sa.String),
            lease_token=s.c.lease_token + 1,
            lease_expires_at=sa.bindparam("expires", type_=sa.Float),
            attempts=sa.case((sending, s.c.attempts + 1), else_=s.c.attempts),
            sent_at=sa.case((sending, now), else_=s.c.sent_at),
            updated_at=now,
        )
        .returning(*s.c)
    )


@functools.lru_cache(maxsize=16)
def _finish_statement(columns: tuple[str, ...]) -> sa.Update:
    """An outcome's update, fenced by the claim's lease token, built once per set of
    columns it sets (one per kind of outcome): ``b_id`` and ``b_token`` pick the row, and
    each column ``c`` takes ``v_c``. The lease is always let go."""
    changed = ("lease_owner", "lease_expires_at", "updated_at", *columns)
    return (
        s.update()
        .where(
            s.c.id == sa.bindparam("b_id"),
            s.c.lease_token == sa.bindparam("b_token"),
            s.c.state == "in_flight",
        )
        .values({name: sa.bindparam(f"v_{name}", type_=s.c[name].type) for name in changed})
    )


def _let_go(
    claim: Submission, values: Mapping[str, Any], now: float
) -> tuple[sa.Update, dict[str, Any]]:
    """The update that lets ``claim``'s lease go and sets ``values``, with its parameters:
    it changes the row only while this claim still holds the lease (fencing)."""
    changes = {
        "b_id": claim.id,
        "b_token": claim.lease_token,
        "v_lease_owner": None,
        "v_lease_expires_at": None,
        "v_updated_at": now,
        **{f"v_{name}": value for name, value in values.items()},
    }
    return _finish_statement(tuple(values)), changes


#: One attempt's row (its columns are the parameters given).
_RECORD_ATTEMPT = attempts.insert()


class GroupCommit:
    """Writes that arrive while another is committing share the next transaction.

    The first writer leads: it commits everything queued so far in one transaction, then
    hands the lead to the first writer still waiting, and returns. Nobody returns before
    the commit that holds their write. When a shared transaction fails, nothing of it was
    committed: if the store failed (:class:`StoreUnavailable`), every write in it fails;
    otherwise each write is tried again alone, so one write's error is its own. Writes must
    therefore be safe to run again after a rollback (every one here is).

    A batch of nothing but submission rows (``run(…, row=…)``, intake's writes) goes to
    ``insert_rows`` instead: one statement, its own transaction. Every statement lets go of
    the GIL while the database works, and under load the leader then waits for another
    thread to give it back, holding the database's write turn all the while — one
    statement per batch instead of a BEGIN, an INSERT per row and a COMMIT.

    With ``turn`` (the database's write turn, which the transaction takes again
    re-entrantly), the leader takes its batch only once the turn is its own. With two
    processes writing, a leader waits for the other process's commit about as long as a
    commit takes, and the writes that arrive meanwhile go in with it, instead of waiting
    for the commit after.
    """

    def __init__(
        self,
        transaction: Callable[[], Any],
        insert_rows: Callable[[list[tuple[Any, ...]]], list[int]] | None = None,
        *,
        gather: Callable[[], float] | None = None,
        turn: Callable[[], contextlib.AbstractContextManager[None]] | None = None,
    ) -> None:
        self._transaction = transaction
        self._insert_rows = insert_rows
        #: How long a leader waits for more writes before it commits, asked each time
        #: (see SubmissionStore).
        self._gather = gather
        self._turn = turn or contextlib.nullcontext
        self._lock = threading.Lock()
        self._queue: list[_Write[Any]] = []
        self._leading = False

    def run(self, work: Callable[[Connection], T], row: tuple[Any, ...] | None = None) -> T:
        write: _Write[T] = _Write(work, row)
        with self._lock:
            self._queue.append(write)
            if not self._leading:
                self._leading = write.leads = True
            else:
                write.waiting = waiting = threading.Lock()
                waiting.acquire()
        if not write.leads:
            waiting.acquire()  # until committed, or handed the lead
        if not write.done:
            self._lead(write)
        if write.error is not None:
            raise write.error
        return write.result  # type: ignore[no-any-return]

    def _lead(self, own: _Write[Any]) -> None:
        wait = self._gather() if self._gather is not None else 0.0
        if wait > 0:
            time.sleep(wait)  # the writes that come meanwhile share this commit
        batch: list[_Write[Any]] = []
        try:
            with self._turn():
                with self._lock:
                    batch, self._queue = self._queue, []
                self._commit(batch)
        except BaseException as exc:
            if not batch:  # no turn to write in: every write queued so far fails alike
                with self._lock:
                    batch, self._queue = self._queue, []
                for write in batch:
                    write.error = exc
            else:  # the turn failed to let go after the commit: what it holds is committed
                log.warning("the write turn was not let go cleanly: %s", type(exc).__name__)
        finally:
            for done in batch:
                done.done = True
                if done.waiting is not None and done is not own:
                    done.waiting.release()
            with self._lock:
                if self._queue:
                    successor = self._queue[0]
                    successor.leads = True
                    successor.waiting.release()  # type: ignore[union-attr]  # it waits
                else:
                    self._leading = False

    def _commit(self, batch: list[_Write[Any]]) -> None:
        try:
            rows = [w.row for w in batch if w.row is not None]
            if self._insert_rows is not None and len(rows) == len(batch):
                results: list[Any] = self._insert_rows(rows)
            else:
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
        files: FileStore | None = None,
        gather: float = 0.0,
    ) -> None:
        """``gather``: on SQLite, while another process is writing too, how long each
        commit waits for more writes to share it. The delivery worker's store waits
        (:data:`~bridge.outbox.worker.DELIVERY_GATHER`): each commit holds the one write
        turn that intake's commits also wait for, and a worker that recorded each outcome
        as it came took a commit per ticket — at hundreds of tickets a second, enough
        turns to halve intake. Alone, it commits at once. Intake's own writes never wait
        (each answer waits for its commit), and PostgreSQL has no one write turn."""
        self.url = url
        self.files = files  # where attachments are kept; their rows are here
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
        self._gather = gather if self._turns is not None else 0.0
        self._group = GroupCommit(
            self._shared_write,
            self._insert_rows,
            gather=self._wait if self._gather else None,
            turn=self._turns.turn if self._turns is not None else None,
        )
        self._leader: Connection | None = None  # the group's own connection, see below
        # What the driver itself raises when a statement goes to it directly (known once
        # the engine is made).
        self._driver_error: type[Exception] = sqlite3.Error if self.is_sqlite else SQLAlchemyError
        self._driver_integrity: type[Exception] = (
            sqlite3.IntegrityError if self.is_sqlite else IntegrityError
        )
        self._leader_pid = 0
        self._mark = "?" if self.is_sqlite else "%s"  # sqlite3's qmark, psycopg's format

    def _wait(self) -> float:
        """How long the next commit waits for more writes: ``gather`` while another
        process is writing too, else nothing."""
        crowded = self._turns is not None and self._turns.crowded()
        return self._gather if crowded else 0.0

    @functools.cached_property
    def access(self) -> AccessStore:
        """Console sessions and generated keys."""
        return AccessStore(self)

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
    def _shared_write(self, *, begin: bool = True) -> Iterator[Connection]:
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
                    if begin:
                        with conn.begin():
                            yield conn
                    else:  # the caller's own statement is its transaction (see _insert_rows)
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
        attachments: Sequence[Attachment] = (),
    ) -> EnqueueResult:
        """Store one submission, with its attachments' rows, in one transaction; a repeated
        dedup key is a no-op."""
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
        if attachments:
            inserted = self._group.run(lambda conn: self._insert_with(conn, row, attachments))
        else:
            inserted = self._group.run(lambda conn: self._insert(conn, row), row=row)
        if inserted == 1:
            return EnqueueResult(sid, False, "pending")
        if dedup_key is None:
            raise StoreUnavailable("the store refused the submission")
        existing = self.find_by_dedup(route, dedup_key)
        if existing is None:  # deleted in between: very unlikely; the sender may retry
            raise StoreUnavailable("the store changed while deduplicating")
        return EnqueueResult(existing.id, True, existing.state, existing.ticket_id)

    def _insert_rows(self, rows: list[tuple[Any, ...]]) -> list[int]:
        """Insert a batch of submission rows with one statement, which is its own
        transaction (SQLite: the connection is in autocommit; PostgreSQL: committed here)."""
        with self._shared_write(begin=False) as conn:
            inserted = self._rows_into(conn, rows)
            if not self.is_sqlite:
                conn.connection.driver_connection.commit()  # type: ignore[union-attr]
            return inserted

    def _insert(self, conn: Connection, row: tuple[Any, ...]) -> int:
        """One row, inside a transaction the caller holds."""
        return self._rows_into(conn, [row])[0]

    def _rows_into(self, conn: Connection, rows: list[tuple[Any, ...]]) -> list[int]:
        """The hot statement, straight through the driver (SQLAlchemy's execution machinery
        cost as much per submission as the insert itself): 1 for each row inserted, 0 for
        each whose dedup key was already there."""
        driver: Any = conn.connection.driver_connection
        cursor = driver.cursor()
        try:
            sql = _enqueue_rows_sql(self._mark, len(rows))
            cursor.execute(sql, [value for row in rows for value in row])
            if cursor.rowcount == len(rows):
                return [1] * len(rows)
            # Some repeated a dedup key: the inserted ones are those whose id is there now
            # (each id is new: drawn at random, 80 bits, for this row).
            ids = [row[0] for row in rows]
            marks = ", ".join([self._mark] * len(ids))
            cursor.execute(f"SELECT id FROM {s.name} WHERE id IN ({marks})", ids)
            present = {found for (found,) in cursor.fetchall()}
            return [1 if row[0] in present else 0 for row in rows]
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
        stmt = _claim_statement(self.is_sqlite, limit)
        params = {"now": now, "owner": owner, "expires": now + self.lease_seconds}
        rows = self._group.run(lambda conn: conn.execute(stmt, params).mappings().all())
        return [Submission.from_row(r) for r in rows]

    def _finish(
        self, claim: Submission, values: dict[str, Any], attempt: dict[str, Any], now: float | None
    ) -> bool:
        """Apply an outcome only if this claim still holds the lease (fencing)."""
        now = time.time() if now is None else now
        update, changes = _let_go(claim, values, now)
        row = {
            "submission_id": claim.id,
            "number": claim.attempts,
            "worker": claim.lease_owner,
            "finished_at": now,
            **attempt,
        }

        def finish(conn: Connection) -> bool:
            if conn.execute(update, changes).rowcount != 1:
                return False  # our lease was taken over: the new holder decides
            conn.execute(_RECORD_ATTEMPT, row)
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
        values: dict[str, Any] = {"state": back}
        if back == "pending" and claim.claimed_from == "pending":
            values["attempts"] = max(0, claim.attempts - 1)  # it was never sent
        with self._write() as conn:
            result = conn.execute(*_let_go(claim, values, now))
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

    def counts(self, *, deliverable: bool = False) -> dict[str, int]:
        """Submissions per state; with ``deliverable``, those of paused routes left out."""
        query = sa.select(s.c.state, sa.func.count()).group_by(s.c.state)
        if deliverable:
            query = query.where(s.c.route.not_in(sa.select(route_pauses.c.route)))
        with self._read() as conn:
            rows = conn.execute(query).all()
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
                # A scrubbed one has nothing left to send.
                .where(s.c.id == submission_id, s.c.state == "dead", s.c.scrubbed_at.is_(None))
                .values(state="pending", attempts=0, next_attempt_at=now, updated_at=now)
            )
        return result.rowcount == 1

    def replay_all_dead(self, *, route: str | None = None, now: float | None = None) -> int:
        now = time.time() if now is None else now
        stmt = s.update().where(s.c.state == "dead", s.c.scrubbed_at.is_(None))
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
            digests = _drop_attachments(conn, doomed)
            result = conn.execute(s.delete().where(s.c.state == state, s.c.updated_at < cutoff))
        self._forget(digests)
        return int(result.rowcount)

    # --- retention and erasure -----------------------------------------------------------------

    def scrub_due(
        self,
        route: str,
        state: str,
        older_than: float,
        *,
        now: float | None = None,
        limit: int = 200,
    ) -> int:
        """Scrub up to ``limit`` of ``route``'s submissions in ``state`` (delivered or dead)
        last changed more than ``older_than`` seconds ago; how many."""
        now = time.time() if now is None else now
        stamp = s.c.delivered_at if state == "delivered" else s.c.updated_at
        with self._write() as conn:
            rows = conn.execute(
                sa.select(s.c.id, s.c.draft)
                .where(
                    s.c.route == route,
                    s.c.state == state,
                    s.c.scrubbed_at.is_(None),
                    stamp < now - older_than,
                )
                .limit(limit)
            ).all()
            digests: set[str] = set()
            for sid, draft in rows:
                digests |= self._scrub(conn, sid, draft, now)
        self._forget(digests)
        return len(rows)

    def _scrub(self, conn: Connection, sid: str, draft_json: str, now: float) -> set[str]:
        """Replace a submission's draft with one that holds nothing about the person: only
        the reference footer (the reference is its id) and where it went (inbox, priority),
        which reconcile still uses; and its meta with the request id alone. Its files go
        too: the digests whose rows were removed."""
        old = json.loads(draft_json)
        scrubbed = TicketDraft(
            email=SCRUBBED_EMAIL,
            subject="(removed)",
            description=footer_of(sid),
            inbox=old.get("inbox"),
            priority=old.get("priority"),
        )
        meta = json.loads(conn.execute(sa.select(s.c.meta).where(s.c.id == sid)).scalar() or "{}")
        conn.execute(
            s.update()
            .where(s.c.id == sid)
            .values(
                draft=json.dumps(scrubbed.to_dict()),
                meta=json.dumps({"request_id": meta.get("request_id", ""), "scrubbed": True}),
                last_error=None,
                scrubbed_at=now,
            )
        )
        conn.execute(attempts.update().where(attempts.c.submission_id == sid).values(error=None))
        return _drop_attachments(conn, [sid])

    def erase(self, email: str, *, now: float | None = None) -> dict[str, int]:
        """Remove what the outbox holds about the person with ``email`` (any case): every
        submission of theirs is scrubbed, one not yet delivered is cancelled first (it
        becomes dead: there is nothing left to send), and quarantined ones are deleted.
        Tickets already in ProProfs are not touched. How many of each."""
        now = time.time() if now is None else now
        wanted = email.strip().lower()
        literal = json.dumps(wanted).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        needle = f'%"email": {literal}%'
        report = {
            "scrubbed": 0,
            "cancelled": 0,
            "quarantine_deleted": 0,
            "captures_deleted": 0,
            "files": 0,
        }
        digests: set[str] = set()
        with self._write() as conn:
            rows = conn.execute(
                sa.select(s.c.id, s.c.draft, s.c.state).where(
                    sa.func.lower(s.c.draft).like(needle, escape="\\"),
                    s.c.scrubbed_at.is_(None),
                )
            ).all()
            for sid, draft, state in rows:
                if str(json.loads(draft).get("email", "")).strip().lower() != wanted:
                    continue  # the text matched elsewhere in the draft, not as its requester
                if state in ("pending", "in_flight", "unknown"):
                    conn.execute(
                        s.update()
                        .where(s.c.id == sid)
                        .values(
                            state="dead",
                            lease_owner=None,
                            lease_expires_at=None,
                            lease_token=s.c.lease_token + 1,  # a worker holding it loses it
                            updated_at=now,
                        )
                    )
                    report["cancelled"] += 1
                digests |= self._scrub(conn, sid, draft, now)
                conn.execute(
                    s.update()
                    .where(s.c.id == sid, s.c.state == "dead")
                    .values(last_error="erased on request")
                )
                report["scrubbed"] += 1
            held = conn.execute(
                sa.select(quarantine.c.id, quarantine.c.draft).where(
                    sa.func.lower(quarantine.c.draft).like(needle, escape="\\")
                )
            ).all()
            doomed = [
                qid
                for qid, draft in held
                if str(json.loads(draft).get("email", "")).strip().lower() == wanted
            ]
            if doomed:
                conn.execute(quarantine.delete().where(quarantine.c.id.in_(doomed)))
                digests |= _drop_attachments(conn, doomed)
            report["quarantine_deleted"] = len(doomed)
            # Raw payloads kept for the console's test bench that name the person.
            escaped = wanted.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            mentioned = sa.func.lower(captures.c.body).like(f"%{escaped}%", escape="\\")
            report["captures_deleted"] = conn.execute(captures.delete().where(mentioned)).rowcount
        report["files"] = self._forget(digests, at_once=True)
        self._clear_traces()
        return report

    def _clear_traces(self) -> None:
        """After an erasure: no copy of what was removed stays in SQLite's write-ahead log
        (the database file zeroes freed space itself, ``secure_delete``). Readers holding
        an old snapshot hold the log up; it is tried again for a few seconds."""
        if self._checkpoints is None:
            return
        path = self._checkpoints.path
        with contextlib.closing(sqlite3.connect(path, timeout=5)) as conn:
            for _ in range(50):
                busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                if not busy:
                    return
                time.sleep(0.1)
        log.warning("erasure: the write-ahead log could not be emptied; readers held it")

    # --- quarantine ---------------------------------------------------------------------------

    def quarantine(
        self,
        route: str,
        kind: str,
        draft: TicketDraft,
        *,
        score: float,
        reasons: Sequence[str],
        expires_at: float,
        dedup_key: str | None = None,
        meta: Mapping[str, Any] | None = None,
        submission_id: str | None = None,
        now: float | None = None,
        attachments: Sequence[Attachment] = (),
    ) -> str:
        """Hold one submission back as likely spam (no ticket), with its attachments' rows;
        its id."""
        now = time.time() if now is None else now
        sid = submission_id or new_submission_id()
        with self._write() as conn:
            conn.execute(
                quarantine.insert().values(
                    id=sid,
                    route=route,
                    kind=kind,
                    draft=json.dumps(draft.to_dict()),
                    dedup_key=dedup_key,
                    meta=json.dumps(dict(meta or {})),
                    score=score,
                    reasons=json.dumps(list(reasons)),
                    created_at=now,
                    expires_at=expires_at,
                )
            )
            if attachments:
                conn.execute(files_table.insert(), [_attachment_row(a) for a in attachments])
        return sid

    def quarantined(self, submission_id: str) -> Quarantined | None:
        with self._read() as conn:
            row = (
                conn.execute(quarantine.select().where(quarantine.c.id == submission_id))
                .mappings()
                .first()
            )
        return Quarantined.from_row(row) if row is not None else None

    def list_quarantine(
        self, *, route: str | None = None, limit: int = 50, offset: int = 0
    ) -> Sequence[Quarantined]:
        """Newest first."""
        query = quarantine.select().order_by(quarantine.c.created_at.desc(), quarantine.c.id)
        if route:
            query = query.where(quarantine.c.route == route)
        with self._read() as conn:
            rows = conn.execute(query.limit(limit).offset(offset)).mappings().all()
        return [Quarantined.from_row(r) for r in rows]

    def quarantine_count(self) -> int:
        with self._read() as conn:
            count = conn.execute(sa.select(sa.func.count()).select_from(quarantine)).scalar()
        return int(count or 0)

    def release_quarantined(
        self, submission_id: str, *, now: float | None = None
    ) -> EnqueueResult | None:
        """Deliver a quarantined submission like any other, under the same id, once: it
        moves into the outbox as pending in the same transaction that removes it here. A
        release of one already released (or discarded) is ``None``; one whose dedup key a
        later submission already holds becomes that submission (a duplicate)."""
        now = time.time() if now is None else now
        with self._write() as conn:
            row = (
                conn.execute(quarantine.select().where(quarantine.c.id == submission_id))
                .mappings()
                .first()
            )
            if row is None:
                return None
            # Not _insert: this id is not new (it was the quarantined one), so a conflict on
            # it must not be taken for an inserted row.
            inserted = conn.exec_driver_sql(
                _enqueue_rows_sql(self._mark, 1),
                (
                    row["id"],
                    row["route"],
                    row["kind"],
                    row["draft"],
                    row["dedup_key"],
                    "pending",
                    0,
                    now,
                    0,
                    row["meta"] or "{}",
                    row["created_at"],
                    now,
                ),
            ).rowcount
            conn.execute(quarantine.delete().where(quarantine.c.id == submission_id))
            if inserted == 1:
                return EnqueueResult(submission_id, False, "pending")
            existing = (
                conn.execute(
                    s.select().where(
                        sa.or_(
                            s.c.id == submission_id,
                            sa.and_(s.c.route == row["route"], s.c.dedup_key == row["dedup_key"]),
                        )
                    )
                )
                .mappings()
                .first()
            )
        if existing is None:
            return None
        return EnqueueResult(existing["id"], True, existing["state"], existing["ticket_id"])

    def discard_quarantined(self, submission_id: str) -> bool:
        """Delete a quarantined submission; ``False`` if it was not there (any more)."""
        with self._write() as conn:
            result = conn.execute(quarantine.delete().where(quarantine.c.id == submission_id))
            digests = _drop_attachments(conn, [submission_id]) if result.rowcount else set()
        self._forget(digests)
        return result.rowcount == 1

    def expire_quarantine(self, *, now: float | None = None, limit: int = 500) -> dict[str, int]:
        """Delete quarantined submissions past their time, a batch at a time; how many per
        route."""
        now = time.time() if now is None else now
        with self._write() as conn:
            rows = conn.execute(
                sa.select(quarantine.c.id, quarantine.c.route)
                .where(quarantine.c.expires_at <= now)
                .limit(limit)
            ).all()
            digests: set[str] = set()
            if rows:
                ids = [r[0] for r in rows]
                conn.execute(quarantine.delete().where(quarantine.c.id.in_(ids)))
                digests = _drop_attachments(conn, ids)
        self._forget(digests)
        expired: dict[str, int] = {}
        for _, route in rows:
            expired[route] = expired.get(route, 0) + 1
        return expired

    # --- heartbeats and the storm guard -------------------------------------------------------

    def heartbeat_seen(self, route: str, *, now: float | None = None) -> float | None:
        """Note a heartbeat; when it ends a silence, when that silence began (told once,
        however many processes hear the heartbeat at the same time)."""
        now = time.time() if now is None else now
        h = heartbeats
        for _ in range(2):
            try:
                with self._write() as conn:
                    row = conn.execute(
                        sa.select(h.c.silent_since).where(h.c.route == route)
                    ).first()
                    if row is None:
                        conn.execute(h.insert().values(route=route, last_seen=now))
                        return None
                    if row[0] is not None:
                        # Compare and set: of several hearing it at once, one says "back".
                        back = conn.execute(
                            h.update()
                            .where(h.c.route == route, h.c.silent_since == row[0])
                            .values(last_seen=now, silent_since=None, silent_submission_id=None)
                        ).rowcount
                        if back == 1:
                            return float(row[0])
                    conn.execute(h.update().where(h.c.route == route).values(last_seen=now))
                return None
            except IntegrityError:
                continue  # another process noted the first heartbeat a moment ago
        return None

    def heartbeat_expect(self, route: str, *, now: float | None = None) -> None:
        """Start expecting ``route``'s heartbeat from ``now`` if none was ever heard: a
        pipeline that never sends one is as silent as one that stopped."""
        now = time.time() if now is None else now
        # IntegrityError: another process started expecting it at the same moment.
        with contextlib.suppress(IntegrityError), self._write() as conn:
            known = conn.execute(
                sa.select(heartbeats.c.route).where(heartbeats.c.route == route)
            ).first()
            if known is None:
                conn.execute(heartbeats.insert().values(route=route, last_seen=now))

    def heartbeat_silence(
        self,
        route: str,
        *,
        cutoff: float,
        draft: Callable[[float, str], TicketDraft],
        now: float | None = None,
    ) -> tuple[str, float] | None:
        """If ``route``'s heartbeat was last heard before ``cutoff`` and no silence ticket
        was raised since, raise one (``draft(last_seen, submission_id)``), atomically:
        one ticket whatever the number of processes checking. (its id, last heard)."""
        now = time.time() if now is None else now
        h = heartbeats
        sid = new_submission_id()
        with self._write() as conn:
            row = conn.execute(
                h.update()
                .where(h.c.route == route, h.c.silent_since.is_(None), h.c.last_seen < cutoff)
                .values(silent_since=now, silent_submission_id=sid)
                .returning(h.c.last_seen)
            ).first()
            if row is None:
                return None
            last_seen = float(row[0])
            self._insert_made(
                conn, sid, route, draft(last_seen, sid), f"heartbeat:{last_seen}", now
            )
        return sid, last_seen

    def _insert_made(
        self, conn: Connection, sid: str, route: str, draft: TicketDraft, key: str, now: float
    ) -> None:
        """A ticket the bridge itself raises (silence, storm summary), as a submission."""
        conn.execute(
            s.insert().values(
                id=sid,
                route=route,
                kind="hook",
                draft=json.dumps(draft.to_dict()),
                dedup_key=key,
                state="pending",
                attempts=0,
                next_attempt_at=now,
                lease_token=0,
                meta=json.dumps({"made_by": "bridge"}),
                created_at=now,
                updated_at=now,
            )
        )

    def storm_held(self, route: str, window: int, key: str) -> bool:
        with self._read() as conn:
            found = conn.execute(
                sa.select(storm_groups.c.key).where(
                    storm_groups.c.route == route,
                    storm_groups.c.window == window,
                    storm_groups.c.key == key,
                )
            ).first()
        return found is not None

    def storm_count(self, route: str, window: int) -> int:
        """Count one more new alert group in ``route``'s ``window``; the count so far
        (shared by every instance through the store)."""
        w = storm_windows
        for _ in range(3):
            try:
                with self._write() as conn:
                    row = conn.execute(
                        w.update()
                        .where(w.c.route == route, w.c.window == window)
                        .values(new_groups=w.c.new_groups + 1)
                        .returning(w.c.new_groups)
                    ).first()
                    if row is not None:
                        return int(row[0])
                    conn.execute(w.insert().values(route=route, window=window, new_groups=1))
                    return 1
            except IntegrityError:
                continue  # another instance opened the window a moment ago
        raise StoreUnavailable("the storm window kept changing")

    def storm_hold(
        self, route: str, window: int, key: str, subject: str, *, now: float | None = None
    ) -> str:
        """Hold a new group back for the window's summary: ``held``; ``again`` if it already
        was; ``late`` when the window's summary was raised meanwhile (the group is then in
        no summary, and must have a ticket of its own)."""
        now = time.time() if now is None else now
        w = storm_windows
        try:
            with self._write() as conn:
                summary = conn.execute(
                    sa.select(w.c.summary_id).where(w.c.route == route, w.c.window == window)
                ).scalar()
                if summary is not None:
                    return "late"
                conn.execute(
                    storm_groups.insert().values(
                        route=route, window=window, key=key, subject=subject[:255], first_seen=now
                    )
                )
        except IntegrityError:
            return "again"
        return "held"

    def storm_groups(self, route: str, window: int) -> Sequence[tuple[str, str, float]]:
        """Every group ``route`` held back in ``window``: key, subject, first seen."""
        g = storm_groups.c
        with self._read() as conn:
            rows = conn.execute(
                sa.select(g.key, g.subject, g.first_seen)
                .where(g.route == route, g.window == window)
                .order_by(g.first_seen, g.key)
            ).all()
        return [(str(k), str(subj), float(seen)) for k, subj, seen in rows]

    def storm_summary_of(self, route: str, window: int) -> str | None:
        """The submission of the window's summary ticket, once raised."""
        w = storm_windows
        with self._read() as conn:
            found = conn.execute(
                sa.select(w.c.summary_id).where(w.c.route == route, w.c.window == window)
            ).scalar()
        return str(found) if found else None

    def storm_summaries_due(self, route: str, before: int) -> Sequence[int]:
        """Windows of ``route`` that started before ``before``, held groups back, and have
        no summary ticket yet."""
        w = storm_windows
        query = sa.select(w.c.window).where(
            w.c.route == route,
            w.c.window < before,
            w.c.summary_id.is_(None),
            sa.exists().where(storm_groups.c.route == route, storm_groups.c.window == w.c.window),
        )
        with self._read() as conn:
            return [int(v) for v in conn.execute(query).scalars()]

    def storm_summary(
        self,
        route: str,
        window: int,
        *,
        draft: Callable[[Sequence[tuple[str, str]], str], TicketDraft],
        now: float | None = None,
    ) -> str | None:
        """Raise the summary ticket of one window (``draft([(key, subject)…], id)``), once
        whatever the number of processes; its submission id, or ``None``."""
        now = time.time() if now is None else now
        w = storm_windows
        sid = new_submission_id()
        with self._write() as conn:
            won = conn.execute(
                w.update()
                .where(w.c.route == route, w.c.window == window, w.c.summary_id.is_(None))
                .values(summary_id=sid)
            ).rowcount
            if won != 1:
                return None
            groups = conn.execute(
                sa.select(storm_groups.c.key, storm_groups.c.subject)
                .where(storm_groups.c.route == route, storm_groups.c.window == window)
                .order_by(storm_groups.c.first_seen, storm_groups.c.key)
            ).all()
            made = draft([(k, subj) for k, subj in groups], sid)
            self._insert_made(conn, sid, route, made, f"storm:{window}", now)
        return sid

    # --- captured payloads ----------------------------------------------------------------------

    def capture(
        self,
        route: str,
        content_type: str,
        headers: Mapping[str, str],
        body: str,
        *,
        truncated: bool,
        keep: int,
        now: float | None = None,
    ) -> None:
        """Keep one raw payload of ``route`` and drop all but its newest ``keep``, in one
        transaction (so a route's captures never grow past what it asks for)."""
        now = time.time() if now is None else now
        with self._write() as conn:
            conn.execute(
                captures.insert().values(
                    route=route,
                    received_at=now,
                    content_type=content_type[:255],
                    headers=json.dumps(dict(headers)),
                    body=body,
                    truncated=truncated,
                )
            )
            self._trim_captures(conn, route, keep)

    def captured(self, route: str, *, limit: int = 50) -> Sequence[dict[str, Any]]:
        """The route's captured payloads, newest first."""
        query = (
            captures.select()
            .where(captures.c.route == route)
            .order_by(captures.c.id.desc())
            .limit(limit)
        )
        with self._read() as conn:
            rows = conn.execute(query).mappings().all()
        return [{**r, "headers": json.loads(r["headers"])} for r in rows]

    def capture_by_id(self, capture_id: int) -> dict[str, Any] | None:
        with self._read() as conn:
            row = (
                conn.execute(captures.select().where(captures.c.id == capture_id))
                .mappings()
                .first()
            )
        return {**row, "headers": json.loads(row["headers"])} if row is not None else None

    def trim_captures(self, route: str, keep: int) -> int:
        """Keep the newest ``keep`` payloads of ``route``; how many went."""
        with self._write() as conn:
            return self._trim_captures(conn, route, keep)

    @staticmethod
    def _trim_captures(conn: Connection, route: str, keep: int) -> int:
        newest = (
            sa.select(captures.c.id)
            .where(captures.c.route == route)
            .order_by(captures.c.id.desc())
            .limit(keep)
        )
        kept = [r[0] for r in conn.execute(newest)] if keep > 0 else []
        doomed = captures.delete().where(captures.c.route == route)
        if kept:
            doomed = doomed.where(captures.c.id.not_in(kept))
        return int(conn.execute(doomed).rowcount)

    def captured_routes(self) -> dict[str, int]:
        """How many payloads each route has captured."""
        query = sa.select(captures.c.route, sa.func.count()).group_by(captures.c.route)
        with self._read() as conn:
            return {str(route): int(n) for route, n in conn.execute(query)}

    # --- paused routes --------------------------------------------------------------------------

    def pause_route(self, route: str, *, by: str = "", now: float | None = None) -> bool:
        """Stop delivering ``route``'s submissions (intake goes on); ``False`` if it was."""
        now = time.time() if now is None else now
        try:
            with self._write() as conn:
                conn.execute(
                    route_pauses.insert().values(route=route, paused_at=now, paused_by=by[:128])
                )
        except IntegrityError:
            return False
        return True

    def resume_route(self, route: str) -> bool:
        """Deliver ``route``'s submissions again; ``False`` if it was not paused."""
        with self._write() as conn:
            result = conn.execute(route_pauses.delete().where(route_pauses.c.route == route))
        return result.rowcount == 1

    def paused_routes(self) -> dict[str, float]:
        """Paused routes and since when."""
        with self._read() as conn:
            rows = conn.execute(sa.select(route_pauses.c.route, route_pauses.c.paused_at)).all()
        return {route: paused_at for route, paused_at in rows}

    # --- attachments --------------------------------------------------------------------------

    def attachments_for(self, submission_id: str) -> Sequence[Attachment]:
        """A submission's files, in the order they were sent."""
        query = (
            files_table.select()
            .where(files_table.c.submission_id == submission_id)
            .order_by(files_table.c.position)
        )
        with self._read() as conn:
            rows = conn.execute(query).mappings().all()
        return [Attachment.from_row(r) for r in rows]

    def attachment(self, submission_id: str, position: int) -> Attachment | None:
        query = files_table.select().where(
            files_table.c.submission_id == submission_id, files_table.c.position == position
        )
        with self._read() as conn:
            row = conn.execute(query).mappings().first()
        return Attachment.from_row(row) if row is not None else None

    def extend_links(self, submission_id: str, expires_at: float) -> int:
        """Make the links to a submission's files work until ``expires_at``; how many."""
        with self._write() as conn:
            result = conn.execute(
                files_table.update()
                .where(files_table.c.submission_id == submission_id)
                .values(expires_at=expires_at)
            )
        return int(result.rowcount)

    def sweep_files(self, *, now: float | None = None) -> int:
        """Remove kept files no submission refers to (a process that died between keeping
        a submission's files and committing it leaves them); how many."""
        if self.files is None:
            return 0
        now = time.time() if now is None else now
        candidates = self.files.stale(now - WRITE_GRACE)
        return self._forget(candidates, now=now)

    def _forget(self, digests: set[str], *, now: float | None = None, at_once: bool = False) -> int:
        """Delete the files of ``digests`` that no row refers to any more; how many. A file
        written in the last few minutes stays (the same bytes may belong to a submission
        that is committing now) and the sweep takes it later, unless ``at_once`` (an
        erasure: the person's files go now)."""
        if not digests or self.files is None:
            return 0
        now = time.time() if now is None else now
        wanted = sorted(digests)
        referenced: set[str] = set()
        with self._read() as conn:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                referenced |= set(
                    conn.execute(
                        sa.select(files_table.c.digest).where(files_table.c.digest.in_(chunk))
                    ).scalars()
                )
        removed = 0
        for digest in wanted:
            if digest not in referenced:
                try:
                    removed += self.files.delete(
                        digest, written_before=None if at_once else now - WRITE_GRACE
                    )
                except Exception as exc:  # a file store that fails is retried by the sweep
                    log.warning("could not remove a kept file: %s", type(exc).__name__)
        return removed

    # --- alert incidents ----------------------------------------------------------------------

    def incident(self, route: str, key: str) -> Incident | None:
        """The incident of an alert group, with its current submission."""
        with self._read() as conn:
            row = (
                conn.execute(
                    _incident_query().where(incidents.c.route == route, incidents.c.key == key)
                )
                .mappings()
                .first()
            )
        return _incident_from(row) if row is not None else None

    def list_incidents(
        self, *, route: str | None = None, limit: int = 50, offset: int = 0
    ) -> Sequence[Incident]:
        """Alert groups, the most recently active first."""
        query = _incident_query().order_by(incidents.c.updated_at.desc(), incidents.c.key)
        if route:
            query = query.where(incidents.c.route == route)
        with self._read() as conn:
            rows = conn.execute(query.limit(limit).offset(offset)).mappings().all()
        return [_incident_from(r) for r in rows]

    def record_alert(
        self,
        route: str,
        key: str,
        generation: int,
        status: str,
        outcome: str,
        *,
        submission_id: str | None = None,
        labels: Mapping[str, str] | None = None,
        now: float | None = None,
    ) -> None:
        """Note one notification of an alert group (its incident page lists them)."""
        now = time.time() if now is None else now
        with self._write() as conn:
            conn.execute(
                incident_events.insert().values(
                    route=route,
                    key=key,
                    generation=generation,
                    status=status,
                    outcome=outcome,
                    submission_id=submission_id,
                    received_at=now,
                )
            )
            values: dict[str, Any] = {"resolved_at": now if status == "resolved" else None}
            if labels:
                values["labels"] = json.dumps(dict(labels))
            conn.execute(
                incidents.update()
                .where(incidents.c.route == route, incidents.c.key == key)
                .values(**values)
            )

    def incident_events(self, route: str, key: str, *, limit: int = 500) -> Sequence[IncidentEvent]:
        """The group's notifications, oldest first (the last ``limit``), with the tickets
        they became."""
        e = incident_events
        query = (
            sa.select(e, s.c.ticket_id, s.c.state)
            .select_from(e.outerjoin(s, s.c.id == e.c.submission_id))
            .where(e.c.route == route, e.c.key == key)
            .order_by(e.c.received_at.desc(), e.c.id.desc())
            .limit(limit)
        )
        with self._read() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            IncidentEvent(
                generation=r["generation"],
                status=r["status"],
                outcome=r["outcome"],
                submission_id=r["submission_id"],
                received_at=r["received_at"],
                ticket_id=r["ticket_id"],
                state=r["state"],
            )
            for r in reversed(rows)
        ]

    def trim_incident_events(self, *, older_than: float, now: float | None = None) -> int:
        """Forget notifications older than ``older_than`` seconds; how many."""
        cutoff = (time.time() if now is None else now) - older_than
        with self._write() as conn:
            result = conn.execute(
                incident_events.delete().where(incident_events.c.received_at < cutoff)
            )
        return int(result.rowcount)

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
        self,
        route: str,
        key: str,
        generation: int,
        is_open: bool,
        *,
        muted: bool = False,
        snooze: tuple[str, float] | None = None,
        now: float | None = None,
    ) -> None:
        """Cache what the list API said about the incident's ticket: open or not, and what
        staff's labels on it say (``muted``; ``snooze`` as the label and its end). A snooze
        label already seen keeps the end it was given when first seen."""
        now = time.time() if now is None else now
        i = incidents
        values: dict[str, Any] = {
            "ticket_open": is_open,
            "checked_at": now,
            "updated_at": now,
            "muted": muted,
        }
        if snooze is None:
            values.update(snooze_label=None, snoozed_until=None)
        else:
            label, until = snooze
            values["snooze_label"] = label
            values["snoozed_until"] = sa.case(
                (i.c.snooze_label == label, sa.func.coalesce(i.c.snoozed_until, until)),
                else_=until,
            )
        with self._write() as conn:
            conn.execute(
                i.update()
                .where(i.c.route == route, i.c.key == key, i.c.generation == generation)
                .values(**values)
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


def _incident_query() -> sa.Select[Any]:
    i = incidents
    return sa.select(
        i.c.generation,
        i.c.ticket_open,
        i.c.checked_at,
        i.c.muted,
        i.c.snoozed_until,
        i.c.snooze_label,
        i.c.labels,
        i.c.resolved_at,
        i.c.created_at.label("incident_created_at"),
        i.c.route.label("incident_route"),
        i.c.key.label("incident_key"),
        s,
    ).join(s, s.c.id == i.c.submission_id)


def _incident_from(row: Any) -> Incident:
    return Incident(
        row["incident_route"],
        row["incident_key"],
        row["generation"],
        Submission.from_row(row),
        row["ticket_open"],
        row["checked_at"],
        created_at=row["incident_created_at"],
        muted=bool(row["muted"]),
        snoozed_until=row["snoozed_until"],
        snooze_label=row["snooze_label"],
        labels=json.loads(row["labels"]) if row["labels"] else {},
        resolved_at=row["resolved_at"],
    )


def _attachment_row(attachment: Attachment) -> dict[str, Any]:
    return {k: getattr(attachment, k) for k in Attachment.__dataclass_fields__}


def _drop_attachments(conn: Connection, ids: Any) -> set[str]:
    """Delete the attachment rows of the submissions ``ids`` (a list or a subquery); the
    digests they named."""
    where = files_table.c.submission_id.in_(ids)
    digests = set(conn.execute(sa.select(files_table.c.digest).where(where)).scalars())
    if digests:
        conn.execute(files_table.delete().where(where))
    return digests


@dataclass(frozen=True)
class MessageSighting:
    """What :meth:`SubmissionStore.begin_message` found: ``new``, ``in_progress`` or
    ``answered`` (with the answer given then)."""

    state: str
    answer: Mapping[str, Any] | None = None


class _Lost(Exception):
    """Another replica opened this incident generation first."""
