"""Updates of alert tickets, through the outbox: coalesced, ordered, after their create.

Each notification of a group whose ticket is open changes the incident's tracked state;
an update (a submission whose ``target`` is the create) carries it to the ticket, and is
stored, retried, dead-lettered, replayed and shown like any other submission.

- **Coalesced.** At most one update per ticket waits; each notification rewrites its
  draft. A new one is made once the last was sent, due ``every`` seconds after it. A
  create never sent takes the notification itself.
- **Ordered.** An update is sent only while no newer update of its ticket exists (the
  older is ``suppressed``: the newer carries all it had) and no older one is in flight
  under a live lease, both checked after the claim; a lease outlives its call, so an
  older state never lands after a newer one.
- **After the create.** An update whose ticket is not made yet waits for it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..proprofs.models import PRIORITIES, TicketDraft, TicketUpdate
from .incidents import record_event
from .records import Submission, Tracked, new_submission_id
from .tables import incidents, submissions

if TYPE_CHECKING:
    from .database import Database

s = submissions
i = incidents

#: From least to most urgent.
URGENCY = tuple(reversed(PRIORITIES))


def higher(current: str | None, new: str | None) -> str | None:
    """The more urgent of two priorities (an unknown one never wins over a known)."""
    if new not in URGENCY:
        return current
    if current not in URGENCY:
        return new
    return new if URGENCY.index(new) > URGENCY.index(current) else current


#: The longest an update waits before looking again at its ticket's create.
WAIT = 30.0


@dataclass(frozen=True)
class Hold:
    """What a claimed update must do instead of going now: die (``dead``: why), give way
    to a newer update (``superseded_by``), or wait ``until`` (``why``); with none of
    those, it goes to ``ticket_id``."""

    dead: str | None = None
    superseded_by: str | None = None
    until: float | None = None
    why: str = ""
    ticket_id: str | None = None


@dataclass(frozen=True)
class Noted:
    """What a notification did to its incident's ticket: ``folded`` into a create not yet
    sent, or the update ``submission_id`` carries it."""

    how: str  # folded | update
    submission_id: str
    tracked: Tracked


class UpdateStore:
    """Each incident's tracked state, and the updates that carry it to its ticket."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def note(
        self,
        route: str,
        key: str,
        generation: int,
        *,
        status: str,
        priority: str | None,
        rule: str,
        every: float,
        build: Callable[[Tracked, Submission], TicketDraft],
        meta: Mapping[str, Any] | None = None,
        history: tuple[str, Mapping[str, str]] | None = None,
        now: float | None = None,
    ) -> Noted | None:
        """Track one notification (``status`` firing or resolved, ``priority`` what its
        severity maps to) of generation ``generation`` and make sure its ticket will say
        so. ``rule``: ``raise`` the ticket's priority, ``follow`` it, or ``keep`` it.
        ``history``: the notification's line on the incident page (its outcome and the
        group's labels), written in the same transaction. ``build`` makes the ticket as
        it must now read from the tracked state and the create. One transaction, which
        holds the incident's row (PostgreSQL: locked; SQLite: the writers' turn), so
        notifications of one group are counted one after another, never lost."""
        now = time.time() if now is None else now
        where = (i.c.route == route, i.c.key == key, i.c.generation == generation)
        with self.db.write() as conn:
            row = conn.execute(i.select().where(*where).with_for_update()).mappings().first()
            if row is None:
                return None  # a new generation began meanwhile: its own ticket says the rest
            if history is not None:
                outcome, labels = history
                record_event(conn, route, key, generation, status, outcome, None, labels, now)
            tracked = _next(Tracked.stored(row), status, priority, rule, now)
            create = Submission.from_row(
                conn.execute(s.select().where(s.c.id == row["submission_id"])).mappings().one()
            )
            draft = json.dumps(build(tracked, create).to_dict())
            noted = self._fold(conn, create, draft, tracked, now) or self._carry(
                conn, route, create, draft, tracked, every, meta, now
            )
            conn.execute(
                i.update()
                .where(*where)
                .values(
                    occurrences=tracked.occurrences,
                    last_seen=tracked.last_seen,
                    first_seen=tracked.first_seen,
                    state=tracked.state,
                    priority=tracked.priority,
                    updated_at=now,
                )
            )
            return noted

    def _fold(
        self, conn: Connection, create: Submission, draft: str, tracked: Tracked, now: float
    ) -> Noted | None:
        """A create never sent takes the new state itself."""
        if create.state != "pending" or create.attempts != 0:
            return None
        folded = conn.execute(
            s.update()
            .where(s.c.id == create.id, s.c.state == "pending", s.c.attempts == 0)
            .values(draft=draft, updated_at=now)
        )
        if folded.rowcount != 1:
            return None
        return Noted("folded", create.id, tracked)

    def _carry(
        self,
        conn: Connection,
        route: str,
        create: Submission,
        draft: str,
        tracked: Tracked,
        every: float,
        meta: Mapping[str, Any] | None,
        now: float,
    ) -> Noted:
        """The waiting update takes the new state; when none waits, a new one, due
        ``every`` seconds after the last was sent. The newest update is the one with the
        largest id (ids are in time order)."""
        last = conn.execute(
            sa.select(s.c.id, s.c.state, s.c.sent_at)
            .where(s.c.target == create.id)
            .order_by(s.c.id.desc())
            .limit(1)
        ).first()
        if last is not None and last.state == "pending":
            rewritten = conn.execute(
                s.update()
                .where(s.c.id == last.id, s.c.state == "pending")
                .values(draft=draft, updated_at=now)
            )
            if rewritten.rowcount == 1:
                return Noted("update", last.id, tracked)
        due = now
        if last is not None and last.sent_at is not None:
            due = max(now, float(last.sent_at) + every)
        sid = new_submission_id(now)
        conn.execute(
            s.insert().values(
                id=sid,
                route=route,
                kind=create.kind,
                draft=draft,
                dedup_key=None,
                state="pending",
                attempts=0,
                next_attempt_at=due,
                lease_token=0,
                meta=json.dumps({**dict(meta or {}), "update_of": create.id, "every": every}),
                created_at=now,
                updated_at=now,
                target=create.id,
            )
        )
        return Noted("update", sid, tracked)

    # --- what the worker asks before sending one ------------------------------------------

    def hold(self, update: Submission, now: float) -> Hold:
        """Whether a claimed update may go now: its ticket's create must have made the
        ticket, no newer update of it may exist, no older one may be in flight, and the
        route's ``every`` must have passed since the last one arrived. One read."""
        with self.db.read() as conn:
            row = conn.execute(s.select().where(s.c.id == update.target)).mappings().first()
            target = Submission.from_row(row) if row else None
            others = _others(conn, update, now)
        if target is None or target.state in ("dead", "suppressed"):
            state = "gone" if target is None else target.state
            return Hold(
                dead=f"the create of its ticket ({update.target}) is {state}; replay that "
                "first, then this update"
            )
        if target.ticket_id is None:
            # Not made yet: look again when the create is next tried.
            at = min(max(target.next_attempt_at, now + 1.0), now + WAIT)
            why = f"waiting for the create of its ticket ({target.id}, {target.state})"
            return Hold(until=at, why=why)
        if others.newer is not None:
            return Hold(superseded_by=others.newer)
        if others.older_lease is not None:
            # Its call takes a second or so; its lease ends much later (a lost worker's).
            at = min(others.older_lease, now + 1.0)
            return Hold(until=at, why="waiting for the update before it")
        every = float(update.meta.get("every") or 0)
        if every > 0 and others.last_arrived is not None and others.last_arrived + every > now:
            return Hold(
                until=others.last_arrived + every, why="waiting out the route's update.every"
            )
        return Hold(ticket_id=target.ticket_id)

    def superseded(self, update: Submission) -> str | None:
        """The id of a newer update of the same ticket, if there is one (it carries all
        this one has)."""
        with self.db.read() as conn:
            return _others(conn, update, time.time()).newer

    def postpone(self, claim: Submission, at: float, why: str, *, now: float | None = None) -> bool:
        """Give a claimed update back unsent, due again at ``at`` (its attempt not
        counted); fenced like an outcome."""
        from .statements import let_go

        now = time.time() if now is None else now
        values: dict[str, Any] = {"state": "pending", "next_attempt_at": at, "last_error": why}
        if claim.claimed_from == "pending":
            values["attempts"] = max(0, claim.attempts - 1)
        with self.db.write() as conn:
            return conn.execute(*let_go(claim, values, now)).rowcount == 1

    def of(self, target: str) -> list[Submission]:
        """The updates of one create's ticket, oldest first."""
        with self.db.read() as conn:
            rows = (
                conn.execute(
                    s.select().where(s.c.target == target).order_by(s.c.created_at, s.c.id)
                )
                .mappings()
                .all()
            )
        return [Submission.from_row(r) for r in rows]


