"""Captured payloads: a hook route's last raw notifications, credentials left out, shown by
the console through the route's current templates and sent again as test tickets."""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.security import generate_password_hash

from bridge.app import create_app
from bridge.outbox.store import SubmissionStore
from bridge.outbox.worker import Worker
from bridge.proprofs.client import ProProfsClient
from bridge.proprofs.emulator import EmulatorServer
from tests.support.alerts import group
from tests.support.configs import settings_with
from tests.support.console import PASSWORD, log_in, token

BEARER = "capture-bearer-secret-77"
HMAC = "capture-hmac-secret-88"


def config(
    emulator: EmulatorServer,
    store_url: str,
    subject: str = "{{ status }}: {{ commonLabels.alertname }}",
):  # type: ignore[no-untyped-def]
    return settings_with(
        emulator,
        store_url,
        f"""
admin: {{password_hash: "{generate_password_hash(PASSWORD)}"}}
routes:
  alerts:
    kind: hook
    source: alertmanager
    auth: {{bearer: {BEARER}}}
    capture: 3
    ticket: {{email: alerts@example.com, subject: "{subject}"}}
  quiet:
    kind: hook
    source: alertmanager
    auth: {{bearer: {BEARER}}}
    ticket: {{email: alerts@example.com}}
""",
    )


@pytest.fixture
def captured(
    emulator: EmulatorServer, store_url: str
) -> Iterator[tuple[FlaskClient, SubmissionStore]]:
    store = SubmissionStore(store_url)
    client = create_app(config(emulator, store_url), store=store).test_client()
    client.environ_base["wsgi.url_scheme"] = "https"
    yield client, store
    store.dispose()


AUTH = {"Authorization": f"Bearer {BEARER}", "X-Trace": "t-1", "X-Api-Key": "k-2"}


def test_the_last_n_authenticated_payloads_are_kept_without_credentials(captured: Any) -> None:
    client, store = captured
    for n in range(5):
        assert client.post("/hooks/alerts", json=group(f"A{n}"), headers=AUTH).status_code == 202
    # Refused by the schema: kept too (it is the one worth looking at); the token a sender
    # put into its own body is replaced.
    odd = {"receiver": "x", "status": "firing", "alerts": "nope", "note": BEARER}
    assert client.post("/hooks/alerts", json=odd, headers=AUTH).status_code == 422
    # Not authenticated, or on a route that keeps nothing: not kept.
    assert client.post("/hooks/alerts", json=group("X")).status_code == 401
    assert client.post("/hooks/quiet", json=group("Q"), headers=AUTH).status_code == 202

    kept = store.captures.list("alerts")
    assert len(kept) == 3 and store.captures.list("quiet") == []
    newest = kept[0]
    assert json.loads(newest["body"])["note"] == "[redacted]"
    assert [json.loads(c["body"])["groupLabels"]["alertname"] for c in kept[1:]] == ["A4", "A3"]
    headers = {k.lower(): v for k, v in newest["headers"].items()}
    assert headers["x-trace"] == "t-1" and headers["content-type"] == "application/json"
    assert "authorization" not in headers and "x-api-key" not in headers
    assert BEARER not in json.dumps([dict(c) for c in kept])


def test_a_body_past_64_kib_is_cut_and_cannot_be_sent_again(captured: Any) -> None:
    client, store = captured
    big = group("Big")
    big["commonAnnotations"] = {"description": "x" * 70_000}
    client.post("/hooks/alerts", json=big, headers=AUTH)
    (kept,) = store.captures.list("alerts")
    assert kept["truncated"] and len(kept["body"]) == 64 * 1024
    log_in(client)
    page = client.get(f"/admin/captures/{kept['id']}").get_data(as_text=True)
    assert "longer than 64 KiB" in page and "Send again" not in page


def test_the_console_renders_a_capture_through_the_current_templates_and_creates_nothing(
    captured: Any, emulator: EmulatorServer, store_url: str
) -> None:
    client, store = captured
    client.post("/hooks/alerts", json=group("DiskFull"), headers=AUTH)
    (kept,) = store.captures.list("alerts")
    before = store.counts()
    log_in(client)
    listing = client.get("/admin/captures").get_data(as_text=True)
    assert f"/admin/captures/{kept['id']}" in listing and "quiet" not in listing
    page = html.unescape(client.get(f"/admin/captures/{kept['id']}").get_data(as_text=True))
    assert "firing: DiskFull" in page and "X-Trace" in page
    # The route's subject template changes: the same capture renders the new way.
    changed = create_app(
        config(
            emulator,
            store_url,
            subject="[{{ status|upper }}] {{ commonLabels.alertname }} (edited)",
        ),
        store=store,
    ).test_client()
    changed.environ_base["wsgi.url_scheme"] = "https"
    log_in(changed)
    page = html.unescape(changed.get(f"/admin/captures/{kept['id']}").get_data(as_text=True))
    assert "[FIRING] DiskFull (edited)" in page
    assert store.counts() == before and emulator.state.tickets == {}


