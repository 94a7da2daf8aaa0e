"""The mirror of the bridge's tickets: its first sync, its polls, its budget and its turn,
against the emulator, on SQLite and PostgreSQL (outbox/mirror.py; PROPROFS_API L1-L7)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import requests

from bridge.outbox.mirror import Mirror, is_fresh
from bridge.outbox.store import SubmissionStore
from bridge.proprofs import ProProfsClient
from bridge.proprofs.emulator import EmulatorServer
from tests.support.mirror import made


def others(emulator: EmulatorServer, count: int) -> None:
    """Tickets someone else made in the same account (no reference of ours)."""
    created = datetime.fromtimestamp(time.time() - 1800, UTC).isoformat()
    tickets = [
        {"email": f"x{n}@example.org", "subject": f"Other {n}", "created": created}
        for n in range(count)
    ]
    requests.post(
        f"{emulator.url}/_emulator/tickets", json={"tickets": tickets}, timeout=10
    ).raise_for_status()


def calls(emulator: EmulatorServer) -> int:
    stats = requests.get(f"{emulator.url}/_emulator/stats", timeout=5).json()
    return int(stats["calls"].get("list/ticket/", 0))


def test_the_first_sync_keeps_the_bridges_tickets_and_a_quiet_poll_costs_one_call(
    store: SubmissionStore, client: ProProfsClient, emulator: EmulatorServer
) -> None:
    ours = made(store, emulator, 30)
    others(emulator, 20)
    mirror = Mirror(store, client, every=30, max_calls_per_minute=100)
    before = calls(emulator)
    spent = mirror.poll(force=True)
    assert spent == calls(emulator) - before == 2  # 50 tickets: two pages (L6)
    assert store.mirror.count() == 30
    assert is_fresh(store.mirror.state(), 30)
    held = store.mirror.get(ours[0])
    assert held is not None and held.route == "contact" and held.ticket.status == "new"
    assert store.mirror.get("99999") is None
    # Nothing changed: a poll is one call.
    assert mirror.poll(force=True) == 1
    # Staff reply to one and close another: the next poll sees both.
    requests.post(
        f"{emulator.url}/_emulator/tickets/{ours[1]}/reply", json={"text": "Done."}, timeout=5
    ).raise_for_status()
    requests.post(
        f"{emulator.url}/_emulator/tickets/{ours[2]}/status", json={"status": "closed"}, timeout=5
    ).raise_for_status()
    assert mirror.poll(force=True) == 1
    replied = store.mirror.get(ours[1])
    closed = store.mirror.get(ours[2])
    assert replied is not None and replied.first_reply_at is not None
    assert replied.ticket.messages[-1].text == "Done."
    assert closed is not None and not closed.ticket.is_open
    assert [t.ticket.ticket_id for t in store.mirror.of_requester("Person1@example.com")] == [
        ours[n] for n in (28, 25, 22, 19, 16, 13, 10, 7, 4, 1)
    ]


def test_the_budget_stops_a_sync_and_the_next_poll_goes_on_from_there(
    store: SubmissionStore, client: ProProfsClient, emulator: EmulatorServer
) -> None:
    made(store, emulator, 60)  # three pages
    mirror = Mirror(store, client, every=30, max_calls_per_minute=2)
    assert mirror.poll(force=True) == 2
    state = store.mirror.state()
    assert state.initial_from is not None and state.initial_page == 3
    assert store.mirror.count() == 50 and not is_fresh(state, 30)
    mirror.calls.clear()  # a minute later
    assert mirror.poll(force=True) == 1
    assert store.mirror.count() == 60
    assert store.mirror.state().initial_from is None and is_fresh(store.mirror.state(), 30)


def test_one_process_syncs_at_a_time(
    store: SubmissionStore, client: ProProfsClient, emulator: EmulatorServer
) -> None:
    made(store, emulator, 3)
    first = Mirror(store, client, owner="a")
    second = Mirror(store, client, owner="b")
    assert first.poll(force=True) == 1
    assert second.poll(force=True) == 0  # a's turn lasts its lease
    assert first.poll(force=True) == 1
    assert store.mirror.take_turn("b", time.time() + 3600, lease=60)  # a's lease ran out


def test_a_failing_list_leaves_the_cursor_where_it_was(
    store: SubmissionStore, client: ProProfsClient, emulator: EmulatorServer
) -> None:
    made(store, emulator, 2)
    mirror = Mirror(store, client)
    mirror.poll(force=True)
    cursor = store.mirror.state().cursor
    emulator.state.faults.update({"error_rate": 1.0, "error_status": 503})
    mirror.poll(force=True)
    assert store.mirror.state().cursor == cursor


def test_a_first_sync_past_three_months_asks_in_windows_the_api_takes(
    store: SubmissionStore, client: ProProfsClient, emulator: EmulatorServer
) -> None:
    old = made(store, emulator, 2, age=200 * 86400.0)  # the bridge's first, 200 days ago
    made(store, emulator, 2)
    mirror = Mirror(store, client, max_calls_per_minute=100)
    before = len(emulator.state.calls)
    mirror.poll(force=True)
    asked = [c["body"] for c in list(emulator.state.calls)[before:] if c["endpoint"] == "list"]
    starts = {body["start_created_date"] for body in asked}
    assert len(starts) >= 3  # 200 days in windows of at most three months (L1)
    assert store.mirror.count() == 4
    # Staff's labels come with the ticket (alert routes steer by them).
    requests.post(
        f"{emulator.url}/_emulator/tickets/{old[0]}/labels",
        json={"labels": ["bridge-wontfix"]},
        timeout=5,
    ).raise_for_status()
    mirror.poll(force=True)
    held = store.mirror.get(old[0])
    assert held is not None and [label.name for label in held.ticket.labels] == ["bridge-wontfix"]
