"""Incident pages and staff steering: every notification of an alert group on a signed
page its tickets link; labels on the ticket (wontfix, snooze) hold back new tickets."""

from __future__ import annotations

import html
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
from tests.support.alerts import FIRING, RESOLVED, config, deliver, post
from tests.support.configs import settings_with

KEY = "alerts:{}/{}:{}"


class Clock:
    def __init__(self) -> None:
        import time

        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def alerts(
    emulator: EmulatorServer, store_url: str
) -> Iterator[tuple[FlaskClient, SubmissionStore, Settings, Clock]]:
    settings = config(emulator, store_url)
    store = SubmissionStore(store_url)
    app = create_app(settings, store=store)
    clock = Clock()
    app.extensions["bridge"].clock = clock
    yield app.test_client(), store, settings, clock
    store.dispose()


def ticket_of(emulator: EmulatorServer, n: int) -> Any:
    return sorted(emulator.state.tickets.values(), key=lambda t: int(t.ticket_id))[n]


def page_link(description: str) -> str:
    match = re.search(r"Incident page: (/incidents/\S+)", description)
    assert match, description
    return match.group(1)


def label(emulator: EmulatorServer, ticket_id: str, *names: str) -> None:
    requests.post(
        f"{emulator.url}/_emulator/tickets/{ticket_id}/labels",
        json={"labels": list(names)},
        timeout=5,
    ).raise_for_status()


def close(emulator: EmulatorServer, ticket_id: str) -> None:
    requests.post(
        f"{emulator.url}/_emulator/tickets/{ticket_id}/status",
        json={"status": "closed"},
        timeout=5,
    ).raise_for_status()


def test_the_page_tells_the_incidents_story_and_the_next_ticket_names_the_first(
    alerts: Any, emulator: EmulatorServer
) -> None:
    client, store, settings, clock = alerts
    assert post(client, FIRING)[0] == 202
    clock.now += 60
    deliver(store, settings)
    assert post(client, FIRING)[0] == 200  # a repeat
    clock.now += 60
    assert post(client, FIRING)[0] == 200
    clock.now += 60
    assert post(client, RESOLVED)[1]["status"] == "ignored"
    first = ticket_of(emulator, 0)
    link = page_link(first.description)
    page = client.get(link)
    assert page.status_code == 200
    assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
    text = html.unescape(page.get_data(as_text=True))
    assert "4 (1 new ticket, 2 repeats, 1 resolved)" in text
    assert f"#{first.ticket_id}" in text and ">resolved<" in text
    assert first.subject.startswith("[FIRING:")  # the ticket says what was true then;
    heading = re.search(r"<h1>(.*?)</h1>", text)
    assert heading and "FIRING" not in heading.group(1)  # the page's state is the badge's
    assert text.count("fired again: no new ticket") == 2
    # Closed in ProProfs, the group fires again: a second ticket, naming the first.
    close(emulator, first.ticket_id)
    clock.now += 60
    status, _ = post(client, FIRING)
    assert status == 202
    deliver(store, settings)
    second = ticket_of(emulator, 1)
    assert f"Previous ticket: #{first.ticket_id}" in second.description
    assert page_link(second.description) == link  # one page per group, across tickets
    text = html.unescape(client.get(link).get_data(as_text=True))
    assert f"#{first.ticket_id}" in text and f"#{second.ticket_id}" in text
    assert ">firing<" in text  # fired again after the resolve


def test_wontfix_holds_back_new_tickets_until_the_label_goes(
    alerts: Any, emulator: EmulatorServer
) -> None:
    client, store, settings, _ = alerts
    post(client, FIRING)
    deliver(store, settings)
    first = ticket_of(emulator, 0)
    label(emulator, first.ticket_id, "Bridge-Wontfix", "billing")
    close(emulator, first.ticket_id)
    status, body = post(client, FIRING)
    assert status == 200 and body["status"] == "held" and "bridge-wontfix" in body["message"]
    assert post(client, FIRING)[1]["status"] == "held"
    assert store.list(state="pending") == [] and len(emulator.state.tickets) == 1
    text = html.unescape(client.get(page_link(first.description)).get_data(as_text=True))
    assert "held back (staff: bridge-wontfix)" in text and "held by staff" in text
    label(emulator, first.ticket_id)  # staff take it off
    assert post(client, FIRING)[0] == 202


