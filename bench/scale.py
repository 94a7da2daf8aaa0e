"""Scale: intake and delivery throughput for 1, 2 and 4 workers on PostgreSQL.

Intake: `bridge serve --no-delivery --workers N` on a fresh PostgreSQL schema takes JSON
webhooks from `wrk -t2 -c16`; requests/s and p99. Delivery: N `bridge worker` processes
(concurrency 8 each) deliver 300 x N submissions to the emulator, which adds 100 ms to
every call; tickets/s against the ideal N x 80. Each row is also shown as a ratio to the
one-worker row of the same run, so the cost of growth is visible (on 2 cores, more than two
web workers cannot add CPU: the figure says how much they cost).

Run: ``.venv/bin/python bench/scale.py [--pg-url URL]`` (needs wrk: ``make bench-tools``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _wrk
from bench._harness import ROOT, bridge_serve, emulator_process, write_config
from bench.delivery import (
    CONCURRENCY,
    LATENCY_S,
    draft,
    drop_schema,
    pg_schema,
    reachable,
    throughput,
)
from bridge.outbox.records import new_submission_id
from bridge.outbox.store import SubmissionStore

TOKEN = "bench-bearer-token-0001"
ROUTES = {
    "alerts": {
        "kind": "hook",
        "auth": {"bearer": TOKEN},
        "ticket": {"email": "alerts@example.com", "subject": "{{ data.title }}"},
    }
}


def intake(pg_url: str, workers: int, workdir: Path, seconds: float) -> _wrk.Result:
    schema, url = pg_schema(pg_url)
    try:
        config = write_config(workdir / f"intake-{workers}.yaml", "http://127.0.0.1:9", url, ROUTES)
        log = workdir / f"intake-{workers}.log"
        with bridge_serve(config, log, workers=workers) as (url, _):
            endpoint = url + "/hooks/alerts"
            _wrk.run(endpoint, connections=16, seconds=1, token=TOKEN)
            return _wrk.run(endpoint, connections=16, seconds=seconds, token=TOKEN)
    finally:
        drop_schema(pg_url, schema)


def delivery(pg_url: str, workers: int, workdir: Path) -> float:
    schema, url = pg_schema(pg_url)
    tickets = 300 * workers
    try:
        with emulator_process("--latency-ms", str(int(LATENCY_S * 1000))) as emulator:
            config = write_config(
                workdir / f"delivery-{workers}.yaml",
                emulator,
                url,
                ROUTES,
                delivery={"concurrency": CONCURRENCY, "poll_interval": 0.05},
            )
            with SubmissionStore(url) as store:
                for n in range(tickets):
                    sid = new_submission_id()
                    store.enqueue("alerts", "hook", draft(sid, n), submission_id=sid)
            cmd = [sys.executable, "-m", "bridge.cli", "worker", "--config", str(config)]
            procs = [
                subprocess.Popen([*cmd, "--until-idle"], cwd=ROOT, stderr=subprocess.DEVNULL)
                for _ in range(workers)
            ]
            for proc in procs:
                proc.wait(timeout=600)
            with SubmissionStore(url) as store:
                rows = store.list(limit=tickets)
        return throughput(rows, tickets)
    finally:
        drop_schema(pg_url, schema)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    _wrk.need_wrk()
    if not reachable(args.pg_url):
        raise SystemExit(f"{args.pg_url} is not reachable")
    seconds = max(2.0, min(args.seconds, 60.0))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for workers in (1, 2, 4):
            result = intake(args.pg_url, workers, workdir, seconds)
            rate = delivery(args.pg_url, workers, workdir)
            rows.append((workers, result, rate))
    print(f"scale on PostgreSQL: intake wrk -t2 -c16 x {seconds:g} s; delivery 300 per worker,")
    print(f"  emulator latency {LATENCY_S * 1000:.0f} ms, concurrency {CONCURRENCY} per worker")
    base_intake, base_delivery = rows[0][1].per_s, rows[0][2]
    for workers, result, rate in rows:
        ideal = workers * CONCURRENCY / LATENCY_S
        print(
            f"  {workers} worker(s): intake {result.per_s:7,.0f} req/s "
            f"({result.per_s / base_intake:.2f}x one), p99 {result.p99_ms:6.1f} ms; "
            f"delivery {rate:6.1f} tickets/s ({rate / base_delivery:.2f}x one, "
            f"{rate / ideal:.2f} of ideal {ideal:.0f})"
        )


if __name__ == "__main__":
    main()
