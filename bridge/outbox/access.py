"""Who may act: console sessions the server can revoke, and the bridge's own signing key."""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from .tables import console_sessions, keys

if TYPE_CHECKING:
    from .database import Database


class AccessStore:
    """Console sessions and generated keys, kept in the outbox's database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def open_session(self, user: str, *, now: float | None = None) -> str:
        """A new console session for ``user``; its id goes in the signed cookie."""
        now = time.time() if now is None else now
        session_id = secrets.token_urlsafe(32)
        with self.db.write() as conn:
            conn.execute(
                console_sessions.delete().where(console_sessions.c.created_at < now - 86400)
            )
            conn.execute(
                console_sessions.insert().values(id=session_id, user=user[:128], created_at=now)
            )
        return session_id

    def session_user(
        self, session_id: str, max_age: float, *, now: float | None = None
    ) -> str | None:
        """The user of a live session, or ``None`` once it was closed or is older than
        ``max_age`` seconds."""
        now = time.time() if now is None else now
        c = console_sessions.c
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(c.user).where((c.id == session_id) & (c.created_at >= now - max_age))
            ).first()
        return str(row.user) if row else None

    def close_session(self, session_id: str) -> None:
        """End a console session; its cookie stops working."""
        with self.db.write() as conn:
            conn.execute(console_sessions.delete().where(console_sessions.c.id == session_id))

    def key(self, name: str) -> str:
        """The key called ``name``, made at random the first time any process asks."""
        with self.db.read() as conn:
            value = conn.execute(sa.select(keys.c.value).where(keys.c.name == name)).scalar()
        if value is not None:
            return str(value)
        try:
            with self.db.write() as conn:
                made = secrets.token_hex(32)
                conn.execute(keys.insert().values(name=name, value=made, created_at=time.time()))
                return made
        except IntegrityError:  # another process made it first: use theirs
            with self.db.read() as conn:
                return str(
                    conn.execute(sa.select(keys.c.value).where(keys.c.name == name)).scalar()
                )