@dataclass(frozen=True)
class _Others:
    newer: str | None  # a newer update that is not suppressed
    older_lease: float | None  # when an older update's live lease ends
    last_arrived: float | None  # when the last delivered update was recorded


def _others(conn: Connection, update: Submission, now: float) -> _Others:
    """What the other updates of the same ticket say about this one, in one query. Ids
    are in time order (records.new_submission_id), and a new update is made only after
    the last was sent, so a larger id is a newer update."""
    row = conn.execute(
        sa.select(
            sa.func.max(sa.case((sa.and_(s.c.id > update.id, s.c.state != "suppressed"), s.c.id))),
            sa.func.max(
                sa.case(
                    (
                        sa.and_(s.c.state == "in_flight", s.c.lease_expires_at > now),
                        s.c.lease_expires_at,
                    )
                )
            ),
            sa.func.max(sa.case((s.c.state == "delivered", s.c.delivered_at))),
        ).where(s.c.target == update.target, s.c.id != update.id)
    ).one()
    newer, lease, arrived = row
    return _Others(
        None if newer is None else str(newer),
        None if lease is None else float(lease),
        None if arrived is None else float(arrived),
    )


def as_update(draft: TicketDraft) -> TicketUpdate:
    """What an update sends: the fields the bridge keeps current (never the requester,
    inbox or staff, which staff may have changed)."""
    return TicketUpdate(
        subject=draft.subject,
        description=draft.description,
        priority=draft.priority,
        custom_fields=dict(draft.custom_fields),
    )


def _next(before: Tracked, status: str, priority: str | None, rule: str, now: float) -> Tracked:
    """The tracked state after one more notification."""
    if status == "resolved":
        state = "resolved"
        occurrences = before.occurrences
    else:
        state = "firing again" if before.state == "resolved" else before.state
        if state not in ("firing", "firing again"):
            state = "firing"
        occurrences = before.occurrences + 1
    if rule == "follow":
        chosen = priority if priority in URGENCY else before.priority
    elif rule == "keep":
        chosen = before.priority
    else:
        chosen = higher(before.priority, priority)
    return Tracked(
        occurrences=occurrences,
        first_seen=before.first_seen,
        last_seen=now,
        state=state,
        priority=chosen,
    )
