"""The widget embedded with one script tag in a hostile page on another origin."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from bridge.proprofs.emulator import EmulatorServer
from tests.e2e.browser import chromium, fill, need_chromium, screenshot, static_site
from tests.e2e.harness import bridge_server, free_port, wait_until, write_config

pytestmark = pytest.mark.e2e

HOSTILE = """<!doctype html><html><head><title>Shop</title><style>
* { all: unset !important; }
div { display: none !important; }
button { display: none !important; visibility: hidden !important; }
body { font-size: 40px !important; color: red !important; }
proprofs-bridge-widget, [data-route] { display: none; }
</style></head><body><div>Products</div><p>Welcome to the shop.</p>
<script src="{bridge}/widget.js" data-route="support" async></script>
</body></html>"""

ROUTES = """
  support:
    kind: widget
    fields:
      name:    {{type: string, max_length: 200, label: Your name}}
      email:   {{type: email, required: true, label: Email}}
      message: {{type: text, required: true, max_length: 5000, label: Message}}
    origins: ["{site}"]
    widget: {{title: "Need help?", launcher: Help, status_cache: 0s, page_url_field: CF1-1}}
"""


@pytest.fixture
def embedded(emulator: EmulatorServer, tmp_path: Path) -> Iterator[tuple[str, str]]:
    need_chromium()
    with static_site({"shop.html": HOSTILE}) as site:
        port = free_port()
        bridge = f"http://127.0.0.1:{port}"
        fill(site, bridge=bridge)
        config = write_config(
            tmp_path / "bridge.yaml",
            f"sqlite:///{tmp_path / 'w.db'}",
            emulator,
            routes=ROUTES.format(site=site),
        )
        with bridge_server(config, port=port):
            yield bridge, site


def test_the_widget_survives_hostile_css_and_shows_the_reply(
    embedded: tuple[str, str], emulator: EmulatorServer
) -> None:
    _, site = embedded
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 390, "height": 800})  # type: ignore[attr-defined]
        page.goto(f"{site}/shop.html")
        launcher = page.get_by_role("button", name="Help")
        launcher.wait_for(state="visible", timeout=15000)
        box = launcher.bounding_box()
        assert box is not None and box["width"] > 20 and box["height"] > 20
        screenshot(page, "widget-closed")
        launcher.focus()
        page.keyboard.press("Enter")
        dialog = page.get_by_role("dialog", name="Need help?")
        dialog.wait_for(state="visible")
        assert (
            page.evaluate(
                "document.querySelector('proprofs-bridge-widget').shadowRoot.activeElement.id"
            )
            == "pb-f-name"
        )
        page.keyboard.type("Robin Reader")
        page.keyboard.press("Tab")
        page.keyboard.type("robin@example.com")
        page.keyboard.press("Tab")
        page.keyboard.type("The checkout button does nothing.")
        screenshot(page, "widget-open")
        page.get_by_role("button", name="Send").click()
        page.get_by_role("status").filter(has_text="received").wait_for(timeout=15000)
        screenshot(page, "widget-sent")
        assert wait_until(lambda: len(emulator.state.tickets) == 1, timeout=20)
        (ticket,) = emulator.state.tickets.values()
        assert (ticket.email, ticket.name) == ("robin@example.com", "Robin Reader")
        assert ticket.custom_fields == [
            {"id": "CF1-1", "name": "Field CF1-1", "value": f"{site}/shop.html"}
        ]
        requests.post(
            f"{emulator.url}/_emulator/tickets/{ticket.ticket_id}/reply",
            json={"text": "Fixed it, please try again."},
            timeout=5,
        ).raise_for_status()
        page.keyboard.press("Escape")
        dialog.wait_for(state="hidden")
        launcher.click()
        page.get_by_text("Fixed it, please try again.").wait_for(timeout=15000)
        assert page.get_by_text(f"Ticket #{ticket.ticket_id}").count() == 1
        screenshot(page, "widget-status")
        # Tab stays inside the open panel (focus trap).
        for _ in range(12):
            page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.tagName") == "PROPROFS-BRIDGE-WIDGET"
