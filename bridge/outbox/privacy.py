"""Retention and erasure: purge old submissions, scrub what they say about a person."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..proprofs.models import TicketDraft
from .records import SCRUBBED_EMAIL, footer_of
from .statements import drop_attachments
from .tables import attempts, captures, quarantine, submissions

if TYPE_CHECKING:
    from .database import Database
    from .files import FileRows

s = submissions


class PrivacyStore:
    """What the outbox keeps about people, and for how long."""

    def __init__(self, db: Database, files: FileRows) -> None:
        self.db = db
        self.files = files

    def purge(self, *, older_than: float, state: str, now: float | None = None) -> int:
        """Delete submissions in ``state`` last changed more than ``older_than`` seconds ago."""
        if state not in ("delivered", "dead", "suppressed"):
            raise ValueError("only delivered, dead or suppressed submissions can be purged")
        cutoff = (time.time() if now is None else now) - older_than
        with self.db.write() as conn:
            doomed = sa.select(s.c.id).where(s.c.state == state, s.c.updated_at < cutoff)
            conn.execute(attempts.delete().where(attempts.c.submission_id.in_(doomed)))
            digests = drop_attachments(conn, doomed)
            result = conn.execute(s.delete().where(s.c.state == state, s.c.updated_at < cutoff))
        self.files.forget(digests)
        return int(result.rowcount)

    def scrub_due(
        self,
        route: str,
        state: str,
        older_than: float,
        *,
        now: float | None = None,
        limit: int = 200,
    ) -> int:
        """Scrub up to ``limit`` of ``route``'s submissions in ``state`` (delivered or dead)
        last changed more than ``older_than`` seconds ago; how many."""
        now = time.time() if now is None else now
        stamp = s.c.delivered_at if state == "delivered" else s.c.updated_at
        with self.db.write() as conn:
            rows = conn.execute(
                sa.select(s.c.id, s.c.draft)
                .where(
                    s.c.route == route,
                    s.c.state == state,
                    s.c.scrubbed_at.is_(None),
                    stamp < now - older_than,
                )
                .limit(limit)
            ).all()
            digests: set[str] = set()
            for sid, draft in rows:
                digests |= self._scrub(conn, sid, draft, now)
        self.files.forget(digests)
        return len(rows)

    def _scrub(self, conn: Connection, sid: str, draft_json: str, now: float) -> set[str]:
        """Replace a submission's draft with one that holds nothing about the person: only
        the reference footer (the reference is its id) and where it went (inbox, priority),
        which reconcile still uses; and its meta with the request id alone. Its files go
        too: the digests whose rows were removed."""
        old = json.loads(draft_json)
        scrubbed = TicketDraft(
            email=SCRUBBED_EMAIL,
            subject="(removed)",
            description=footer_of(sid),
            inbox=old.get("inbox"),
            priority=old.get("priority"),
        )
        meta = json.loads(conn.execute(sa.select(s.c.meta).where(s.c.id == sid)).scalar() or "{}")
        conn.execute(
            s.update()
            .where(s.c.id == sid)
            .values(
                draft=json.dumps(scrubbed.to_dict()),
                meta=json.dumps({"request_id": meta.get("request_id", ""), "scrubbed": True}),
                last_error=None,
                scrubbed_at=now,
            )
        )
        conn.execute(attempts.update().where(attempts.c.submission_id == sid).values(error=None))
        return drop_attachments(conn, [sid])

    def erase(self, email: str, *, now: float | None = None) -> dict[str, int]:
        """Remove what the outbox holds about the person with ``email`` (any case): every
        submission of theirs is scrubbed, one not yet delivered is cancelled first (it
        becomes dead: there is nothing left to send), and quarantined ones are deleted.
        Tickets already in ProProfs are not touched. How many of each."""
        now = time.time() if now is None else now
        wanted = email.strip().lower()
        literal = json.dumps(wanted).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        needle = f'%"email": {literal}%'
        report = {
            "scrubbed": 0,
            "cancelled": 0,
            "quarantine_deleted": 0,
            "captures_deleted": 0,
            "files": 0,
        }
        digests: set[str] = set()
        with self.db.write() as conn:
            rows = conn.execute(
                sa.select(s.c.id, s.c.draft, s.c.state).where(
                    sa.func.lower(s.c.draft).like(needle, escape="\\"),
                    s.c.scrubbed_at.is_(None),
                )
            ).all()
            for sid, draft, state in rows:
                if str(json.loads(draft).get("email", "")).strip().lower() != wanted:
                    continue  # the text matched elsewhere in the draft, not as its requester
                if state in ("pending", "in_flight", "unknown"):
                    conn.execute(
                        s.update()
                        .where(s.c.id == sid)
                        .values(
                            state="dead",
                            lease_owner=None,
                            lease_expires_at=None,
                            lease_token=s.c.lease_token + 1,  # a worker holding it loses it
                            updated_at=now,
                        )
                    )
                    report["cancelled"] += 1
                digests |= self._scrub(conn, sid, draft, now)
                conn.execute(
                    s.update()
                    .where(s.c.id == sid, s.c.state == "dead")
                    .values(last_error="erased on request")
                )
                report["scrubbed"] += 1
            held = conn.execute(
                sa.select(quarantine.c.id, quarantine.c.draft).where(
                    sa.func.lower(quarantine.c.draft).like(needle, escape="\\")
                )
            ).all()
            doomed = [
                qid
                for qid, draft in held
                if str(json.loads(draft).get("email", "")).strip().lower() == wanted
            ]
            if doomed:
                conn.execute(quarantine.delete().where(quarantine.c.id.in_(doomed)))
                digests |= drop_attachments(conn, doomed)
            report["quarantine_deleted"] = len(doomed)
            # Raw payloads kept for the console's test bench that name the person.
            escaped = wanted.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            mentioned = sa.func.lower(captures.c.body).like(f"%{escaped}%", escape="\\")
            report["captures_deleted"] = conn.execute(captures.delete().where(mentioned)).rowcount
        report["files"] = self.files.forget(digests, at_once=True)
        self.db.clear_traces()
        return report