def test_send_again_makes_a_test_ticket_outside_the_incident(
    captured: Any, emulator: EmulatorServer
) -> None:
    client, store = captured
    client.post("/hooks/alerts", json=group("DiskFull"), headers=AUTH)
    (kept,) = store.captures.list("alerts")
    log_in(client)
    page = client.get(f"/admin/captures/{kept['id']}").get_data(as_text=True)
    refused = client.post(f"/admin/captures/{kept['id']}/send")
    assert refused.status_code == 400
    sent = client.post(f"/admin/captures/{kept['id']}/send", data={"csrf_token": token(page)})
    assert sent.status_code == 303
    shown = client.get(sent.headers["Location"]).get_data(as_text=True)
    tests = [s for s in store.list(limit=50) if (s.meta or {}).get("made_by") == "console"]
    assert len(tests) == 1 and tests[0].id in shown
    assert tests[0].draft.subject == "[test] firing: DiskFull" and tests[0].dedup_key is None
    # A second send is a second test ticket: it is not a repeat of the alert group.
    client.post(f"/admin/captures/{kept['id']}/send", data={"csrf_token": token(page)})
    client.post("/hooks/alerts", json=group("DiskFull"), headers=AUTH)  # a repeat
    assert sum((s.meta or {}).get("made_by") == "console" for s in store.list(limit=50)) == 2
    assert store.counts()["pending"] == 3  # the alert's own ticket and the two tests


def test_housekeeping_trims_captures_of_routes_that_now_keep_fewer(
    captured: Any, client: ProProfsClient
) -> None:
    web, store = captured
    for n in range(3):
        web.post("/hooks/alerts", json=group(f"A{n}"), headers=AUTH)
    store.captures.keep("gone", "application/json", {}, "{}", truncated=False, keep=5)
    Worker(store, client, captures={"alerts": 1}).housekeeping()
    names = [
        json.loads(c["body"])["groupLabels"]["alertname"] for c in store.captures.list("alerts")
    ]
    assert names == ["A2"] and store.captures.list("gone") == []
    store.captures.keep("gone", "application/json", {}, "{}", truncated=False, keep=5)
    Worker(store, client).housekeeping()  # not told what routes keep: leaves them be
    assert len(store.captures.list("gone")) == 1


def test_a_sender_that_posts_a_form_is_kept_as_its_fields_and_renders(
    emulator: EmulatorServer, store_url: str
) -> None:
    """UptimeRobot posts urlencoded fields and Uptime Kuma may post multipart: both are
    kept as urlencoded fields, which the console reads back as intake did."""
    settings = settings_with(
        emulator,
        store_url,
        f"""
admin: {{password_hash: "{generate_password_hash(PASSWORD)}"}}
routes:
  robot: {{kind: hook, source: uptimerobot, capture: 5, ticket: {{email: up@example.com}}}}
""",
    )
    store = SubmissionStore(store_url)
    try:
        client = create_app(settings, store=store).test_client()
        client.environ_base["wsgi.url_scheme"] = "https"
        fields = json.loads(Path("examples/payloads/senders/uptimerobot.json").read_text())
        assert client.post("/hooks/robot", data=fields).status_code == 202
        multipart = client.post(
            "/hooks/robot",
            data={**fields, "monitor_friendly_name": "Mail Server", "monitor_url": "mail.example"},
            content_type="multipart/form-data",
        )
        assert multipart.status_code == 202
        kept = store.captures.list("robot")
        assert [c["content_type"] for c in kept] == ["application/x-www-form-urlencoded"] * 2
        log_in(client)
        for capture, name in zip(kept, ("Mail Server", "Web Server"), strict=True):
            page = html.unescape(
                client.get(f"/admin/captures/{capture['id']}").get_data(as_text=True)
            )
            assert "What it would make now" in page and name in page
            assert "The body is not JSON" not in page
    finally:
        store.dispose()
