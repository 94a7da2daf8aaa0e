"""The widget knows its people: a verified requester sees every ticket the bridge made for
them (from the mirror), newest first, with each one's public thread; the widget says how
soon replies come when the mirror has enough to say it."""

from __future__ import annotations

import hashlib
import hmac
import time

import requests

from bridge.app import create_app
from bridge.outbox.store import SubmissionStore
from bridge.proprofs.emulator import EmulatorServer
from tests.support.alerts import deliver
from tests.support.configs import settings_with
from tests.support.mirror import sync

SITE = "https://shop.example.com"
SECRET = "people-identity-secret-0123"
ROUTES = f"""
routes:
  support:
    kind: widget
    fields:
      email:   {{type: email, required: true}}
      message: {{type: text, required: true}}
    origins: ["{SITE}"]
    widget: {{identity_secret: {SECRET}}}
    ticket: {{inbox: IB238-500}}
  contact:
    kind: form
    fields:
      email:   {{type: email, required: true}}
      message: {{type: text, required: true}}
    origins: ["{SITE}"]
"""
ORIGIN = {"Origin": SITE}


def identity(email: str, secret: str = SECRET) -> dict[str, str]:
    signed = hmac.new(secret.encode(), email.lower().encode(), hashlib.sha256).hexdigest()
    return {"email": email, "hmac": signed}


def agent(emulator: EmulatorServer, ticket_id: str, kind: str, text: str) -> None:
    requests.post(
        f"{emulator.url}/_emulator/tickets/{ticket_id}/{kind}", json={"text": text}, timeout=5
    ).raise_for_status()


def test_a_verified_requester_sees_all_their_tickets_on_any_device(
    emulator: EmulatorServer, store_url: str
) -> None:
    settings = settings_with(emulator, store_url, "mirror: {every: 30s}\n" + ROUTES)
    with SubmissionStore(store_url) as store:
        client = create_app(settings, store=store).test_client()
        for n in range(2):  # two from the widget, signed in, a second apart (the API's unit)
            client.post(
                "/widget/support",
                json={"fields": {"message": f"Widget {n}"}, "identity": identity("jo@example.com")},
                headers=ORIGIN,
            )
            deliver(store, settings)
            time.sleep(1.05)
        client.post(  # one from the contact form, the same person
            "/forms/contact", json={"email": "Jo@Example.com", "message": "Form"}, headers=ORIGIN
        )
        client.post(
            "/forms/contact",
            json={"email": "al@example.com", "message": "Not Jo's"},
            headers=ORIGIN,
        )
        deliver(store, settings)
        first = min(emulator.state.tickets, key=int)
        agent(emulator, first, "reply", "We are on it.")
        agent(emulator, first, "note", "Internal: refund?")
        sync(store, settings)
        answer = client.post(
            "/widget/support/mine", json={"identity": identity("jo@example.com")}, headers=ORIGIN
        )
        assert answer.status_code == 200
        assert answer.headers["Access-Control-Allow-Origin"] == SITE
        mine = answer.get_json()["tickets"]
        assert [t["messages"][0]["text"] for t in mine] == ["Form", "Widget 1", "Widget 0"]
        oldest = mine[-1]
        assert [m["text"] for m in oldest["messages"]] == ["Widget 0", "We are on it."]
        assert oldest["status"] == "open" and answer.get_json()["as_of"]
        forged = client.post(
            "/widget/support/mine",
            json={"identity": identity("jo@example.com", "not-the-secret-at-all")},
            headers=ORIGIN,
        )
        assert forged.status_code == 403
        preflight = client.options(
            "/widget/support/mine",
            headers={**ORIGIN, "Access-Control-Request-Method": "POST"},
        )
        assert preflight.status_code == 204
        assert preflight.headers["Access-Control-Allow-Origin"] == SITE
        assert forged.get_json()["code"] == "identity_not_verified"
        elsewhere = client.post(
            "/widget/support/mine",
            json={"identity": identity("jo@example.com")},
            headers={"Origin": "https://evil.example"},
        )
        assert elsewhere.status_code == 403


def test_without_a_mirror_there_is_no_history_to_show(
    emulator: EmulatorServer, store_url: str
) -> None:
    settings = settings_with(emulator, store_url, ROUTES)
    with SubmissionStore(store_url) as store:
        client = create_app(settings, store=store).test_client()
        answer = client.post(
            "/widget/support/mine", json={"identity": identity("jo@example.com")}, headers=ORIGIN
        )
        assert answer.status_code == 404 and answer.get_json()["code"] == "no_history"
        assert client.get("/widget/support/config", headers=ORIGIN).get_json()["reply_time"] is None


def test_the_reply_time_shows_once_there_are_enough_replies_to_say_it(
    emulator: EmulatorServer, store_url: str
) -> None:
    settings = settings_with(emulator, store_url, "mirror: {every: 30s}\n" + ROUTES)
    with SubmissionStore(store_url) as store:
        client = create_app(settings, store=store).test_client()
        for n in range(6):
            client.post(
                "/widget/support",
                json={"fields": {"email": f"p{n}@example.com", "message": f"Q {n}"}},
                headers=ORIGIN,
            )
        client.post(  # another inbox's ticket: not counted
            "/forms/contact", json={"email": "x@example.com", "message": "Form"}, headers=ORIGIN
        )
        deliver(store, settings)
        support = [k for k, v in emulator.state.tickets.items() if v.inbox == "IB238-500"]
        assert len(support) == 6
        for ticket_id in support[:4]:
            agent(emulator, ticket_id, "reply", "Hello!")
        agent(emulator, support[4], "note", "a note is no reply")
        sync(store, settings)
        config = client.get("/widget/support/config", headers=ORIGIN).get_json()
        assert config["reply_time"] is None  # 4 replies: too few to say
        agent(emulator, support[5], "reply", "Hello!")
        sync(store, settings)
        config = client.get("/widget/support/config", headers=ORIGIN).get_json()
        assert config["reply_time"]["replies"] == 5
        assert config["reply_time"]["text"] == "Usually replies within 1 minute"
