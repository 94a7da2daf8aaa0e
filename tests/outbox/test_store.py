"""The store on SQLite and PostgreSQL: enqueue, dedup, claims under fenced leases, operators."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from bridge.outbox.records import Outcome, StoreUnavailable
from bridge.outbox.store import SubmissionStore
from bridge.proprofs import TicketDraft
from tests.conftest import need_postgres, pg_schema_url

DRAFT = TicketDraft(email="jane@example.com", subject="Hello", description="Hi")


def test_enqueue_stores_a_pending_submission(store: SubmissionStore) -> None:
    result = store.enqueue("contact", "form", DRAFT, meta={"request_id": "r-1"})
    assert not result.duplicate and result.state == "pending"
    assert result.id.startswith("pb-") and len(result.id) == 23
    sub = store.get(result.id)
    assert sub is not None and sub.draft == DRAFT and sub.meta == {"request_id": "r-1"}
    assert sub.ref == result.id
    assert store.counts()["pending"] == 1


def test_a_repeated_dedup_key_is_a_no_op_per_route(store: SubmissionStore) -> None:
    first = store.enqueue("alerts", "hook", DRAFT, dedup_key="alerts:g1")
    again = store.enqueue("alerts", "hook", DRAFT, dedup_key="alerts:g1")
    other_route = store.enqueue("other", "hook", DRAFT, dedup_key="alerts:g1")
    no_key = [store.enqueue("alerts", "hook", DRAFT) for _ in range(2)]
    assert again.duplicate and again.id == first.id
    assert not other_route.duplicate and all(not r.duplicate for r in no_key)
    assert store.counts()["pending"] == 4


def test_concurrent_enqueues_of_one_key_store_one(store: SubmissionStore) -> None:
    results = []
    barrier = threading.Barrier(8)

    def post() -> None:
        barrier.wait()
        results.append(store.enqueue("alerts", "hook", DRAFT, dedup_key="alerts:storm"))

    threads = [threading.Thread(target=post) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(not r.duplicate for r in results) == 1
    assert len({r.id for r in results}) == 1


def test_claim_leases_due_submissions_and_bumps_the_fencing_token(store: SubmissionStore) -> None:
    now = time.time()
    ids = [store.enqueue("r", "hook", DRAFT, now=now).id for _ in range(3)]
    later = store.enqueue("r", "hook", DRAFT, now=now + 3600).id  # not due yet
    claims = store.claim("w1", 10, now=now)
    assert sorted(c.id for c in claims) == sorted(ids) and later not in {c.id for c in claims}
    assert all(c.state == "in_flight" and c.claimed_from == "pending" for c in claims)
    assert all(c.lease_token == 1 and c.attempts == 1 and c.lease_owner == "w1" for c in claims)
    assert store.claim("w2", 10, now=now) == []  # leased


def test_a_claim_takes_the_earliest_due_across_pending_unknown_and_lost_leases(
    store: SubmissionStore,
) -> None:
    """Whatever state a due submission is in, the claim takes the earliest due first, and
    only as many as asked; paused routes and submissions not yet due wait."""
    now = time.time()
    lost = store.enqueue("r", "hook", DRAFT, now=now - 200).id
    (claim,) = store.claim("gone", 1, now=now - store.lease_seconds - 10)  # then it died
    assert claim.id == lost
    checks = [store.enqueue("r", "hook", DRAFT, now=now - 150 + n).id for n in range(2)]
    for n, claim in enumerate(store.claim("w0", 2, now=now - 140)):
        recheck = now - 70 + n * 10
        assert store.finish(
            claim, Outcome.unknown(recheck, "timed out"), kind="create", started_at=now
        )
    pending = [store.enqueue("r", "hook", DRAFT, now=now - 50 + n).id for n in range(5)]
    store.enqueue("paused", "hook", DRAFT, now=now - 300)
    assert store.pauses.pause("paused")
    store.enqueue("r", "hook", DRAFT, now=now + 3600)  # not due yet

    claims = store.claim("w1", 4, now=now)
    assert {c.id for c in claims} == {lost, *checks, pending[0]}
    assert sorted(c.claimed_from or "" for c in claims) == [
        "in_flight",
        "pending",
        "unknown",
        "unknown",
    ]
    assert {c.id for c in store.claim("w1", 100, now=now)} == set(pending[1:])


def test_a_claim_on_sqlite_walks_indexes_instead_of_sorting_every_due_row(
    tmp_path: Path,
) -> None:
    """The claim holds the write turn, so it must not read the whole backlog to take a few:
    each state's due submissions are read in index order, stopping at the limit."""
    import sqlalchemy as sa
    from sqlalchemy.dialects import sqlite

    from bridge.outbox.statements import due_first
    from bridge.outbox.tables import route_pauses, submissions

    store = SubmissionStore(f"sqlite:///{tmp_path / 'plan.db'}")
    running = submissions.c.route.not_in(sa.select(route_pauses.c.route))
    sql = str(
        due_first(12, time.time(), running).compile(
            dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}
        )
    )
    with store.engine.connect() as conn:
        plan = [row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]
    store.dispose()
    searches = [step for step in plan if step.startswith("SEARCH submissions")]
    assert len(searches) == 3 and "MULTI-INDEX OR" not in plan, plan
    assert sum("ix_submissions_due (state=? AND next_attempt_at<?)" in s for s in searches) == 2


