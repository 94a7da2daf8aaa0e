"""The outbox: enqueue, claim under a fenced lease, record outcomes, operate.

Writes that arrive together share a commit (:class:`~.group.GroupCommit`): the hot
writes — enqueue, claim and recording an outcome — share one transaction, so one commit
(one fsync) serves a burst; a write's failure stays its own, and each caller returns only
after the commit that holds its write. The other kinds of state kept beside the outbox
each have a small store of their own, reached from this one (``store.incidents``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..attachments import Attachment, FileStore
from ..proprofs.models import TicketDraft
from .access import AccessStore
from .captures import CaptureStore
from .database import Database
from .files import FileRows
from .group import GroupCommit
from .heartbeats import HeartbeatStore
from .incidents import IncidentStore
from .messages import MessageStore
from .mirror import MirrorStore
from .pauses import PauseStore
from .privacy import PrivacyStore
from .quarantine import QuarantineStore
from .records import (
    STATES,
    Attempt,
    DeadFilter,
    EnqueueResult,
    Outcome,
    StoreUnavailable,
    Submission,
    new_submission_id,
)
from .statements import (
    RECORD_ATTEMPT,
    attachment_row,
    claim_statement,
    enqueue_rows_sql,
    let_go,
)
from .storms import StormStore
from .tables import attachments as files_table
from .tables import attempts, route_pauses, submissions
from .updates import UpdateStore

s = submissions


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
        commit waits for more writes to share it (the delivery worker's store waits, see
        docs/benchmarks.md; intake's writes never do)."""
        self.db = Database(url, pool_size=pool_size, auto_upgrade=auto_upgrade)
        self.lease_seconds = lease_seconds
        # The stores beside the outbox, on the same database.
        self.attachments = FileRows(self.db, files)  # file rows; the bytes are in .files
        self.access = AccessStore(self.db)  # console sessions, generated keys
        self.quarantine = QuarantineStore(self.db, self.attachments)  # likely spam, held
        self.incidents = IncidentStore(self.db)  # alert groups, their notifications
        self.updates = UpdateStore(self.db)  # what alert tickets say, and their updates
        self.mirror = MirrorStore(self.db)  # the bridge's tickets as ProProfs shows them
        self.heartbeats = HeartbeatStore(self.db)  # when each route last heard one
        self.storms = StormStore(self.db)  # the storm guard's windows
        self.messages = MessageStore(self.db)  # webhook ids and the answers given
        self.captures = CaptureStore(self.db)  # raw payloads for the console's test bench
        self.pauses = PauseStore(self.db)  # paused routes
        self.privacy = PrivacyStore(self.db, self.attachments)  # purge, scrubbing, erasure
        turns = self.db.turns
        self._gather = gather if turns is not None else 0.0
        self._group = GroupCommit(
            self.db.shared_write,
            self._insert_rows,
            gather=self._wait if self._gather else None,
            turn=self.db.turn if turns is not None else None,
        )

    @property
    def url(self) -> str:
        return self.db.url

    @property
    def is_sqlite(self) -> bool:
        return self.db.is_sqlite

    @property
    def files(self) -> FileStore | None:
        """Where attachments are kept; their rows are here."""
        return self.attachments.kept

    @files.setter
    def files(self, kept: FileStore | None) -> None:
        self.attachments.kept = kept

    def _wait(self) -> float:
        """How long the next commit waits for more writes: ``gather`` while another
        process is writing too, else nothing."""
        crowded = self.db.turns is not None and self.db.turns.crowded()
        return self._gather if crowded else 0.0

    # --- the database ---------------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"SubmissionStore({sa.make_url(self.url).render_as_string(hide_password=True)!r})"

    @property
    def engine(self) -> Engine:
        return self.db.engine

    def upgrade(self) -> None:
        """Bring the schema to the newest migration (``bridge db upgrade``)."""
        self.db.upgrade()

    def ping(self) -> bool:
        return self.db.ping()

    def dispose(self) -> None:
        self.db.dispose()

    def __enter__(self) -> SubmissionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.dispose()

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
        sid = submission_id or new_submission_id(now)
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
        with self.db.shared_write(begin=False) as conn:
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
            sql = enqueue_rows_sql(self.db.mark, len(rows))
            cursor.execute(sql, [value for row in rows for value in row])
            if cursor.rowcount == len(rows):
                return [1] * len(rows)
            # Some repeated a dedup key: the inserted ones are those whose id is there now
            # (each id is new: drawn at random, 80 bits, for this row).
            ids = [row[0] for row in rows]
            marks = ", ".join([self.db.mark] * len(ids))
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
            conn.execute(files_table.insert(), [attachment_row(a) for a in attachments])
        return inserted

    def find_by_dedup(self, route: str, dedup_key: str) -> Submission | None:
        """The submission holding ``dedup_key`` on ``route``, or ``None``."""
        with self.db.read() as conn:
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
        stmt = claim_statement(self.is_sqlite, limit)
        params = {"now": now, "owner": owner, "expires": now + self.lease_seconds}
        rows = self._group.run(lambda conn: conn.execute(stmt, params).mappings().all())
        return [Submission.from_row(r) for r in rows]

    def finish(
        self,
        claim: Submission,
        outcome: Outcome,
        *,
        kind: str,
        started_at: float,
        now: float | None = None,
    ) -> bool:
        """Record one attempt's outcome, only if this claim still holds the lease (fencing);
        ``kind`` is what the attempt was: ``create`` or ``reconcile``."""
        now = time.time() if now is None else now
        values: dict[str, Any] = {"state": outcome.state, "last_error": outcome.error}
        if outcome.state == "delivered":
            values.update(ticket_id=outcome.ticket_id, delivered_at=now)
        elif outcome.next_at is not None:
            values["next_attempt_at"] = outcome.next_at
        update, changes = let_go(claim, values, now)
        row = {
            "submission_id": claim.id,
            "number": claim.attempts,
            "worker": claim.lease_owner,
            "finished_at": now,
            "kind": kind,
            "outcome": outcome.name,
            "started_at": started_at,
            "http_status": outcome.http_status,
            "ticket_id": outcome.ticket_id,
            "error": outcome.error,
        }

        def finish(conn: Connection) -> bool:
            if conn.execute(update, changes).rowcount != 1:
                return False  # our lease was taken over: the new holder decides
            conn.execute(RECORD_ATTEMPT, row)
            return True

        return self._group.run(finish)

    def release(self, claim: Submission, *, now: float | None = None) -> bool:
        """Give a claim back untouched (graceful stop before sending)."""
        now = time.time() if now is None else now
        back = claim.claimed_from if claim.claimed_from in ("pending", "unknown") else "unknown"
        values: dict[str, Any] = {"state": back}
        if back == "pending" and claim.claimed_from == "pending":
            values["attempts"] = max(0, claim.attempts - 1)  # it was never sent
        with self.db.write() as conn:
            result = conn.execute(*let_go(claim, values, now))
        return result.rowcount == 1

    # --- operators ---------------------------------------------------------------------------

    def get(self, submission_id: str) -> Submission | None:
        """One submission, or ``None``."""
        with self.db.read() as conn:
            row = conn.execute(s.select().where(s.c.id == submission_id)).mappings().first()
        return Submission.from_row(row) if row else None

    def attempts_for(self, submission_id: str) -> list[Attempt]:
        """A submission's attempts, in order."""
        with self.db.read() as conn:
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
            query = query.where(
                sa.or_(s.c.id == search, s.c.ticket_id == search, _contains(s.c.draft, search))
            )
        with self.db.read() as conn:
            rows = conn.execute(query).mappings().all()
        return [Submission.from_row(r) for r in rows]

    def counts(self, *, deliverable: bool = False) -> dict[str, int]:
        """Submissions per state; with ``deliverable``, those of paused routes left out."""
        query = sa.select(s.c.state, sa.func.count()).group_by(s.c.state)
        if deliverable:
            query = query.where(s.c.route.not_in(sa.select(route_pauses.c.route)))
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        found = {state: int(n) for state, n in rows}
        return {state: found.get(state, 0) for state in STATES}

    def oldest_waiting_age(self, *, now: float | None = None) -> float:
        """Seconds since the oldest submission not yet delivered (or dead) was accepted."""
        now = time.time() if now is None else now
        with self.db.read() as conn:
            oldest = conn.execute(
                sa.select(sa.func.min(s.c.created_at)).where(
                    s.c.state.in_(("pending", "in_flight", "unknown"))
                )
            ).scalar()
        return 0.0 if oldest is None else max(0.0, now - float(oldest))

    def replay(self, submission_id: str, *, now: float | None = None) -> bool:
        """Send a dead submission again from a fresh schedule."""
        now = time.time() if now is None else now
        with self.db.write() as conn:
            result = conn.execute(
                s.update()
                # A scrubbed one has nothing left to send.
                .where(s.c.id == submission_id, s.c.state == "dead", s.c.scrubbed_at.is_(None))
                .values(state="pending", attempts=0, next_attempt_at=now, updated_at=now)
            )
        return result.rowcount == 1

    def replay_all_dead(self, *, route: str | None = None, now: float | None = None) -> int:
        """Send every dead submission (of ``route``) again; how many."""
        return self.replay_dead(DeadFilter(route=route), now=now)

    def count_dead(self, which: DeadFilter) -> int:
        """How many dead submissions ``which`` takes (those a replay would send)."""
        with self.db.read() as conn:
            return int(conn.execute(sa.select(sa.func.count()).where(*_dead(which))).scalar() or 0)

    def list_dead(self, which: DeadFilter, *, limit: int = 50) -> Sequence[Submission]:
        """The dead submissions ``which`` takes, the latest to die first."""
        query = s.select().where(*_dead(which)).order_by(s.c.updated_at.desc()).limit(limit)
        with self.db.read() as conn:
            rows = conn.execute(query).mappings().all()
        return [Submission.from_row(r) for r in rows]

    def replay_dead(self, which: DeadFilter, *, now: float | None = None) -> int:
        """Send the dead submissions ``which`` takes again, from a fresh schedule; how many."""
        now = time.time() if now is None else now
        with self.db.write() as conn:
            result = conn.execute(
                s.update()
                .where(*_dead(which))
                .values(state="pending", attempts=0, next_attempt_at=now, updated_at=now)
            )
        return int(result.rowcount)


def _contains(column: sa.ColumnElement[Any], text: str) -> sa.ColumnElement[bool]:
    """``column`` holds ``text`` (LIKE, its wildcards escaped)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(f"%{escaped}%", escape="\\")


def _dead(which: DeadFilter) -> list[sa.ColumnElement[bool]]:
    """The conditions of a bulk replay: dead, not scrubbed (nothing left to send), and the
    filter's. A dead submission's ``updated_at`` is when it died."""
    where = [s.c.state == "dead", s.c.scrubbed_at.is_(None)]
    if which.route:
        where.append(s.c.route == which.route)
    if which.error:
        where.append(_contains(sa.func.lower(s.c.last_error), which.error.lower()))
    if which.since is not None:
        where.append(s.c.updated_at >= which.since)
    if which.until is not None:
        where.append(s.c.updated_at < which.until)
    return where
