"""The operator console in a real browser against ``bridge serve``: sign in, look around."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from werkzeug.security import generate_password_hash

from bridge.proprofs.emulator import EmulatorServer
from tests.e2e.browser import chromium, need_chromium, screenshot
from tests.e2e.harness import bridge_server, wait_until, write_config

pytestmark = pytest.mark.e2e
PASSWORD = "console password 42"


def test_sign_in_and_the_main_pages(emulator: EmulatorServer, tmp_path: Path) -> None:
    need_chromium()
    config = write_config(tmp_path / "bridge.yaml", f"sqlite:///{tmp_path / 'a.db'}", emulator)
    config.write_text(
        config.read_text() + f'admin: {{password_hash: "{generate_password_hash(PASSWORD)}"}}\n'
    )
    with bridge_server(config) as url:
        for n in range(3):
            requests.post(
                f"{url}/hooks/events", json={"id": f"e{n}", "title": f"Alert {n}"}, timeout=10
            ).raise_for_status()
        assert wait_until(lambda: len(emulator.state.tickets) == 3, timeout=20)
        with chromium() as browser:
            page = browser.new_page()  # type: ignore[attr-defined]
            page.goto(f"{url}/admin")
            assert "/admin/login" in page.url
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"{url}/admin")
            assert page.get_by_text("Recent submissions").count() == 1
            screenshot(page, "admin-overview")
            page.get_by_role("link", name="Submissions", exact=True).click()
            page.wait_for_url("**/admin/submissions")
            assert page.get_by_text("Alert 2").count() == 1
            screenshot(page, "admin-submissions")
            page.get_by_text("Alert 1").locator("xpath=..").get_by_role("link").first.click()
            page.get_by_text("Ticket draft").wait_for()
            screenshot(page, "admin-submission")
            page.get_by_role("link", name="Routes").click()
            page.get_by_text("/hooks/events").wait_for()
            assert "tok-6fea0d6144d2b9c1-secret" not in page.content()
            screenshot(page, "admin-routes")
