"""Raw payloads kept per route for the console's test bench."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .tables import captures

if TYPE_CHECKING:
    from .database import Database


class CaptureStore:
    """The newest payloads of each route that asks for them."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def keep(
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
        with self.db.write() as conn:
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
            self._trim(conn, route, keep)

    def list(self, route: str, *, limit: int = 50) -> Sequence[dict[str, Any]]:
        """The route's captured payloads, newest first."""
        query = (
            captures.select()
            .where(captures.c.route == route)
            .order_by(captures.c.id.desc())
            .limit(limit)
        )
        with self.db.read() as conn:
            rows = conn.execute(query).mappings().all()
        return [{**r, "headers": json.loads(r["headers"])} for r in rows]

    def get(self, capture_id: int) -> dict[str, Any] | None:
        """One captured payload, or ``None``."""
        with self.db.read() as conn:
            row = (
                conn.execute(captures.select().where(captures.c.id == capture_id))
                .mappings()
                .first()
            )
        return {**row, "headers": json.loads(row["headers"])} if row is not None else None

    def trim(self, route: str, keep: int) -> int:
        """Keep the newest ``keep`` payloads of ``route``; how many went."""
        with self.db.write() as conn:
            return self._trim(conn, route, keep)

    @staticmethod
    def _trim(conn: Connection, route: str, keep: int) -> int:
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

    def routes(self) -> dict[str, int]:
        """How many payloads each route has captured."""
        query = sa.select(captures.c.route, sa.func.count()).group_by(captures.c.route)
        with self.db.read() as conn:
            return {str(route): int(n) for route, n in conn.execute(query)}
