"""Submissions held back as likely spam: kept a while, then released or dropped."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..attachments import Attachment
from ..proprofs.models import TicketDraft
from .records import EnqueueResult, Quarantined, new_submission_id
from .statements import attachment_row, drop_attachments, enqueue_rows_sql
from .tables import attachments as files_table
from .tables import quarantine, submissions

if TYPE_CHECKING:
    from .database import Database
    from .files import FileRows

s = submissions


class QuarantineStore:
    """The quarantine: one row per held submission, with its attachments' rows."""

    def __init__(self, db: Database, files: FileRows) -> None:
        self.db = db
        self.files = files

    def hold(
        self,
        route: str,
        kind: str,
        draft: TicketDraft,
        *,
        score: float,
        reasons: Sequence[str],
        expires_at: float,
        dedup_key: str | None = None,
        meta: Mapping[str, Any] | None = None,
        submission_id: str | None = None,
        now: float | None = None,
        attachments: Sequence[Attachment] = (),
    ) -> str:
        """Hold one submission back as likely spam (no ticket), with its attachments' rows;
        its id."""
        now = time.time() if now is None else now
        sid = submission_id or new_submission_id()
        with self.db.write() as conn:
            conn.execute(
                quarantine.insert().values(
                    id=sid,
                    route=route,
                    kind=kind,
                    draft=json.dumps(draft.to_dict()),
                    dedup_key=dedup_key,
                    meta=json.dumps(dict(meta or {})),
                    score=score,
                    reasons=json.dumps(list(reasons)),
                    created_at=now,
                    expires_at=expires_at,
                )
            )
            if attachments:
                conn.execute(files_table.insert(), [attachment_row(a) for a in attachments])
        return sid

    def get(self, submission_id: str) -> Quarantined | None:
        """One quarantined submission, or ``None``."""
        with self.db.read() as conn:
            row = (
                conn.execute(quarantine.select().where(quarantine.c.id == submission_id))
                .mappings()
                .first()
            )
        return Quarantined.from_row(row) if row is not None else None

    def list(
        self, *, route: str | None = None, limit: int = 50, offset: int = 0
    ) -> Sequence[Quarantined]:
        """Newest first."""
        query = quarantine.select().order_by(quarantine.c.created_at.desc(), quarantine.c.id)
        if route:
            query = query.where(quarantine.c.route == route)
        with self.db.read() as conn:
            rows = conn.execute(query.limit(limit).offset(offset)).mappings().all()
        return [Quarantined.from_row(r) for r in rows]

    def count(self) -> int:
        """How many are held."""
        with self.db.read() as conn:
            count = conn.execute(sa.select(sa.func.count()).select_from(quarantine)).scalar()
        return int(count or 0)

    def release(self, submission_id: str, *, now: float | None = None) -> EnqueueResult | None:
        """Deliver a quarantined submission like any other, under the same id, once: it
        moves into the outbox as pending in the same transaction that removes it here. A
        release of one already released (or discarded) is ``None``; one whose dedup key a
        later submission already holds becomes that submission (a duplicate)."""
        now = time.time() if now is None else now
        with self.db.write() as conn:
            row = (
                conn.execute(quarantine.select().where(quarantine.c.id == submission_id))
                .mappings()
                .first()
            )
            if row is None:
                return None
            # Not _insert: this id is not new (it was the quarantined one), so a conflict on
            # it must not be taken for an inserted row.
            inserted = conn.exec_driver_sql(
                enqueue_rows_sql(self.db.mark, 1),
                (
                    row["id"],
                    row["route"],
                    row["kind"],
                    row["draft"],
                    row["dedup_key"],
                    "pending",
                    0,
                    now,
                    0,
                    row["meta"] or "{}",
                    row["created_at"],
                    now,
                ),
            ).rowcount
            conn.execute(quarantine.delete().where(quarantine.c.id == submission_id))
            if inserted == 1:
                return EnqueueResult(submission_id, False, "pending")
            existing = (
                conn.execute(
                    s.select().where(
                        sa.or_(
                            s.c.id == submission_id,
                            sa.and_(s.c.route == row["route"], s.c.dedup_key == row["dedup_key"]),
                        )
                    )
                )
                .mappings()
                .first()
            )
        if existing is None:
            return None
        return EnqueueResult(existing["id"], True, existing["state"], existing["ticket_id"])

    def discard(self, submission_id: str) -> bool:
        """Delete a quarantined submission; ``False`` if it was not there (any more)."""
        with self.db.write() as conn:
            result = conn.execute(quarantine.delete().where(quarantine.c.id == submission_id))
            digests = drop_attachments(conn, [submission_id]) if result.rowcount else set()
        self.files.forget(digests)
        return result.rowcount == 1

    def expire(self, *, now: float | None = None, limit: int = 500) -> dict[str, int]:
        """Delete quarantined submissions past their time, a batch at a time; how many per
        route."""
        now = time.time() if now is None else now
        with self.db.write() as conn:
            rows = conn.execute(
                sa.select(quarantine.c.id, quarantine.c.route)
                .where(quarantine.c.expires_at <= now)
                .limit(limit)
            ).all()
            digests: set[str] = set()
            if rows:
                ids = [r[0] for r in rows]
                conn.execute(quarantine.delete().where(quarantine.c.id.in_(ids)))
                digests = drop_attachments(conn, ids)
        self.files.forget(digests)
        expired: dict[str, int] = {}
        for _, route in rows:
            expired[route] = expired.get(route, 0) + 1
        return expired
