"""The operator console in a real browser against ``bridge serve``: sign in, look around."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from werkzeug.security import generate_password_hash

from bridge.proprofs.emulator import EmulatorServer
from tests.conftest import set_faults
from tests.e2e.browser import chromium, need_chromium, picture, screenshot
from tests.e2e.harness import bridge_server, wait_until, write_config

ROOT = Path(__file__).resolve().parents[2]
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


CONSOLE_ROUTES = """
  contact:
    kind: form
    fields:
      name:    {type: string, required: true, label: Your name}
      email:   {type: email, required: true}
      message: {type: text, required: true}
  alertmanager:
    kind: hook
    source: alertmanager
    ticket: {email: alerts@example.com}
"""

MESSAGES = [
    ("Jane Doe", "jane@example.com", "My invoice shows the wrong VAT number."),
    ("Sam Lee", "sam@example.com", "Can I move my plan to yearly billing?"),
    ("Ana Ruiz", "ana@example.com", "The export to CSV misses the last column."),
]


def test_the_console_lists_submissions_of_every_kind(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    """The README's picture of the console: forms and alerts, delivered and waiting."""
    need_chromium()
    config = write_config(
        tmp_path / "bridge.yaml",
        f"sqlite:///{tmp_path / 'c.db'}",
        emulator,
        routes=CONSOLE_ROUTES,
        delivery={"retry_schedule": [0, "1h"]},
    )
    config.write_text(
        config.read_text() + f'admin: {{password_hash: "{generate_password_hash(PASSWORD)}"}}\n'
    )
    alert = json.loads((ROOT / "examples/payloads/senders/alertmanager.json").read_text())
    with bridge_server(config) as url:
        for name, email, message in MESSAGES:
            requests.post(
                f"{url}/forms/contact",
                data={"name": name, "email": email, "message": message},
                headers={"Accept": "application/json"},
                timeout=10,
            ).raise_for_status()
        requests.post(f"{url}/hooks/alertmanager", json=alert, timeout=10).raise_for_status()
        assert wait_until(lambda: len(emulator.state.tickets) == 4, timeout=20)
        set_faults(emulator, error_rate=1.0)  # ProProfs answers 5xx: the next one waits
        requests.post(
            f"{url}/forms/contact",
            data={"name": "Lee Wong", "email": "lee@example.com", "message": "Is there an API?"},
            headers={"Accept": "application/json"},
            timeout=10,
        ).raise_for_status()
        with chromium() as browser:
            page = browser.new_page(viewport={"width": 1100, "height": 600})  # type: ignore[attr-defined]
            page.goto(f"{url}/admin")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"{url}/admin")
            page.get_by_role("link", name="Submissions", exact=True).click()
            page.wait_for_url("**/admin/submissions")
            waiting = page.locator("tr", has_text="Is there an API?")
            assert wait_until(
                lambda: page.reload() is not None and waiting.get_by_text("pending").count() == 1,
                timeout=20,
            )
            assert page.locator("tbody tr", has_text="delivered").count() == 4
            for _, _, message in MESSAGES:
                assert page.get_by_text(message).count() == 1
            assert page.get_by_text("High CPU Temperature").count() >= 1
            picture(page, "console-submissions")
        set_faults(emulator, error_rate=0.0)


SPAM_ROUTES = """
  contact:
    kind: form
    fields:
      name:    {type: string, label: Your name}
      email:   {type: email, required: true}
      message: {type: text, required: true}
    spam:
      content: {keywords: [casino, "guaranteed ranking"], max_links: 1, blocked_domains: [spam.example],
                threshold: 5}
"""