def test_a_snooze_counts_from_when_the_label_was_first_seen(
    alerts: Any, emulator: EmulatorServer
) -> None:
    client, store, settings, clock = alerts
    post(client, FIRING)
    deliver(store, settings)
    first = ticket_of(emulator, 0)
    label(emulator, first.ticket_id, "bridge-snooze-2d")
    close(emulator, first.ticket_id)
    assert post(client, FIRING)[1]["status"] == "held"
    clock.now += 86400  # a day later the label is seen again: the snooze does not restart
    assert post(client, FIRING)[1]["status"] == "held"
    clock.now += 86400 + 60  # two days after it was first seen
    status, _ = post(client, FIRING)
    assert status == 202
    deliver(store, settings)
    assert len(emulator.state.tickets) == 2


def test_a_tampered_or_foreign_token_is_a_plain_404(alerts: Any, emulator: EmulatorServer) -> None:
    client, store, settings, _ = alerts
    post(client, FIRING)
    deliver(store, settings)
    link = page_link(ticket_of(emulator, 0).description)
    assert client.get(link[:-3] + "xyz").status_code == 404
    from itsdangerous import URLSafeSerializer

    forged = URLSafeSerializer("another-key", salt="bridge.incidents").dumps(["alerts", KEY])
    assert client.get(f"/incidents/{forged}").status_code == 404
    state = client.application.extensions["bridge"]
    unknown = state.incident_links.dumps(["alerts", "alerts:no-such-group"])
    assert client.get(f"/incidents/{unknown}").status_code == 404
    # A person's label value is shown as text, never as markup.
    store.incidents.record("alerts", KEY, 1, "firing", "repeat", labels={"x": "<script>1</script>"})
    assert "<script>1</script>" not in client.get(link).get_data(as_text=True)


def test_the_console_lists_incidents_with_their_pages(
    emulator: EmulatorServer, store_url: str
) -> None:

    settings = settings_with(
        emulator,
        store_url,
        """
admin: {trusted_header: X-Forwarded-User, secure_cookies: false}
server: {trusted_proxies: [127.0.0.1]}
routes:
  alerts: {kind: hook, source: alertmanager, ticket: {email: alerts@example.com}}
""",
    )
    store = SubmissionStore(store_url)
    client = create_app(settings, store=store).test_client()
    assert post(client, FIRING)[0] == 202
    listing = client.get("/admin/incidents", headers={"X-Forwarded-User": "sam"})
    text = listing.get_data(as_text=True)
    assert listing.status_code == 200 and "firing" in text
    link = re.search(r'href="(/incidents/[^"]+)"', text)
    assert link is not None
    assert client.get(link.group(1)).status_code == 200
    store.dispose()


def test_the_history_is_kept_ninety_days(store: SubmissionStore) -> None:
    import time

    from bridge.outbox.worker import INCIDENT_HISTORY

    now = time.time()
    store.incidents.record("r", "r:g", 1, "firing", "repeat", now=now - INCIDENT_HISTORY - 60)
    store.incidents.record("r", "r:g", 1, "firing", "repeat", now=now - 60)
    assert store.incidents.trim_events(older_than=INCIDENT_HISTORY, now=now) == 1
    assert [e.received_at for e in store.incidents.events("r", "r:g")] == [now - 60]


def test_an_incident_link_expires_30_days_after_the_last_change(
    alerts: Any, emulator: EmulatorServer
) -> None:
    client, store, settings, clock = alerts
    assert post(client, FIRING)[0] == 202
    deliver(store, settings)
    link = page_link(ticket_of(emulator, 0).description)
    clock.now += 29 * 86400
    assert post(client, FIRING)[0] == 200  # a repeat is a change: the 30 days start again
    clock.now += 29 * 86400
    assert client.get(link).status_code == 200
    clock.now += 2 * 86400
    expired = client.get(link)
    assert expired.status_code == 404 and "has expired" in expired.get_data(as_text=True)
