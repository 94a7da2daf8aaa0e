"""The cost of metrics and logging on the accept path: the same app with both on and with
both off, in one run, alternating rounds. Target: overhead under 15 %.

Each accepted webhook is validated, mapped and committed to SQLite (WAL,
synchronous=FULL) through the WSGI app in this process, so the figure is the
bridge's own work, not a network's. Run: ``.venv/bin/python bench/overhead.py``.
"""

from __future__ import annotations

import argparse
import io
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bridge.app import create_app
from bridge.config import settings_from_text
from bridge.observability import configure_logging, settings_secrets
from bridge.outbox.store import SubmissionStore

CONFIG = """
proprofs: {{account_email: bench@example.com, token: bench-token-secret}}
store: "sqlite:///{db}"
server: {{metrics: {metrics}}}
routes:
  events:
    kind: hook
    auth: {{bearer: bench-bearer-token}}
    ticket: {{email: hooks@example.com}}
"""


def client_for(workdir: Path, name: str, metrics: bool) -> tuple[object, SubmissionStore]:
    settings = settings_from_text(
        CONFIG.format(db=workdir / f"{name}.db", metrics=str(metrics).lower()), env={}
    )
    store = SubmissionStore(settings.store)
    store.engine  # noqa: B018 - migrate before timing
    return create_app(settings, store=store).test_client(), store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--per-round", type=int, default=300)
    args = parser.parse_args()
    rounds, per_round = max(2, min(args.rounds, 50)), max(50, min(args.per_round, 5000))
    headers = {"Authorization": "Bearer bench-bearer-token"}
    sink = io.StringIO()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        on, on_store = client_for(workdir, "on", True)
        off, off_store = client_for(workdir, "off", False)
        secrets = settings_secrets(
            settings_from_text(CONFIG.format(db="x", metrics="true"), env={})
        )
        timings: dict[str, list[float]] = {"on": [], "off": []}
        counter = 0
        for _ in range(rounds):
            for mode, client in (("off", off), ("on", on)):
                handler = configure_logging(
                    level="INFO" if mode == "on" else "WARNING", secrets=secrets, stream=sink
                )
                started = time.perf_counter()
                for _ in range(per_round):
                    counter += 1
                    response = client.post(  # type: ignore[attr-defined]
                        "/hooks/events",
                        json={"id": counter, "title": f"Alert {counter}", "severity": "warning"},
                        headers=headers,
                    )
                    assert response.status_code == 202
                timings[mode].append((time.perf_counter() - started) / per_round)
                logging.getLogger().removeHandler(handler)
        on_store.dispose()
        off_store.dispose()
    on_ms = statistics.median(timings["on"]) * 1000
    off_ms = statistics.median(timings["off"]) * 1000
    overhead = on_ms / off_ms - 1
    print(f"accept path, {rounds} rounds x {per_round} webhooks each way (median per webhook)")
    print(f"  metrics + JSON logs on:  {on_ms:.3f} ms  ({1000 / on_ms:,.0f}/s)")
    print(f"  metrics + logs off:      {off_ms:.3f} ms  ({1000 / off_ms:,.0f}/s)")
    print(
        f"  overhead {overhead * 100:+.1f} % (target < 15 %) -> "
        f"{'OK' if overhead < 0.15 else 'MISS'}; {len(sink.getvalue().splitlines())} log lines"
    )


if __name__ == "__main__":
    main()
