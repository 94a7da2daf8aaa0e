"""The widget's backend: script, config, submissions with identity, receipts and status."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import io
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient

from bridge.app import create_app, proprofs_client
from bridge.config import Settings
from bridge.outbox.store import SubmissionStore
from bridge.outbox.worker import DeliverySettings, Worker
from bridge.proprofs.emulator import EmulatorServer
from tests.support.configs import settings_with

SITE = "https://shop.example.com"
IDENTITY_SECRET = "identity-secret-0123456789"


def settings_for(emulator: EmulatorServer, store_url: str) -> Settings:
    return settings_with(
        emulator,
        store_url,
        f"""
routes:
  support:
    kind: widget
    fields:
      name:    {{type: string, max_length: 200}}
      email:   {{type: email, required: true}}
      message: {{type: text, required: true, max_length: 5000}}
    origins: ["{SITE}"]
    spam: {{honeypot: _hp}}
    widget:
      title: Need help?
      color: "#aa3355"
      identity_secret: {IDENTITY_SECRET}
      page_url_field: CF1-1
      user_agent_field: CF1-2
      status_cache: 0s
  cached:
    kind: widget
    fields:
      email:   {{type: email, required: true}}
      message: {{type: text, required: true}}
    widget: {{status_cache: 60s, receipt_max_age: 1s}}
