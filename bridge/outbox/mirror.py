"""A mirror of the tickets the bridge made, followed through the list API.

One sync loop, in the delivery process (``mirror:`` in the config), keeps a row per
ticket the bridge made: its status, staff, priority, labels, messages, requester and
first public reply, as the list API last showed it. The widget's status view, the alert
routes' "is the ticket still open" and staff's labels, and the incident pages read it
instead of listing each on their own.

- **First sync:** the tickets created since the bridge's oldest submission, in created
  windows of at most three months (L1), page by page (L6), resumed where it stopped.
- **Then:** every ``every`` seconds, the tickets modified since the last poll (a modified
  window from the cursor, with a minute's overlap for clocks and the list's lag) to now;
  when nothing changed, that is one call.
- **Budget:** at most ``max_calls_per_minute`` list calls, whatever it has left to read:
  the rest waits for the next poll. One process syncs at a time (a lease on the sync's
  row), however many delivery processes run.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ..proprofs.client import ProProfsClient
from ..proprofs.errors import ProProfsError
from ..proprofs.models import Ticket, TicketFilters
from ..proprofs.times import split_windows
from .events import Subscriber, changes, enqueue
from .records import StoreUnavailable
from .references import find_references
from .tables import incidents, mirror_sync, mirror_tickets, submissions

if TYPE_CHECKING:
    from .database import Database
    from .store import SubmissionStore

log = logging.getLogger(__name__)
m = mirror_tickets
SYNC = "account"
#: How far back each poll looks before its cursor (clock skew, the list's own lag).
OVERLAP = 60.0
#: How far back the reply-time estimate looks.
REPLY_DAYS = 30
#: A mirror older than this many polls is not trusted (its readers ask ProProfs).
STALE_POLLS = 3


@dataclass(frozen=True)
class Mirrored:
    """A ticket as the mirror holds it."""

    ticket: Ticket
    submission_id: str
    route: str
    first_reply_at: float | None
    synced_at: float


@dataclass(frozen=True)
class SyncState:
    """Where the sync stands."""

    cursor: float | None
    initial_from: float | None
    initial_page: int
    last_poll_at: float | None
    #: Per inbox (``*``: all), [median seconds to the first public reply, replies].
    reply_times: Mapping[str, list[float]] = dataclasses.field(default_factory=dict)


class MirrorStore:
    """The mirror's rows and its sync's state."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, ticket_id: str) -> Mirrored | None:
        """The mirrored ticket ``ticket_id``, or ``None``."""
        with self.db.read() as conn:
            row = conn.execute(m.select().where(m.c.ticket_id == ticket_id)).mappings().first()
        return _mirrored(row) if row else None

    def of_requester(self, email: str, *, limit: int = 50) -> list[Mirrored]:
        """A requester's tickets, newest first."""
        query = (
            m.select()
            .where(m.c.requester == email.strip().lower())
            .order_by(m.c.created_at.desc(), m.c.ticket_id.desc())
            .limit(limit)
        )
        with self.db.read() as conn:
            return [_mirrored(r) for r in conn.execute(query).mappings().all()]

    def reply_times(self, now: float) -> dict[str, list[float]]:
        """Per inbox (and ``*`` for all): the median wait for the first public reply of the
        tickets created in the last ``REPLY_DAYS`` days that have one, and how many have."""
        query = sa.select(m.c.inbox, m.c.first_reply_at - m.c.created_at).where(
            m.c.created_at >= now - REPLY_DAYS * 86400, m.c.first_reply_at.is_not(None)
        )
        waits: dict[str, list[float]] = {"*": []}
        with self.db.read() as conn:
            for inbox, wait in conn.execute(query):
                waits["*"].append(float(wait))
                if inbox:
                    waits.setdefault(inbox, []).append(float(wait))
        return {
            name: [max(0.0, statistics.median(found)), float(len(found))]
            for name, found in waits.items()
            if found
        }

    def count(self) -> int:
        """How many tickets the mirror holds."""
        with self.db.read() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(m)).scalar() or 0)

    def state(self) -> SyncState:
        """Where the sync stands (nothing yet: a first sync to make)."""
        with self.db.read() as conn:
            row = conn.execute(mirror_sync.select().where(mirror_sync.c.name == SYNC)).first()
        if row is None:
            return SyncState(None, None, 1, None)
        times = json.loads(row.reply_times) if row.reply_times else {}
        return SyncState(row.cursor, row.initial_from, row.initial_page, row.last_poll_at, times)

    def take_turn(self, owner: str, now: float, lease: float) -> bool:
        """Hold the sync for ``lease`` seconds, unless another process holds it."""
        s = mirror_sync
        free = sa.or_(
            s.c.owner == owner, s.c.lease_expires_at.is_(None), s.c.lease_expires_at < now
        )
        try:
            with self.db.write() as conn:
                if conn.execute(sa.select(s.c.name).where(s.c.name == SYNC)).first() is None:
                    conn.execute(s.insert().values(name=SYNC, initial_page=1))
                taken = conn.execute(
                    s.update()
                    .where(s.c.name == SYNC, free)
                    .values(owner=owner, lease_expires_at=now + lease)
                )
                return taken.rowcount == 1
        except IntegrityError:  # another process made the row a moment ago
            return False

    def save(
        self,
        found: Iterable[tuple[Ticket, str, str]],
        now: float,
        *,
        subscribers: Sequence[Subscriber] = (),
        **progress: Any,
    ) -> int:
        """Keep each (ticket, its submission, its route), and the sync's ``progress``
        (cursor, initial_from, initial_page, last_poll_at), in one transaction; with
        ``subscribers``, what changed in each ticket is stored as their events in it too."""
        found = list(found)
        rows = [_row(ticket, sid, route, now) for ticket, sid, route in found]
        with self.db.write() as conn:
            if subscribers and found:
                before = self._held(conn, [ticket.ticket_id for ticket, _, _ in found])
                labels = _alert_labels(conn, [sid for _, sid, _ in found])
                happened = [
                    event
                    for ticket, sid, route in found
                    for event in changes(
                        before.get(ticket.ticket_id), ticket, route, sid, labels.get(sid)
                    )
                ]
                enqueue(conn, subscribers, happened, now)
            if rows:
                ids = [r["ticket_id"] for r in rows]
                conn.execute(m.delete().where(m.c.ticket_id.in_(ids)))
                conn.execute(m.insert(), rows)
            if progress:
                conn.execute(
                    mirror_sync.update().where(mirror_sync.c.name == SYNC).values(**progress)
                )
        return len(rows)

    def _held(self, conn: Any, ids: list[str]) -> dict[str, Ticket]:
        rows = conn.execute(sa.select(m.c.ticket_id, m.c.data).where(m.c.ticket_id.in_(ids)))
        return {tid: Ticket.from_dict(json.loads(data)) for tid, data in rows}

    def ours(self, tickets: Sequence[Ticket]) -> list[tuple[Ticket, str, str]]:
        """The tickets the bridge made, each with its submission and route: matched by the
        reference in the ticket, then checked against the ticket id the outbox holds."""
        refs = find_references(tickets)
        if not refs:
            return []
        s = submissions
        with self.db.read() as conn:
            known = conn.execute(
                sa.select(s.c.id, s.c.route, s.c.ticket_id).where(
                    s.c.id.in_(list(refs)), s.c.target.is_(None)
                )
            ).all()
        by_id = {t.ticket_id: t for t in tickets}
        return [
            (by_id[ticket_id], sid, route)
            for sid, route, ticket_id in known
            if ticket_id is not None and refs.get(sid) == ticket_id and ticket_id in by_id
        ]

    def oldest(self) -> float | None:
        """When the bridge's oldest delivered ticket was made (where a first sync starts)."""
        s = submissions
        with self.db.read() as conn:
            found = conn.execute(
                sa.select(sa.func.min(s.c.created_at)).where(
                    s.c.ticket_id.is_not(None), s.c.target.is_(None)
                )
            ).scalar()
        return None if found is None else float(found)


