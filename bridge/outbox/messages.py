"""The replay guard: a sender's message id is answered once, and a repeat gets that answer."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from .records import MessageSighting
from .tables import seen_messages

if TYPE_CHECKING:
    from .database import Database


class MessageStore:
    """Message ids seen per route, with the answer each was given."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def begin(
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
            with self.db.write() as conn:
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

    def finish(self, route: str, message_id: str, answer: Mapping[str, Any] | None) -> None:
        """Record the 2xx a message was given, or (``None``) forget it so a retry is processed."""
        m = seen_messages
        key = (m.c.route == route) & (m.c.message_id == message_id)
        with self.db.write() as conn:
            if answer is None:
                conn.execute(m.delete().where(key & m.c.answer.is_(None)))
            else:
                conn.execute(m.update().where(key).values(answer=json.dumps(dict(answer))))