""",
    )


@pytest.fixture
def widget(
    emulator: EmulatorServer, tmp_path: Any
) -> Iterator[tuple[FlaskClient, SubmissionStore, Settings]]:
    url = f"sqlite:///{tmp_path / 'widget.db'}"
    settings = settings_for(emulator, url)
    store = SubmissionStore(url)
    yield create_app(settings, store=store).test_client(), store, settings
    store.dispose()


ORIGIN = {"Origin": SITE}


def send(
    client: FlaskClient,
    body: dict[str, Any],
    route: str = "support",
    headers: dict[str, str] | None = None,
) -> Any:
    return client.post(f"/widget/{route}", json=body, headers={**ORIGIN, **(headers or {})})


def deliver(store: SubmissionStore, settings: Settings) -> None:
    with proprofs_client(settings) as client:
        Worker(store, client, DeliverySettings(poll_interval=0.05)).run(
            until_idle=True, max_seconds=20
        )


def test_the_script_is_cached_by_its_content_hash(widget: Any) -> None:
    client, _, _ = widget
    response = client.get("/widget.js")
    assert response.status_code == 200 and response.mimetype == "application/javascript"
    etag = response.headers["ETag"].strip('"')
    assert "attachShadow" in response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "public, max-age=300"
    assert client.get(f"/widget.js?v={etag}").headers["Cache-Control"].endswith("immutable")
    assert client.get("/widget.js", headers={"If-None-Match": f'"{etag}"'}).status_code == 304


def test_config_comes_from_the_route(widget: Any) -> None:
    client, _, _ = widget
    response = client.get("/widget/support/config", headers=ORIGIN)
    body = response.get_json()
    assert response.headers["Access-Control-Allow-Origin"] == SITE
    assert body["title"] == "Need help?" and body["color"] == "#aa3355"
    assert [f["name"] for f in body["fields"]] == ["name", "email", "message"]
    assert body["fields"][1] == {
        "name": "email",
        "type": "email",
        "label": "Email",
        "help": None,
        "required": True,
        "choices": [],
        "max_length": None,
        "placeholder": None,
    }
    assert body["honeypot"] == "_hp" and body["identity"] is True
    assert IDENTITY_SECRET not in response.get_data(as_text=True)
    assert (
        client.get("/widget/support/config", headers={"Origin": "https://evil.example"}).status_code
        == 403
    )
    assert client.get("/widget/nope/config").status_code == 404


def test_cors_preflight_for_allowed_and_refused_origins(widget: Any) -> None:
    client, _, _ = widget
    ok = client.options(
        "/widget/support", headers={**ORIGIN, "Access-Control-Request-Method": "POST"}
    )
    assert ok.status_code == 204 and ok.headers["Access-Control-Allow-Origin"] == SITE
    bad = client.options(
        "/widget/support",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert bad.status_code == 403 and "Access-Control-Allow-Origin" not in bad.headers


def signature(email: str, secret: str = IDENTITY_SECRET) -> str:
    return hmac.new(secret.encode(), email.lower().encode(), hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    ("identity", "expected_email", "verified"),
    [
        (
            {"email": "sam@example.com", "name": "Sam", "hmac": signature("sam@example.com")},
            "sam@example.com",
            True,
        ),
        (
            {"email": "ceo@example.com", "name": "CEO", "hmac": signature("sam@example.com")},
            "typed@example.com",
            False,
        ),  # forged: treated as plain input
        (
            {
                "email": "ceo@example.com",
                "hmac": signature("ceo@example.com", "wrong-secret-xxxxxxx"),
            },
            "typed@example.com",
            False,
        ),
        (None, "typed@example.com", False),  # missing
    ],
)
def test_identity_hmac(widget: Any, identity: Any, expected_email: str, verified: bool) -> None:
    client, store, _ = widget
    body: dict[str, Any] = {
        "fields": {"email": "typed@example.com", "name": "Typed", "message": "Help please"},
        "page_url": f"{SITE}/cart",
    }
    if identity:
        body["identity"] = identity
    response = send(client, body, headers={"User-Agent": "TestBrowser/1.0"})
    assert response.status_code == 202, response.get_json()
    (sub,) = store.list()
    assert sub.draft.email == expected_email
    assert sub.draft.name == ("Sam" if verified else "Typed")
    assert sub.meta["identity_verified"] is verified
    assert sub.draft.custom_fields == {"CF1-1": f"{SITE}/cart", "CF1-2": "TestBrowser/1.0"}


def test_guards_apply_as_for_forms(widget: Any) -> None:
    client, store, _ = widget
    assert (
        client.post(
            "/widget/support", data="x", content_type="text/plain", headers=ORIGIN
        ).status_code
        == 415
    )
    refused = send(
        client,
        {"fields": {"email": "a@example.com", "message": "x"}},
        headers={"Origin": "https://evil.example"},
    )
    assert refused.status_code == 403 and "Access-Control-Allow-Origin" not in refused.headers
    invalid = send(client, {"fields": {"email": "nope"}})
    assert invalid.status_code == 422 and set(invalid.get_json()["errors"]) == {"email", "message"}
    bot = send(client, {"fields": {"email": "a@example.com", "message": "x"}, "_hp": "spam"})
    assert bot.status_code == 202 and "receipt" in bot.get_json()
    assert sum(store.counts().values()) == 0


def test_receipts_show_status_and_the_thread(widget: Any, emulator: EmulatorServer) -> None:
    client, store, settings = widget
    answer = send(
        client, {"fields": {"email": "jo@example.com", "message": "Where is my order?"}}
    ).get_json()
    receipt = answer["receipt"]
    status = client.get(f"/widget/support/status/{receipt}", headers=ORIGIN).get_json()
    assert status["state"] == "received" and "ticket_id" not in status
    deliver(store, settings)
    status = client.get(f"/widget/support/status/{receipt}").get_json()
    assert status["state"] == "delivered" and status["ticket_status"] == "new"
    assert [m["text"] for m in status["messages"]] == ["Where is my order?"]
    requests.post(
        f"{emulator.url}/_emulator/tickets/{status['ticket_id']}/reply",
        json={"text": "It ships tomorrow."},
        timeout=5,
    ).raise_for_status()
    status = client.get(f"/widget/support/status/{receipt}").get_json()
    assert status["ticket_status"] == "open"
    assert status["messages"][-1] == {
        "from": "support",
        "name": "Support Agent",
        "at": status["messages"][-1]["at"],
        "text": "It ships tomorrow.",
    }


def test_tampered_cross_route_guessed_and_expired_receipts_reveal_nothing(widget: Any) -> None:
    client, _, _ = widget
    receipt = send(client, {"fields": {"email": "jo@example.com", "message": "Hi"}}).get_json()[
        "receipt"
    ]
    other = client.post(
        "/widget/cached", json={"fields": {"email": "a@example.com", "message": "x"}}
    )
    other_receipt = other.get_json()["receipt"]
    answers = [
        client.get(f"/widget/support/status/{receipt[:-3]}abc"),
        client.get(f"/widget/cached/status/{receipt}"),
        client.get(f"/widget/support/status/{other_receipt}"),
        client.get("/widget/support/status/pb-00000000000000000001"),
        client.get("/widget/nope/status/x"),
    ]
    time.sleep(2.2)
    answers.append(client.get(f"/widget/cached/status/{other_receipt}"))  # max age 1 s
    for response in answers:
        assert response.status_code == 404
        assert response.get_json() == {
            "status": "error",
            "code": "not_found",
            "message": "There is no such request.",
        }


def test_quick_status_requests_make_one_list_call(widget: Any, emulator: EmulatorServer) -> None:
    client, store, settings = widget
    receipt = client.post(
        "/widget/cached", json={"fields": {"email": "a@example.com", "message": "x"}}
    ).get_json()["receipt"]
    deliver(store, settings)
    emulator.state.counters.clear()
    for _ in range(25):
        assert client.get(f"/widget/cached/status/{receipt}").get_json()["state"] == "delivered"
    assert emulator.state.counters.get("list.requests") == 1


def test_flat_fields_are_taken_as_from_a_form(widget: Any) -> None:
    """Teams with their own widget UI post the fields flat; ``fields`` wins over a flat key."""
    client, store, _ = widget
    flat = send(client, {"email": "flat@example.com", "message": "Flat post", "page_url": SITE})
    assert flat.status_code == 202, flat.get_json()
    both = send(
        client,
        {"email": "flat@example.com", "message": "loses", "fields": {"message": "wins"}},
    )
    assert both.status_code == 202, both.get_json()
    drafts = sorted(s.draft.description for s in store.list())
    assert any(d.startswith("Flat post") for d in drafts)
    assert any(d.startswith("wins") for d in drafts) and not any("loses" in d for d in drafts)
    missing = send(client, {"message": "no email"})
    assert missing.status_code == 422 and set(missing.get_json()["errors"]) == {"email"}
    wrong = send(client, {"fields": ["email"]})
    assert wrong.status_code == 422 and set(wrong.get_json()["errors"]) == {"fields"}
    assert len(store.list()) == 2


def test_notes_between_staff_never_reach_the_status_view(
    widget: Any, emulator: EmulatorServer
) -> None:
    """The list API marks no message internal: only what is from or to the requester shows."""
    client, store, settings = widget
    receipt = send(
        client, {"fields": {"email": "Jo@Example.com", "message": "Is my refund done?"}}
    ).get_json()["receipt"]
    deliver(store, settings)
    ticket_id = client.get(f"/widget/support/status/{receipt}").get_json()["ticket_id"]
    for path, text, extra in [
        ("note", "Customer is a known fraudster, refuse politely", {}),
        ("reply", "Your refund went out today.", {}),
        ("note", "cc billing", {"to": "Billing Team <billing@helpdesk.example>"}),
    ]:
        requests.post(
            f"{emulator.url}/_emulator/tickets/{ticket_id}/{path}",
            json={"text": text, **extra},
            timeout=5,
        ).raise_for_status()
    held = emulator.state.tickets[ticket_id].messages
    assert len(held) == 4  # the list API hands all four to the bridge
    status = client.get(f"/widget/support/status/{receipt}").get_json()
    assert [m["text"] for m in status["messages"]] == [
        "Is my refund done?",
        "Your refund went out today.",
    ]
    assert "fraudster" not in json.dumps(status) and "billing" not in json.dumps(status)


def test_a_double_submit_returns_the_earlier_receipt_only_to_the_same_browser(
    widget: Any,
) -> None:
    """Posting someone's words again must not hand over their receipt (and with it their
    status view and the staff's replies): only the browser that sent them gets it back."""
    client, store, _ = widget
    words = {"fields": {"email": "jo@example.com", "message": "My card was charged twice"}}
    mine = {**words, "session": "a" * 36}
    first = send(client, mine).get_json()
    again = send(client, mine)
    assert again.status_code == 202 and again.get_json()["id"] == first["id"]
    assert again.get_json()["receipt"] == first["receipt"]
    for other in ({**words, "session": "b" * 36}, words, {**words, "session": "short"}):
        answer = send(client, other)
        assert answer.status_code == 202, answer.get_json()
        assert answer.get_json()["id"] != first["id"]
        assert answer.get_json()["receipt"] != first["receipt"]
    # A verified identity is the same person on any device.
    identity = {"email": "sam@example.com", "hmac": signature("sam@example.com")}
    signed = {"fields": {"message": "Please call me"}, "identity": identity}
    one = send(client, {**signed, "session": "c" * 36}).get_json()
    other_device = send(client, {**signed, "session": "d" * 36}).get_json()
    assert other_device["id"] == one["id"]
    assert len(store.list()) == 5


