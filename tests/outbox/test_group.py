"""Writes that arrive together share a commit, yet each answers only for itself."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from bridge.outbox.group import GroupCommit, _Write
from bridge.outbox.records import Outcome, StoreUnavailable
from bridge.outbox.store import SubmissionStore
from bridge.proprofs import TicketDraft

DRAFT = TicketDraft(email="jane@example.com", subject="Disk almost full", description="x" * 400)


class Recorder:
    """A transaction stand-in that records what each commit held."""

    def __init__(
        self,
        fail_when: Callable[[list[str]], bool] = lambda _: False,
        error: Callable[[], Exception] = lambda: IntegrityError("INSERT", {}, Exception("dup")),
    ) -> None:
        self.commits: list[list[str]] = []
        self.attempts = 0
        self.fail_when = fail_when
        self.error = error
        self.lock = threading.Lock()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[list[str]]:
        held: list[str] = []
        time.sleep(0.005)  # a commit takes a while: others queue up meanwhile
        with self.lock:
            self.attempts += 1
        yield held
        if self.fail_when(held):
            raise self.error()
        with self.lock:
            self.commits.append(held)


def run_together(group: GroupCommit, names: list[str]) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    barrier = threading.Barrier(len(names))

    def write(name: str) -> None:
        barrier.wait()
        try:
            answers[name] = group.run(lambda held: held.append(name) or name.upper())
        except (StoreUnavailable, IntegrityError) as exc:
            answers[name] = exc

    threads = [threading.Thread(target=write, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return answers


def test_writes_arriving_together_share_commits_and_each_gets_its_own_answer() -> None:
    recorder = Recorder()
    group = GroupCommit(recorder.transaction)
    names = [f"w{n}" for n in range(32)]
    answers = run_together(group, names)
    assert answers == {name: name.upper() for name in names}
    committed = [name for commit in recorder.commits for name in commit]
    assert sorted(committed) == sorted(names)  # every write committed exactly once
    assert len(recorder.commits) < len(names) / 2  # and most shared a commit


def test_a_failed_shared_commit_is_retried_write_by_write_so_only_the_bad_one_fails() -> None:
    recorder = Recorder(fail_when=lambda held: "bad" in held)
    group = GroupCommit(recorder.transaction)
    names = ["bad", *(f"w{n}" for n in range(15))]
    answers = run_together(group, names)
    assert isinstance(answers.pop("bad"), IntegrityError)  # a write's own error
    assert answers == {name: name.upper() for name in names if name != "bad"}
    committed = [name for commit in recorder.commits for name in commit]
    assert sorted(committed) == sorted(names[1:])


def test_a_store_outage_fails_every_write_of_the_commit_without_trying_each_again() -> None:
    """The store, not a write, failed: nobody is retried alone (N more waits for a store
    that is down), and every writer hears it."""
    recorder = Recorder(fail_when=lambda held: True, error=lambda: StoreUnavailable("down"))
    group = GroupCommit(recorder.transaction)
    names = [f"w{n}" for n in range(16)]
    answers = run_together(group, names)
    assert all(isinstance(answer, StoreUnavailable) for answer in answers.values())
    assert len(answers) == 16 and recorder.commits == []
    assert recorder.attempts < 16  # shared attempts only: no write-by-write retry


def test_a_turn_that_cannot_be_had_fails_every_queued_write_and_later_writes_go_on() -> None:
    """The leader takes its batch inside the write turn; when the turn cannot be had, every
    write queued by then hears it (none was tried), and the group is free for the next."""
    recorder = Recorder()
    refuse = True

    @contextlib.contextmanager
    def turn() -> Iterator[None]:
        time.sleep(0.005)  # others queue while the leader waits for the turn
        if refuse:
            raise StoreUnavailable("the store is busy: no turn to write in time")
        yield

    group = GroupCommit(recorder.transaction, turn=turn)
    names = [f"w{n}" for n in range(8)]
    answers = run_together(group, names)
    assert len(answers) == 8
    assert all(isinstance(answer, StoreUnavailable) for answer in answers.values())
    assert recorder.attempts == 0
    refuse = False
    assert run_together(group, names) == {name: name.upper() for name in names}
    assert sorted(name for commit in recorder.commits for name in commit) == sorted(names)


def test_a_turn_that_fails_to_let_go_after_the_commit_leaves_the_writes_committed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """What the commit held is stored: its writers hear their answers, not the turn's
    error (a retry would be told its own row is a duplicate), and the failure is logged."""
    recorder = Recorder()

    @contextlib.contextmanager
    def turn() -> Iterator[None]:
        yield
        raise StoreUnavailable("cannot unlock the turn file")

    group = GroupCommit(recorder.transaction, turn=turn)
    with caplog.at_level("WARNING", logger="bridge.outbox.store"):
        answers = run_together(group, ["a", "b", "c"])
    assert answers == {"a": "A", "b": "B", "c": "C"}
    assert sorted(name for commit in recorder.commits for name in commit) == ["a", "b", "c"]
    assert "the write turn was not let go cleanly: StoreUnavailable" in caplog.text


def test_concurrent_enqueues_are_all_stored_and_duplicates_found_within_one_commit(
    store: SubmissionStore,
) -> None:
    commits: list[int] = []
    real = store._group._commit

    def counting(batch: list[Any]) -> None:
        commits.append(len(batch))
        real(batch)

    store._group._commit = counting  # type: ignore[method-assign]
    barrier = threading.Barrier(16)
    results: list[Any] = []

    def enqueue(n: int) -> None:
        barrier.wait()
        for round_ in range(10):
            key = f"alerts:group-{round_}" if n % 4 == 0 else None  # 4 writers race per key
            results.append(store.enqueue("alerts", "hook", DRAFT, dedup_key=key))

    threads = [threading.Thread(target=enqueue, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 160
    stored = {r.id for r in results if not r.duplicate}
    assert len(stored) == 12 * 10 + 10  # 12 writers without a key, one row per key
    duplicates = [r for r in results if r.duplicate]
    assert len(duplicates) == 30 and {r.id for r in duplicates} <= stored
    assert store.counts()["pending"] == 130
    assert max(commits) > 1 and len(commits) < 160  # writes did share commits


def test_a_batch_of_rows_is_one_statement_that_tells_each_row_apart(
    store: SubmissionStore, store_url: str
) -> None:
    """Rows that share a batch go in one statement; a dedup key repeated within the batch,
    or already stored, leaves just that row out, and the rest are committed."""
    first = store.enqueue("alerts", "hook", DRAFT, dedup_key="alerts:old")
    statements = _count_statements(store)
    rows = [
        _row("pb-" + "a" * 20, None),
        _row("pb-" + "b" * 20, "alerts:new"),
        _row("pb-" + "c" * 20, "alerts:new"),  # the same key as the row before it
        _row("pb-" + "d" * 20, "alerts:old"),  # already stored
        _row("pb-" + "e" * 20, None),
    ]
    writes = [_Write(lambda _: None, row=row) for row in rows]
    store._group._commit(writes)  # as a leader commits a batch
    assert [w.error for w in writes] == [None] * 5
    assert [w.result for w in writes] == [1, 1, 0, 0, 1]
    assert statements == [5]
    with SubmissionStore(store_url) as reopened:  # committed: another connection sees them
        ids = {s.id for s in reopened.list(limit=50)}
    assert ids == {first.id, "pb-" + "a" * 20, "pb-" + "b" * 20, "pb-" + "e" * 20}


def test_writes_that_arrive_while_the_leader_waits_for_the_turn_share_its_commit(
    tmp_path: Path,
) -> None:
    """With two processes writing, a leader waits about a commit's time for the other's
    commit to end; the writes that arrive meanwhile go in with it, not in a commit of their
    own after it."""

    with SubmissionStore(f"sqlite:///{tmp_path / 'turn.db'}") as store:
        store.enqueue("alerts", "hook", DRAFT)  # the schema is made
        statements = _count_statements(store)
        turns = store.db.turns
        assert turns is not None
        writers = [
            threading.Thread(target=store.enqueue, args=("alerts", "hook", DRAFT)) for _ in range(3)
        ]
        other = os.open(turns.path, os.O_RDWR)  # another process's writer holds the turn
        try:
            fcntl.flock(other, fcntl.LOCK_EX)
            before = turns.waited_at
            writers[0].start()
            _until(lambda: turns.waited_at > before)  # the leader waits for the turn
            for writer in writers[1:]:
                writer.start()
            _until(lambda: sum(not w.leads for w in store._group._queue) == 2)
        finally:
            fcntl.flock(other, fcntl.LOCK_UN)
            os.close(other)
        for writer in writers:
            writer.join(timeout=30)
        assert statements == [3]  # one commit, where the leader's batch had been itself
        assert store.counts()["pending"] == 4


def _until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the writers did not get there in time"
        time.sleep(0.005)


def _count_statements(store: SubmissionStore) -> list[int]:
    """The rows of each batch statement the store's group sends from now on."""
    statements: list[int] = []
    real = store._insert_rows

    def counting(rows: list[tuple[Any, ...]]) -> list[int]:
        statements.append(len(rows))
        return real(rows)

    store._group._insert_rows = counting  # type: ignore[assignment]
    return statements


