"""CLI start-up: how long ``bridge --version``, ``--help`` and a subcommand's ``--help`` take.

Each command runs 10 times in a fresh interpreter; the figure is the median wall time.
The baseline, measured in the same run, is ``python -c pass`` plus importing ``click``
(what any click command costs before it does anything). Target: each under 0.5 s.
Run: ``.venv/bin/python bench/cli_start.py``.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

BRIDGE = str(Path(sys.executable).with_name("bridge"))
COMMANDS = {
    "baseline: python + click": [sys.executable, "-c", "import click"],
    "bridge --version": [BRIDGE, "--version"],
    "bridge --help": [BRIDGE, "--help"],
    "bridge admin --help": [BRIDGE, "admin", "--help"],
    "bridge serve --help": [BRIDGE, "serve", "--help"],
}
ROUNDS = 10


def median_seconds(command: list[str]) -> float:
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, timeout=30)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    figures = {name: median_seconds(command) for name, command in COMMANDS.items()}
    baseline = figures["baseline: python + click"]
    for name, seconds in figures.items():
        verdict = "" if name.startswith("baseline") else ("  ok" if seconds < 0.5 else "  SLOW")
        print(f"{name:<28} {seconds * 1000:7.0f} ms  {seconds / baseline:5.2f}× baseline{verdict}")


if __name__ == "__main__":
    main()
