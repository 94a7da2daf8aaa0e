"""An alert storm: 10,000 Alertmanager notifications over 100 groups through gunicorn
(2 workers) with delivery running -> exactly 100 tickets. Prints notifications/s accepted
and the ratio to a bare Flask app under the same gunicorn settings, in the same run.

Run: ``.venv/bin/python bench/alerts.py [--notifications N] [--groups G]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import (
    ROOT,
    emulator_process,
    gunicorn,
    load,
    write_config,
)


def notification(group: int, n: int) -> dict[str, object]:
    return {
        "version": "4",
        "status": "firing",
        "receiver": "bridge",
        "groupKey": f'{{}}:{{alertname="Alert{group}"}}',
        "groupLabels": {"alertname": f"Alert{group}"},
        "commonLabels": {"alertname": f"Alert{group}", "severity": "critical"},
        "commonAnnotations": {"summary": f"group {group} is unhappy"},
        "externalURL": "http://alertmanager.example:9093",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": f"Alert{group}", "instance": f"host{n % 7}"},
                "annotations": {},
                "startsAt": "2026-11-22T07:00:00Z",
                "generatorURL": "http://prometheus.example/graph",
            }
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--notifications", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=100)
    args = parser.parse_args()
    total = max(200, min(args.notifications, 100_000))
    groups = max(1, min(args.groups, total))
    bodies = [notification(n % groups, n) for n in range(total)]
    with tempfile.TemporaryDirectory() as tmp, emulator_process() as emulator:
        config = Path(tmp) / "bridge.yaml"
        write_config(
            config,
            emulator,
            f"sqlite:///{Path(tmp) / 'alerts.db'}",
            {
                "alerts": {
                    "kind": "hook",
                    "source": "alertmanager",
                    "auth": {"bearer": "storm-token-123"},
                    "ticket": {"email": "alerts@example.com"},
                }
            },
            delivery={"concurrency": 4, "poll_interval": 0.1},
        )
        env = {"BRIDGE_CONFIG": str(config)}
        worker = subprocess.Popen(
            [sys.executable, "-m", "bridge.cli", "worker", "--config", str(config)],
            cwd=ROOT,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **env},
        )
        try:
            with gunicorn("bridge.app:from_environment()", env=env) as url:
                headers = {"Authorization": "Bearer storm-token-123"}
                ours, statuses = load(f"{url}/hooks/alerts", bodies, headers=headers)
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    count = requests.get(f"{emulator}/_emulator/tickets", timeout=10).json()[
                        "count"
                    ]
                    if count >= groups:
                        break
                    time.sleep(0.5)
                time.sleep(2)  # anything late would show up now
                tickets = requests.get(f"{emulator}/_emulator/tickets", timeout=10).json()["count"]
        finally:
            worker.terminate()
            worker.wait(timeout=30)
    with gunicorn("bench.bare_app:app") as url:
        bare, bare_statuses = load(f"{url}/hooks/alerts", bodies)
    print(
        f"alert storm: {total} Alertmanager notifications over {groups} groups, gunicorn "
        f"2 workers, 8 client threads"
    )
    print(f"  answers: {dict(sorted(statuses.items()))} (202 = new incident, 200 = repeat)")
    print(
        f"  tickets in the emulator: {tickets} (expected exactly {groups}) -> "
        f"{'OK' if tickets == groups else 'MISS'}"
    )
    print(
        f"  bridge: {ours:,.0f} notifications/s; bare Flask: {bare:,.0f}/s "
        f"({dict(bare_statuses)}); ratio {ours / bare:.2f}"
    )
    if tickets != groups or statuses.get(202) != groups:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
