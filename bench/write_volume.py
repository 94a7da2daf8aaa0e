"""What one stored submission costs the write-ahead log: frames (pages) per row.

Every page a commit changes goes into SQLite's write-ahead log whole, is synced with the
commit, and is copied into the database by the next checkpoint; so the pages per row are
what the disk does per submission. The bridge's submission ids run in time order (the
millisecond first, then 40 random bits) so that the rows of one commit share the id
index's pages; the baseline, in the same run, is the same rows with wholly random ids (as
the ids were before). Both go into a store of the bridge's schema already holding
``--rows`` rows, through the bridge's own insert statement, in commits of 4 rows (about
what a group commit holds at 16 connections). The count is the log's own, so the same
code gives the same figure from one run to the next.
Run: ``.venv/bin/python bench/write_volume.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bridge import randomness
from bridge.outbox.records import new_submission_id
from bridge.outbox.statements import enqueue_rows_sql
from bridge.outbox.store import SubmissionStore

BATCH = 4
DRAFT = json.dumps({"email": "alerts@example.com", "subject": "Disk almost full on db-7"})


def random_id(_: float) -> str:
    """The ids as they were: ``pb-`` + 20 random hex digits."""
    return "pb-" + randomness.token_hex(10)


def frames_per_row(make_id: Callable[[float], str], before: int, counted: int) -> float:
    """WAL frames per row for ``counted`` rows, after ``before`` rows already stored."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "volume.db"
        store = SubmissionStore(f"sqlite:///{path}")
        store.upgrade()
        store.dispose()
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
            for pragma in ("journal_mode=WAL", "synchronous=OFF", "wal_autocheckpoint=0"):
                conn.execute(f"PRAGMA {pragma}")
            sql = enqueue_rows_sql("?", BATCH)
            now = time.time()

            def commit() -> None:
                nonlocal now
                values: list[object] = []
                for _ in range(BATCH):
                    now += 0.0002  # 5,000 rows a second
                    values += [make_id(now), "alerts", "hook", DRAFT, None, "pending"]
                    values += [0, now, 0, "{}", now, now]
                conn.execute(sql, values)

            for _ in range(before // BATCH):
                commit()
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            for _ in range(counted // BATCH):
                commit()
            _, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return int(frames) / (counted // BATCH * BATCH)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000, help="rows stored before")
    parser.add_argument("--counted", type=int, default=20_000)
    args = parser.parse_args()
    before = max(0, min(args.rows, 1_000_000))
    counted = max(BATCH, min(args.counted, 200_000))
    baseline = frames_per_row(random_id, before, counted)
    bridge = frames_per_row(new_submission_id, before, counted)
    print(
        f"write volume: {counted:,} rows in commits of {BATCH}, after {before:,} stored; "
        "write-ahead log frames (4 KiB pages) per row"
    )
    print(f"  random ids (baseline):   {baseline:5.2f}")
    print(f"  the bridge's ids:        {bridge:5.2f}  ({bridge / baseline:.2f}x the baseline)")


if __name__ == "__main__":
    main()
