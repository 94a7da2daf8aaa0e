"""Widget status requests served from the cache, against a bare Flask app in the same run,
and how many list-API calls 1,000 status requests cost.

A real ``bridge`` app under gunicorn (2 workers) answers ``GET /widget/<route>/status/
<receipt>`` for a delivered ticket; the status cache (60 s) means ProProfs is asked at
most once per worker per minute. Run: ``.venv/bin/python bench/widget.py [--requests N]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=4000)
    args = parser.parse_args()
    count = max(200, min(args.requests, 100_000))
    with tempfile.TemporaryDirectory() as tmp, emulator_process() as emulator:
        config = Path(tmp) / "bridge.yaml"
        write_config(
            config,
            emulator,
            f"sqlite:///{Path(tmp) / 'widget.db'}",
            {
                "support": {
                    "kind": "widget",
                    "fields": {
                        "email": {"type": "email", "required": True},
                        "message": {"type": "text", "required": True},
                    },
                    "widget": {"status_cache": "60s"},
                }
            },
        )
        env = {"BRIDGE_CONFIG": str(config)}
        with gunicorn("bridge.app:from_environment()", env=env) as url:
            answer = requests.post(
                f"{url}/widget/support",
                timeout=10,
                json={"fields": {"email": "bench@example.com", "message": "Where is my parcel?"}},
            )
            receipt = answer.json()["receipt"]
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bridge.cli",
                    "worker",
                    "--config",
                    str(config),
                    "--until-idle",
                ],
                cwd=ROOT,
                check=True,
                stderr=subprocess.DEVNULL,
                env={**os.environ, **env},
                timeout=120,
            )
            status_url = f"{url}/widget/support/status/{receipt}"
            assert requests.get(status_url, timeout=10).json()["state"] == "delivered"
            requests.get(f"{emulator}/_emulator/stats", timeout=5)
            before = requests.get(f"{emulator}/_emulator/stats", timeout=5).json()
            ours, statuses = load(status_url, [None] * count, method="GET")
            after = requests.get(f"{emulator}/_emulator/stats", timeout=5).json()
    with gunicorn("bench.bare_app:app") as url:
        bare, _ = load(f"{url}/widget/support/status/{receipt}", [None] * count, method="GET")
    calls = after.get("list.requests", 0) - before.get("list.requests", 0)
    print(f"widget status: {count} requests, gunicorn 2 workers, 8 client threads")
    print(f"  answers: {statuses}")
    print(
        f"  bridge (cached): {ours:,.0f} status/s; bare Flask: {bare:,.0f}/s; "
        f"ratio {ours / bare:.2f}"
    )
    print(
        f"  list-API calls: {calls} for {count} status requests = "
        f"{calls * 1000 / count:.2f} per 1,000"
    )


if __name__ == "__main__":
    main()
