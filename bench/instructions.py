"""Instructions per webhook: the bridge's own work against a bare Flask app's, counted.

`bench/intake.py` measures what users see, but on a shared machine its figures move by a
third from one run to the next, so a change worth a few per cent is lost in them. This
benchmark counts instead of timing: each app runs in one process, one thread, no server,
under valgrind (``cachegrind``, no cache simulation), and takes the same JSON webhooks
with a bearer token that `bench/intake.py` sends. The bridge checks, validates, maps,
logs and commits each to SQLite (a commit of its own: one thread makes no group); the
bare app parses the JSON and answers 202. A request's figure is the instructions of a
run that serves N requests less those of a run that makes them and serves none (start-up,
imports, warm-up, building the requests), divided by N.
The same code gives the same figure within a fraction of a per cent, whatever else the
machine does. It counts the processes' own instructions: time in the kernel (the
commit's sync, socket calls) and time lost to waiting are `bench/intake.py`'s to show.

Prints both figures and their ratio; ``--against REV`` also counts the bridge of git
revision REV (exported beside the run, with this environment's packages) and prints the
change. There is no target: the ratio is a guide to what a change saves, not a goal.
Run: ``.venv/bin/python bench/instructions.py`` (needs valgrind: ``make bench-tools``);
each figure takes about a minute.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import ROOT
from bench.intake import CONFIG, TOKEN, export

WARM = 300  # requests before the counted ones: caches, compiled templates, the pool
REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def bodies(count: int) -> Iterable[bytes]:
    """The webhooks, each different: the ones `bench/_wrk.py`'s script posts, key for key."""
    for n in range(1, count + 1):
        yield json.dumps(
            {
                "id": str(n),
                "title": f"Disk almost full on db-{n % 50}",
                "severity": "warning",
                "service": "storage",
                "value": n,
            }
        ).encode()


def app_of(kind: str, workdir: Path, tree: Path) -> Callable[..., Any]:
    """The WSGI app to count: ``bare``, or ``bridge`` as the tree at ``tree`` has it."""
    if kind == "bare":
        from bench.bare_app import app

        return app
    config = workdir / "bridge.yaml"
    config.write_text(CONFIG.format(db=workdir / "bridge.db", token=TOKEN))
    os.environ["BRIDGE_CONFIG"] = str(config)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(workdir)
    sys.path.insert(0, str(tree))
    from bridge.app import from_environment

    if not Path(sys.modules["bridge"].__file__ or "").is_relative_to(tree):
        raise SystemExit(f"bridge came from {sys.modules['bridge'].__file__}, not {tree}")

    bridge = from_environment()
    for handler in logging.getLogger().handlers:  # the lines are made, and thrown away
        handler.stream = open(os.devnull, "w")  # type: ignore[attr-defined]  # noqa: SIM115
    return bridge


def child(kind: str, requests: int, serve: bool, tree: Path) -> None:
    """Inside valgrind: make the app, warm it up, then serve ``requests`` webhooks (or,
    with ``serve`` false, make them and serve none: the run whose count is taken away)."""
    from werkzeug.test import EnvironBuilder

    with tempfile.TemporaryDirectory() as tmp:
        app = app_of(kind, Path(tmp), tree)
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        environs = [
            EnvironBuilder(
                path="/hooks/alerts", method="POST", data=body, headers=headers
            ).get_environ()
            for body in bodies(WARM + requests)
        ]
        status: list[str] = []
        for environ in environs[: WARM + requests if serve else WARM]:
            answer = app(environ, lambda s, h, e=None: status.append(s))
            b"".join(answer)
            answer.close()
        refused = [s for s in status if not s.startswith("202")]
        if refused:
            raise SystemExit(f"{len(refused)} requests were not accepted: {refused[0]}")


def count(kind: str, requests: int, serve: bool, tree: Path) -> int:
    """The instructions of a child that makes ``requests`` webhooks and serves them after
    its warm-up (or, without ``serve``, does all but serve them)."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    cmd = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
    cmd += [sys.executable, str(ROOT / "bench" / "instructions.py")]
    cmd += ["--child", kind, "--requests", str(requests), "--tree", str(tree)]
    cmd += [] if serve else ["--no-serve"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    found = REFS.search(done.stderr)
    if done.returncode != 0 or found is None:
        tail = "\n".join(done.stderr.splitlines()[-15:])
        raise SystemExit(f"the {kind} run under valgrind failed ({done.returncode}):\n{tail}")
    return int(found.group(1).replace(",", ""))


def per_request(kind: str, requests: int, tree: Path) -> float:
    return (count(kind, requests, True, tree) - count(kind, requests, False, tree)) / requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--against", metavar="REV", help="also count git revision REV's bridge")
    parser.add_argument("--child", choices=("bare", "bridge"), help=argparse.SUPPRESS)
    parser.add_argument("--tree", type=Path, default=ROOT, help=argparse.SUPPRESS)
    parser.add_argument("--no-serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    requests = max(1, min(args.requests, 20_000))
    if args.child:
        child(args.child, requests, not args.no_serve, args.tree.resolve())
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is missing: `make bench-tools` installs it")
    with tempfile.TemporaryDirectory() as tmp:
        bare = per_request("bare", requests, ROOT)
        bridge = per_request("bridge", requests, ROOT)
        before = None
        if args.against:
            before = per_request("bridge", requests, export(args.against, Path(tmp) / "against"))
    print(f"instructions per webhook, one process, {requests:,} requests after {WARM} warm-up")
    print(f"  bare Flask:      {bare:12,.0f}")
    print(f"  bridge:          {bridge:12,.0f}  ({bridge / bare:.2f}x bare)")
    if before is not None:
        change = (bridge - before) / before
        print(
            f"  bridge at {args.against}: {before:12,.0f}  ({before / bare:.2f}x bare); "
            f"this tree {change:+.1%}"
        )


if __name__ == "__main__":
    main()
