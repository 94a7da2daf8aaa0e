"""One ticket per incident: repeats, resolved notifications, re-firing after close, races."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from bridge.app import create_app
from bridge.config import Settings
from bridge.outbox.store import SubmissionStore
from bridge.proprofs.emulator import EmulatorServer
from tests.support.alerts import FIRING, RESOLVED, config, deliver, post
from tests.support.configs import settings_with


@pytest.fixture
def alerts(
    emulator: EmulatorServer, store_url: str
) -> Iterator[tuple[FlaskClient, SubmissionStore, Settings]]:
    settings = config(
        emulator,
        store_url,
        """
  alerts-resolved:
    kind: hook
    source: alertmanager
    resolved: ticket
    ticket: {email: alerts@example.com}
  per-alert:
    kind: hook
    source: alertmanager
    alert_mode: alert
    ticket: {email: alerts@example.com}
""",
    )
    store = SubmissionStore(store_url)
    yield create_app(settings, store=store).test_client(), store, settings
    store.dispose()


def test_repeats_while_open_make_nothing_and_resolved_is_ignored(
    alerts: Any, emulator: EmulatorServer
) -> None:
    client, store, settings = alerts
    first = post(client, FIRING)
    assert first[0] == 202
    assert post(client, FIRING) == (200, {"status": "duplicate", "id": first[1]["id"]})
    deliver(store, settings)
    assert post(client, FIRING)[0] == 200  # still open in ProProfs: a repeat
    status, body = post(client, RESOLVED)
    assert (status, body["status"]) == (200, "ignored")
    assert len(emulator.state.tickets) == 1


def test_a_group_that_fires_again_after_its_ticket_closed_gets_a_new_ticket(
    alerts: Any, emulator: EmulatorServer
) -> None:
    client, store, settings = alerts
    first = post(client, FIRING)[1]["id"]
    deliver(store, settings)
    (ticket_id,) = emulator.state.tickets
    emulator.state.tickets[ticket_id].status = "closed"
    status, body = post(client, FIRING)
    assert status == 202 and body["id"] != first
    assert post(client, FIRING)[0] == 200  # the new one is now the open incident
    deliver(store, settings)
    assert len(emulator.state.tickets) == 2
    incident = store.incidents.get("alerts", "alerts:{}/{}:{}")
    assert (
        incident is not None and incident.generation == 2 and incident.submission.id == body["id"]
    )


def test_the_open_check_is_cached(emulator: EmulatorServer, store_url: str) -> None:
    cached = settings_with(
        emulator,
        store_url,
        """
routes:
  alerts: {kind: hook, source: alertmanager, ticket_check_ttl: 60, ticket: {email: a@example.com}}
""",
    )
    with SubmissionStore(store_url) as store:
        client = create_app(cached, store=store).test_client()
        post(client, FIRING)
        deliver(store, cached)
        emulator.state.counters.clear()
        for _ in range(10):
            assert post(client, FIRING)[0] == 200
        assert emulator.state.counters.get("list.requests") == 1


def test_resolved_can_make_a_ticket_when_asked(alerts: Any) -> None:
    client, store, _ = alerts
    assert post(client, RESOLVED, "alerts-resolved")[0] == 202
    assert post(client, RESOLVED, "alerts-resolved")[0] == 200
    (sub,) = store.list()
    assert sub.draft.subject == "[RESOLVED:2] High CPU Temperature (critical)"


def test_per_alert_mode_makes_one_ticket_per_alert(alerts: Any) -> None:
    client, store, _ = alerts
    status, body = post(client, FIRING, "per-alert")
    assert status == 202 and len(body["ids"]) == 2
    assert post(client, FIRING, "per-alert")[0] == 200
    subjects = sorted(s.draft.subject for s in store.list())
    assert subjects == ["[FIRING:1] High CPU Temperature (critical)"] * 2


def test_twenty_identical_notifications_at_once_make_one_ticket(alerts: Any) -> None:
    client, store, _ = alerts
    app = client.application
    barrier = threading.Barrier(20)
    codes: list[int] = []

    def send() -> None:
        with app.test_client() as own:
            barrier.wait()
            codes.append(own.post("/hooks/alerts", json=FIRING).status_code)

    threads = [threading.Thread(target=send) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [200] * 19 + [202]
    assert sum(store.counts().values()) == 1


def test_two_replicas_racing_after_a_close_still_make_one_ticket(
    alerts: Any, emulator: EmulatorServer
) -> None:
    client, store, settings = alerts
    post(client, FIRING)
    deliver(store, settings)
    for ticket in emulator.state.tickets.values():
        ticket.status = "resolved"
    replicas = [
        create_app(settings, store=SubmissionStore(store.url)).test_client() for _ in range(2)
    ]
    barrier = threading.Barrier(10)
    codes: list[int] = []

    def send(n: int) -> None:
        barrier.wait()
        codes.append(replicas[n % 2].post("/hooks/alerts", json=FIRING).status_code)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [200] * 9 + [202]
    assert sum(store.counts().values()) == 2
    for replica in replicas:
        replica.application.extensions["bridge"].store.dispose()