def test_the_spam_view_shows_what_matched_and_releases_a_person(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    """The console's Spam view: a person a rule was wrong about is released (one ticket);
    the bot's post is discarded (none)."""
    need_chromium()
    config = write_config(
        tmp_path / "bridge.yaml",
        f"sqlite:///{tmp_path / 's.db'}",
        emulator,
        routes=SPAM_ROUTES,
    )
    config.write_text(
        config.read_text() + f'admin: {{password_hash: "{generate_password_hash(PASSWORD)}"}}\n'
    )
    posts = [
        {
            "name": "Growth Team",
            "email": "offers@spam.example",
            "message": "Guaranteed ranking and casino traffic: http://a.example http://b.example",
        },
        {
            "name": "Priya Shah",
            "email": "priya@example.com",
            "message": "Links from the docs are broken: http://a.example/x http://a.example/y "
            "— also, is there a casino-night discount for the team event?",
        },
    ]
    with bridge_server(config) as url:
        for post in posts:
            answer = requests.post(
                f"{url}/forms/contact",
                data=post,
                headers={"Accept": "application/json"},
                timeout=10,
            )
            assert answer.status_code == 202
        with chromium() as browser:
            page = browser.new_page(viewport={"width": 1280, "height": 760})  # type: ignore[attr-defined]
            page.goto(f"{url}/admin")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"{url}/admin")
            assert page.get_by_role("link", name="spam held").inner_text().endswith("2")
            page.get_by_role("link", name="Spam", exact=True).click()
            page.wait_for_url("**/admin/spam")
            assert page.get_by_text("blocked_domain: spam.example").count() == 1
            assert page.get_by_text("links: 2 > 1").count() == 2
            picture(page, "console-spam")
            person = page.get_by_role("row").filter(has_text="priya@example.com")
            person.get_by_role("button", name="Release").click()
            page.get_by_role("status").filter(has_text="Released pb-").wait_for()
            bot = page.get_by_role("row").filter(has_text="offers@spam.example")
            bot.get_by_role("button", name="Discard").click()
            page.get_by_role("status").filter(has_text="Discarded pb-").wait_for()
            assert page.get_by_text("Nothing held back.").count() == 1
        assert wait_until(lambda: len(emulator.state.tickets) == 1, timeout=20)
    (ticket,) = emulator.state.tickets.values()
    assert ticket.email == "priya@example.com"


def test_dead_letters_are_replayed_by_filter_after_the_count_is_shown(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    need_chromium()
    config = write_config(tmp_path / "bridge.yaml", f"sqlite:///{tmp_path / 'd.db'}", emulator)
    config.write_text(
        config.read_text() + f'admin: {{password_hash: "{generate_password_hash(PASSWORD)}"}}\n'
    )
    set_faults(emulator, auth_failure=True)  # ProProfs refuses the token: dead at once
    with bridge_server(config) as url:
        for n in range(3):
            requests.post(
                f"{url}/hooks/events", json={"id": f"d{n}", "title": f"Dead {n}"}, timeout=10
            ).raise_for_status()
        with chromium() as browser:
            page = browser.new_page()  # type: ignore[attr-defined]
            page.goto(f"{url}/admin")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"{url}/admin")
            page.get_by_role("link", name="Dead letters").click()
            page.wait_for_url("**/admin/dead")

            def matching() -> str:
                page.reload()
                return page.locator("#dead-count").inner_text()

            assert wait_until(lambda: matching().startswith("3 dead"), timeout=30)
            page.get_by_label("Error has").fill("no such text in any error")
            page.get_by_role("button", name="Show").click()
            assert page.locator("#dead-count").inner_text().startswith("0 dead")
            assert page.get_by_role("button", name="Replay these").count() == 0
            page.get_by_label("Error has").fill("token")
            page.get_by_role("button", name="Show").click()
            assert page.locator("#dead-count").inner_text().startswith("3 dead")
            set_faults(emulator, auth_failure=False)
            page.get_by_role("button", name="Replay these 3").click()
            page.get_by_text("Replayed 3 dead submission(s).").wait_for()
            assert wait_until(lambda: len(emulator.state.tickets) == 3, timeout=30)
