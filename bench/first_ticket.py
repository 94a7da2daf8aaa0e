"""From a fresh clone to the first ticket: ``make demo`` as a new user runs it.

The repository (its committed HEAD) is cloned into an empty directory and ``make demo``
is started there with free ports; the clock stops when a webhook posted as soon as the
bridge answers is a ticket in the emulator. The baseline, measured in the same run on
another fresh clone, is what ``make demo`` used to install first: the service with its
test and docs tools (``pip install -e '.[dev]'``), timed alone. Both use this machine's pip
cache as it is. Target: the first ticket within a minute.
Run: ``.venv/bin/python bench/first_ticket.py``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import ROOT, free_port, verdict


def clone(into: Path) -> Path:
    subprocess.run(["git", "clone", "-q", str(ROOT), str(into)], check=True, timeout=300)
    return into


def first_ticket(workdir: Path) -> tuple[float, float]:
    """Seconds from the clone to serving, and to the first ticket."""
    started = time.monotonic()
    tree = clone(workdir / "demo")
    port, emulator_port, site_port = free_port(), free_port(), free_port()
    command = ["make", "demo"]
    env = {**os.environ, "MAKEFLAGS": ""}
    env.pop("VIRTUAL_ENV", None)
    demo_args = f"--port {port} --emulator-port {emulator_port} --site-port {site_port}"
    proc = subprocess.Popen(
        [*command, f"DEMO_ARGS={demo_args}"],
        cwd=tree,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    bridge = f"http://127.0.0.1:{port}"
    tickets = f"http://127.0.0.1:{emulator_port}/_emulator/tickets"
    try:
        serving = _wait(lambda: requests.get(f"{bridge}/healthz", timeout=1).ok, 600, started)
        requests.post(
            f"{bridge}/hooks/events",
            json={"id": "first", "title": "The first ticket", "severity": "critical"},
            timeout=10,
        ).raise_for_status()
        ticket = _wait(lambda: requests.get(tickets, timeout=1).json()["count"] >= 1, 60, started)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
    return serving, ticket


def dev_install(workdir: Path) -> float:
    """Seconds from the clone to the service installed with its test and docs tools."""
    started = time.monotonic()
    tree = clone(workdir / "dev")
    venv = tree / ".venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "-e", ".[dev]"],
        cwd=tree,
        check=True,
        timeout=1800,
    )
    return time.monotonic() - started


def _wait(ready: object, timeout: float, started: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if ready():  # type: ignore[operator]
                return time.monotonic() - started
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit(f"nothing after {timeout:g} s")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        serving, ticket = first_ticket(workdir)
        baseline = dev_install(workdir)
    print("first ticket: a fresh clone, make demo, one webhook")
    print(f"  serving after        {serving:6.1f} s")
    print(f"  first ticket after   {ticket:6.1f} s  (target <= 60 s) -> {verdict(ticket <= 60)}")
    print(
        f"  baseline: clone + the dev install alone {baseline:6.1f} s; the first ticket "
        f"comes in {ticket / baseline:.2f}x that"
    )


if __name__ == "__main__":
    main()
