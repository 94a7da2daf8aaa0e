"""Spam quarantine: content rules score a submission; over the threshold it is kept without
a ticket, answered as usual, and an operator releases (exactly one ticket) or discards it;
unreleased ones expire. Honeypot and time-token catches can be kept the same way."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.security import generate_password_hash

from bridge.app import create_app
from bridge.config import settings_from_text
from bridge.observability import Metrics
from bridge.outbox.store import SubmissionStore
from bridge.outbox.worker import DeliverySettings, Worker
from bridge.proprofs import ProProfsClient
from bridge.proprofs.emulator import EmulatorServer
from tests.conftest import ACCOUNT_EMAIL, TOKEN

AJAX = {"Accept": "application/json"}


PASSWORD = "console-password-1"


CONFIG = """
proprofs: {{account_email: ACCOUNT, token: TOKEN, base_url: "BASE"}}
store: "STORE"
admin: {{password_hash: "{hash}", secure_cookies: false}}
routes:
  contact:
    kind: form
    fields:
      name:    {{type: string}}
      email:   {{type: email, required: true}}
      message: {{type: text, required: true}}
    spam:
      honeypot: _hp
      keep: {keep}
      quarantine_for: 1h
      content:
        keywords: [casino, "crypto investment"]
        patterns: ["(?i)seo\\\\s+services"]
        max_links: 2
        blocked_domains: [spam.example]
        disposable_domains: true
        min_length: 10
        threshold: 5
  widget:
    kind: widget
    fields:
      email:   {{type: email, required: true}}
      message: {{type: text, required: true}}
    spam: {{content: {{keywords: [casino], threshold: 3}}}}
