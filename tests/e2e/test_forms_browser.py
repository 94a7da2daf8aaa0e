"""A real browser against a real ``bridge serve``: hosted form, other-origin form, fetch."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.proprofs.emulator import EmulatorServer
from tests.e2e.browser import chromium, fill, need_chromium, picture, screenshot, static_site
from tests.e2e.harness import bridge_server, free_port, wait_until, write_config

pytestmark = pytest.mark.e2e
PICTURE_SIZE = {"width": 860, "height": 700}

ROUTES = """
  contact:
    kind: form
    fields:
      name:    {{type: string, required: true, max_length: 200, label: Your name}}
      email:   {{type: email, required: true, help: "We reply to this address."}}
      topic:   {{type: choice, choices: [sales, support, billing], custom_field: CF007-07}}
      message: {{type: text, required: true, max_length: 10000, label: "How can we help?"}}
    page: {{title: Contact ACME, intro: We answer within a day.}}
    origins: [{allowed}]
    spam: {{honeypot: _gotcha}}
    ticket:
      subject: "[{{{{ (topic or 'general')|title }}}}] {{{{ message|oneline|truncate(60) }}}}"
      priority: "{{{{ topic }}}}"
      priority_map: {{billing: high}}
"""


@pytest.fixture(scope="module")
def sites() -> Iterator[dict[str, str]]:
    need_chromium()
    bridge = "{bridge}"  # filled in once the sites are up and the bridge's port is picked
    form_page = f"""<!doctype html><html><body><h1>ACME</h1>
<form action="{bridge}/forms/contact" method="post">
  <input name="name" value="Olga Other"><input name="email" value="olga@example.com">
  <textarea name="message">Sent from the company site</textarea>
  <button type="submit">Send</button>
</form></body></html>"""
    fetch_page = f"""<!doctype html><html><body><pre id="out">waiting</pre><script>
fetch("{bridge}/forms/contact", {{method: "POST", headers: {{"Content-Type": "application/json",
  "Accept": "application/json"}}, body: JSON.stringify({{name: "Fay Fetch",
  email: "fay@example.com", message: "Sent with fetch"}})}})
  .then(r => r.json().then(b => {{ document.getElementById("out").textContent =
    JSON.stringify({{status: r.status, body: b}}); }}))
  .catch(e => {{ document.getElementById("out").textContent = "refused: " + e; }});
</script></body></html>"""
    with (
        static_site({"form.html": form_page, "fetch.html": fetch_page}) as allowed,
        static_site({"fetch.html": fetch_page}) as disallowed,
    ):
        bridge_port = free_port()  # after the sites are up, so that neither can take it
        bridge = f"http://127.0.0.1:{bridge_port}"
        fill(allowed, bridge=bridge)
        fill(disallowed, bridge=bridge)
        yield {
            "bridge": bridge,
            "port": str(bridge_port),
            "allowed": allowed,
            "disallowed": disallowed,
        }


@pytest.fixture
def served(sites: dict[str, str], emulator: EmulatorServer, tmp_path: Path) -> Iterator[str]:
    config = write_config(
        tmp_path / "bridge.yaml",
        f"sqlite:///{tmp_path / 'b.db'}",
        emulator,
        routes=ROUTES.format(allowed=sites["allowed"]),
    )
    with bridge_server(config, port=int(sites["port"])) as url:
        yield url


def tickets(emulator: EmulatorServer) -> list[Any]:
    return list(emulator.state.tickets.values())


def test_a_person_fills_the_hosted_form(served: str, emulator: EmulatorServer) -> None:
    with chromium() as browser:
        page = browser.new_page(viewport=PICTURE_SIZE)  # type: ignore[attr-defined]
        page.goto(f"{served}/forms/contact")
        picture(page, "form")
        page.get_by_label("Your name").fill("Jane Doe")
        page.get_by_label("Email").fill("jane@example.com")
        page.get_by_label("Topic").select_option("billing")
        page.get_by_label("How can we help?").fill("My invoice shows the wrong VAT number.")
        page.get_by_role("button", name="Send").click()
        page.wait_for_url("**/forms/contact/thanks")
        assert "Thank you" in page.content()
        screenshot(page, "thanks")
    assert wait_until(lambda: len(tickets(emulator)) == 1, timeout=20)
    (ticket,) = tickets(emulator)
    assert (ticket.email, ticket.name, ticket.priority) == ("jane@example.com", "Jane Doe", "high")
    assert ticket.subject == "[Billing] My invoice shows the wrong VAT number."
    assert [(c["id"], c["value"]) for c in ticket.custom_fields] == [("CF007-07", "billing")]


def test_an_invalid_email_is_shown_by_its_field_and_input_is_kept(
    served: str, emulator: EmulatorServer
) -> None:
    with chromium() as browser:
        page = browser.new_page(viewport=PICTURE_SIZE)  # type: ignore[attr-defined]
        page.goto(f"{served}/forms/contact")
        page.get_by_label("Your name").fill("Jane Doe")
        page.get_by_label("Email").fill("jane-at-example")
        page.get_by_label("How can we help?").fill("Keep this text")
        page.get_by_role("button", name="Send").click()
        page.wait_for_selector("#e-email")
        assert page.locator("#e-email").inner_text() == "Not a valid email address."
        assert page.get_by_label("Your name").input_value() == "Jane Doe"
        assert page.get_by_label("How can we help?").input_value() == "Keep this text"
        assert page.get_by_label("Email").get_attribute("aria-invalid") == "true"
        picture(page, "form-error")
    assert tickets(emulator) == []


def test_a_form_on_another_site_posts_and_lands_on_thanks(
    served: str, sites: dict[str, str], emulator: EmulatorServer
) -> None:
    with chromium() as browser:
        page = browser.new_page()  # type: ignore[attr-defined]
        page.goto(f"{sites['allowed']}/form.html")
        with page.expect_navigation():
            page.get_by_role("button", name="Send").click()
        assert page.url == f"{served}/forms/contact/thanks"
    assert wait_until(lambda: len(tickets(emulator)) == 1, timeout=20)
    assert tickets(emulator)[0].email == "olga@example.com"


def test_fetch_from_an_allowed_origin_gets_json_and_a_disallowed_one_is_refused(
    served: str, sites: dict[str, str], emulator: EmulatorServer
) -> None:
    with chromium() as browser:
        page = browser.new_page()  # type: ignore[attr-defined]
        page.goto(f"{sites['allowed']}/fetch.html")
        page.wait_for_function("document.getElementById('out').textContent !== 'waiting'")
        answer = json.loads(page.locator("#out").inner_text())
        assert answer["status"] == 202 and answer["body"]["status"] == "accepted"
        page.goto(f"{sites['disallowed']}/fetch.html")
        page.wait_for_function("document.getElementById('out').textContent !== 'waiting'")
        assert page.locator("#out").inner_text().startswith("refused:")
    assert wait_until(lambda: len(tickets(emulator)) == 1, timeout=20)
    assert [t.email for t in tickets(emulator)] == ["fay@example.com"]
