"""Alert tickets that stay current: a route's ``update:`` block, end to end through the
outbox and the emulator (PROPROFS_API U1-U4, A7)."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient

from bridge.app import create_app
from bridge.config import Settings
from bridge.outbox.store import SubmissionStore
from bridge.proprofs.emulator import EmulatorServer
from tests.support.alerts import FIRING, RESOLVED, config, deliver, due_now, post

UPDATE = """
    update:
      every: 0s
      fields: {state: CF101-01, occurrences: CF101-02, last_seen: CF101-03}
"""


@pytest.fixture
def alerts(
    emulator: EmulatorServer, store_url: str
) -> Iterator[tuple[FlaskClient, SubmissionStore, Settings]]:
    settings = config(emulator, store_url, UPDATE)
    store = SubmissionStore(store_url)
    app = create_app(settings, store=store)
    yield app.test_client(), store, settings
    store.dispose()


def severity(level: str, body: dict[str, Any] = FIRING) -> dict[str, Any]:
    out = copy.deepcopy(body)
    out["commonLabels"] = {**out.get("commonLabels", {}), "severity": level}
    return out


def tickets(emulator: EmulatorServer) -> list[Any]:
    return sorted(emulator.state.tickets.values(), key=lambda t: int(t.ticket_id))


def custom(ticket: Any, field_id: str) -> str | None:
    for item in ticket.custom_fields:
        if item["id"] == field_id:
            return str(item["value"])
    return None


def test_repeats_keep_the_count_and_the_status_block_current(
    alerts: Any, emulator: EmulatorServer
) -> None:
    client, store, settings = alerts
    status, answer = post(client, FIRING)
    assert status == 202
    deliver(store, settings)
    (ticket,) = tickets(emulator)
    assert "Status: firing" in ticket.description
    assert "Firing notifications: 1" in ticket.description
    # Two repeats before the next delivery: one update carries both.
    assert post(client, FIRING) == (200, {"status": "duplicate", "id": answer["id"]})
    post(client, FIRING)
    deliver(store, settings)
    (ticket,) = tickets(emulator)
    assert len(ticket.updates) == 1
    assert "Firing notifications: 3" in ticket.description
    assert custom(ticket, "CF101-02") == "3"
    assert custom(ticket, "CF101-01") == "firing"
    last_seen = custom(ticket, "CF101-03") or ""
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", last_seen)
    assert f"Last seen: {last_seen}" in ticket.description
    assert ticket.description.endswith(f"Reference: {answer['id']}")  # reconcile finds it
    assert ticket.description.count("Incident page:") == 1  # rebuilt, never appended (A7)


def test_severity_raises_the_priority_and_never_lowers_it(
    alerts: Any, emulator: EmulatorServer
) -> None:
    client, store, settings = alerts
    post(client, severity("warning"))
    deliver(store, settings)
    assert tickets(emulator)[0].priority == "normal"
    post(client, severity("critical"))
    deliver(store, settings)
    assert tickets(emulator)[0].priority == "high"
    post(client, severity("info"))
    deliver(store, settings)
    assert tickets(emulator)[0].priority == "high"
    assert "Firing notifications: 3" in tickets(emulator)[0].description


def test_follow_lowers_the_priority_too(emulator: EmulatorServer, store_url: str) -> None:
    settings = config(emulator, store_url, "    update: {every: 0s, priority: follow}")
    with SubmissionStore(store_url) as store:
        client = create_app(settings, store=store).test_client()
        post(client, severity("critical"))
        deliver(store, settings)
        post(client, severity("info"))
        deliver(store, settings)
    assert tickets(emulator)[0].priority == "low"


def test_resolve_fire_again_and_close_then_a_new_ticket(
    emulator: EmulatorServer, store_url: str
) -> None:
    settings = config(
        emulator,
        store_url,
        """    update:
      every: 0s
      resolved_prefix: "[RESOLVED] "
      resolved_suffix: " (all clear)"
      fields: {state: CF101-01, occurrences: CF101-02}""",
    )
    with SubmissionStore(store_url) as store:
        client = create_app(settings, store=store).test_client()
        first_id = post(client, FIRING)[1]["id"]
        deliver(store, settings)
        assert post(client, RESOLVED) == (200, {"status": "updated", "id": first_id})
        deliver(store, settings)
        (ticket,) = tickets(emulator)
        assert ticket.subject.startswith("[RESOLVED] [RESOLVED:")
        assert ticket.subject.endswith(" (all clear)")
        assert custom(ticket, "CF101-01") == "resolved"
        assert "Status: resolved" in ticket.description
        # Fires again while the ticket is open: the same ticket, marked firing again.
        assert post(client, FIRING)[0] == 200
        deliver(store, settings)
        (ticket,) = tickets(emulator)
        assert ticket.subject.startswith("[FIRING:")
        assert custom(ticket, "CF101-01") == "firing again"
        assert custom(ticket, "CF101-02") == "2"  # the count goes on
        # Closed in the help desk: the next firing makes a new ticket, as without updates.
        requests.post(
            f"{emulator.url}/_emulator/tickets/{ticket.ticket_id}/status",
            json={"status": "closed"},
            timeout=5,
        ).raise_for_status()
        assert post(client, FIRING)[0] == 202
        deliver(store, settings)
        first, second = tickets(emulator)
        assert "Firing notifications: 1" in second.description
        assert f"Previous ticket: #{first.ticket_id}" in second.description
        updates = len(first.updates)
        # A repeat now updates the new ticket, not the closed one.
        post(client, FIRING)
        deliver(store, settings)
        first, second = tickets(emulator)
        assert len(first.updates) == updates and len(second.updates) == 1
        assert "Firing notifications: 2" in second.description
        assert f"Previous ticket: #{first.ticket_id}" in second.description


def test_a_repeat_before_the_create_is_sent_goes_into_the_create(
    alerts: Any, emulator: EmulatorServer
) -> None:
    client, store, settings = alerts
    post(client, FIRING)
    post(client, severity("critical"))
    deliver(store, settings)
    (ticket,) = tickets(emulator)
    assert ticket.updates == []
    assert ticket.priority == "high"
    assert "Firing notifications: 2" in ticket.description
    assert len(store.list()) == 1  # no update was needed


def test_an_update_waits_for_its_tickets_create(alerts: Any, emulator: EmulatorServer) -> None:
    client, store, settings = alerts
    sid = post(client, FIRING)[1]["id"]
    emulator.state.faults.update({"error_rate": 1.0, "error_status": 503})
    deliver_once(store, settings)  # the create fails: it will be tried again
    assert store.get(sid).state == "pending" and store.get(sid).attempts == 1
    post(client, severity("critical"))
    (update,) = store.updates.of(sid)
    deliver_once(store, settings)
    waiting = store.get(update.id)
    assert waiting.state == "pending" and waiting.attempts == 0
    assert "waiting for the create of its ticket" in (waiting.last_error or "")
    emulator.state.faults.update({"error_rate": 0.0})
    due_now(store)
    deliver(store, settings)
    (ticket,) = tickets(emulator)
    assert ticket.priority == "high" and len(ticket.updates) == 1
    assert store.get(update.id).state == "delivered"
    assert store.get(update.id).ticket_id == ticket.ticket_id


def test_a_deleted_ticket_makes_the_update_dead_with_a_reason(
    alerts: Any, emulator: EmulatorServer
) -> None:
    client, store, settings = alerts
    sid = post(client, FIRING)[1]["id"]
    deliver(store, settings)
    (ticket,) = tickets(emulator)
    post(client, FIRING)  # noted while the ticket is there; deleted before the update goes
    requests.post(
        f"{emulator.url}/_emulator/tickets/{ticket.ticket_id}/delete", timeout=5
    ).raise_for_status()
    deliver(store, settings)
    (update,) = store.updates.of(sid)
    assert update.state == "dead"
    assert f"ticket {ticket.ticket_id} refused the update" in (update.last_error or "")


def deliver_once(store: SubmissionStore, settings: Settings) -> None:
    from bridge.app import proprofs_client
    from bridge.outbox.retry import RetryPolicy
    from bridge.outbox.worker import DeliverySettings, Worker

    with proprofs_client(settings) as client:
        worker = Worker(
            store,
            client,
            DeliverySettings(poll_interval=0.05, retry=RetryPolicy(schedule=(60,) * 5)),
        )
        for claim in store.claim(worker.owner, 10):
            worker.deliver(claim)


def test_a_first_notification_that_lost_the_race_to_open_is_counted_as_a_repeat(
    alerts: Any, emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, store, settings = alerts
    sid = post(client, FIRING)[1]["id"]
    deliver(store, settings)
    real_get = store.incidents.get
    calls = {"n": 0}

    def stale_once(route: str, key: str) -> Any:
        calls["n"] += 1  # the first read misses the incident another request just opened
        return None if calls["n"] == 1 else real_get(route, key)

    monkeypatch.setattr(store.incidents, "get", stale_once)
    assert post(client, FIRING) == (200, {"status": "duplicate", "id": sid})
    monkeypatch.undo()
    deliver(store, settings)
    (ticket,) = tickets(emulator)
    assert "Firing notifications: 2" in ticket.description
