"""Files in a real browser against a real ``bridge serve``: the hosted form with two files,
an uploaded page that only ever downloads, and the widget with a pasted image."""

from __future__ import annotations

import base64
import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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

ROUTES = """
  contact:
    kind: form
    fields:
      name:    {{type: string, required: true, label: Your name}}
      email:   {{type: email, required: true}}
      message: {{type: text, required: true, label: "How can we help?"}}
      files:   {{type: file, label: Attachments}}
    attachments: {{max_size: 40KB, max_files: 2, types: [image/png, application/pdf, text/html]}}
  support:
    kind: widget
    fields:
      email:      {{type: email, required: true, label: Email}}
      message:    {{type: text, required: true, label: Message}}
      screenshot: {{type: file, label: Screenshot}}
    origins: ["{site}"]
    widget: {{title: "Need help?", launcher: Help, status_cache: 0s}}
"""
SHOP = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Acme Shop</title></head>
<body><h1>Order #10492</h1><script src="{bridge}/widget.js" data-route="support" async></script>
</body></html>"""
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAFUlEQVR4nGP8z8DwnwEHYMIlMXIlATuDAg5x5Nc6AAAAAElFTkSuQmCC"
)
PDF = b"%PDF-1.4\n% an invoice\n" + b"0 0 obj\n" * 50
BIG = PNG + b"\0" * 60_000
PAGE = b"<!doctype html><html><head><title>uploaded</title></head><body><script>document.title='ran'</script>hello</body></html>"


@pytest.fixture
def served(emulator: EmulatorServer, tmp_path: Path) -> Iterator[tuple[str, str]]:
    pages = {"shop.html": SHOP}
    with site_and_bridge(
        emulator, tmp_path, pages, lambda site: ROUTES.format(site=site), linked=True
    ) as both:
        yield both


def files_on_disk(tmp_path: Path, blobs: dict[str, bytes]) -> dict[str, str]:
    paths = {}
    for name, data in blobs.items():
        path = tmp_path / name
        path.write_bytes(data)
        paths[name] = str(path)
    return paths


def links_in(ticket: Any) -> list[str]:
    return re.findall(r"(http://127\.0\.0\.1:\d+/files/\S+)", ticket.description or "")


def download(page: Any, url: str) -> bytes:
    """Follow a link the way an agent clicks it in the ticket: it must download."""
    from playwright.sync_api import Error

    # The navigation turns into a download: Chromium reports it as aborted.
    with page.expect_download(timeout=15000) as info, contextlib.suppress(Error):
        page.goto(url)
    return Path(info.value.path()).read_bytes()


def test_the_hosted_form_with_two_files_one_over_the_limit_then_both_good(
    served: tuple[str, str], emulator: EmulatorServer, tmp_path: Path
) -> None:
    bridge, _ = served
    paths = files_on_disk(tmp_path, {"invoice.pdf": PDF, "huge.png": BIG, "screen.png": PNG})
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 860, "height": 800}, accept_downloads=True)  # type: ignore[attr-defined]
        page.goto(f"{bridge}/forms/contact")
        page.get_by_label("Your name").fill("Jane Doe")
        page.get_by_label("Email").fill("jane@example.com")
        page.get_by_label("How can we help?").fill("The invoice and a screenshot.")
        page.get_by_label("Attachments").set_input_files([paths["invoice.pdf"], paths["huge.png"]])
        page.get_by_role("button", name="Send").click()
        page.wait_for_selector("#e-files")
        assert page.locator("#e-files").inner_text() == (
            "huge.png is 60.1 KB; files may be at most 40.0 KB."
        )
        assert page.get_by_label("Your name").input_value() == "Jane Doe"
        assert (
            page.get_by_label("How can we help?").input_value() == "The invoice and a screenshot."
        )
        picture(page, "form-file-error")
        page.get_by_label("Attachments").set_input_files(
            [paths["invoice.pdf"], paths["screen.png"]]
        )
        page.get_by_role("button", name="Send").click()
        page.wait_for_url("**/forms/contact/thanks")
        assert wait_until(lambda: len(emulator.state.tickets) == 1, timeout=20)
        (ticket,) = emulator.state.tickets.values()
        assert "- invoice.pdf (" in ticket.description and "- screen.png (" in ticket.description
        first, second = links_in(ticket)
        assert download(page, first) == PDF
        assert download(page, second) == PNG
        screenshot(page, "form-files-downloaded")


def test_an_uploaded_page_downloads_and_never_runs_in_the_bridges_origin(
    served: tuple[str, str], emulator: EmulatorServer
) -> None:
    bridge, _ = served
    answer = requests.post(
        f"{bridge}/forms/contact",
        data={"name": "Mal", "email": "mal@example.com", "message": "see attached"},
        files={"files": ("invoice.png", PAGE, "image/png")},
        headers={"Accept": "application/json"},
        timeout=10,
    )
    assert answer.status_code == 202
    assert wait_until(lambda: len(emulator.state.tickets) == 1, timeout=20)
    (link,) = links_in(next(iter(emulator.state.tickets.values())))
    with chromium() as browser:
        page = browser.new_page(accept_downloads=True)  # type: ignore[attr-defined]
        page.goto(f"{bridge}/healthz")
        assert download(page, link) == PAGE
        assert page.title() != "ran" and "hello" not in page.content()
        # Even loaded into a frame of the bridge's own origin, it is never a document there.
        page.goto(f"{bridge}/healthz")
        page.evaluate(
            "url => { const f = document.createElement('iframe'); f.src = url; document.body.appendChild(f); }",
            link,
        )
        page.wait_for_timeout(1000)
        frames = [f for f in page.frames if f != page.main_frame]
        for frame in frames:
            try:
                ran = frame.evaluate("document.title") == "ran"
            except Exception:
                ran = False  # a sandboxed or aborted frame offers no script at all
            assert not ran


def test_the_widget_takes_a_pasted_image_and_its_status_lists_it(
    served: tuple[str, str], emulator: EmulatorServer
) -> None:
    _, site = served
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 420, "height": 900})  # type: ignore[attr-defined]
        page.goto(f"{site}/shop.html")
        page.get_by_role("button", name="Help").click()
        page.get_by_role("dialog", name="Need help?").wait_for(state="visible")
        page.get_by_label("Email").fill("robin@example.com")
        message = page.get_by_label("Message")
        message.fill("The button looks like this:")
        # What a browser does on Ctrl+V with an image on the clipboard.
        message.evaluate(
            """(node, b64) => {
                const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
                const data = new DataTransfer();
                data.items.add(new File([bytes], "image.png", { type: "image/png" }));
                node.dispatchEvent(new ClipboardEvent("paste", { clipboardData: data, bubbles: true, composed: true }));
            }""",
            base64.b64encode(PNG).decode(),
        )
        attached = page.locator("proprofs-bridge-widget ul.files li")
        attached.first.wait_for(timeout=5000)
        assert re.match(
            r"pasted-.*\.png \(\d+ bytes\)Remove", attached.first.inner_text().replace("\n", "")
        )
        picture(page, "widget-pasted", full_page=False)
        page.get_by_role("button", name="Send").click()
        page.get_by_role("status").filter(has_text="received").wait_for(timeout=15000)
        assert wait_until(lambda: len(emulator.state.tickets) == 1, timeout=20)
        (ticket,) = emulator.state.tickets.values()
        (link,) = links_in(ticket)
        assert requests.get(link, timeout=10).content == PNG
        # The person's requests list the file with a link to it.
        shown = page.locator("proprofs-bridge-widget .request .file a")
        shown.first.wait_for(timeout=15000)
        assert shown.first.inner_text().startswith("pasted-")
        assert shown.first.get_attribute("href") == link
        screenshot(page, "widget-pasted-status", full_page=False)
