"""An alert group's incident page on a phone, and the console's captured-payload view with
its test send, in a real browser against ``bridge serve``."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
import requests
from werkzeug.security import generate_password_hash

from bridge.proprofs.emulator import EmulatorServer
from tests.e2e.browser import chromium, need_chromium, picture
from tests.e2e.harness import bridge_server, free_port, wait_until, write_config
from tests.support.alerts import PAYLOADS

pytestmark = pytest.mark.e2e
PASSWORD = "console password 42"
BEARER = "am-incident-bearer-5150"
FIRING = json.loads(
    (
        PAYLOADS / "alertmanager" / "prometheus-msteams_prom_post_request_2_alerts_firing.json"
    ).read_text()
)

ROUTES = f"""
  alerts:
    kind: hook
    source: alertmanager
    auth: {{bearer: {BEARER}}}
    ticket_check_ttl: 0
    capture: 10
    ticket: {{email: alerts@example.com, inbox: IB238-500}}
"""


def test_the_incident_page_on_a_phone_and_a_capture_sent_again_as_a_test(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    need_chromium()
    port = free_port()
    config = write_config(
        tmp_path / "bridge.yaml",
        f"sqlite:///{tmp_path / 'i.db'}",
        emulator,
        routes=ROUTES,
        top=f'server: {{public_url: "http://127.0.0.1:{port}"}}\n'
        f'admin: {{password_hash: "{generate_password_hash(PASSWORD)}"}}',
    )
    auth = {"Authorization": f"Bearer {BEARER}"}
    resolved = copy.deepcopy(FIRING)
    resolved["status"] = "resolved"
    for alert in resolved["alerts"]:
        alert["endsAt"] = "2018-03-07T07:02:10Z"
    with bridge_server(config, port=port) as url:
        answers = [
            requests.post(f"{url}/hooks/alerts", json=body, headers=auth, timeout=10).status_code
            for body in (FIRING, FIRING, FIRING, resolved)
        ]
        assert answers == [202, 200, 200, 200], answers
        assert wait_until(lambda: len(emulator.state.tickets) == 1, timeout=20)
        (ticket,) = emulator.state.tickets.values()
        link = re.search(r"Incident page: (\S+)", ticket.description or "")
        assert link is not None and link.group(1).startswith(url)
        with chromium() as browser:
            phone = browser.new_page(viewport={"width": 390, "height": 844})  # type: ignore[attr-defined]
            phone.goto(link.group(1))
            phone.get_by_text("high_memory_load", exact=False).first.wait_for()
            text = phone.content()
            assert f"#{ticket.ticket_id}" in text and "resolved" in text
            assert text.count("fired again: no new ticket") == 2
            width = phone.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, width  # readable on a phone: nothing wider than the screen
            picture(phone, "incident-page")

            page = browser.new_page(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
            page.goto(f"{url}/admin")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"{url}/admin")
            page.get_by_role("link", name="Captures", exact=True).click()
            page.wait_for_url("**/admin/captures")
            assert page.get_by_role("row").count() == 5  # the header and four payloads
            page.get_by_role("row").nth(4).get_by_role("link").click()  # the first, firing
            page.get_by_text("What it would make now").wait_for()
            assert BEARER not in page.content()
            assert page.get_by_text("Authorization").count() == 0
            picture(page, "console-capture")
            page.get_by_role("button", name="Send again as a test ticket").click()
            page.get_by_text("Sent again as a test").wait_for()
        assert wait_until(lambda: len(emulator.state.tickets) == 2, timeout=20)
    test = max(emulator.state.tickets.values(), key=lambda t: int(t.ticket_id))
    assert test.subject.startswith("[test] ") and test.subject[7:] == ticket.subject