def test_a_claim_on_postgres_walks_indexes_instead_of_sorting_every_due_row() -> None:
    """As on SQLite: each state's due submissions are read in index order, locked as they
    are read, and the walk stops at the limit — not every due row collected and sorted."""
    import json

    from bridge.outbox.statements import claim_statement
    from bridge.outbox.tables import submissions

    need_postgres()
    with pg_schema_url() as url, SubmissionStore(url, auto_upgrade=True) as store:
        now = time.time()
        draft = json.dumps(DRAFT.to_dict())
        rows = [
            {
                "id": f"pb-{n:020x}",
                "route": "r",
                "kind": "hook",
                "draft": draft,
                "state": "pending" if n % 10 else "unknown",
                "attempts": 0,
                "next_attempt_at": now - 5000 + n,
                "lease_token": 0,
                "meta": "{}",
                "created_at": now,
                "updated_at": now,
            }
            for n in range(5000)
        ]
        with store.engine.begin() as conn:
            conn.execute(submissions.insert(), rows)
            conn.exec_driver_sql("ANALYZE submissions")
        statement = claim_statement(False, 12)
        with store.engine.begin() as conn:
            compiled = statement.compile(dialect=conn.dialect)
            plan = "\n".join(
                row[0]
                for row in conn.exec_driver_sql(
                    "EXPLAIN " + str(compiled),
                    {**compiled.params, "now": now, "owner": "w", "expires": now + 60},
                )
            )
        assert "Seq Scan on submissions" not in plan and "Bitmap" not in plan, plan
        assert plan.count("Index Scan using ix_submissions_due on submissions") >= 2, plan
        assert plan.count("LockRows") == 3, plan  # each walk locks what it reads

        claims = store.claim("w", 12, now=now)
        assert sorted(c.next_attempt_at for c in claims) == [now - 5000 + n for n in range(12)]


def test_claims_and_outcomes_reuse_statements_built_once(store: SubmissionStore) -> None:
    """The delivery worker's hot writes bind their values to statements built once (per
    claim size, per kind of outcome): building a statement and its cache key for every
    claim and every outcome had cost the worker more CPU than the database's own work."""
    import sqlalchemy as sa

    now = time.time()
    for _ in range(4):
        store.enqueue("r", "hook", DRAFT, now=now)
    statements: list[object] = []
    sa.event.listen(store.engine, "before_execute", lambda _c, stmt, *_: statements.append(stmt))
    first, second = store.claim("w1", 2, now=now), store.claim("w2", 2, now=now)
    assert len(first) == len(second) == 2 and statements[0] is statements[1]
    statements.clear()
    for claim in (*first, *second):
        assert store.finish(claim, Outcome.delivered("00700"), kind="create", started_at=now)
    updates = [stmt for stmt in statements if isinstance(stmt, sa.Update)]
    inserts = [stmt for stmt in statements if isinstance(stmt, sa.Insert)]
    assert len(updates) == len(inserts) == 4
    assert len({id(stmt) for stmt in updates}) == len({id(stmt) for stmt in inserts}) == 1
    assert store.counts()["delivered"] == 4
    assert [a.outcome for a in store.attempts_for(first[0].id)] == ["delivered"]


def test_a_taken_over_lease_cannot_write_its_result(store: SubmissionStore) -> None:
    now = time.time()
    store.enqueue("r", "hook", DRAFT, now=now)
    (old,) = store.claim("w1", 1, now=now)
    (new,) = store.claim("w2", 1, now=now + store.lease_seconds + 1)  # the lease expired
    assert new.claimed_from == "in_flight" and new.lease_token == old.lease_token + 1
    assert not store.finish(old, Outcome.delivered("00700"), kind="create", started_at=now)
    assert store.finish(new, Outcome.delivered("00701"), kind="reconcile", started_at=now)
    sub = store.get(new.id)
    assert sub is not None and (sub.state, sub.ticket_id) == ("delivered", "00701")
    assert [a.outcome for a in store.attempts_for(sub.id)] == ["delivered"]


