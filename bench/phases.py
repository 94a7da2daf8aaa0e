"""Where a webhook's time goes, phase by phase, under load: a latency histogram per phase.

The bridge's app runs in this process with the intake benchmark's config (a bearer-token
hook route, durable SQLite commits), and 16 threads post JSON webhooks straight through
WSGI — no sockets, so what is left is the app's own work and its waits (the GIL, the
write turn, the disk). Each phase is timed where it starts and ends in the code:

- guard: the credentials, before and after the body;
- read body: the body read within the route's limit;
- parse: the JSON bounded and parsed;
- validate and map: the schema's load and the ticket's templates;
- enqueue and commit: the row stored, the caller back once its commit is on disk;
- count and log: the outcome's counter and log line;
- total: the whole request, from WSGI call to the answer's last byte.

The baseline, measured in the same run, is the total a bare Flask app's request takes
under the same 16 threads (``bench/bare_app.py``). A phase whose p99 is far above its
median is where the stalls are. Run: ``.venv/bin/python bench/phases.py [--seconds S]``.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.intake import CONFIG  # the same route, with the same durable store
from bench.intake import TOKEN as BEARER

THREADS = 16
PHASES = (
    "guard",
    "read body",
    "parse",
    "validate and map",
    "enqueue and commit",
    "count and log",
    "total",
)
timings: dict[str, list[float]] = defaultdict(list)
_lock = threading.Lock()


def timed(phase: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            elapsed = time.perf_counter() - started
            with _lock:
                timings[phase].append(elapsed)

    return wrapper


def environ(n: int) -> dict[str, Any]:
    body = json.dumps(
        {"id": f"evt-{n}", "title": f"Disk almost full on db-{n % 50}", "severity": "critical"}
    ).encode()
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/hooks/alerts",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/json",
        "HTTP_AUTHORIZATION": f"Bearer {BEARER}",
        "HTTP_HOST": "127.0.0.1:8000",
        "REMOTE_ADDR": "127.0.0.1",
    }


def load(app: Any, seconds: float, phase: str) -> int:
    """``THREADS`` threads posting through ``app`` for ``seconds``; how many answered 2xx."""
    deadline = time.monotonic() + seconds
    counter = iter(range(10**9))
    answered = [0] * THREADS

    def post(slot: int) -> None:
        statuses: list[str] = []

        def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
            statuses.append(status)

        while time.monotonic() < deadline:
            statuses.clear()
            started = time.perf_counter()
            b"".join(app(environ(next(counter)), start_response))
            elapsed = time.perf_counter() - started
            with _lock:
                timings[phase].append(elapsed)
            if statuses and statuses[0][:1] == "2":
                answered[slot] += 1

    threads = [threading.Thread(target=post, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 60)
    return sum(answered)


def instrument() -> None:
    """Wrap each phase's function where the code looks it up."""
    from bridge.intake import accept, hooks
    from bridge.outbox.store import SubmissionStore

    hooks.authenticate = timed("guard", hooks.authenticate)
    hooks.read_body = timed("read body", hooks.read_body)
    hooks.parse = timed("parse", hooks.parse)
    accept.prepare = timed("validate and map", accept.prepare)
    hooks.prepare = timed("validate and map", hooks.prepare)  # the alert path's own import
    SubmissionStore.enqueue = timed("enqueue and commit", SubmissionStore.enqueue)  # type: ignore[method-assign]
    hooks.observed = timed("count and log", hooks.observed)


def row(name: str, values: list[float], total_median: float | None = None) -> str:
    ms = sorted(v * 1000 for v in values)
    p = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))]  # noqa: E731
    share = f"{statistics.median(ms) / total_median:6.0%}" if total_median else "      "
    return (
        f"  {name:<20} {len(ms):>7,}  p50 {p(0.5):6.2f}  p90 {p(0.9):6.2f}  p99 {p(0.99):6.2f}"
        f"  p99.9 {p(0.999):7.2f}  max {ms[-1]:7.2f} ms  median share {share}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    seconds = max(1.0, min(args.seconds, 60.0))
    from bench.bare_app import app as bare_app
    from bridge.app import create_app
    from bridge.config import settings_from_text
    from bridge.observability import configure_logging, settings_secrets

    with tempfile.TemporaryDirectory() as tmp:
        settings = settings_from_text(
            CONFIG.format(db=Path(tmp) / "phases.db", token=BEARER), env={}
        )
        configure_logging(secrets=settings_secrets(settings), stream=io.StringIO())
        instrument()
        app = create_app(settings)
        load(app, 1.0, "warm-up")
        load(bare_app, 1.0, "warm-up")
        timings.clear()
        bare_done = load(bare_app, seconds, "bare total")
        done = load(app, seconds, "total")
        app.extensions["bridge"].store.dispose()
    print(
        f"phases: {THREADS} threads posting through WSGI for {seconds:g} s each, in this "
        f"process; bridge {done:,} answered 2xx, bare Flask {bare_done:,}"
    )
    total = statistics.median(timings["total"]) * 1000
    print(row("bare Flask total", timings["bare total"]))
    for phase in PHASES:
        if timings[phase]:
            print(row(phase, timings[phase], None if phase == "total" else total))
    bare_total = statistics.median(timings["bare total"]) * 1000
    print(
        f"  median total: bridge {total:.2f} ms, bare Flask {bare_total:.2f} ms (in one process "
        "a bare app waits for nothing but the GIL; the shares are what the bridge's time is)"
    )


if __name__ == "__main__":
    main()
