"""With ``mirror:`` configured, the parts that read tickets read the mirror and stop
listing on their own: the widget's status view, the alert routes' "is the ticket still
open" and staff's labels, the incident page. A mirror that is behind is not trusted."""

from __future__ import annotations

import re
from typing import Any

import requests

from bridge.app import create_app
from bridge.outbox.store import SubmissionStore
from bridge.proprofs.emulator import EmulatorServer
from tests.support.alerts import FIRING, deliver, post
from tests.support.configs import settings_with
from tests.support.mirror import sync

ROUTES = """
mirror: {every: 30s}
routes:
  support:
    kind: widget
    fields:
      email:   {type: email, required: true}
      message: {type: text, required: true}
    widget: {status_cache: 0s}
  alerts:
    kind: hook
    source: alertmanager
    ticket_check_ttl: 0
    ticket: {email: alerts@example.com}
"""


def list_calls(emulator: EmulatorServer) -> int:
    stats = requests.get(f"{emulator.url}/_emulator/stats", timeout=5).json()
    return int(stats["calls"].get("list/ticket/", 0))


def test_the_status_view_steering_and_incident_page_read_the_mirror(
    emulator: EmulatorServer, store_url: str
) -> None:
    settings = settings_with(emulator, store_url, ROUTES)
    with SubmissionStore(store_url) as store:
        client = create_app(settings, store=store).test_client()
        receipt = client.post(
            "/widget/support", json={"fields": {"email": "jo@example.com", "message": "Hello?"}}
        ).get_json()["receipt"]
        assert post(client, FIRING)[0] == 202
        deliver(store, settings)
        sync(store, settings)
        before = list_calls(emulator)
        status = client.get(f"/widget/support/status/{receipt}").get_json()
        assert status["ticket_status"] == "new" and status["messages"][0]["text"] == "Hello?"
        assert post(client, FIRING)[0] == 200  # a repeat: the mirror says the ticket is open
        assert list_calls(emulator) == before  # neither listed on its own
        # Staff reply to the widget's ticket and close the alert's: after the next poll,
        # the status view shows the reply and the group's next firing makes a new ticket.
        by_email = {t.email: t.ticket_id for t in emulator.state.tickets.values()}
        widget_ticket, alert_ticket = by_email["jo@example.com"], by_email["alerts@example.com"]
        requests.post(
            f"{emulator.url}/_emulator/tickets/{widget_ticket}/reply",
            json={"text": "On its way."},
            timeout=5,
        ).raise_for_status()
        requests.post(
            f"{emulator.url}/_emulator/tickets/{alert_ticket}/status",
            json={"status": "closed"},
            timeout=5,
        ).raise_for_status()
        sync(store, settings)
        before = list_calls(emulator)
        status = client.get(f"/widget/support/status/{receipt}").get_json()
        assert status["ticket_status"] == "open" and status["messages"][-1]["text"] == "On its way."
        first = emulator.state.tickets[alert_ticket]
        link = re.search(r"Incident page: (/incidents/\S+)", first.description or "")
        assert link is not None
        page = client.get(link.group(1)).get_data(as_text=True)
        assert "closed in the help desk" in page
        assert post(client, FIRING)[0] == 202  # closed, as the mirror says: a new ticket
        assert list_calls(emulator) == before


def test_a_mirror_that_is_behind_is_not_trusted(emulator: EmulatorServer, store_url: str) -> None:
    settings = settings_with(emulator, store_url, ROUTES)
    with SubmissionStore(store_url) as store:
        client = create_app(settings, store=store).test_client()
        assert post(client, FIRING)[0] == 202
        deliver(store, settings)
        sync(store, settings)
        (ticket_id,) = emulator.state.tickets
        requests.post(
            f"{emulator.url}/_emulator/tickets/{ticket_id}/status",
            json={"status": "closed"},
            timeout=5,
        ).raise_for_status()
        app_state: Any = client.application.extensions["bridge"]
        app_state.clock = lambda: 10**10  # the last poll is long ago
        before = list_calls(emulator)
        assert post(client, FIRING)[0] == 202  # asked ProProfs, which says closed
        assert list_calls(emulator) == before + 1
