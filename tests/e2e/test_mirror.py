"""The mirror inside a multi-route config served by the real ``bridge serve``, on SQLite
and PostgreSQL: it follows the account with one list call a poll, and the widget's status
view and the alert route read it."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import pytest
import requests

from bridge.proprofs.emulator import EmulatorServer
from tests.conftest import pg_schema_url
from tests.e2e.harness import bridge_server, run_bridge, wait_until, write_config
from tests.support.alerts import FIRING

pytestmark = pytest.mark.e2e
TOKEN = "mirror-e2e-bearer-token"
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
        config = write_config(
            tmp_path / "bridge.yaml",
            store_url,
            emulator,
            routes=ROUTES,
            top="mirror: {every: 1s, max_calls_per_minute: 120}",
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
        widget_ticket, alert_ticket = sorted(emulator.state.tickets, key=int)
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
