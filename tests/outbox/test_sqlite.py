"""SQLite writers of several processes take turns; the write-ahead log stays bounded."""

from __future__ import annotations

import contextlib
import fcntl
import multiprocessing
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Connection

from bridge.outbox.sqlite import WriterTurns, sqlite_file
from bridge.outbox.store import SubmissionStore
from bridge.proprofs import TicketDraft

DRAFT = TicketDraft(email="jane@example.com", subject="Disk almost full", description="x" * 400)


def _hammer(url: str, count: int, ready: Any) -> None:
    store = SubmissionStore(url)
    ready.wait()
    for _ in range(count):
        store.enqueue("alerts", "hook", DRAFT)
    store.dispose()


def test_writers_in_several_processes_take_turns_without_sqlite_busy_waits(
    tmp_path: Path,
) -> None:
    """Three processes write at once: every row lands, nobody waits out SQLite's busy
    handler (whose sleeps grow to 100 ms), and the turns' lock file sits beside the db."""
    url = f"sqlite:///{tmp_path / 'turns.db'}"
    SubmissionStore(url).engine  # noqa: B018 - migrate once
    context = multiprocessing.get_context("spawn")  # no fork of a threaded test process
    ready = context.Event()
    workers = [context.Process(target=_hammer, args=(url, 300, ready)) for _ in range(3)]
    for worker in workers:
        worker.start()
    started = time.monotonic()
    ready.set()
    for worker in workers:
        worker.join(timeout=120)
    elapsed = time.monotonic() - started
    assert [w.exitcode for w in workers] == [0, 0, 0]
    with contextlib.closing(sqlite3.connect(tmp_path / "turns.db")) as db:
        assert db.execute("select count(*) from submissions").fetchone()[0] == 900
    assert (tmp_path / "turns.db-writer.lock").exists()
    assert elapsed < 60


def test_a_turn_waits_while_another_holds_the_lock_file_and_lets_go_when_done(
    tmp_path: Path,
) -> None:
    """A turn tells a held lock file from a free one: it waits for the other holder, notes
    that it did, takes the lock the moment it is let go, and lets it go when it ends."""
    turns = WriterTurns(tmp_path / "turns.db")
    other = os.open(turns.path, os.O_RDWR | os.O_CREAT, 0o600)  # another process's hold
    try:
        fcntl.flock(other, fcntl.LOCK_EX)
        inside = threading.Event()
        leave = threading.Event()

        def writer() -> None:
            with turns.turn():
                inside.set()
                leave.wait(10)

        thread = threading.Thread(target=writer)
        thread.start()
        assert not inside.wait(0.3)  # held elsewhere: the turn waits
        assert turns.crowded()
        fcntl.flock(other, fcntl.LOCK_UN)
        assert inside.wait(10)  # taken the moment the other let go
        with pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        leave.set()
        thread.join(timeout=10)
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the turn let it go
    finally:
        os.close(other)


def test_the_write_ahead_log_stays_bounded_under_steady_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's own checkpoint is off on the writers' connections; the checkpointer keeps
    the log to about an interval's worth of writes instead of letting it grow."""
    store = SubmissionStore(f"sqlite:///{tmp_path / 'wal.db'}")
    assert store.db.checkpoints is not None
    store.db.checkpoints.interval = 0.2
    wal = tmp_path / "wal.db-wal"
    stop = time.monotonic() + 4
    sizes: list[int] = []

    def write() -> None:
        while time.monotonic() < stop:
            store.enqueue("alerts", "hook", DRAFT)

    threads = [threading.Thread(target=write) for _ in range(4)]
    for thread in threads:
        thread.start()
    while time.monotonic() < stop:
        time.sleep(0.25)
        if wal.exists():
            sizes.append(wal.stat().st_size)
    for thread in threads:
        thread.join(timeout=30)
    written = store.counts()["pending"]
    store.dispose()
    # Without the checkpointer every one of these rows stays in the log (several KiB
    # each); with it the log holds well under half of them at any time.
    assert written > 500
    assert max(sizes) < written * 4096 / 2, (max(sizes), written)
    with contextlib.closing(sqlite3.connect(tmp_path / "wal.db")) as db:
        assert db.execute("select count(*) from submissions").fetchone()[0] == written


