"""``bridge serve`` for real: gunicorn workers, the delivery process, the emulator."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from bridge.outbox.store import SubmissionStore
from bridge.proprofs.emulator import EmulatorServer
from tests.e2e.harness import bridge_server, wait_until, write_config

pytestmark = pytest.mark.e2e


def test_serve_accepts_stores_and_delivers(
    store_url: str, emulator: EmulatorServer, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "bridge.yaml", store_url, emulator)
    with bridge_server(config) as url:
        answers = [
            requests.post(
                f"{url}/hooks/events",
                json={"id": f"e{n % 10}", "title": f"Alert {n % 10}"},
                timeout=10,
            )
            for n in range(30)
        ]
        statuses = sorted(r.status_code for r in answers)
        assert statuses == [200] * 20 + [202] * 10
        assert wait_until(lambda: len(emulator.state.tickets) == 10, timeout=30)
        bad = requests.post(
            f"{url}/hooks/events",
            data="{",
            timeout=10,
            headers={"Content-Type": "application/json"},
        )
        assert bad.status_code == 400 and bad.json()["code"] == "malformed_json"
        # Two gunicorn workers and the delivery process: /metrics adds all of them up.
        counts: dict[str, float] = {}
        for line in requests.get(f"{url}/metrics", timeout=10).text.splitlines():
            if line.startswith("bridge_submissions_total{"):
                outcome = line.split('outcome="')[1].split('"')[0]
                counts[outcome] = counts.get(outcome, 0) + float(line.rsplit(" ", 1)[1])
        assert counts == {"accepted": 10, "duplicate": 20, "rejected": 1}
        delivered = 'bridge_deliveries_total{outcome="delivered",route="events"} 10.0'
        assert wait_until(
            lambda: delivered in requests.get(f"{url}/metrics", timeout=10).text, timeout=10
        )
    with SubmissionStore(store_url) as store:
        assert store.counts()["delivered"] == 10
    subjects = sorted(t.subject for t in emulator.state.tickets.values())
    assert subjects == sorted(f"Alert {n}" for n in range(10))
