"""``bridge init`` round trips: every kind and every sender preset — written, check-config
OK (which builds the app), and the preset's sample payload maps through ``bridge try``."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bridge.init import SENDERS
from tests.conftest import FIXTURES

# Starts processes or external tools: part of make test, left out of make check.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
FILLED = {
    "PROPROFS_ACCOUNT_EMAIL": "owner@example.com",
    "PROPROFS_TOKEN": "tok-init-0123456789",
    "AWS_SNS_TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:alerts",
    "SENTRY_SECRET": "sentry-client-secret-1",
    "PAGERDUTY_SECRET": "pagerduty-signing-secret-1",
}


def bridge(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge.cli", *args],
        cwd=cwd,
        env={**os.environ, **(env or {}), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def environment(env_file: Path, store: Path) -> dict[str, str]:
    """What the user ends up with: the env file, with the blanks filled in."""
    values: dict[str, str] = {"BRIDGE_STORE": f"sqlite:///{store}"}
    for line in env_file.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value or FILLED[name]
    return values


def sample(preset: str) -> Path:
    """The payload shipped for each preset (``examples/payloads/senders/``)."""
    return ROOT / "examples" / "payloads" / "senders" / f"{preset}.json"


def test_every_shipped_sender_payload_is_a_verbatim_fixture() -> None:
    table = (ROOT / "examples" / "payloads" / "senders" / "README.md").read_text()
    for preset in sorted(SENDERS):
        row = next(line for line in table.splitlines() if line.startswith(f"| {preset}.json |"))
        source = row.split("|")[2].strip()
        origin = ROOT / source if source.startswith("examples/") else FIXTURES / "payloads" / source
        assert sample(preset).read_bytes() == origin.read_bytes(), preset


CASES = [
    *[pytest.param([], [preset], [], id=preset) for preset in sorted(SENDERS)],
    pytest.param(["contact"], [], [], id="form"),
    pytest.param([], [], ["support"], id="widget"),
    pytest.param(["contact", "sales"], ["alertmanager", "grafana"], ["support"], id="mixed"),
    pytest.param(["contact"], sorted(SENDERS), ["support", "billing"], id="everything"),
]


@pytest.mark.parametrize(("forms", "alerts", "widgets"), CASES)
def test_init_writes_a_config_that_checks_boots_and_maps(
    tmp_path: Path, forms: list[str], alerts: list[str], widgets: list[str]
) -> None:
    args = ["init"]
    if forms:
        args += ["--form", ",".join(forms)]
    if alerts:
        args += ["--alerts", ",".join(alerts)]
    if widgets:  # a widget is embedded on the user's own site: its origin goes in
        args += ["--widget", ",".join(widgets), "--site", "https://shop.example.com/cart"]
    done = bridge(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    config, env_file = tmp_path / "bridge.yaml", tmp_path / "bridge.env"
    assert env_file.stat().st_mode & 0o777 == 0o600
    env = environment(env_file, tmp_path / "b.db")
    text = config.read_text()
    for name, value in env.items():  # secrets stay out of the config and off the terminal
        if (
            name not in ("BRIDGE_STORE", "BRIDGE_PUBLIC_URL", "PROPROFS_ACCOUNT_EMAIL")
            and len(value) >= 8
        ):
            assert value not in text and value not in done.stdout + done.stderr, name
    checked = bridge("check-config", "--config", str(config), cwd=tmp_path, env=env)
    assert checked.returncode == 0, checked.stderr
    routes = len(forms) + len(alerts) + len(widgets)
    assert f"OK — {routes} route(s)" in checked.stdout
    for preset in alerts:
        route = preset.replace("_", "-")
        assert f"/hooks/{route}" in done.stdout  # the sender-side instructions name its URL
        tried = bridge(
            "try", "--config", str(config), route, str(sample(preset)), cwd=tmp_path, env=env
        )
        assert tried.returncode == 0, tried.stderr + tried.stdout
        assert '"subject"' in tried.stdout
    for name in forms:
        assert f"/forms/{name}" in done.stdout
    for name in widgets:
        assert f'data-route="{name}"' in done.stdout
    if widgets:
        assert text.count("    origins: [https://shop.example.com]") == len(forms) + len(widgets)
    assert "public_url: ${BRIDGE_PUBLIC_URL}" in text
    assert "BRIDGE_PUBLIC_URL=https://bridge.example.com" in env_file.read_text()


def test_init_asks_on_a_terminal(tmp_path: Path) -> None:
    main, terminal = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge.cli", "init"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
    )
    os.close(terminal)
    seen = b""
    answers = (
        b"contact\n",
        b"nagios\n",  # not a preset: asked again, the form's answer kept
        b"alertmanager, zabbix\n",
        b"-\n",
        b"shop.example.com\n",  # not an address: asked again
        b"https://shop.example.com/contact-us\n",
        b"https://help.example.com\n",
    )
    for answer in answers:
        deadline = time.monotonic() + 30
        while not seen.rstrip(b" ").endswith(b":"):  # each question ends "[default]: "
            assert time.monotonic() < deadline, seen
            if select.select([main], [], [], 1)[0]:
                seen += os.read(main, 4096)
        os.write(main, answer)
        seen += answer
    with_output = b""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        if select.select([main], [], [], 0.5)[0]:
            try:
                with_output += os.read(main, 4096)
            except OSError:  # the terminal closes when the command exits
                break
    assert proc.wait(30) == 0, (seen + with_output).decode(errors="replace")
    text = (tmp_path / "bridge.yaml").read_text()
    assert "  contact:\n    kind: form" in text
    assert "source: alertmanager" in text and "source: zabbix" in text
    assert "kind: widget" not in text
    assert "    origins: [https://shop.example.com]" in text
    assert "BRIDGE_PUBLIC_URL=https://help.example.com" in (tmp_path / "bridge.env").read_text()
    asked = (seen + with_output).decode(errors="replace")
    assert "unknown: nagios" in asked and "is not a site address" in asked
    os.close(main)


def test_init_refuses_what_it_cannot_write(tmp_path: Path) -> None:
    done = bridge("init", "--alerts", "nagios", cwd=tmp_path)
    assert done.returncode == 2 and "unknown sender preset(s): nagios" in done.stderr
    done = bridge("init", "--form", "Contact Us", cwd=tmp_path)
    assert done.returncode == 2 and "is not a route name" in done.stderr
    done = bridge("init", "--form", "contact", "--site", "www.example.com", cwd=tmp_path)
    assert done.returncode == 2 and "is not a site address" in done.stderr
    done = bridge("init", cwd=tmp_path)  # no terminal to ask on, nothing said
    assert done.returncode == 2 and "say what you have" in done.stderr
    assert bridge("init", "--form", "contact", cwd=tmp_path).returncode == 0
    again = bridge("init", "--form", "contact", cwd=tmp_path)
    assert again.returncode == 1 and "exists; use --force" in again.stderr
    assert bridge("init", "--form", "help", "--force", cwd=tmp_path).returncode == 0
    assert "  help:\n" in (tmp_path / "bridge.yaml").read_text()
