"""The widget embedded with one script tag in a hostile page on another origin."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from bridge.proprofs.emulator import EmulatorServer
from tests.e2e.browser import (
    chromium,
    picture,
    screenshot,
    site_and_bridge,
)
from tests.e2e.harness import wait_until

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


ORDINARY = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Acme Shop</title>
<style>
body { margin: 0; font: 16px/1.5 system-ui, sans-serif; color: #1d2433; background: #f6f7fb; }
header { background: #fff; border-bottom: 1px solid #e3e6ee; padding: 16px 40px; font-weight: 600; }
main { max-width: 560px; margin: 40px; }
.card { background: #fff; border: 1px solid #e3e6ee; border-radius: 8px; padding: 8px 24px; }
p { color: #4a5568; }
</style></head><body><header>Acme Shop</header><main><div class="card"><h1>Order #10492</h1>
<p>2 × Trail running shoes, size 42.</p><p>Paid on 18 November; ships on Monday.</p></div>
</main><script src="{bridge}/widget.js" data-route="support" async></script></body></html>"""


@pytest.fixture
def embedded(emulator: EmulatorServer, tmp_path: Path) -> Iterator[tuple[str, str]]:
    pages = {"shop.html": HOSTILE, "order.html": ORDINARY}
    with site_and_bridge(emulator, tmp_path, pages, lambda site: ROUTES.format(site=site)) as both:
        yield both


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
        screenshot(page, "widget-status-hostile-css")
        # Tab stays inside the open panel (focus trap).
        for _ in range(12):
            page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.tagName") == "PROPROFS-BRIDGE-WIDGET"


def test_on_an_ordinary_page_a_person_writes_in_and_reads_the_reply(
    embedded: tuple[str, str], emulator: EmulatorServer
) -> None:
    """The README's picture: the widget open on a plain page, with the help desk's reply."""
    _, site = embedded
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1000, "height": 940})  # type: ignore[attr-defined]
        page.goto(f"{site}/order.html")
        launcher = page.get_by_role("button", name="Help")
        launcher.click()
        page.get_by_label("Your name").fill("Robin Reader")
        page.get_by_label("Email").fill("robin@example.com")
        page.get_by_label("Message").fill(
            "Can I still change the shoe size on order #10492? It is this one: "
            "https://shop.example.com/orders/10492/items/trail-running-shoes-size-42-blue"
        )
        page.get_by_role("button", name="Send").click()
        page.get_by_role("status").filter(has_text="received").wait_for(timeout=15000)
        assert wait_until(lambda: len(emulator.state.tickets) == 1, timeout=20)
        (ticket,) = emulator.state.tickets.values()
        assert ticket.subject.startswith("[support] Can I still change the shoe size")
        requests.post(
            f"{emulator.url}/_emulator/tickets/{ticket.ticket_id}/reply",
            json={"text": "Yes — I have changed it to 43. It still ships on Monday."},
            timeout=5,
        ).raise_for_status()
        page.keyboard.press("Escape")
        launcher.click()
        reply = page.get_by_text("I have changed it to 43")
        reply.wait_for(timeout=15000)
        reply.scroll_into_view_if_needed()
        overflowing = page.evaluate(
            """() => [...document.querySelector("proprofs-bridge-widget").shadowRoot
                  .querySelectorAll(".message, .request")]
                  .filter(box => box.scrollWidth > box.clientWidth + 1).length"""
        )
        assert overflowing == 0  # the long link wraps inside the panel
        assert page.get_by_text(f"Ticket #{ticket.ticket_id}").count() == 1
        picture(page, "widget-status", full_page=False)


IDENTITY_SECRET = "widget-people-secret-0123"
SIGNED = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Account</title>
</head><body><h1>Your account</h1>
<script src="{{bridge}}/widget.js" data-route="support" data-identity-email="robin@example.com"
  data-identity-name="Robin" data-identity-hmac="{signature}" async></script></body></html>"""


def test_a_signed_in_person_sees_their_tickets_on_another_device(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    signature = hmac.new(IDENTITY_SECRET.encode(), b"robin@example.com", hashlib.sha256).hexdigest()
    routes = ROUTES.replace(
        "status_cache: 0s,", f"status_cache: 0s, identity_secret: {IDENTITY_SECRET},"
    )
    with (
        site_and_bridge(
            emulator,
            tmp_path,
            {"account.html": SIGNED.format(signature=signature)},
            lambda site: routes.format(site=site),
            top="mirror: {every: 1s, max_calls_per_minute: 120}",
        ) as (_, site),
        chromium() as browser,
    ):
        laptop = browser.new_context().new_page()  # type: ignore[attr-defined]
        laptop.goto(f"{site}/account.html")
        laptop.get_by_role("button", name="Help").click()
        laptop.get_by_label("Message").fill("Where is my refund for order #10492?")
        laptop.get_by_role("button", name="Send").click()
        laptop.get_by_role("status").filter(has_text="received").wait_for(timeout=15000)
        assert wait_until(lambda: len(emulator.state.tickets) == 1, timeout=20)
        (ticket,) = emulator.state.tickets.values()
        requests.post(
            f"{emulator.url}/_emulator/tickets/{ticket.ticket_id}/reply",
            json={"text": "It went out today."},
            timeout=5,
        ).raise_for_status()
        # A phone: another browser, nothing of the laptop's stored in it.
        phone = browser.new_context().new_page()  # type: ignore[attr-defined]
        logs: list[str] = []
        phone.on("console", lambda msg: logs.append(msg.text))
        phone.goto(f"{site}/account.html")

        def shown() -> bool:
            phone.reload()
            phone.get_by_role("button", name="Help").click()
            try:
                phone.get_by_text("It went out today.").wait_for(timeout=2000)
            except Exception:  # not in the mirror yet: the next poll brings it
                return False
            return True

        assert wait_until(shown, timeout=30), logs
        assert phone.get_by_text(f"Ticket #{ticket.ticket_id} · open").count() == 1
        assert phone.get_by_text("Where is my refund for order #10492?").count() >= 1
