"""A real Alertmanager posting to a real ``bridge serve``: one ticket per group, repeats
suppressed, and a new ticket once the first is closed and the alert keeps firing."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from bridge.proprofs.emulator import EmulatorServer
from tests.conftest import IN_CI
from tests.e2e.harness import bridge_server, free_port, wait_until, write_config

pytestmark = pytest.mark.e2e
BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
TOKEN = "alertmanager-bearer-token"

ROUTES = f"""
  alerts:
    kind: hook
    source: alertmanager
    auth: {{bearer: {TOKEN}}}
    ticket_check_ttl: 0
    ticket: {{email: alerts@example.com, inbox: IB238-500}}
"""


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[tuple[str, int]]:
    if BINARY is None:
        reason = "Alertmanager is not installed (make alertmanager installs it)"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    bridge_port = free_port()
    port = free_port()
    (tmp_path / "am.yml").write_text(f"""
route:
  receiver: bridge
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 3s
receivers:
  - name: bridge
    webhook_configs:
      - url: http://127.0.0.1:{bridge_port}/hooks/alerts
        send_resolved: true
        http_config:
          authorization:
            credentials: {TOKEN}
""")
    log = open(tmp_path / "am.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            BINARY,
            f"--config.file={tmp_path / 'am.yml'}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=log,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_until(lambda: _ready(url), timeout=30), (tmp_path / "am.log").read_text()
        yield url, bridge_port
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def _ready(url: str) -> bool:
    try:
        return requests.get(url + "/-/ready", timeout=1).status_code == 200
    except requests.RequestException:  # not up yet, or too busy to answer in time
        return False


def push(url: str, alertname: str, service: str) -> None:
    now = dt.datetime.now(dt.UTC)
    alert = {
        "labels": {"alertname": alertname, "service": service, "severity": "critical"},
        "annotations": {"summary": f"{alertname} on {service}"},
        "startsAt": now.isoformat(),
        "endsAt": (now + dt.timedelta(minutes=10)).isoformat(),
        "generatorURL": "http://prometheus.example/graph",
    }
    requests.post(url + "/api/v2/alerts", json=[alert], timeout=5).raise_for_status()


def notifications(url: str) -> float:
    text = requests.get(url + "/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith('alertmanager_notifications_total{integration="webhook"'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_one_ticket_per_group_repeats_suppressed_and_a_new_one_after_close(
    alertmanager: tuple[str, int], emulator: EmulatorServer, tmp_path: Path
) -> None:
    am, bridge_port = alertmanager
    config = write_config(
        tmp_path / "bridge.yaml", f"sqlite:///{tmp_path / 'b.db'}", emulator, routes=ROUTES
    )
    with bridge_server(config, port=bridge_port):
        push(am, "HighLatency", "api-prod")
        push(am, "DiskFull", "db-1")
        assert wait_until(lambda: len(emulator.state.tickets) == 2, timeout=30)
        subjects = sorted(t.subject for t in emulator.state.tickets.values())
        assert subjects == [
            "[FIRING:1] DiskFull db-1 (critical)",
            "[FIRING:1] HighLatency api-prod (critical)",
        ]
        sent = notifications(am)
        assert wait_until(lambda: notifications(am) >= sent + 4, timeout=30)  # repeats arrive
        assert len(emulator.state.tickets) == 2  # …and make nothing
        latency = next(t for t in emulator.state.tickets.values() if "HighLatency" in t.subject)
        requests.post(
            f"{emulator.url}/_emulator/tickets/{latency.ticket_id}/status",
            json={"status": "closed"},
            timeout=5,
        ).raise_for_status()
        push(am, "HighLatency", "api-prod")  # it keeps firing
        assert wait_until(lambda: len(emulator.state.tickets) == 3, timeout=30)
        newest = max(emulator.state.tickets.values(), key=lambda t: int(t.ticket_id))
        assert newest.subject == "[FIRING:1] HighLatency api-prod (critical)"
        assert newest.priority == "high" and newest.inbox == "IB238-500"
        assert "summary: HighLatency on api-prod" in (newest.description or "")
        sent = notifications(am)
        assert wait_until(lambda: notifications(am) >= sent + 4, timeout=30)
        assert len(emulator.state.tickets) == 3
