"""Heartbeats: when each route last heard its pipeline, and the one ticket a silence raises."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ..proprofs.models import TicketDraft
from .records import new_submission_id
from .statements import insert_made
from .tables import heartbeats

if TYPE_CHECKING:
    from .database import Database


class HeartbeatStore:
    """One row per route that expects a heartbeat."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def seen(self, route: str, *, now: float | None = None) -> float | None:
        """Note a heartbeat; when it ends a silence, when that silence began (told once,
        however many processes hear the heartbeat at the same time)."""
        now = time.time() if now is None else now
        h = heartbeats
        for _ in range(2):
            try:
                with self.db.write() as conn:
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

    def expect(self, route: str, *, now: float | None = None) -> None:
        """Start expecting ``route``'s heartbeat from ``now`` if none was ever heard: a
        pipeline that never sends one is as silent as one that stopped."""
        now = time.time() if now is None else now
        # IntegrityError: another process started expecting it at the same moment.
        with contextlib.suppress(IntegrityError), self.db.write() as conn:
            known = conn.execute(
                sa.select(heartbeats.c.route).where(heartbeats.c.route == route)
            ).first()
            if known is None:
                conn.execute(heartbeats.insert().values(route=route, last_seen=now))

    def silence(
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
        with self.db.write() as conn:
            row = conn.execute(
                h.update()
                .where(h.c.route == route, h.c.silent_since.is_(None), h.c.last_seen < cutoff)
                .values(silent_since=now, silent_submission_id=sid)
                .returning(h.c.last_seen)
            ).first()
            if row is None:
                return None
            last_seen = float(row[0])
            insert_made(conn, sid, route, draft(last_seen, sid), f"heartbeat:{last_seen}", now)
        return sid, last_seen