def test_a_connection_the_store_opens_does_not_checkpoint_inside_commits(tmp_path: Path) -> None:
    store = SubmissionStore(f"sqlite:///{tmp_path / 'p.db'}")
    with store.engine.connect() as conn:
        raw: Connection = conn
        assert raw.exec_driver_sql("pragma wal_autocheckpoint").scalar() == 0
        assert raw.exec_driver_sql("pragma synchronous").scalar() == 2  # FULL: durable
    store.dispose()
    assert sqlite_file(store.url) == (tmp_path / "p.db").resolve()


def test_the_checkpoint_restarts_the_log_in_place_instead_of_truncating_it(
    tmp_path: Path,
) -> None:
    """A restarted log is written over in place (a plain data sync per commit); a truncated
    one grows again with every commit, which costs a metadata sync too."""
    store = SubmissionStore(f"sqlite:///{tmp_path / 'restart.db'}")
    assert store.db.checkpoints is not None and store.db.turns is not None
    for _ in range(50):
        store.enqueue("alerts", "hook", DRAFT)
    wal = tmp_path / "restart.db-wal"
    size = wal.stat().st_size
    assert size > 0
    with contextlib.closing(sqlite3.connect(tmp_path / "restart.db")) as conn:
        store.db.checkpoints.checkpoint(conn)
    assert wal.stat().st_size == size  # kept, not cut to nothing
    store.enqueue("alerts", "hook", DRAFT)
    assert wal.stat().st_size == size  # the next commit wrote from the log's start
    with contextlib.closing(sqlite3.connect(tmp_path / "restart.db")) as conn:
        assert conn.execute("select count(*) from submissions").fetchone()[0] == 51
    store.dispose()


def test_a_checkpoint_a_reader_holds_up_gives_up_at_once_and_frees_the_turn(
    tmp_path: Path,
) -> None:
    """A RESTART must wait for readers to leave the log. In a writer's turn, the checkpointer
    does not wait (SQLite's busy handler would sleep up to 100 ms at a time, every writer
    waiting behind it): it copies what it can, lets the turn go, and tries again later."""
    store = SubmissionStore(f"sqlite:///{tmp_path / 'held.db'}")
    assert store.db.checkpoints is not None and store.db.turns is not None
    for _ in range(50):
        store.enqueue("alerts", "hook", DRAFT)
    with contextlib.closing(sqlite3.connect(tmp_path / "held.db", isolation_level=None)) as reader:
        reader.execute("BEGIN")
        assert reader.execute("select count(*) from submissions").fetchone()[0] == 50
        store.enqueue("alerts", "hook", DRAFT)  # a frame past the reader's snapshot
        with contextlib.closing(store.db.checkpoints.connect()) as conn:
            started = time.monotonic()
            store.db.checkpoints.checkpoint(conn)
            held = time.monotonic() - started
        # A writer gets its turn at once, while the reader still reads.
        store.enqueue("alerts", "hook", DRAFT)
        reader.execute("COMMIT")
    assert held < 0.05, held
    assert store.counts()["pending"] == 52
    store.dispose()


def test_the_store_is_opened_and_its_schema_checked_before_the_writers_turn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process's first write opens the store and checks its schema (which imports
    Alembic: tens of milliseconds) before it takes the turn, so no writer of any process
    waits for that; the lock file is free while the check runs."""
    store = SubmissionStore(f"sqlite:///{tmp_path / 'first.db'}")
    migrate = store.db._migrate
    seen: list[tuple[int, bool]] = []

    def checked(engine: Any) -> None:
        assert store.db.turns is not None
        fd = os.open(store.db.turns.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another holder: BlockingIOError
            fcntl.flock(fd, fcntl.LOCK_UN)
            free = True
        except BlockingIOError:
            free = False
        finally:
            os.close(fd)
        seen.append((store.db.turns._depth, free))
        migrate(engine)

    monkeypatch.setattr(store.db, "_migrate", checked)
    store.enqueue("alerts", "hook", DRAFT)
    assert seen == [(0, True)]
    assert store.counts()["pending"] == 1
    store.dispose()
