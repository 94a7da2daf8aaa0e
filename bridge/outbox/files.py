"""The rows of submissions' attached files, and removing kept files no row names any more."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import sqlalchemy as sa

from ..attachments import WRITE_GRACE, Attachment, FileStore
from .tables import attachments as files_table

if TYPE_CHECKING:
    from .database import Database

log = logging.getLogger(__name__)


class FileRows:
    """Attachment rows in the database; the bytes themselves are in ``kept`` (a FileStore)."""

    def __init__(self, db: Database, kept: FileStore | None) -> None:
        self.db = db
        self.kept = kept

    def of(self, submission_id: str) -> Sequence[Attachment]:
        """A submission's files, in the order they were sent."""
        query = (
            files_table.select()
            .where(files_table.c.submission_id == submission_id)
            .order_by(files_table.c.position)
        )
        with self.db.read() as conn:
            rows = conn.execute(query).mappings().all()
        return [Attachment.from_row(r) for r in rows]

    def get(self, submission_id: str, position: int) -> Attachment | None:
        """One file of a submission, by its position."""
        query = files_table.select().where(
            files_table.c.submission_id == submission_id, files_table.c.position == position
        )
        with self.db.read() as conn:
            row = conn.execute(query).mappings().first()
        return Attachment.from_row(row) if row is not None else None

    def extend_links(self, submission_id: str, expires_at: float) -> int:
        """Make the links to a submission's files work until ``expires_at``; how many."""
        with self.db.write() as conn:
            result = conn.execute(
                files_table.update()
                .where(files_table.c.submission_id == submission_id)
                .values(expires_at=expires_at)
            )
        return int(result.rowcount)

    def sweep(self, *, now: float | None = None) -> int:
        """Remove kept files no submission refers to (a process that died between keeping
        a submission's files and committing it leaves them); how many."""
        if self.kept is None:
            return 0
        now = time.time() if now is None else now
        return self.forget(self.kept.stale(now - WRITE_GRACE), now=now)

    def forget(self, digests: set[str], *, now: float | None = None, at_once: bool = False) -> int:
        """Delete the files of ``digests`` that no row refers to any more; how many. A file
        written in the last few minutes stays (the same bytes may belong to a submission
        that is committing now) and the sweep takes it later, unless ``at_once`` (an
        erasure: the person's files go now)."""
        if not digests or self.kept is None:
            return 0
        now = time.time() if now is None else now
        wanted = sorted(digests)
        referenced: set[str] = set()
        with self.db.read() as conn:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                referenced |= set(
                    conn.execute(
                        sa.select(files_table.c.digest).where(files_table.c.digest.in_(chunk))
                    ).scalars()
                )
        removed = 0
        for digest in wanted:
            if digest not in referenced:
                try:
                    removed += self.kept.delete(
                        digest, written_before=None if at_once else now - WRITE_GRACE
                    )
                except Exception as exc:  # a file store that fails is retried by the sweep
                    log.warning("could not remove a kept file: %s", type(exc).__name__)
        return removed
