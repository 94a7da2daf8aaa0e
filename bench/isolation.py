"""Delivery that intake never feels: intake p99 with delivery on, against delivery off.

`bridge serve` (2 gthread workers, SQLite, durable commits) takes JSON webhooks from wrk at
4 connections while its delivery worker sends the backlog to ProProfs — healthy (the
emulator in its own process), refusing connections, or a black hole (connections accepted,
never answered, so every create waits out the read timeout). The same serve with delivery
off, in the same run, is the baseline.

Targets: intake p99 with delivery on <= 1.5x its p99 with delivery off, for each upstream;
and that delivery-off p99 within 3x of a bare Flask app's under the same gunicorn settings
(measured first, rounds alternating).
Run: ``.venv/bin/python bench/isolation.py`` (needs wrk: ``make bench-tools``).
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import statistics
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _wrk
from bench._harness import (
    ACCOUNT_EMAIL,
    TOKEN,
    bare,
    bridge_serve,
    emulator_process,
    free_port,
    stored,
    verdict,
)

BEARER = "bench-bearer-token-0001"
CONFIG = """
proprofs: {{account_email: {email}, token: {token}, base_url: "{base}/app/api/v1/",
            connect_timeout: 1, read_timeout: 2}}
store: "sqlite:///{db}"
delivery: {{concurrency: 4, poll_interval: 0.2}}
routes:
  alerts:
    kind: hook
    auth: {{bearer: {bearer}}}
    ticket: {{email: alerts@example.com, subject: "{{{{ data.title }}}}"}}
"""


@contextlib.contextmanager
def refusing() -> Iterator[str]:
    """A port nothing listens on: every connection is refused at once."""
    yield f"http://127.0.0.1:{free_port()}"


@contextlib.contextmanager
def black_hole() -> Iterator[str]:
    """Accepts connections and never answers (bounded: closes them when done)."""
    server = socket.create_server(("127.0.0.1", 0), backlog=512)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set() and len(held) < 100_000:
            with contextlib.suppress(TimeoutError, OSError):
                held.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        server.close()


@contextlib.contextmanager
def serve(workdir: Path, name: str, upstream: str, delivery: bool) -> Iterator[str]:
    config = workdir / f"{name}.yaml"
    config.write_text(
        CONFIG.format(
            email=ACCOUNT_EMAIL,
            token=TOKEN,
            base=upstream,
            db=workdir / f"{name}.db",
            bearer=BEARER,
        )
    )
    with bridge_serve(config, workdir / f"{name}.log", delivery=delivery) as (url, _):
        yield url + "/hooks/alerts"


def against_bare(workdir: Path, rounds: int, seconds: float) -> bool:
    """The delivery-off p99 against a bare Flask app's under the same gunicorn settings, at
    the same 4 connections, rounds alternating: within 3x."""
    p99s: dict[str, list[float]] = {"bare": [], "bridge": []}
    with (
        bare(workdir) as (bare_url, _),
        serve(workdir, "baseline-off", f"http://127.0.0.1:{free_port()}", False) as off,
    ):
        for url in (bare_url, off):
            _wrk.run(url, connections=4, seconds=1, token=BEARER)
        for _ in range(rounds):
            for name, url in (("bare", bare_url), ("bridge", off)):
                result = _wrk.run(url, connections=4, seconds=seconds, token=BEARER)
                if result.not_2xx or result.errors:
                    raise SystemExit(f"{name}: {result.line()}")
                p99s[name].append(result.p99_ms)
    bare_p99, off_p99 = statistics.median(p99s["bare"]), statistics.median(p99s["bridge"])
    ok = off_p99 <= 3 * bare_p99
    print(
        f"  baseline    bare Flask: p99 {bare_p99:6.1f} ms   bridge, delivery off: p99 "
        f"{off_p99:6.1f} ms   {off_p99 / bare_p99:.2f}x (target <= 3x) -> {verdict(ok)}"
    )
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6.0)
    args = parser.parse_args()
    rounds = max(1, min(args.rounds, 10))
    seconds = max(2.0, min(args.seconds, 60.0))
    _wrk.need_wrk()
    print(
        f"isolation: wrk -t2 -c4, {rounds} rounds x {seconds:g} s per case; bridge serve, "
        "2 gthread workers, SQLite; delivery concurrency 4"
    )
    verdicts = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        verdicts.append(against_bare(workdir, rounds, seconds))
        upstreams = {
            "healthy": lambda: emulator_process(),
            "refusing": refusing,
            "black hole": black_hole,
        }
        for upstream_name, upstream in upstreams.items():
            with upstream() as base:
                slug = upstream_name.replace(" ", "-")
                p99s: dict[bool, list[float]] = {True: [], False: []}
                rates: dict[bool, list[float]] = {True: [], False: []}
                with (
                    serve(workdir, f"{slug}-on", base, True) as on,
                    serve(workdir, f"{slug}-off", base, False) as off,
                ):
                    for url in (on, off):
                        _wrk.run(url, connections=4, seconds=1, token=BEARER)
                    for _ in range(rounds):
                        for delivery, url in ((False, off), (True, on)):
                            result = _wrk.run(url, connections=4, seconds=seconds, token=BEARER)
                            if result.not_2xx or result.errors:
                                raise SystemExit(f"{upstream_name}: {result.line()}")
                            p99s[delivery].append(result.p99_ms)
                            rates[delivery].append(result.per_s)
                sent = stored(workdir / f"{slug}-on.db", "state = 'delivered'")
            p99_on, p99_off = statistics.median(p99s[True]), statistics.median(p99s[False])
            ratio = p99_on / p99_off
            ok = ratio <= 1.5
            verdicts.append(ok)
            print(
                f"  {upstream_name:10}  delivery off: p99 {p99_off:6.1f} ms "
                f"({statistics.median(rates[False]):,.0f} req/s)   delivery on: p99 "
                f"{p99_on:6.1f} ms ({statistics.median(rates[True]):,.0f} req/s, "
                f"{sent:,} tickets delivered)   {ratio:.2f}x (target <= 1.5x) -> "
                f"{verdict(ok)}"
            )
    print(f"  overall -> {verdict(all(verdicts))}")


if __name__ == "__main__":
    main()
