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

import dataclasses
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
    sent, or the update ``update_id`` carries it; ``None`` when the incident has moved on."""

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
        with self.db.write() as conn:
            row = (
                conn.execute(
                    sa.select(i, s.c.id.label("create_id"))
                    .join(s, s.c.id == i.c.submission_id)
                    .where(i.c.route == route, i.c.key == key, i.c.generation == generation)
                    .with_for_update(of=i)
                )
                .mappings()
                .first()
            )
            if row is None:
                return None  # a new generation began meanwhile: its own ticket says the rest
            if history is not None:
                outcome, labels = history
                record_event(conn, route, key, generation, status, outcome, None, labels, now)
            names = ("occurrences", "first_seen", "last_seen", "state", "priority", "update_id")
            before = Tracked.stored(row["created_at"], *[row[name] for name in names])
            tracked = _next(before, status, priority, rule, now)
            create = Submission.from_row(
                conn.execute(s.select().where(s.c.id == row["create_id"])).mappings().one()
            )
            draft = json.dumps(build(tracked, create).to_dict())
            noted = self._fold(conn, create, draft, tracked, now)
            if noted is None:
                noted = self._carry(conn, route, create, before, draft, tracked, every, meta, now)
            conn.execute(
                i.update()
                .where(i.c.route == route, i.c.key == key, i.c.generation == generation)
                .values(
                    occurrences=tracked.occurrences,
                    last_seen=tracked.last_seen,
                    first_seen=tracked.first_seen,
                    state=tracked.state,
                    priority=tracked.priority,
                    update_id=noted.tracked.update_id,
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
        before: Tracked,
        draft: str,
        tracked: Tracked,
        every: float,
        meta: Mapping[str, Any] | None,
        now: float,
    ) -> Noted:
        """The waiting update takes the new state; when none waits, a new one, due
        ``every`` seconds after the last was sent."""
        last = None
        if before.update_id is not None:
            last = conn.execute(
                sa.select(s.c.state, s.c.sent_at).where(s.c.id == before.update_id)
            ).first()
            if last is not None and last.state == "pending":
                rewritten = conn.execute(
                    s.update()
                    .where(s.c.id == before.update_id, s.c.state == "pending")
                    .values(draft=draft, updated_at=now)
                )
                if rewritten.rowcount == 1:
                    return Noted("update", before.update_id, _with(tracked, before.update_id))
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
        return Noted("update", sid, _with(tracked, sid))

    # --- what the worker asks before sending one ------------------------------------------

    def hold(self, update: Submission, now: float) -> Hold:
        """Whether a claimed update may go now: its ticket's create must have made the
        ticket, no newer update of it may exist, no older one may be in flight, and the
        route's ``every`` must have passed since the last one arrived."""
        target = self.get(update.target or "")
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
        newer = self.superseded(update)
        if newer is not None:
            return Hold(superseded_by=newer)
        ends = self.older_in_flight(update, now)
        if ends is not None:
            # Its call takes a second or so; its lease ends much later (a lost worker's).
            return Hold(until=min(ends, now + 1.0), why="waiting for the update before it")
        spaced = self.spaced_until(update)
        if spaced is not None and spaced > now:
            return Hold(until=spaced, why="waiting out the route's update.every")
        return Hold(ticket_id=target.ticket_id)

    def get(self, sid: str) -> Submission | None:
        """One submission (an update's create)."""
        with self.db.read() as conn:
            row = conn.execute(s.select().where(s.c.id == sid)).mappings().first()
        return Submission.from_row(row) if row else None

    def superseded(self, update: Submission) -> str | None:
        """The id of a newer update of the same ticket, if there is one (it carries all
        this one has)."""
        # Ids are in time order (records.new_submission_id), and a new update is made only
        # after the last was sent, so a larger id is a newer update.
        with self.db.read() as conn:
            newer = conn.execute(
                sa.select(sa.func.max(s.c.id)).where(
                    s.c.target == update.target,
                    s.c.id > update.id,
                    s.c.state != "suppressed",
                )
            ).scalar()
        return None if newer is None else str(newer)

    def older_in_flight(self, update: Submission, now: float) -> float | None:
        """When the lease of an older update of the same ticket, still in flight, ends."""
        with self.db.read() as conn:
            ends = conn.execute(
                sa.select(sa.func.max(s.c.lease_expires_at)).where(
                    s.c.target == update.target,
                    s.c.id != update.id,
                    s.c.state == "in_flight",
                    s.c.lease_expires_at > now,
                )
            ).scalar()
        return None if ends is None else float(ends)

    def spaced_until(self, update: Submission) -> float | None:
        """When the interval since the last update of the same ticket that arrived ends
        (its answer was in when it was recorded, so the next arrives at least ``every``
        after it), or ``None`` when there is nothing to wait for."""
        every = float(update.meta.get("every") or 0)
        if every <= 0:
            return None
        with self.db.read() as conn:
            last = conn.execute(
                sa.select(sa.func.max(s.c.delivered_at)).where(
                    s.c.target == update.target, s.c.id != update.id, s.c.state == "delivered"
                )
            ).scalar()
        return None if last is None else float(last) + every

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
        update_id=before.update_id,
    )


def _with(tracked: Tracked, update_id: str) -> Tracked:
    return dataclasses.replace(tracked, update_id=update_id)
