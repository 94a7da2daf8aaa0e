"""SIGTERM at random moments: `bridge serve` and `bridge worker` always exit cleanly in time.

systemd and Kubernetes send TERM (often to the whole process group, sometimes twice) and
wait out a stop timeout; a process that hangs there is killed with its work in flight.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bridge.proprofs.emulator import EmulatorServer
from tests.e2e.harness import ROOT, answering, free_port, wait_until, write_config

pytestmark = pytest.mark.e2e
GRACEFUL = 25.0  # gunicorn's graceful timeout (20 s) plus the supervisor's own stop


def start(cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            cmd, cwd=ROOT, stdout=out, stderr=out, start_new_session=True, env=dict(os.environ)
        )


def terminate_at_random(proc: subprocess.Popen[bytes], rng: random.Random) -> float:
    """TERM to the whole group, then again a few times at random moments; the exit time."""
    began = time.monotonic()
    os.killpg(proc.pid, signal.SIGTERM)
    for _ in range(rng.randint(1, 4)):
        time.sleep(rng.uniform(0, 0.3))
        if proc.poll() is not None:
            break
        os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=GRACEFUL)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        pytest.fail(f"still running {GRACEFUL} s after SIGTERM: it hung")
    return time.monotonic() - began


def test_serve_exits_cleanly_whenever_sigterm_lands(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    rng = random.Random(11)
    config = write_config(tmp_path / "bridge.yaml", f"sqlite:///{tmp_path / 'b.db'}", emulator)
    timings = []
    for round_number in range(4):
        port = free_port()
        cmd = [sys.executable, "-m", "bridge.cli", "serve", "--config", str(config)]
        cmd += ["--port", str(port)] + (["--no-delivery"] if round_number % 2 else [])
        proc = start(cmd, tmp_path / "serve.log")
        url = f"http://127.0.0.1:{port}"
        assert wait_until(lambda url=url: answering(url), 30, 0.2), "bridge serve did not come up"
        time.sleep(rng.uniform(0, 1.5))  # land anywhere in the supervisor's loop
        timings.append(terminate_at_random(proc, rng))
        assert proc.returncode == 0, (tmp_path / "serve.log").read_text()[-2000:]
    assert max(timings) < GRACEFUL


def test_worker_exits_cleanly_whenever_sigterm_lands(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    rng = random.Random(12)
    config = write_config(
        tmp_path / "bridge.yaml",
        f"sqlite:///{tmp_path / 'b.db'}",
        emulator,
        delivery={"poll_interval": 0.01},  # the loop waits on its events many times a second
    )
    log = tmp_path / "worker.log"
    for _ in range(8):
        cmd = [sys.executable, "-m", "bridge.cli", "worker", "--config", str(config)]
        before = log.read_text().count("delivering with") if log.exists() else 0
        proc = start(cmd, log)
        assert wait_until(lambda n=before: log.read_text().count("delivering with") > n, 30)
        time.sleep(rng.uniform(0, 0.5))  # land anywhere in the polling loop
        elapsed = terminate_at_random(proc, rng)
        assert proc.returncode == 0, (tmp_path / "worker.log").read_text()[-2000:]
        assert elapsed < 10
