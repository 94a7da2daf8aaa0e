"""The mirror inside a multi-route config served by the real ``bridge serve``, on SQLite
and PostgreSQL: it follows the account with one list call a poll, and the widget's status
view and the alert route read it."""

from __future__ import annotations

import base64
import contextlib
import time
from pathlib import Path

import pytest
import requests
from standardwebhooks import Webhook

from bridge.proprofs.emulator import EmulatorServer
from tests.conftest import pg_schema_url
from tests.e2e.harness import bridge_server, run_bridge, wait_until, write_config
from tests.support.alerts import FIRING
from tests.support.receiver import Receiver

pytestmark = pytest.mark.e2e
TOKEN = "mirror-e2e-bearer-token"
SECRET = "whsec_" + base64.b64encode(b"mirror-e2e-events-key-0123").decode()
ROUTES = f"""
  support:
    kind: widget
    fields:
      email:   {{type: email, required: true}}
      message: {{type: text, required: true}}
    widget: {{status_cache: 0s}}
  contact:
    kind: form
    fields:
      email:   {{type: email, required: true}}
      message: {{type: text, required: true}}
  alerts:
    kind: hook
    source: alertmanager
    auth: {{bearer: {TOKEN}}}
    ticket_check_ttl: 0
    update: {{every: 1s}}
    ticket: {{email: alerts@example.com}}
"""


def list_calls(emulator: EmulatorServer) -> int:
    stats = requests.get(f"{emulator.url}/_emulator/stats", timeout=5).json()
    return int(stats["calls"].get("list/ticket/", 0))


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_bridge_serve_follows_the_account_and_its_readers_use_the_mirror(
    emulator: EmulatorServer, tmp_path: Path, engine: str
) -> None:
    with contextlib.ExitStack() as stack:
        store_url = (
            stack.enter_context(pg_schema_url())
            if engine == "postgres"
            else f"sqlite:///{tmp_path / 'm.db'}"
        )
        receiver = Receiver()
        stack.callback(receiver.close)
        config = write_config(
            tmp_path / "bridge.yaml",
            store_url,
            emulator,
            routes=ROUTES,
            top="mirror: {every: 1s, max_calls_per_minute: 120}\n"
            f"events: {{ops: {{url: '{receiver.url}', secret: {SECRET}, "
            "events: [ticket.replied, ticket.status_changed], routes: [support]}}",
        )
        if engine == "postgres":
            assert run_bridge("db", "upgrade", "--config", str(config)).returncode == 0
        url = stack.enter_context(bridge_server(config, log=tmp_path / "serve.log"))
        answer = requests.post(
            f"{url}/widget/support",
            json={"fields": {"email": "jo@example.com", "message": "Where is it?"}},
            timeout=10,
        ).json()
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert requests.post(f"{url}/hooks/alerts", json=FIRING, headers=bearer, timeout=10).ok
        assert wait_until(lambda: len(emulator.state.tickets) == 2, timeout=30)
        by_email = {t.email: t.ticket_id for t in emulator.state.tickets.values()}
        widget_ticket, alert_ticket = by_email["jo@example.com"], by_email["alerts@example.com"]
        status_url = f"{url}/widget/support/status/{answer['receipt']}"
        # Staff reply; the status view shows it once the mirror's next poll has seen it.
        requests.post(
            f"{emulator.url}/_emulator/tickets/{widget_ticket}/reply",
            json={"text": "Tomorrow."},
            timeout=5,
        ).raise_for_status()
        assert wait_until(
            lambda: (
                requests.get(status_url, timeout=10).json().get("messages", [{}])[-1].get("text")
                == "Tomorrow."
            ),
            timeout=30,
        )
        # The reply was told, signed, to the subscriber of the support route's events.
        assert wait_until(lambda: len(receiver.posts) >= 2, timeout=30)
        told = [Webhook(SECRET).verify(body, headers) for headers, body in receiver.posts]
        assert {e["type"] for e in told} == {"ticket.replied", "ticket.status_changed"}
        assert all(e["data"]["route"] == "support" for e in told)
        # At rest: about one list call a second (the poll), whatever the readers do.
        time.sleep(2)
        before, started = list_calls(emulator), time.monotonic()
        for _ in range(20):
            assert requests.get(status_url, timeout=10).json()["ticket_status"] == "open"
        assert (
            requests.post(f"{url}/hooks/alerts", json=FIRING, headers=bearer, timeout=10).json()[
                "status"
            ]
            == "duplicate"
        )
        time.sleep(max(0.0, 4 - (time.monotonic() - started)))
        spent = list_calls(emulator) - before
        assert 2 <= spent <= 6, spent
        # Closed in the help desk: once the mirror knows, the next firing is a new ticket.
        requests.post(
            f"{emulator.url}/_emulator/tickets/{alert_ticket}/status",
            json={"status": "closed"},
            timeout=5,
        ).raise_for_status()
        time.sleep(3)
        assert (
            requests.post(f"{url}/hooks/alerts", json=FIRING, headers=bearer, timeout=10).json()[
                "status"
            ]
            == "accepted"
        )
        assert wait_until(lambda: len(emulator.state.tickets) == 3, timeout=30)
