"""The delivery worker against the emulator: every outcome, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from bridge.mapping import footer
from bridge.outbox.retry import RetryPolicy
from bridge.outbox.store import SubmissionStore
from bridge.outbox.worker import DeliverySettings, RateLimiter, Worker, find_references
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
    from bridge.outbox.store import new_submission_id

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
    w = worker(store, client)
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


def test_the_rate_limiter_spaces_calls() -> None:
    limiter = RateLimiter(20.0)
    stop = threading.Event()
    started = time.monotonic()
    for _ in range(11):
        assert limiter.acquire(stop)
    assert time.monotonic() - started >= 0.45


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
