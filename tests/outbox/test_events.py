"""Signed outbound events: each change the mirror sees is posted to the subscribers that
asked for it, signed by the Standard Webhooks scheme (verified here with the reference
``standardwebhooks`` library, not the bridge's own code), through the outbox: retried,
dead-lettered, replayable, paused per subscriber; on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from standardwebhooks import Webhook

from bridge.mapping import Template, footer
from bridge.outbox.events import Subscriber
from bridge.outbox.mirror import Mirror
from bridge.outbox.records import new_submission_id
from bridge.outbox.retry import RetryPolicy
from bridge.outbox.store import SubmissionStore
from bridge.outbox.worker import DeliverySettings, Worker
from bridge.proprofs import ProProfsClient, TicketDraft, TicketUpdate
from bridge.proprofs.emulator import EmulatorServer
from tests.support.mirror import made
from tests.support.receiver import Receiver

SECRET = "whsec_" + base64.b64encode(b"events-test-key-0123456789ab").decode()
FAST = DeliverySettings(poll_interval=0.05, retry=RetryPolicy(schedule=(0.1, 0.1), jitter=0))
SLACK = (
    '{"text": {{ (event.type ~ " #" ~ event.data.ticket_id ~ ": " ~ event.data.subject)|tojson }}}'
)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


def subscriber(receiver: Receiver, **extra: Any) -> Subscriber:
    return Subscriber(name="ops", url=receiver.url, secret=SECRET, **extra)


def deliver(store: SubmissionStore, client: ProProfsClient, *subscribers: Subscriber) -> None:
    by_name = {s.name: s for s in subscribers}
    Worker(store, client, FAST, subscribers=by_name).run(until_idle=True, max_seconds=20)


def verified(receiver: Receiver) -> list[dict[str, Any]]:
    """Every post, its signature checked by the reference library."""
    hook = Webhook(SECRET)
    return [hook.verify(body, headers) for headers, body in receiver.posts]


def test_each_change_becomes_a_signed_event_for_its_subscriber(
    store: SubmissionStore, client: ProProfsClient, emulator: EmulatorServer, receiver: Receiver
) -> None:
    ours = made(store, emulator, 2)
    ops = subscriber(receiver)
    mirror = Mirror(store, client, subscribers=[ops])
    mirror.poll(force=True)  # the first sync: what was there before tells no one
    deliver(store, client, ops)
    assert receiver.posts == []
    requests.post(
        f"{emulator.url}/_emulator/tickets/{ours[0]}/reply", json={"text": "On it."}, timeout=5
    ).raise_for_status()
    requests.post(
        f"{emulator.url}/_emulator/tickets/{ours[0]}/note", json={"text": "psst"}, timeout=5
    ).raise_for_status()
    client.update_ticket(ours[1], TicketUpdate(staff="ST007-009", priority="high"))
    mirror.poll(force=True)
    deliver(store, client, ops)
    events = verified(receiver)
    kinds = sorted((e["type"], e["data"]["ticket_id"]) for e in events)
    assert kinds == [
        ("ticket.assigned", ours[1]),
        ("ticket.replied", ours[0]),  # one: the note is no reply
        ("ticket.status_changed", ours[0]),
        ("ticket.updated", ours[1]),
    ]
    replied = next(e for e in events if e["type"] == "ticket.replied")
    assert replied["data"]["reply"]["text"] == "On it."
    changed = next(e for e in events if e["type"] == "ticket.status_changed")
    assert (changed["data"]["previous_status"], changed["data"]["status"]) == ("new", "open")
    updated = next(e for e in events if e["type"] == "ticket.updated")
    assert updated["data"]["changed"] == ["priority"]
    ids = {headers["webhook-id"] for headers, _ in receiver.posts}
    assert len(ids) == 4  # each event its own id
    # Polled again, nothing new: nothing sent twice.
    mirror.poll(force=True)
    deliver(store, client, ops)
    assert len(receiver.posts) == 4


def test_a_subscriber_hears_only_its_events_and_routes_in_its_own_body(
    store: SubmissionStore, client: ProProfsClient, emulator: EmulatorServer, receiver: Receiver
) -> None:
    ours = made(store, emulator, 1)
    slack = subscriber(receiver, events=("ticket.status_changed",), body=Template(SLACK, "t"))
    elsewhere = Subscriber(
        name="other", url=receiver.url, secret=SECRET, routes=("alerts",)
    )  # the tickets are the contact route's
    mirror = Mirror(store, client, subscribers=[slack, elsewhere])
    mirror.poll(force=True)
    requests.post(
        f"{emulator.url}/_emulator/tickets/{ours[0]}/status", json={"status": "closed"}, timeout=5
    ).raise_for_status()
    requests.post(
        f"{emulator.url}/_emulator/tickets/{ours[0]}/labels", json={"labels": ["vip"]}, timeout=5
    ).raise_for_status()
    mirror.poll(force=True)
    deliver(store, client, slack, elsewhere)
    assert [json.loads(body) for _, body in receiver.posts] == [
        {"text": f"ticket.status_changed #{ours[0]}: Question 0"}
    ]
    Webhook(SECRET).verify(receiver.posts[0][1], receiver.posts[0][0])  # the body as sent


def test_a_failing_subscriber_is_retried_then_dead_and_replayed_and_pausing_holds_it(
    store: SubmissionStore, client: ProProfsClient, emulator: EmulatorServer
) -> None:
    ours = made(store, emulator, 1)
    failing = Receiver(fail=10)  # 503 for the first ten posts
    try:
        ops = subscriber(failing)
        mirror = Mirror(store, client, subscribers=[ops])
        mirror.poll(force=True)
        requests.post(
            f"{emulator.url}/_emulator/tickets/{ours[0]}/status", json={"status": "open"}, timeout=5
        ).raise_for_status()
        mirror.poll(force=True)
        deliver(store, client, ops)
        (event,) = store.list(route="events:ops")
        assert event.state == "dead" and event.kind == "event"
        assert "the subscriber answered HTTP 503" in (event.last_error or "")
        assert failing.url not in (event.last_error or "")  # a subscriber's URL is a secret
        assert len(failing.posts) == 2  # the schedule's two attempts, the same webhook-id
        assert len({h["webhook-id"] for h, _ in failing.posts}) == 1
        store.pauses.pause("events:ops", by="test")
        assert store.replay(event.id)
        deliver(store, client, ops)
        assert len(failing.posts) == 2  # paused: held
        store.pauses.resume("events:ops")
        failing.fail = 0
        deliver(store, client, ops)
        assert store.get(event.id).state == "delivered"  # type: ignore[union-attr]
        Webhook(SECRET).verify(failing.posts[-1][1], failing.posts[-1][0])
    finally:
        failing.close()


def test_a_new_ticket_after_the_first_sync_is_a_created_event(
    store: SubmissionStore, client: ProProfsClient, emulator: EmulatorServer, receiver: Receiver
) -> None:
    made(store, emulator, 1)
    ops = subscriber(receiver, events=("ticket.created",))
    mirror = Mirror(store, client, subscribers=[ops])
    mirror.poll(force=True)
    sid = new_submission_id()
    draft = TicketDraft(email="new@example.com", subject="New one", description=footer(sid))
    store.enqueue("contact", "form", draft, submission_id=sid)
    deliver(store, client, ops)  # the create
    mirror.poll(force=True)
    deliver(store, client, ops)  # the event
    (event,) = verified(receiver)
    assert event["type"] == "ticket.created" and event["data"]["subject"] == "New one"


def test_what_staff_did_before_the_first_poll_saw_a_ticket_is_told_too(
    store: SubmissionStore, client: ProProfsClient, emulator: EmulatorServer, receiver: Receiver
) -> None:
    made(store, emulator, 1)
    ops = subscriber(receiver)
    mirror = Mirror(store, client, subscribers=[ops])
    mirror.poll(force=True)
    sid = new_submission_id()
    draft = TicketDraft(email="quick@example.com", subject="Fast", description=footer(sid))
    store.enqueue("contact", "form", draft, submission_id=sid)
    deliver(store, client, ops)
    ticket_id = store.get(sid).ticket_id  # type: ignore[union-attr]
    requests.post(
        f"{emulator.url}/_emulator/tickets/{ticket_id}/reply", json={"text": "Done."}, timeout=5
    ).raise_for_status()
    mirror.poll(force=True)
    deliver(store, client, ops)
    kinds = sorted(e["type"] for e in verified(receiver))
    assert kinds == ["ticket.created", "ticket.replied", "ticket.status_changed"]


def test_a_subscriber_is_paused_and_listed_like_a_route(
    tmp_path: Path, emulator: EmulatorServer, receiver: Receiver
) -> None:
    from click.testing import CliRunner

    from bridge.cli import main

    config = tmp_path / "bridge.yaml"
    config.write_text(f"""
proprofs: {{base_url: "{emulator.base_url}", account_email: a@example.com, token: t0ken-t0ken}}
store: "sqlite:///{tmp_path / "e.db"}"
mirror: {{}}
events: {{ops: {{url: "{receiver.url}", secret: {SECRET}, events: [ticket.replied]}}}}
routes: {{contact: {{kind: hook, ticket: {{email: a@example.com}}}}}}
""")
    cli = CliRunner()
    paused = cli.invoke(main, ["routes", "pause", "events:ops", "--config", str(config)])
    assert paused.exit_code == 0 and paused.output == "route events:ops: paused\n"
    listing = cli.invoke(main, ["routes", "list", "--config", str(config)]).output
    assert re.search(r"events:ops\s+events\s+paused since ", listing)
    assert re.search(r"contact\s+hook\s+delivering", listing)
    unknown = cli.invoke(main, ["routes", "pause", "events:nope", "--config", str(config)])
    assert unknown.exit_code == 2 and "events:ops" in unknown.output
    assert receiver.url not in listing + unknown.output