def _row(sid: str, key: str | None) -> tuple[Any, ...]:
    now = time.time()
    draft = json.dumps(DRAFT.to_dict())
    return (sid, "alerts", "hook", draft, key, "pending", 0, now, 0, "{}", now, now)


def test_the_group_keeps_one_connection_and_replaces_it_after_the_store_failed_it(
    tmp_path: Path,
) -> None:
    """Group commits reuse one connection (no pool checkout per transaction); when that
    connection breaks, the write fails as an outage and the next one opens a fresh one."""
    store = SubmissionStore(f"sqlite:///{tmp_path / 'leader.db'}")
    first = store.enqueue("alerts", "hook", DRAFT)
    leader = store.db._leader
    assert leader is not None
    store.enqueue("alerts", "hook", DRAFT)
    assert store.db._leader is leader  # the same connection served the second transaction
    leader.connection.driver_connection.close()  # broken behind the store's back
    with pytest.raises(StoreUnavailable):
        store.enqueue("alerts", "hook", DRAFT)
    third = store.enqueue("alerts", "hook", DRAFT)
    assert store.db._leader is not None and store.db._leader is not leader
    assert store.get(third.id) is not None
    assert store.get(first.id) is not None
    assert store.counts()["pending"] == 3
    store.dispose()
    assert store.db._leader is None


