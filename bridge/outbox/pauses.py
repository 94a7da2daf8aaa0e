"""Paused routes: their submissions wait in the outbox until resumed."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from .tables import route_pauses

if TYPE_CHECKING:
    from .database import Database


class PauseStore:
    """One row per paused route."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def pause(self, route: str, *, by: str = "", now: float | None = None) -> bool:
        """Stop delivering ``route``'s submissions (intake goes on); ``False`` if it was."""
        now = time.time() if now is None else now
        try:
            with self.db.write() as conn:
                conn.execute(
                    route_pauses.insert().values(route=route, paused_at=now, paused_by=by[:128])
                )
        except IntegrityError:
            return False
        return True

    def resume(self, route: str) -> bool:
        """Deliver ``route``'s submissions again; ``False`` if it was not paused."""
        with self.db.write() as conn:
            result = conn.execute(route_pauses.delete().where(route_pauses.c.route == route))
        return result.rowcount == 1

    def paused(self) -> dict[str, float]:
        """Paused routes and since when."""
        with self.db.read() as conn:
            rows = conn.execute(sa.select(route_pauses.c.route, route_pauses.c.paused_at)).all()
        return {route: paused_at for route, paused_at in rows}
