"""Intake throughput: `bridge serve` against a bare Flask app under identical gunicorn settings.

Both run as users run them — gunicorn, 2 threaded workers (16 threads each), on this machine
— and wrk posts JSON webhooks with a bearer token at 16 connections (`wrk -t2 -c16`), every
body different. The bridge checks the token, validates and maps each webhook and answers
202 only after its row is committed to SQLite with the durable default
(`synchronous=FULL`); delivery is off, as with `bridge serve --no-delivery`. The bare app
parses the JSON and answers 202. Rounds alternate between the two, and the medians are
compared.

Targets: the bridge ≥ 0.5× the bare app's requests/s, and its p99 ≤ 25 ms. What the ratio
is made of is printed too (on Linux): each server's own CPU per request, user and system,
and its threads' context switches per request, from ``/proc`` before and after each round.
Run: ``.venv/bin/python bench/intake.py`` (needs wrk: ``make bench-tools``).

On a shared machine the same code runs at rates a third apart from one run to the next,
so a change is told apart only side by side: ``--against REV`` also serves the bridge of
git revision REV (exported beside the run, with this environment's packages) in the same
rounds, and prints both against the same bare app. A revision that needs packages this
tree no longer installs finds them on ``PYTHONPATH`` (``pip install --target DIR …``).
``--tuned`` also serves this tree with the opt-in host tuning (``server.pin_cpus``) in the
same rounds, and prints what it is worth against the defaults.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _wrk
from bench._harness import (
    ROOT,
    Usage,
    bare,
    bridge_serve,
    stored,
    tree_usage,
    verdict,
)

TOKEN = "bench-bearer-token-0001"
CONFIG = """
proprofs: {{account_email: bench@example.com, token: bench-token-secret,
            base_url: "http://127.0.0.1:9/app/api/v1/"}}
store: "sqlite:///{db}"
routes:
  alerts:
    kind: hook
    auth: {{bearer: {token}}}
    ticket: {{email: alerts@example.com, subject: "{{{{ data.title }}}}"}}
"""


#: The host tuning a config may opt into (docs/production.md): each worker on a CPU of its
#: own, its threads scheduled as batch work.
TUNED = "server: {pin_cpus: true}\n"


@contextlib.contextmanager
def bridge(workdir: Path, root: Path = ROOT, extra: str = "") -> Iterator[tuple[str, int]]:
    """``bridge serve``'s URL and its pid (gunicorn and its workers run under it)."""
    config = workdir / "bridge.yaml"
    config.write_text(CONFIG.format(db=workdir / "bridge.db", token=TOKEN) + extra)
    with bridge_serve(config, workdir / "bridge.log", root=root) as (url, proc):
        yield url + "/hooks/alerts", proc.pid


def export(revision: str, into: Path) -> Path:
    """The tree of git ``revision`` of this repository, written out under ``into``."""
    into.mkdir()
    try:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", "--format=tar", revision],
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", b"") or str(exc).encode()
        raise SystemExit(f"cannot export {revision!r}: {detail.decode().strip()}") from None
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--against", metavar="REV", help="also serve git revision REV's bridge, side by side"
    )
    parser.add_argument(
        "--tuned",
        action="store_true",
        help="also serve this tree with the opt-in host tuning (server.pin_cpus), side by side",
    )
    args = parser.parse_args()
    rounds = max(1, min(args.rounds, 10))
    seconds = max(2.0, min(args.seconds, 60.0))
    connections = max(1, min(args.connections, 256))
    _wrk.need_wrk()
    results: dict[str, list[_wrk.Result]] = {"bare": [], "bridge": []}
    used: dict[str, list[Usage]] = {}
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as serving:
        workdir = Path(tmp)
        urls = {"bare": serving.enter_context(bare(workdir))}
        urls["bridge"] = serving.enter_context(bridge(workdir))
        against = f"at {args.against}" if args.against else ""
        if against:
            root = export(args.against, workdir / "against")
            urls[against] = serving.enter_context(bridge(root, root=root))
            results[against] = []
        if args.tuned:
            (workdir / "tuned").mkdir()
            urls["tuned"] = serving.enter_context(bridge(workdir / "tuned", extra=TUNED))
            results["tuned"] = []
        for url, _ in urls.values():  # warm up
            _wrk.run(url, connections=connections, seconds=1, token=TOKEN)
        warm = stored(workdir / "bridge.db")
        for _ in range(rounds):
            for name, (url, pid) in urls.items():
                start = tree_usage(pid)
                result = _wrk.run(url, connections=connections, seconds=seconds, token=TOKEN)
                end = tree_usage(pid)
                results[name].append(result)
                if start is not None and end is not None:
                    used.setdefault(name, []).append(end - start)
        kept = stored(workdir / "bridge.db") - warm
    print(
        f"intake: wrk -t2 -c{connections}, {rounds} rounds x {seconds:g} s each, JSON webhook "
        "with a bearer token; gunicorn gthread, 2 workers x 16 threads"
    )
    width = max(map(len, results))
    for name, each in results.items():
        for n, result in enumerate(each, 1):
            print(f"  {name:{width}} round {n}: {result.line()}")
    bare_rate = statistics.median(r.per_s for r in results["bare"])
    rate = statistics.median(r.per_s for r in results["bridge"])
    p99 = statistics.median(r.p99_ms for r in results["bridge"])
    if against:
        before = statistics.median(r.per_s for r in results[against])
        before_p99 = statistics.median(r.p99_ms for r in results[against])
        print(
            f"  side by side: {args.against} {before / bare_rate:.3f}x bare ({before:,.0f} "
            f"req/s), this tree {rate / bare_rate:.3f}x ({rate:,.0f} req/s); p99 "
            f"{before_p99:.1f} -> {p99:.1f} ms (medians)"
        )
    if args.tuned:
        tuned = statistics.median(r.per_s for r in results["tuned"])
        tuned_p99 = statistics.median(r.p99_ms for r in results["tuned"])
        print(
            f"  host tuning (opt-in: server.pin_cpus): {tuned / bare_rate:.3f}x bare "
            f"({tuned:,.0f} req/s, {tuned / rate:.2f}x the defaults); p99 {p99:.1f} -> "
            f"{tuned_p99:.1f} ms (medians)"
        )
    answered = sum(r.requests - r.not_2xx for r in results["bridge"])
    refused = sum(r.not_2xx + r.errors for r in results["bridge"])
    ratio = rate / bare_rate
    print(f"  bare Flask:      {bare_rate:8,.0f} req/s (median)")
    print(f"  bridge serve:    {rate:8,.0f} req/s, p99 {p99:.1f} ms (medians)")
    print(f"  ratio {ratio:.2f}x bare (target >= 0.5x) -> {verdict(ratio >= 0.5)}")
    print(f"  p99 {p99:.1f} ms (target <= 25 ms) -> {verdict(p99 <= 25)}")
    # What the ratio is made of: the servers' own CPU (every process under each) for a
    # request, and how often their threads waited or were preempted.
    for name, rounds_used in used.items():
        total = sum(rounds_used[1:], rounds_used[0])
        served = sum(r.requests for r in results[name])
        print(f"  {name:{width}} {total.per_request(served)}")
    # wrk stops counting at the deadline: up to one request per connection was answered
    # (and stored) after it, in each round and in the warm-up (whose last requests may
    # commit after the count taken before the first round).
    whole = 0 <= kept - answered <= connections * (rounds + 1) and refused == 0
    print(
        f"  every 2xx stored: {answered:,} answered 2xx, {kept:,} rows committed, "
        f"{refused} refused or failed -> {verdict(whole)}"
    )


if __name__ == "__main__":
    main()