def _three_claims(store: SubmissionStore) -> list[Any]:
    now = time.time()
    for _ in range(3):
        store.enqueue("r", "hook", DRAFT, now=now)
    claims = store.claim("w1", 3, now=now)
    assert len(claims) == 3
    return claims


def _record_apart(store: SubmissionStore, claims: list[Any]) -> int:
    """The claims' outcomes recorded 50 ms apart, from a thread each; the commits they took."""
    import sqlalchemy as sa

    delivered = store.counts()["delivered"]
    commits: list[int] = []
    listener = lambda _conn: commits.append(1)  # noqa: E731
    sa.event.listen(store.engine, "commit", listener)
    threads = [
        threading.Thread(
            target=store.finish,
            args=(claim, Outcome.delivered("00700")),
            kwargs={"kind": "create", "started_at": time.time()},
        )
        for claim in claims
    ]
    for thread in threads:
        thread.start()
        time.sleep(0.05)
    for thread in threads:
        thread.join(timeout=30)
    sa.event.remove(store.engine, "commit", listener)
    assert store.counts()["delivered"] == delivered + len(claims)
    return len(commits)


def test_delivery_writes_wait_to_share_a_commit_only_while_another_process_writes(
    tmp_path: Path,
) -> None:
    """The delivery worker's store gathers writes for a while before each commit, so that
    it takes the one write turn seldom — but only while another process (intake) is
    writing too: alone, each write commits at once, and delivery loses no time."""

    with SubmissionStore(f"sqlite:///{tmp_path / 'gather.db'}", gather=0.3) as store:
        # Alone: no waiting (each commits at once; two could share only behind a commit
        # slower than 50 ms), where waiting would have put all three in one commit.
        assert store._wait() == 0.0
        assert _record_apart(store, _three_claims(store)) >= 2
        assert store.db.turns is not None and not store.db.turns.crowded()

        # Another process's writer holds the turn for a moment (a lock of its own on the
        # turn file): this process's next write has to wait for it.
        claims = _three_claims(store)
        other = os.open(store.db.turns.path, os.O_RDWR)
        try:
            fcntl.flock(other, fcntl.LOCK_EX)
            waiting = threading.Thread(target=store.pauses.pause, args=("elsewhere",))
            waiting.start()
            time.sleep(0.05)
            fcntl.flock(other, fcntl.LOCK_UN)
            waiting.join(timeout=30)
        finally:
            os.close(other)
        assert store.db.turns.crowded() and store._wait() == 0.3
        assert _record_apart(store, claims) == 1  # crowded: one commit for all three

    with SubmissionStore(f"sqlite:///{tmp_path / 'intake.db'}") as intake:
        assert intake._group._gather is None  # intake's writes never wait