def test_retry_unknown_dead_release_and_replay(store: SubmissionStore) -> None:
    now = time.time()
    sid = store.enqueue("r", "hook", DRAFT, now=now).id
    (claim,) = store.claim("w", 1, now=now)
    assert store.finish(
        claim, Outcome.retry(now + 5, "HTTP 503", 503), kind="create", started_at=now, now=now
    )
    assert store.claim("w", 1, now=now + 4) == []
    (claim,) = store.claim("w", 1, now=now + 6)
    assert claim.attempts == 2
    assert store.finish(
        claim, Outcome.unknown(now + 10, "timed out"), kind="create", started_at=now, now=now + 6
    )
    (check,) = store.claim("w", 1, now=now + 11)
    assert check.claimed_from == "unknown" and check.attempts == 2  # a re-check is no attempt
    assert store.release(check)
    sub = store.get(sid)
    assert sub is not None and sub.state == "unknown"
    (check,) = store.claim("w", 1, now=now + 12)
    assert store.finish(check, Outcome.dead("refused"), kind="reconcile", started_at=now)
    assert store.counts()["dead"] == 1
    assert [s.id for s in store.list(state="dead")] == [sid]
    assert store.replay(sid) and not store.replay(sid)
    sub = store.get(sid)
    assert sub is not None and (sub.state, sub.attempts) == ("pending", 0)
    outcomes = [a.outcome for a in store.attempts_for(sid)]
    assert outcomes == ["retry", "unknown", "dead"]


def test_release_of_an_unsent_claim_gives_the_attempt_back(store: SubmissionStore) -> None:
    sid = store.enqueue("r", "hook", DRAFT).id
    (claim,) = store.claim("w", 1)
    assert store.release(claim)
    sub = store.get(sid)
    assert sub is not None and (sub.state, sub.attempts) == ("pending", 0)


def test_replay_all_dead_and_purge(store: SubmissionStore) -> None:
    now = time.time()
    for _ in range(3):
        store.enqueue("a", "hook", DRAFT, now=now)
    store.enqueue("b", "hook", DRAFT, now=now)
    for claim in store.claim("w", 10, now=now):
        store.finish(claim, Outcome.dead("x"), kind="create", started_at=now, now=now)
    assert store.replay_all_dead(route="a") == 3
    assert store.replay_all_dead() == 1
    for claim in store.claim("w", 10, now=time.time() + 1):
        store.finish(
            claim, Outcome.delivered("1"), kind="create", started_at=now, now=now - 40 * 86400
        )
    assert store.privacy.purge(older_than=30 * 86400, state="delivered") == 4
    assert sum(store.counts().values()) == 0
    with pytest.raises(ValueError):
        store.privacy.purge(older_than=1, state="pending")


def test_a_read_only_sqlite_store_refuses_to_enqueue(tmp_path: Path) -> None:
    path = tmp_path / "ro.db"
    with SubmissionStore(f"sqlite:///{path}") as writable:
        writable.upgrade()
    with SubmissionStore(f"sqlite:///file:{path}?mode=ro&uri=true", auto_upgrade=False) as ro:
        with pytest.raises(StoreUnavailable):
            ro.enqueue("r", "hook", DRAFT)
        assert ro.ping()


def test_an_unreachable_postgres_store_refuses_to_enqueue() -> None:
    url = "postgresql+psycopg://postgres@127.0.0.1:9/test?connect_timeout=2"
    with SubmissionStore(url, auto_upgrade=False) as down:
        with pytest.raises(StoreUnavailable):
            down.enqueue("r", "hook", DRAFT)
        assert not down.ping()


def test_two_workers_on_postgres_never_claim_the_same_submission() -> None:
    need_postgres()
    with pg_schema_url() as url:
        seed = SubmissionStore(url, auto_upgrade=True)
        for _ in range(400):
            seed.enqueue("r", "hook", DRAFT)
        claimed: dict[str, list[str]] = {"a": [], "b": []}
        stores = {name: SubmissionStore(url, pool_size=4) for name in claimed}

        def work(name: str) -> None:
            while True:
                batch = stores[name].claim(name, 7)
                if not batch:
                    return
                claimed[name] += [c.id for c in batch]

        threads = [threading.Thread(target=work, args=(n,)) for n in claimed]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        a, b = set(claimed["a"]), set(claimed["b"])
        assert not a & b
        assert len(a) + len(b) == 400 and len(claimed["a"]) == len(a)
        assert a and b  # both really took part
        for s in (seed, *stores.values()):
            s.dispose()


def test_no_connection_crosses_a_fork(tmp_path: Path) -> None:
    import os

    with SubmissionStore(f"sqlite:///{tmp_path / 'fork.db'}") as parent:
        parent.enqueue("r", "hook", DRAFT)
        engine_before = parent.engine
        pid = os.fork()
        if pid == 0:  # the child must open its own engine, then write through it
            code = 3
            try:
                if parent.engine is not engine_before:
                    parent.enqueue("r", "hook", DRAFT)
                    code = 0
            except BaseException:
                code = 4
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert parent.engine is engine_before
        assert parent.counts()["pending"] == 2
