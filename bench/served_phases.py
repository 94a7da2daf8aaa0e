"""Where a served webhook's time goes, phase by phase: a latency histogram per phase from
`bridge serve` itself under load — its two gunicorn workers, their SQLite writers' turn and
the disk — where `bench/phases.py` runs the app in one process.

Every process of the serve loads ``bench/_probe/sitecustomize.py``, which times the
phases where they start and end in the code (guard, read body, parse, validate and map,
enqueue and commit, count and log, and the whole request in the app) and writes them out.
wrk posts JSON webhooks with a bearer token (4 connections by default: where a stall
shows, the rest of the load being light). The baseline, in the same run, is a bare Flask
app under the same gunicorn settings and the same load: its latency as wrk saw it, next to
the bridge's. A phase whose p99 or maximum stands far above its median is a stall.
``--against REV`` also serves git revision REV with the same probe, rounds alternating,
to show a phase before and after a change.
Run: ``.venv/bin/python bench/served_phases.py [--connections N] [--against REV]``
(needs wrk: ``make bench-tools``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _wrk
from bench._harness import ROOT, bare
from bench.intake import TOKEN, bridge, export
from bench.phases import PHASES, row

PROBE = ROOT / "bench" / "_probe"


@contextlib.contextmanager
def probed(workdir: Path, root: Path) -> Iterator[tuple[str, Path]]:
    """``bridge serve`` of the tree at ``root`` with the phase probe; its URL and the
    directory its workers write their timings to (complete once it has stopped)."""
    out = workdir / "phases"
    out.mkdir()
    saved = dict(os.environ)
    os.environ["BRIDGE_BENCH_PHASES"] = str(out)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(PROBE), str(root), saved.get("PYTHONPATH")])
    )
    try:
        served = bridge(workdir, root=root)
        url, _ = served.__enter__()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    try:
        yield url, out
    finally:
        served.__exit__(None, None, None)


def collected(directory: Path) -> dict[str, list[float]]:
    """Every worker's timings, phase by phase."""
    merged: dict[str, list[float]] = defaultdict(list)
    for path in directory.glob("phases-*.json"):
        for phase, values in json.loads(path.read_text()).items():
            merged[phase] += values
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--against", metavar="REV", help="also serve git revision REV")
    args = parser.parse_args()
    rounds = max(1, min(args.rounds, 10))
    seconds = max(2.0, min(args.seconds, 60.0))
    connections = max(1, min(args.connections, 256))
    _wrk.need_wrk()
    wrk: dict[str, list[_wrk.Result]] = defaultdict(list)
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as serving:
        workdir = Path(tmp)
        bare_url, _ = serving.enter_context(bare(workdir))
        trees = {"this tree": ROOT}
        if args.against:
            trees[f"at {args.against}"] = export(args.against, workdir / "against")
        served: dict[str, tuple[str, Path]] = {}
        for n, (name, root) in enumerate(trees.items()):
            (workdir / f"served-{n}").mkdir()
            served[name] = serving.enter_context(probed(workdir / f"served-{n}", root))
        urls = {"bare Flask": bare_url, **{name: url for name, (url, _) in served.items()}}
        for url in urls.values():  # warm up (the probe counts it: only the first second)
            _wrk.run(url, connections=connections, seconds=1, token=TOKEN)
        for _ in range(rounds):
            for name, url in urls.items():
                wrk[name].append(
                    _wrk.run(url, connections=connections, seconds=seconds, token=TOKEN)
                )
        serving.close()  # the serves stop: their workers' last timings are written
        timings = {name: collected(out) for name, (_, out) in served.items()}
    print(
        f"served phases: wrk -t2 -c{connections}, {rounds} rounds x {seconds:g} s, JSON "
        "webhook with a bearer token; bridge serve, 2 gthread workers, durable SQLite"
    )
    for name, results in wrk.items():
        p99 = statistics.median(r.p99_ms for r in results)
        rate = statistics.median(r.per_s for r in results)
        print(f"  {name}: {rate:,.0f} req/s, p99 {p99:.2f} ms as wrk saw it (medians)")
    bare_p99 = statistics.median(r.p99_ms for r in wrk["bare Flask"])
    for name, phases in timings.items():
        print(f"  {name}, in the app (every request, warm-up included):")
        total = statistics.median(phases["total"]) * 1000 if phases["total"] else None
        for phase in PHASES:
            if phases.get(phase):
                print(row(phase, phases[phase], None if phase == "total" else total))
        bridge_p99 = statistics.median(r.p99_ms for r in wrk[name])
        print(f"  {name}: p99 {bridge_p99 / bare_p99:.2f}x bare Flask's (wrk, medians)")


if __name__ == "__main__":
    main()
