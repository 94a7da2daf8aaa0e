"""The storm guard's windows: new alert groups counted, held back, summed up in one ticket."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ..proprofs.models import TicketDraft
from .records import StoreUnavailable, new_submission_id
from .statements import insert_made
from .tables import storm_groups, storm_windows

if TYPE_CHECKING:
    from .database import Database


class StormStore:
    """Per route and window: how many new groups came, which were held, the summary."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def held(self, route: str, window: int, key: str) -> bool:
        """Whether the group ``key`` was held back in ``window``."""
        with self.db.read() as conn:
            found = conn.execute(
                sa.select(storm_groups.c.key).where(
                    storm_groups.c.route == route,
                    storm_groups.c.window == window,
                    storm_groups.c.key == key,
                )
            ).first()
        return found is not None

    def count(self, route: str, window: int) -> int:
        """Count one more new alert group in ``route``'s ``window``; the count so far
        (shared by every instance through the store)."""
        w = storm_windows
        for _ in range(3):
            try:
                with self.db.write() as conn:
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

    def hold(
        self, route: str, window: int, key: str, subject: str, *, now: float | None = None
    ) -> str:
        """Hold a new group back for the window's summary: ``held``; ``again`` if it already
        was; ``late`` when the window's summary was raised meanwhile (the group is then in
        no summary, and must have a ticket of its own)."""
        now = time.time() if now is None else now
        w = storm_windows
        try:
            with self.db.write() as conn:
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

    def groups(self, route: str, window: int) -> Sequence[tuple[str, str, float]]:
        """Every group ``route`` held back in ``window``: key, subject, first seen."""
        g = storm_groups.c
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(g.key, g.subject, g.first_seen)
                .where(g.route == route, g.window == window)
                .order_by(g.first_seen, g.key)
            ).all()
        return [(str(k), str(subj), float(seen)) for k, subj, seen in rows]

    def summary_of(self, route: str, window: int) -> str | None:
        """The submission of the window's summary ticket, once raised."""
        w = storm_windows
        with self.db.read() as conn:
            found = conn.execute(
                sa.select(w.c.summary_id).where(w.c.route == route, w.c.window == window)
            ).scalar()
        return str(found) if found else None

    def summaries_due(self, route: str, before: int) -> Sequence[int]:
        """Windows of ``route`` that started before ``before``, held groups back, and have
        no summary ticket yet."""
        w = storm_windows
        query = sa.select(w.c.window).where(
            w.c.route == route,
            w.c.window < before,
            w.c.summary_id.is_(None),
            sa.exists().where(storm_groups.c.route == route, storm_groups.c.window == w.c.window),
        )
        with self.db.read() as conn:
            return [int(v) for v in conn.execute(query).scalars()]

    def summary(
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
        with self.db.write() as conn:
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
            insert_made(conn, sid, route, made, f"storm:{window}", now)
        return sid