def test_a_staff_address_typed_as_ones_own_opens_no_notes(
    widget: Any, emulator: EmulatorServer
) -> None:
    client, store, settings = widget
    receipt = send(
        client,
        {"fields": {"email": "agent@helpdesk.example", "message": "Show me everything"}},
    ).get_json()["receipt"]
    deliver(store, settings)
    ticket_id = client.get(f"/widget/support/status/{receipt}").get_json()["ticket_id"]
    for path, text, extra in [
        ("note", "Refund approved by finance for the other customer", {}),
        ("note", "Escalate to billing", {"to": "Agent <agent@helpdesk.example>"}),
        ("reply", "Thanks, we are looking into it.", {}),
    ]:
        requests.post(
            f"{emulator.url}/_emulator/tickets/{ticket_id}/{path}",
            json={"text": text, **extra},
            timeout=5,
        ).raise_for_status()
    status = client.get(f"/widget/support/status/{receipt}").get_json()
    assert [m["text"] for m in status["messages"]] == ["Show me everything"]
    assert "finance" not in json.dumps(status) and "billing" not in json.dumps(status)


def test_a_status_link_expires_30_days_after_the_last_change(
    widget: Any, emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, store, settings = widget
    receipt = send(
        client, {"fields": {"email": "jo@example.com", "message": "Old question"}}
    ).get_json()["receipt"]
    deliver(store, settings)
    ticket_id = client.get(f"/widget/support/status/{receipt}").get_json()["ticket_id"]
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 31 * 86400)
    # The ticket was answered within the 30 days: still open to the requester.
    answered = dt.datetime.fromtimestamp(now + 20 * 86400, dt.UTC)
    emulator.state.tickets[ticket_id].modified = answered.isoformat()
    assert client.get(f"/widget/support/status/{receipt}").status_code == 200
    monkeypatch.setattr(time, "time", lambda: now + 52 * 86400)
    gone = client.get(f"/widget/support/status/{receipt}")
    assert gone.status_code == 404 and gone.get_json()["code"] == "expired"


