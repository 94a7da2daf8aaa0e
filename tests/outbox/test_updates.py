"""Updates of alert tickets in the outbox: coalesced per interval, in order, after their
create, across workers and lost leases (outbox/updates.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import re
import threading
import time

import pytest

from bridge.mapping import footer
from bridge.outbox.records import Outcome, Submission, Tracked, new_submission_id
from bridge.outbox.retry import RetryPolicy
from bridge.outbox.store import SubmissionStore
from bridge.outbox.updates import Noted, higher
from bridge.outbox.worker import DeliverySettings, Worker
from bridge.proprofs import ProProfsClient, TicketDraft
from bridge.proprofs.emulator import EmulatorServer
from tests.conftest import set_faults
from tests.support.alerts import due_now

KEY = "r:group"
FAST = DeliverySettings(poll_interval=0.05, retry=RetryPolicy(schedule=(0.2, 0.2, 0.2), jitter=0))


def opened(store: SubmissionStore, now: float) -> str:
    """An incident whose create is stored (not sent): its submission id."""
    sid = new_submission_id(now)
    draft = TicketDraft(
        email="alerts@example.com",
        subject="Disk full",
        description="Disk full" + footer(sid),
        priority="normal",
    )
    store.incidents.open("r", "hook", KEY, 1, draft, submission_id=sid, now=now)
    return sid


def build(tracked: Tracked, create: Submission) -> TicketDraft:
    return dataclasses.replace(
        create.draft,
        priority=tracked.priority,  # type: ignore[arg-type]
        description=f"{tracked.state}, {tracked.occurrences} firing" + footer(create.id),
    )


def note(
    store: SubmissionStore,
    now: float,
    status: str = "firing",
    priority: str | None = None,
    every: float = 60.0,
    rule: str = "raise",
) -> Noted:
    noted = store.updates.note(
        "r",
        KEY,
        1,
        status=status,
        priority=priority,
        rule=rule,
        every=every,
        build=build,
        now=now,
    )
    assert noted is not None
    return noted


def sent(store: SubmissionStore, sid: str, now: float) -> Submission:
    """Claim ``sid`` (and only it) as a worker would."""
    (claim,) = [c for c in store.claim("w", 50, now=now) if c.id == sid]
    return claim


def firings(text: str | None) -> int:
    """The count a description says (0 before the first update)."""
    match = re.search(r"(\d+) firing", text or "")
    return int(match.group(1)) if match else 0


def test_one_update_waits_per_ticket_and_the_next_is_due_an_interval_after_the_last_sent(
    store: SubmissionStore,
) -> None:
    t0 = time.time()
    create = opened(store, t0)
    sent(store, create, t0)  # the create has gone out: notes no longer fold into it
    first = note(store, t0 + 1)
    assert first.how == "update"
    assert note(store, t0 + 2).submission_id == first.submission_id  # rewritten, not added
    waiting = store.get(first.submission_id)
    assert waiting is not None and waiting.target == create
    assert firings(waiting.draft.description) == 3 and waiting.next_attempt_at == t0 + 1
    sent(store, first.submission_id, t0 + 5)
    second = note(store, t0 + 6)
    assert second.submission_id != first.submission_id
    later = store.get(second.submission_id)
    assert later is not None and later.next_attempt_at == t0 + 65  # 60 s after t0 + 5
    assert note(store, t0 + 7, "resolved").submission_id == second.submission_id
    later = store.get(second.submission_id)
    assert later is not None and later.draft.description.startswith("resolved, 4 firing")
    assert [u.id for u in store.updates.of(create)] == [first.submission_id, second.submission_id]


def test_a_create_never_sent_takes_the_notification_itself(store: SubmissionStore) -> None:
    t0 = time.time()
    create = opened(store, t0)
    noted = note(store, t0 + 1, priority="high")
    assert noted.how == "folded" and noted.submission_id == create
    made = store.get(create)
    assert made is not None and made.draft.priority == "high"
    assert firings(made.draft.description) == 2
    assert store.updates.of(create) == []


def test_priority_rules() -> None:
    assert higher("normal", "high") == "high"
    assert higher("high", "low") == "high"
    assert higher(None, "low") == "low"
    assert higher("normal", None) == "normal"
    assert higher("normal", "urgent") == "normal"


def test_priority_follows_or_is_kept_when_configured(store: SubmissionStore) -> None:
    t0 = time.time()
    opened(store, t0)
    assert note(store, t0 + 1, priority="high").tracked.priority == "high"
    assert note(store, t0 + 2, priority="low").tracked.priority == "high"  # raise
    assert note(store, t0 + 3, priority="low", rule="follow").tracked.priority == "low"
    assert note(store, t0 + 4, priority="high", rule="keep").tracked.priority == "low"


def test_resolved_then_firing_again_counts_on(store: SubmissionStore) -> None:
    t0 = time.time()
    opened(store, t0)
    assert note(store, t0 + 1, "resolved").tracked.state == "resolved"
    again = note(store, t0 + 2).tracked
    assert (again.state, again.occurrences) == ("firing again", 2)
    assert note(store, t0 + 3).tracked.state == "firing again"


def deliver_create(store: SubmissionStore, client: ProProfsClient) -> str:
    Worker(store, client, FAST).run(until_idle=True, max_seconds=10)
    made = [s for s in store.list() if not s.is_update and s.ticket_id]
    assert made
    return str(made[0].ticket_id)


def test_an_older_update_in_flight_holds_the_newer_back_and_a_failed_one_is_superseded(
    store: SubmissionStore, client: ProProfsClient, emulator: EmulatorServer
) -> None:
    t0 = time.time()
    create = opened(store, t0)
    ticket_id = deliver_create(store, client)
    older = note(store, time.time(), every=0).submission_id
    in_flight = sent(store, older, time.time())  # another worker holds it
    newer = note(store, time.time(), every=0).submission_id
    worker = Worker(store, client, FAST)
    (claim,) = store.claim(worker.owner, 5)
    assert claim.id == newer
    worker.deliver(claim)
    held = store.get(newer)
    assert held is not None and held.state == "pending" and held.attempts == 0
    assert held.last_error == "waiting for the update before it"
    assert emulator.state.tickets[ticket_id].updates == []
    # The older one fails: it is not retried, the newer carries all it had.
    set_faults(emulator, error_rate=1.0, error_status=503)
    worker.deliver(in_flight)
    gone = store.get(older)
    assert gone is not None and gone.state == "suppressed"
    assert gone.last_error == f"superseded by the newer update {newer}"
    set_faults(emulator, error_rate=0.0)
    due_now(store)
    Worker(store, client, FAST).run(until_idle=True, max_seconds=10)
    ticket = emulator.state.tickets[ticket_id]
    assert len(ticket.updates) == 1 and firings(ticket.description) == 3
    assert store.get(create) is not None


def test_a_replayed_stale_update_never_overwrites_a_newer_one(
    store: SubmissionStore, client: ProProfsClient, emulator: EmulatorServer
) -> None:
    opened(store, time.time())
    ticket_id = deliver_create(store, client)
    older = note(store, time.time(), every=0).submission_id
    claim = sent(store, older, time.time())
    store.finish(claim, Outcome.dead("refused"), kind="update", started_at=time.time())
    note(store, time.time(), every=0)
    Worker(store, client, FAST).run(until_idle=True, max_seconds=10)
    assert firings(emulator.state.tickets[ticket_id].description) == 3
    assert store.replay(older)
    Worker(store, client, FAST).run(until_idle=True, max_seconds=10)
    stale = store.get(older)
    assert stale is not None and stale.state == "suppressed"
    assert firings(emulator.state.tickets[ticket_id].description) == 3


def test_an_update_whose_lease_was_lost_is_sent_again_not_reconciled(
    store: SubmissionStore, client: ProProfsClient, emulator: EmulatorServer
) -> None:
    opened(store, time.time())
    ticket_id = deliver_create(store, client)
    sid = note(store, time.time(), every=0).submission_id
    sent(store, sid, time.time())  # its worker died holding it
    lost = time.time() + store.lease_seconds + 1
    (claim,) = store.claim("w2", 5, now=lost)
    assert claim.claimed_from == "in_flight"
    Worker(store, client, FAST).deliver(claim)
    done = store.get(sid)
    assert done is not None and done.state == "delivered" and done.ticket_id == ticket_id
    assert [a.kind for a in store.attempts_for(sid)] == ["update"]


def test_two_workers_and_a_stream_of_notifications_land_in_order(
    store: SubmissionStore, client: ProProfsClient, emulator: EmulatorServer
) -> None:
    opened(store, time.time())
    ticket_id = deliver_create(store, client)
    set_faults(emulator, latency_ms=30, error_rate=0.2, error_status=503)
    workers = [Worker(store, client, FAST) for _ in range(2)]
    threads = [threading.Thread(target=w.run, kwargs={"max_seconds": 30}) for w in workers]
    for thread in threads:
        thread.start()
    try:
        for _ in range(60):  # bounded: 60 notifications, 10 ms apart
            note(store, time.time(), every=0)
            time.sleep(0.01)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if firings(emulator.state.tickets[ticket_id].description) == 61:
                break
            time.sleep(0.1)
    finally:
        for w in workers:
            w.stop()
        for thread in threads:
            thread.join()
        set_faults(emulator, latency_ms=0, error_rate=0.0)
    history = [
        firings(u["fields"]["description"]) for u in emulator.state.tickets[ticket_id].updates
    ]
    assert history and history[-1] == 61
    assert history == sorted(history), history  # an older state never landed after a newer
    assert len(history) < 60  # coalesced


def test_the_next_update_waits_until_every_has_passed_since_the_last_arrived(
    store: SubmissionStore, client: ProProfsClient, emulator: EmulatorServer
) -> None:
    opened(store, time.time())
    ticket_id = deliver_create(store, client)
    note(store, time.time(), every=60)
    Worker(store, client, FAST).run(until_idle=True, max_seconds=10)
    (first,) = store.updates.of(store.list()[-1].id)
    assert first.state == "delivered" and first.delivered_at is not None
    second = note(store, time.time(), every=60).submission_id
    due_now(store)  # even when asked early (a replay, a clock step), the worker waits
    worker = Worker(store, client, FAST)
    (claim,) = store.claim(worker.owner, 5)
    worker.deliver(claim)
    waiting = store.get(second)
    assert waiting is not None and waiting.state == "pending"
    assert waiting.last_error == "waiting out the route's update.every"
    assert waiting.next_attempt_at == pytest.approx(first.delivered_at + 60)
    assert len(emulator.state.tickets[ticket_id].updates) == 1
