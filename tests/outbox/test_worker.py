"""The delivery worker against the emulator: every outcome, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from bridge.mapping import footer
from bridge.outbox.retry import RetryPolicy
from bridge.outbox.store import SubmissionStore
from bridge.outbox.worker import (
    DeliverySettings,
    Worker,
    find_references,
)
from bridge.proprofs import ProProfsClient, TicketDraft
from bridge.proprofs.emulator import EmulatorServer
from tests.conftest import ACCOUNT_EMAIL, TOKEN, set_faults

FAST = DeliverySettings(
    concurrency=4,
    poll_interval=0.05,
    reconcile_lag=1.0,
    reconcile_first_check=0.2,
    retry=RetryPolicy(schedule=(0, 0.2, 0.2, 0.2), jitter=0, min_after_timeout=0.3),
)


def draft(store_ref: str, n: int = 0, **extra: object) -> TicketDraft:
    fields: dict[str, object] = {
        "email": f"u{n}@example.com",
        "subject": f"S{n}",
        "description": f"Body {n}" + footer(store_ref),
        "inbox": "IB238-436",
    }
    fields.update(extra)
    return TicketDraft(**fields)  # type: ignore[arg-type]


def enqueue(store: SubmissionStore, n: int = 0, **extra: object) -> str:
    from bridge.outbox.records import new_submission_id

    sid = new_submission_id()
    store.enqueue("r", "hook", draft(sid, n, **extra), submission_id=sid)
    return sid


@pytest.fixture
def client(emulator: EmulatorServer) -> Iterator[ProProfsClient]:
    with ProProfsClient(
        emulator.base_url,
        ACCOUNT_EMAIL,
        TOKEN,
        read_timeout=0.5,
        connect_timeout=1,
        list_backoff=0.01,
    ) as c:
        yield c


def worker(store: SubmissionStore, client: ProProfsClient, **changes: object) -> Worker:
    from dataclasses import replace

    return Worker(store, client, replace(FAST, **changes))  # type: ignore[arg-type]


def tickets(emulator: EmulatorServer) -> list[str]:
    return [t.description or "" for t in emulator.state.tickets.values()]


def test_delivers_each_submission_once(
    store: SubmissionStore, client: ProProfsClient, emulator: EmulatorServer
) -> None:
    ids = [enqueue(store, n) for n in range(10)]
    worker(store, client).run(until_idle=True, max_seconds=20)
    assert store.counts()["delivered"] == 10
    assert sorted(i for t in tickets(emulator) for i in ids if i in t) == sorted(ids)
    sub = store.get(ids[0])
    assert sub is not None and sub.ticket_id and sub.ticket_id.startswith("00")
    assert [a.outcome for a in store.attempts_for(ids[0])] == ["delivered"]


def test_recording_an_outcome_holds_no_upstream_slot(
    store: SubmissionStore, client: ProProfsClient, emulator: EmulatorServer
) -> None:
    """ProProfs never sees more than ``concurrency`` creates at once, and a slow record of one
    outcome does not keep the next create from going out."""
    set_faults(emulator, latency_ms=50)
    ids = [enqueue(store, n) for n in range(8)]
    w = worker(store, client, concurrency=2)
    lock = threading.Lock()
    sending = 0
    busy = 0  # creates in flight plus outcomes being recorded
    most_sending = most_busy = 0
    create, record = client.create_ticket, store.finish

    def counted(draft: TicketDraft) -> str:
        nonlocal sending, busy, most_sending, most_busy
        with lock:
            sending += 1
            busy += 1
            most_sending = max(most_sending, sending)
            most_busy = max(most_busy, busy)
        try:
            return create(draft)
        finally:
            with lock:
                sending -= 1
                busy -= 1

    def slow_record(*args: object, **kwargs: object) -> bool:
        nonlocal busy, most_busy
        with lock:
            busy += 1
            most_busy = max(most_busy, busy)
        try:
            time.sleep(0.2)
            return record(*args, **kwargs)  # type: ignore[arg-type]
        finally:
            with lock:
                busy -= 1

    client.create_ticket = counted  # type: ignore[method-assign]
    store.finish = slow_record  # type: ignore[method-assign]
    w.run(until_idle=True, max_seconds=20)
    assert store.counts()["delivered"] == len(ids)
    assert most_sending == 2  # the slots were used, and never exceeded
    assert most_busy > 2  # creates went out while earlier outcomes were being recorded


def test_claims_are_topped_up_several_at_a_time(
    store: SubmissionStore, client: ProProfsClient
) -> None:
    """One claim write serves several creates: the worker tops its claims up in batches of
    half its concurrency or more, not one write per finished create."""
    ids = [enqueue(store, n) for n in range(24)]
    w = worker(store, client, concurrency=4)
    sizes: list[int] = []
    claim = store.claim

    def counted(owner: str, limit: int, **kwargs: object) -> list[object]:
        got = claim(owner, limit, **kwargs)  # type: ignore[arg-type]
        if got:
            sizes.append(len(got))
        return got  # type: ignore[return-value]

    store.claim = counted  # type: ignore[method-assign]
    w.run(until_idle=True, max_seconds=20)
    assert store.counts()["delivered"] == len(ids)
    assert sum(sizes) == len(ids)
    assert sizes[0] == 12  # three times the concurrency in hand: four sending, eight ready
    assert all(size >= 2 for size in sizes[:-1]), sizes  # only the last may be short


@pytest.mark.parametrize("fault", [{"auth_failure": True}, "invalid"])
def test_permanent_errors_go_dead_at_once(
    store: SubmissionStore, client: ProProfsClient, emulator: EmulatorServer, fault: object
) -> None:
    if fault == "invalid":
        sid = enqueue(store, staff="not-a-staff-id")
    else:
        set_faults(emulator, **fault)  # type: ignore[arg-type]
        sid = enqueue(store)
    worker(store, client).run(until_idle=True, max_seconds=10)
    sub = store.get(sid)
    assert sub is not None and sub.state == "dead" and sub.attempts == 1
    assert sub.last_error and ("authenticate" in sub.last_error or "staff" in sub.last_error)
    assert emulator.state.tickets == {}


def test_transient_errors_retry_on_the_schedule_then_succeed(
    store: SubmissionStore, client: ProProfsClient, emulator: EmulatorServer
) -> None:
    set_faults(emulator, error_rate=1.0)
    sid = enqueue(store)
    w = worker(store, client)
    thread = threading.Thread(target=w.run, kwargs={"max_seconds": 15})
    thread.start()
    deadline = time.time() + 10
    while time.time() < deadline and len(store.attempts_for(sid)) < 2:
        time.sleep(0.05)
    set_faults(emulator, error_rate=0.0)
    while time.time() < deadline and store.counts()["delivered"] < 1:
        time.sleep(0.05)
    w.stop()
    thread.join()
    outcomes = [(a.outcome, a.http_status) for a in store.attempts_for(sid)]
    assert outcomes[0] == ("retry", 503) and outcomes[-1] == ("delivered", None)
    assert len(emulator.state.tickets) == 1


def test_the_schedule_runs_out_into_dead(
    store: SubmissionStore, client: ProProfsClient, emulator: EmulatorServer
) -> None:
    set_faults(emulator, error_rate=1.0)
    sid = enqueue(store)
    worker(store, client).run(until_idle=True, max_seconds=20)
    sub = store.get(sid)
    assert sub is not None and sub.state == "dead" and sub.attempts == 4
    assert sub.last_error and sub.last_error.startswith("gave up after 4 attempts")


def test_retry_after_is_honoured(
    store: SubmissionStore, client: ProProfsClient, emulator: EmulatorServer
) -> None:
    set_faults(emulator, rate_limit_rate=1.0, retry_after=30)
    sid = enqueue(store)
    before = time.time()
    w = worker(store, client)
    (claim,) = store.claim(w.owner, 1)
    w.deliver(claim)
    sub = store.get(sid)
    assert sub is not None and sub.state == "pending"
    assert sub.next_attempt_at >= before + 30


@pytest.mark.parametrize("mode", ["hang", "drop"])
def test_a_lost_response_is_reconciled_without_a_second_ticket(
    store: SubmissionStore, client: ProProfsClient, emulator: EmulatorServer, mode: str
) -> None:
    set_faults(emulator, lose_create_rate=1.0, lose_mode=mode, hang_seconds=1.0)
    sid = enqueue(store)
    w = worker(store, client)
    (claim,) = store.claim(w.owner, 1)
    w.deliver(claim)
    sub = store.get(sid)
    assert sub is not None and sub.state == "unknown"
    set_faults(emulator, lose_create_rate=0.0)
    w.run(until_idle=True, max_seconds=15)
    sub = store.get(sid)
    assert sub is not None and sub.state == "delivered"
    assert len(emulator.state.tickets) == 1
    assert sub.ticket_id == next(iter(emulator.state.tickets))
    assert [a.kind for a in store.attempts_for(sid)] == ["create", "reconcile"]


def test_reconcile_waits_out_the_list_lag_before_concluding(
    store: SubmissionStore, client: ProProfsClient, emulator: EmulatorServer
) -> None:
    set_faults(emulator, lose_create_rate=1.0, lose_mode="drop", list_lag_seconds=0.6)
    sid = enqueue(store)
    # The lag to wait out is 0.6 s; 2 s leaves room for a busy machine (with the 1 s of the
    # other tests, a create stored 0.4 s late under load was taken as never made).
    w = worker(store, client, reconcile_lag=2.0)
    (claim,) = store.claim(w.owner, 1)
    w.deliver(claim)
    set_faults(emulator, lose_create_rate=0.0)
    w.run(until_idle=True, max_seconds=15)
    assert len(emulator.state.tickets) == 1
    sub = store.get(sid)
    assert sub is not None and sub.state == "delivered"


def test_a_claim_lost_before_sending_is_sent_once_after_reconcile(
    store: SubmissionStore, client: ProProfsClient, emulator: EmulatorServer
) -> None:
    sid = enqueue(store)
    w = worker(store, client, lease_seconds=0.5)
    store.lease_seconds = 0.5  # a worker died right after claiming: its lease will expire
    store.claim("dead-worker", 1)
    time.sleep(0.6)
    w.store.lease_seconds = 30
    w.run(until_idle=True, max_seconds=15)
    assert len(emulator.state.tickets) == 1
    kinds = [(a.kind, a.outcome) for a in store.attempts_for(sid)]
    assert kinds[0] == ("reconcile", "unknown") and kinds[-1] == ("create", "delivered")


def test_graceful_stop_releases_what_was_not_sent(
    store: SubmissionStore, client: ProProfsClient
) -> None:
    sid = enqueue(store)
    w = worker(store, client, rate_limit=0.001)
    w.limiter.tokens = 0  # the next send must wait for a token
    (claim,) = store.claim(w.owner, 1)
    w.stop()
    w.deliver(claim)
    sub = store.get(sid)
    assert sub is not None and (sub.state, sub.attempts) == ("pending", 0)


def test_find_references_prefers_the_lowest_ticket_id() -> None:
    from datetime import UTC, datetime

    from bridge.proprofs.models import Message, Ticket

    def ticket(tid: str, text: str) -> Ticket:
        now = datetime.now(UTC)
        return Ticket(
            tid,
            "",
            "",
            "",
            "",
            (Message(text, now, "", ""),),
            None,
            "",
            "",
            None,
            (),
            (),
            "new",
            False,
            now,
            now,
        )

    ref = "pb-" + "a" * 20
    found = find_references(
        [
            ticket("00702", f"x\nReference: {ref}"),
            ticket("00701", f"Reference: {ref}"),
            ticket("00703", "Reference: pb-" + "b" * 20),
        ],
        {ref},
    )
    assert found == {ref: "00701"}


def test_delivery_pauses_while_proprofs_refuses_connections_and_resumes_when_it_answers(
    store: SubmissionStore, emulator: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Against a refused port the worker stops cycling the backlog through the store (each
    claim and retry record is a write intake waits behind): after the breaker's threshold it
    tries one submission per cooldown, spends no one's attempts, and delivers everything
    once ProProfs is back."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ids = [enqueue(store, n) for n in range(30)]
    with ProProfsClient(
        f"http://127.0.0.1:{port}/app/api/v1/", ACCOUNT_EMAIL, TOKEN, connect_timeout=1
    ) as refused:
        w = worker(store, refused, retry=RetryPolicy(schedule=(0, 0.1, 0.1), jitter=0))
        caplog.set_level(logging.INFO, "bridge.outbox.worker")
        thread = threading.Thread(target=w.run, kwargs={"max_seconds": 30})
        thread.start()
        time.sleep(2.6)
        tried = [len(store.attempts_for(i)) for i in ids]
        # Without the breaker all 30 would have spent their three attempts and be dead.
        assert store.counts()["dead"] == 0
        assert 5 <= sum(tried) <= 5 + 12 + 3, tried  # threshold, claims in hand, probes
        assert w.breaker.is_open
        assert any("delivery pauses" in r.getMessage() for r in caplog.records)
        # ProProfs comes back on the same port; the next probe finds it.
        back = EmulatorServer(emulator.state, port=port).start()
        try:
            deadline = time.monotonic() + 20
            while store.counts()["delivered"] < 30 and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            w.stop()
            thread.join(timeout=30)
            back.stop()
    assert store.counts()["delivered"] == 30
    assert not w.breaker.is_open
    assert any("delivery resumes" in r.getMessage() for r in caplog.records)
    assert sorted(i for t in tickets(emulator) for i in ids if i in t) == sorted(ids)