class Mirror:
    """The sync loop: call :meth:`poll` often; it decides when to look and how much."""

    def __init__(
        self,
        store: SubmissionStore,
        client: ProProfsClient,
        *,
        every: float = 30.0,
        max_calls_per_minute: int = 20,
        owner: str = "mirror",
        clock: Callable[[], float] = time.time,
        overlap: float = OVERLAP,
        subscribers: Sequence[Subscriber] = (),
    ) -> None:
        self.store = store
        self.client = client
        self.every = every
        self.budget = max_calls_per_minute
        self.owner = owner
        self.clock = clock
        self.calls: deque[float] = deque()  # this process's list calls in the last minute
        self.next_at = 0.0
        self.total_calls = 0
        self.overlap = overlap  # how far back of its cursor each poll looks
        self.subscribers = tuple(subscribers)  # told of each change the polls see

    def __repr__(self) -> str:
        return f"Mirror(every={self.every}, max_calls_per_minute={self.budget})"

    def poll(self, *, force: bool = False) -> int:
        """One poll when it is due (or ``force``): the list calls it made."""
        now = self.clock()
        if not force and now < self.next_at:
            return 0
        self.next_at = now + self.every
        if not self.store.mirror.take_turn(self.owner, now, lease=max(60.0, 2 * self.every)):
            return 0
        before = self.total_calls
        try:
            state = self.store.mirror.state()
            if state.cursor is None or state.initial_from is not None:
                self._first_sync(state, now)
            else:
                self._follow(state, now)
        except ProProfsError as exc:
            log.warning("the mirror cannot list tickets now: %s", exc)
        return self.total_calls - before

    def _may_call(self) -> bool:
        now = time.monotonic()
        while self.calls and now - self.calls[0] >= 60.0:
            self.calls.popleft()
        return len(self.calls) < self.budget

    def _list(self, filters: TicketFilters, page: int) -> tuple[list[Ticket], bool]:
        self.calls.append(time.monotonic())
        self.total_calls += 1
        result = self.client.list_tickets(filters, page=page)
        return list(result.tickets), result.has_next and bool(result.tickets)

    def _first_sync(self, state: SyncState, now: float) -> None:
        """The tickets created since the bridge's first, window by window, page by page,
        as far as the budget goes; the cursor is where the first sync began."""
        start = state.initial_from
        if start is None:
            oldest = self.store.mirror.oldest()
            start = (oldest if oldest is not None else now) - self.overlap
            self.store.mirror.save([], now, initial_from=start, initial_page=1, cursor=now)
        page = state.initial_page if state.initial_from is not None else 1
        while start < now - 1 and self._may_call():
            window = split_windows(_at(start), _at(now), self.client.tz)[0]
            tickets, more = self._list(
                TicketFilters(created_from=window[0], created_to=window[1]), page
            )
            found = self.store.mirror.ours(tickets)
            if more:
                page += 1
            else:
                start, page = window[1].timestamp() + 1, 1
            self.store.mirror.save(found, now, initial_from=start, initial_page=page)
        if start >= now - 1:
            self.store.mirror.save(
                [],
                now,
                initial_from=None,
                initial_page=1,
                last_poll_at=now,
                reply_times=json.dumps(self.store.mirror.reply_times(now)),
            )
            log.info("the mirror's first sync is done: %d ticket(s)", self.store.mirror.count())

    def _follow(self, state: SyncState, now: float) -> None:
        """The tickets modified since the cursor; the cursor moves once all are read."""
        assert state.cursor is not None
        # At least two seconds: the API compares whole seconds, and a start must be
        # earlier than its end (L5).
        start = min(state.cursor - self.overlap, now - max(self.overlap, 2.0))
        window = split_windows(_at(start), _at(now), self.client.tz)[0]
        filters = TicketFilters(modified_from=window[0], modified_to=window[1])
        page = 1
        while self._may_call():
            tickets, more = self._list(filters, page)
            found = self.store.mirror.ours(tickets)
            self.store.mirror.save(found, now, subscribers=self.subscribers)
            if not more:
                cursor = window[1].timestamp()
                # What the widgets say of reply times, worked out here, once a poll.
                times = json.dumps(self.store.mirror.reply_times(now))
                self.store.mirror.save([], now, cursor=cursor, last_poll_at=now, reply_times=times)
                return
            page += 1

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set (the delivery process's own thread)."""
        while not stop.is_set():
            try:
                self.poll()
            except StoreUnavailable as exc:
                log.warning("the mirror cannot write now: %s", exc)
            except Exception:  # a bug must not end the loop
                log.exception("the mirror's poll failed")
            stop.wait(min(1.0, self.every))

    def fresh(self, now: float | None = None) -> bool:
        """Whether the mirror has polled lately enough to be read instead of ProProfs."""
        return is_fresh(self.store.mirror.state(), self.every, now)


def is_fresh(state: SyncState, every: float, now: float | None = None) -> bool:
    """A mirror whose first sync is done and whose last poll is recent."""
    now = time.time() if now is None else now
    if state.initial_from is not None or state.last_poll_at is None:
        return False
    return now - state.last_poll_at <= STALE_POLLS * every + OVERLAP


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _alert_labels(conn: Any, sids: list[str]) -> dict[str, dict[str, str]]:
    """The alert group labels of the incidents whose current ticket these submissions made."""
    rows = conn.execute(
        sa.select(incidents.c.submission_id, incidents.c.labels).where(
            incidents.c.submission_id.in_(sids)
        )
    )
    return {sid: json.loads(labels) for sid, labels in rows if labels}


def _row(ticket: Ticket, sid: str, route: str, now: float) -> dict[str, Any]:
    replies = ticket.public_replies()
    return {
        "ticket_id": ticket.ticket_id,
        "submission_id": sid,
        "route": route,
        "status": ticket.status.lower()[:16],
        "requester": ticket.customer_email.strip().lower()[:255],
        "inbox": ticket.inbox.id if ticket.inbox else None,
        "created_at": ticket.created.timestamp(),
        "modified_at": ticket.modified.timestamp(),
        "first_reply_at": replies[0].created.timestamp() if replies else None,
        "data": json.dumps(ticket.to_dict()),
        "synced_at": now,
    }


def _mirrored(row: Any) -> Mirrored:
    return Mirrored(
        Ticket.from_dict(json.loads(row["data"])),
        row["submission_id"],
        row["route"],
        row["first_reply_at"],
        row["synced_at"],
    )
