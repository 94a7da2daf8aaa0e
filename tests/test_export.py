"""``bridge tickets export``: 300 tickets over 8 months, once each, and a resume after a kill."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from bridge.cli import main
from bridge.proprofs.emulator import EmulatorServer
from tests.conftest import ACCOUNT_EMAIL, TOKEN

# Starts processes or external tools: part of make test, left out of make check.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
START = datetime(2024, 1, 3, 15, tzinfo=UTC)


def seed(emulator: EmulatorServer, count: int = 300) -> list[str]:
    step = timedelta(days=240) / count
    tickets = [
        {
            "email": f"p{n}@example.com",
            "subject": f"Ticket {n}",
            "inbox": "IB238-436",
            "created": (START + step * n).isoformat(),
            "status": ["new", "open", "closed"][n % 3],
        }
        for n in range(count)
    ]
    response = requests.post(
        f"{emulator.url}/_emulator/tickets", json={"tickets": tickets}, timeout=30
    )
    response.raise_for_status()
    return list(response.json()["ticket_ids"])


def config(tmp_path: Path, emulator: EmulatorServer) -> Path:
    path = tmp_path / "bridge.yaml"
    path.write_text(f"""
proprofs: {{base_url: "{emulator.base_url}", account_email: {ACCOUNT_EMAIL}, token: {TOKEN}}}
routes: {{events: {{kind: hook, ticket: {{email: a@example.com}}}}}}
""")
    return path


def export_args(config: Path, *more: str, since: str = "2024-01-01") -> list[str]:
    """``tickets export`` of the seeded months, with ``more`` options."""
    return ["tickets", "export", "--config", str(config), "--since", since, *more]


SEEDED = ("--until", "2024-09-30")


def test_three_hundred_tickets_over_eight_months_export_once_each(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    ids = seed(emulator)
    out = tmp_path / "tickets.csv"
    result = CliRunner().invoke(
        main, export_args(config(tmp_path, emulator), *SEEDED, "--out", str(out))
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert sorted(r["ticket_id"] for r in rows) == sorted(ids) and len(rows) == 300
    assert "exported 300 ticket(s)" in result.stderr and "(3 window(s)" in result.stderr
    windows = [c["body"] for c in emulator.state.calls if c["endpoint"] == "list"]
    assert all(set(w) >= {"start_created_date", "end_created_date"} for w in windows)
    assert not (tmp_path / "tickets.csv.progress.json").exists()


def test_jsonl_and_filters(emulator: EmulatorServer, tmp_path: Path) -> None:
    seed(emulator, 30)
    result = CliRunner().invoke(
        main,
        export_args(config(tmp_path, emulator), *SEEDED, "--status", "closed", "--format", "jsonl"),
    )
    assert result.exit_code == 0, result.stderr
    docs = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(docs) == 10 and {d["status"] for d in docs} == {"closed"}
    assert docs[0]["inbox_id"] == "IB238-436"


def test_a_killed_export_resumes_without_duplicates(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    ids = seed(emulator)
    requests.post(f"{emulator.url}/_emulator/faults", json={"latency_ms": 150}, timeout=5)
    cfg = config(tmp_path, emulator)
    out = tmp_path / "resume.csv"
    progress = tmp_path / "resume.csv.progress.json"
    cmd = [sys.executable, "-m", "bridge.cli", *export_args(cfg, *SEEDED, "--out", str(out))]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if progress.exists() and json.loads(progress.read_text())["written"] >= 100:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    partial = len(list(csv.DictReader(io.StringIO(out.read_text()))))
    assert 0 < partial < 300
    requests.delete(f"{emulator.url}/_emulator/faults", timeout=5)
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "resumed" in result.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == 300 and sorted(r["ticket_id"] for r in rows) == sorted(ids)


def test_an_export_that_cannot_reach_proprofs_says_so(tmp_path: Path) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_text("""
proprofs: {base_url: "http://127.0.0.1:9/app/api/v1/", account_email: a@example.com, token: t}
routes: {events: {kind: hook, ticket: {email: a@example.com}}}
""")
    result = CliRunner().invoke(main, export_args(path, "--out", str(tmp_path / "x.csv")))
    assert result.exit_code == 1 and "run the same command again to resume" in result.stderr
    assert "cannot reach ProProfs" in result.stderr
