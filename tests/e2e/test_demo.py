"""``bridge demo`` (what ``make demo`` runs): emulator + bridge + delivery on embedded defaults."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.e2e.harness import ROOT, free_port, wait_until

pytestmark = pytest.mark.e2e


def test_demo_turns_the_printed_webhook_into_a_ticket(tmp_path: Path) -> None:
    port, emulator_port = free_port(), free_port()
    env = {**os.environ, "BRIDGE_STORE": f"sqlite:///{tmp_path / 'demo.db'}"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bridge.cli",
            "demo",
            "--port",
            str(port),
            "--emulator-port",
            str(emulator_port),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    bridge = f"http://127.0.0.1:{port}"
    try:
        assert wait_until(lambda: _up(bridge), timeout=30)
        answer = requests.post(
            f"{bridge}/hooks/events",
            timeout=10,
            json={"id": "evt-1", "title": "Nightly backup failed", "severity": "critical"},
        )
        assert answer.status_code == 202
        tickets_url = f"http://127.0.0.1:{emulator_port}/_emulator/tickets"
        assert wait_until(lambda: requests.get(tickets_url, timeout=5).json()["count"] == 1, 20)
        ticket = requests.get(tickets_url, timeout=5).json()["tickets"][0]
        assert (ticket["subject"], ticket["priority"]) == ("Nightly backup failed", "high")
        assert requests.get(f"{bridge}/forms/contact", timeout=5).status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=40)
    assert f"curl -s -X POST {bridge}/hooks/events" in out
    assert proc.returncode == 0


def _up(url: str) -> bool:
    try:
        return requests.get(url + "/healthz", timeout=1).status_code == 200
    except requests.RequestException:  # not up yet, or too busy to answer in time
        return False
