"""Slow clients against the default `bridge serve`: how long an ordinary post waits.

Phases, each against a fresh `bridge serve --no-delivery` with its default settings:
  baseline   ordinary JSON posts, one after another, nobody else connected
  slow 8     the same while 8 connections send a form body one byte a second
  slow 32    the same with 32 (beyond the target: shows where threads run out)
  cut-off    64 slow connections with server.body_timeout 3 s: they get 408, threads free

Target (issue «The product as users really run it»): with 8 slow connections an ordinary
post is delayed by at most 1 s (its worst latency minus the baseline's median).
Run: .venv/bin/python bench/slow_clients.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import (
    ROOT,
    SlowClients,
    free_port,
    ordinary_posts,
    summary,
    wait_for,
    write_config,
)

ROUTES = {
    "contact": {
        "kind": "form",
        "fields": {
            "email": {"type": "email", "required": True},
            "message": {"type": "text", "required": True},
        },
    },
    "events": {"kind": "hook", "ticket": {"email": "alerts@example.com"}},
}
BODY = {"title": "Disk full on db-1", "severity": "critical"}


@contextlib.contextmanager
def serve(workdir: Path, **server: object) -> Iterator[tuple[str, int]]:
    """`bridge serve --no-delivery` with its default workers and worker class."""
    config = write_config(
        workdir / f"bridge-{free_port()}.yaml",
        "http://127.0.0.1:9",
        f"sqlite:///{workdir / 'bench.db'}",
        ROUTES,
        **({"server": server} if server else {}),
    )
    port = free_port()
    cmd = [sys.executable, "-m", "bridge.cli", "serve", "--config", str(config)]
    cmd += ["--port", str(port), "--no-delivery"]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz", timeout=30, process=proc)
        yield f"http://127.0.0.1:{port}", port
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def measure(seconds: float, slow: int, **server: object) -> tuple[dict[str, float], list[str]]:
    with tempfile.TemporaryDirectory() as tmp, serve(Path(tmp), **server) as (url, port):
        ordinary_posts(url + "/hooks/events", 1.0, BODY)  # warm up both workers
        if not slow:
            return summary(ordinary_posts(url + "/hooks/events", seconds, BODY)), []
        with SlowClients("127.0.0.1", port, "/forms/contact", slow, size=400) as clients:
            samples = ordinary_posts(url + "/hooks/events", seconds, BODY)
            clients.close()
            latencies = summary(samples)
            latencies["max_ms"] = max(samples) * 1000
            return latencies, clients.answers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    base, _ = measure(args.seconds / 2, 0)
    print(f"baseline      p50 {base['p50_ms']:.1f} ms  p99 {base['p99_ms']:.1f} ms")
    verdict = 0
    for count in (8, 32):
        stats, _ = measure(args.seconds, count)
        delay = stats["max_ms"] - base["p50_ms"]
        line = (
            f"slow {count:<3}      p50 {stats['p50_ms']:.1f} ms  max {stats['max_ms']:.1f} ms  "
            f"p50/baseline {stats['p50_ms'] / base['p50_ms']:.2f}  worst delay {delay:.0f} ms"
        )
        if count == 8:
            ok = delay <= 1000
            verdict |= not ok
            line += f"  target <= 1000 ms: {'PASS' if ok else 'MISS'}"
        print(line, flush=True)
    stats, answers = measure(args.seconds, 64, body_timeout="3s")
    cut = sum(1 for a in answers if " 408 " in f"{a} ")
    print(
        f"cut-off 64    p50 {stats['p50_ms']:.1f} ms  max {stats['max_ms']:.1f} ms  "
        f"408 answers {cut}/{len(answers)} (server.body_timeout 3 s)"
    )
    return verdict


if __name__ == "__main__":
    raise SystemExit(main())
