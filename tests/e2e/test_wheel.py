"""Installed like any Python service: the built wheel in a fresh virtualenv outside the
checkout, then ``bridge demo`` from an empty directory — the hosted form renders,
``widget.js`` is served, and a webhook becomes a ticket in the emulator."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

import bridge
from tests.e2e.harness import ROOT, answering, free_port, run_printed, wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def installed() -> Iterator[Path]:
    """A virtualenv, outside the checkout, holding only the wheel and its dependencies."""
    with tempfile.TemporaryDirectory(prefix="bridge-wheel-") as directory:
        where = Path(directory)
        subprocess.run(
            [sys.executable, "-m", "build", "--wheel", "--outdir", str(where / "dist"), str(ROOT)],
            check=True,
            capture_output=True,
            timeout=300,
        )
        (wheel,) = (where / "dist").glob("proprofs_bridge-*.whl")
        subprocess.run([sys.executable, "-m", "venv", str(where / "venv")], check=True, timeout=120)
        python = where / "venv" / "bin" / "python"
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", str(wheel)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        yield where / "venv" / "bin"


def clean_env() -> dict[str, str]:
    """The environment without anything that would point Python at the checkout."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def test_the_wheel_is_the_whole_service(installed: Path, tmp_path: Path) -> None:
    where = subprocess.run(
        [str(installed / "python"), "-c", "import bridge; print(bridge.__file__)"],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert where.startswith(str(installed.parent)) and not where.startswith(str(ROOT))
    version = subprocess.run(
        [str(installed / "bridge"), "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert version.strip() == f"bridge, version {bridge.__version__}"

    empty = tmp_path / "empty"
    empty.mkdir()
    port, emulator_port, site_port = free_port(), free_port(), free_port()
    proc = subprocess.Popen(
        [
            str(installed / "bridge"),
            "demo",
            "--port",
            str(port),
            "--emulator-port",
            str(emulator_port),
            "--site-port",
            str(site_port),
        ],
        cwd=empty,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_until(lambda: answering(url), 40), proc.poll()
        form = requests.get(f"{url}/forms/contact", timeout=10)
        assert form.status_code == 200 and "<form" in form.text and 'name="email"' in form.text
        script = requests.get(f"{url}/widget.js", timeout=10)
        assert script.status_code == 200 and "javascript" in script.headers["Content-Type"]
        assert "attachShadow" in script.text
        assert requests.get(f"{url}/forms.js", timeout=10).status_code == 200
        shop = requests.get(f"http://127.0.0.1:{site_port}/", timeout=10).text
        assert f'<script src="{url}/forms.js"' in shop and f'{url}/widget.js"' in shop
        answer = requests.post(
            f"{url}/hooks/events",
            json={"id": "wheel-1", "title": "Installed from the wheel", "severity": "critical"},
            timeout=10,
        )
        assert answer.status_code == 202, answer.text
        tickets = f"http://127.0.0.1:{emulator_port}/_emulator/tickets"
        assert wait_until(lambda: requests.get(tickets, timeout=5).json()["count"] == 1, 30)
        (ticket,) = requests.get(tickets, timeout=5).json()["tickets"]
        assert ticket["subject"] == "Installed from the wheel"
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err
    data = empty / "bridge-demo"
    assert (data / "demo.db").is_file() and f"data:      {data}" in out  # one place, shown
    assert [p.name for p in empty.iterdir()] == ["bridge-demo"]
    printed = next(line for line in out.splitlines() if " outbox list " in line)
    assert ".venv" not in printed and str(ROOT) not in printed  # where the wheel is installed
    listed = run_printed(
        out, " outbox list ", empty, {**clean_env(), "DEMO_STORE": f"sqlite:///{data / 'demo.db'}"}
    )
    assert "delivered" in listed
