"""``bridge demo`` (what ``make demo`` runs): emulator + bridge + delivery on embedded defaults,
everything it writes in one directory, and a shop page on another origin."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.e2e.browser import chromium, need_chromium
from tests.e2e.harness import ROOT, answering, free_port, run_printed, wait_until

pytestmark = pytest.mark.e2e


def test_demo_turns_the_printed_webhook_and_the_shop_form_into_tickets(tmp_path: Path) -> None:
    need_chromium()
    port, emulator_port, site_port = free_port(), free_port(), free_port()
    where = tmp_path / "empty"
    where.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "BRIDGE_STORE"}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bridge.cli",
            "demo",
            "--port",
            str(port),
            "--emulator-port",
            str(emulator_port),
            "--site-port",
            str(site_port),
        ],
        cwd=where,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    bridge = f"http://127.0.0.1:{port}"
    site = f"http://127.0.0.1:{site_port}"
    tickets_url = f"http://127.0.0.1:{emulator_port}/_emulator/tickets"
    try:
        assert wait_until(lambda: answering(bridge), timeout=30)
        answer = requests.post(
            f"{bridge}/hooks/events",
            timeout=10,
            json={"id": "evt-1", "title": "Nightly backup failed", "severity": "critical"},
        )
        assert answer.status_code == 202
        assert wait_until(lambda: requests.get(tickets_url, timeout=5).json()["count"] == 1, 20)
        ticket = requests.get(tickets_url, timeout=5).json()["tickets"][0]
        assert (ticket["subject"], ticket["priority"]) == ("Nightly backup failed", "high")
        assert requests.get(f"{bridge}/forms/contact", timeout=5).status_code == 200
        with chromium() as browser:  # the shop: another origin, as the user's site is
            page = browser.new_page()  # type: ignore[attr-defined]
            page.goto(f"{site}/")
            form = page.locator(f"form[action='{bridge}/forms/contact']")
            form.get_by_label("Name").fill("Dana Demo")
            form.get_by_label("Email").fill("dana@example.com")
            form.get_by_label("Message").fill("Is the blue one back in stock?")
            time.sleep(1)
            with page.expect_navigation():
                form.get_by_role("button", name="Send").click()
            assert page.url.startswith(site)  # back on the shop's own thank-you page
            assert page.get_by_role("button", name="Help").count() == 0  # thanks.html: no widget
        assert wait_until(lambda: requests.get(tickets_url, timeout=5).json()["count"] == 2, 20)
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=40)
    assert proc.returncode == 0
    assert f"curl -s -X POST {bridge}/hooks/events" in out and f"{site}/" in out
    data = where / "bridge-demo"
    assert f"data:      {data}" in out  # shown, absolute
    assert sorted(p.name for p in where.iterdir()) == ["bridge-demo"]  # nothing else written
    assert (data / "demo.db").exists()
    listed = run_printed(
        out, " outbox list ", where, {**env, "DEMO_STORE": f"sqlite:///{data / 'demo.db'}"}
    )
    assert "delivered" in listed