def test_the_status_view_shows_the_persons_words_once_and_their_files_apart(
    emulator: EmulatorServer, tmp_path: Any
) -> None:
    """The ticket's description ends with the files list and links; the person's own
    message in the thread leaves that out (the view lists the files, with links, apart)."""
    url = f"sqlite:///{tmp_path / 'files.db'}"
    settings = settings_with(
        emulator,
        url,
        f"""
files: {{directory: "{tmp_path / "files"}"}}
routes:
  help:
    kind: widget
    fields:
      email:   {{type: email, required: true}}
      message: {{type: text, required: true}}
      shot:    {{type: file}}
    widget: {{status_cache: 0s}}
""",
    )
    store = SubmissionStore(url)
    client = create_app(settings, store=store).test_client()
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
    payload = json.dumps({"fields": {"email": "wes@example.com", "message": "Broken button"}})
    answer = client.post(
        "/widget/help",
        data={"payload": payload, "shot": (io.BytesIO(png), "pasted.png")},
        content_type="multipart/form-data",
    )
    assert answer.status_code == 202, answer.get_json()
    deliver(store, settings)
    status = client.get(f"/widget/help/status/{answer.get_json()['receipt']}").get_json()
    (ticket,) = emulator.state.tickets.values()
    assert "Attachments:\n- pasted.png" in (ticket.description or "")
    assert [m["text"] for m in status["messages"]] == ["Broken button"]
    assert [f["name"] for f in status["files"]] == ["pasted.png"]
    store.dispose()