"""


@pytest.fixture
def console(
    store_url: str, emulator: EmulatorServer, request: pytest.FixtureRequest
) -> Iterator[tuple[FlaskClient, SubmissionStore, Any]]:
    keep = getattr(request, "param", False)
    text = CONFIG.format(hash=generate_password_hash(PASSWORD), keep=str(keep).lower())
    text = text.replace("STORE", store_url).replace("BASE", emulator.base_url)
    text = text.replace("ACCOUNT", ACCOUNT_EMAIL).replace("TOKEN", TOKEN)
    settings = settings_from_text(text, env={})
    store = SubmissionStore(store_url)
    app = create_app(settings, store=store)
    client = app.test_client()
    yield client, store, app
    store.dispose()


def log_in(client: FlaskClient) -> str:
    import re

    page = client.get("/admin/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    answer = client.post("/admin/login", data={"password": PASSWORD, "csrf_token": token.group(1)})
    assert answer.status_code == 303
    page = client.get("/admin/spam").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    return token.group(1)


def deliver(store: SubmissionStore, emulator: EmulatorServer) -> None:
    with ProProfsClient(emulator.base_url, ACCOUNT_EMAIL, TOKEN) as client:
        Worker(store, client, DeliverySettings(poll_interval=0.05)).run(
            until_idle=True, max_seconds=30
        )


SPAM = {"email": "bot@spam.example", "message": "Try our casino today: http://a.example"}


def test_a_quarantined_submission_is_answered_as_usual_and_makes_no_ticket(
    console: Any, emulator: EmulatorServer
) -> None:
    client, store, app = console
    answer = client.post("/forms/contact", data=SPAM, headers=AJAX)
    assert answer.status_code == 202 and answer.get_json()["status"] == "accepted"
    held_id = answer.get_json()["id"]
    redirect = client.post("/forms/contact", data={**SPAM, "name": "Other"})
    assert redirect.status_code == 303 and "/thanks" in redirect.headers["Location"]
    assert sum(store.counts().values()) == 0  # nothing in the outbox
    (_newer, held) = store.quarantine.list()
    assert held.id == held_id and held.route == "contact"
    assert held.score == 3 + 10 and held.reasons == [
        "keyword: casino",
        "blocked_domain: spam.example",
    ]
    good = client.post(
        "/forms/contact",
        data={"email": "jane@example.com", "message": "Where is my parcel?"},
        headers=AJAX,
    )
    assert good.status_code == 202
    deliver(store, emulator)
    assert len(emulator.state.tickets) == 1  # only the person's
    metrics = app.extensions["bridge"].metrics.exposition().decode()
    assert 'bridge_quarantine_total{action="quarantined",route="contact"} 2.0' in metrics
    assert 'outcome="quarantined"' in metrics


def test_release_makes_exactly_one_ticket_and_discard_none(
    console: Any, emulator: EmulatorServer
) -> None:
    client, store, app = console
    kept = client.post("/forms/contact", data=SPAM, headers=AJAX).get_json()["id"]
    dropped = client.post(
        "/forms/contact", data={**SPAM, "message": "Casino! http://x.example/1"}, headers=AJAX
    ).get_json()["id"]
    csrf = log_in(client)
    page = client.get("/admin/spam").get_data(as_text=True)
    assert kept in page and "blocked_domain: spam.example" in page and "bot@spam.example" in page
    assert client.post(f"/admin/spam/{kept}/release").status_code == 400  # no CSRF token
    released = client.post(f"/admin/spam/{kept}/release", data={"csrf_token": csrf})
    assert released.status_code == 303
    assert "Released" in client.get(released.headers["Location"]).get_data(as_text=True)
    again = client.post(f"/admin/spam/{kept}/release", data={"csrf_token": csrf})
    assert "no longer held" in client.get(again.headers["Location"]).get_data(as_text=True)
    assert (
        client.post(f"/admin/spam/{dropped}/discard", data={"csrf_token": csrf}).status_code == 303
    )
    assert store.quarantine.list() == []
    deliver(store, emulator)
    (ticket,) = emulator.state.tickets.values()
    assert kept in (ticket.description or "")  # the same reference: reconcilable, once
    sub = store.get(kept)
    assert sub is not None and sub.state == "delivered"
    assert store.get(dropped) is None
    metrics = app.extensions["bridge"].metrics.exposition().decode()
    assert 'bridge_quarantine_total{action="released",route="contact"} 1.0' in metrics
    assert 'bridge_quarantine_total{action="discarded",route="contact"} 1.0' in metrics


def test_quarantined_submissions_expire_in_the_delivery_process(
    console: Any, emulator: EmulatorServer
) -> None:
    client, store, _ = console
    client.post("/forms/contact", data=SPAM, headers=AJAX)
    (held,) = store.quarantine.list()
    assert held.expires_at == pytest.approx(held.created_at + 3600)
    later = [held.expires_at + 1]
    with ProProfsClient(emulator.base_url, ACCOUNT_EMAIL, TOKEN) as proprofs:
        worker = Worker(store, proprofs, clock=lambda: later[0], metrics=Metrics())
        later[0] = held.expires_at - 1
        worker.housekeeping()
        assert len(store.quarantine.list()) == 1  # not yet
        later[0] = held.expires_at + 1
        worker.housekeeping()
    assert store.quarantine.list() == []
    assert 'bridge_quarantine_total{action="expired",route="contact"} 1.0' in (
        worker.metrics.exposition().decode()
    )


def test_the_widget_quarantines_and_its_status_view_says_received(console: Any) -> None:
    client, store, _ = console
    answer = client.post(
        "/widget/widget", json={"fields": {"email": "a@x.org", "message": "casino casino"}}
    )
    assert answer.status_code == 202
    receipt = answer.get_json()["receipt"]
    assert store.counts()["pending"] == 0 and len(store.quarantine.list()) == 1
    status = client.get(f"/widget/widget/status/{receipt}")
    assert status.status_code == 200 and status.get_json()["state"] == "received"


@pytest.mark.parametrize("console", [True], indirect=True)
def test_with_keep_a_honeypot_catch_is_quarantined_not_dropped(
    console: Any, emulator: EmulatorServer
) -> None:
    client, store, _ = console
    person = {"email": "jane@example.com", "message": "My autofill filled a hidden box", "_hp": "x"}
    answer = client.post("/forms/contact", data=person, headers=AJAX)
    assert answer.status_code == 202
    (held,) = store.quarantine.list()
    assert held.reasons == ["honeypot: filled"]
    assert store.quarantine.release(held.id) is not None
    deliver(store, emulator)
    assert len(emulator.state.tickets) == 1
    # A bot's post that is not even a valid form is still dropped, not kept.
    junk = client.post("/forms/contact", data={"_hp": "x", "email": "nope"}, headers=AJAX)
    assert junk.status_code == 202 and store.quarantine.list() == []


def test_a_released_submission_whose_key_was_taken_meanwhile_is_that_one(
    store: SubmissionStore,
) -> None:
    from bridge.proprofs import TicketDraft

    draft = TicketDraft(email="a@x.org", subject="S", description="d")
    held = store.quarantine.hold(
        "r",
        "form",
        draft,
        score=6,
        reasons=["keyword: x"],
        expires_at=time.time() + 60,
        dedup_key="r:same:1",
    )
    first = store.enqueue("r", "form", draft, dedup_key="r:same:1")
    result = store.quarantine.release(held)
    assert result is not None and result.duplicate and result.id == first.id
    assert store.counts()["pending"] == 1 and store.quarantine.list() == []
