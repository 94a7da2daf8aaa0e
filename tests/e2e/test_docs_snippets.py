"""Every snippet README.md and docs/ mark ``<!-- runnable -->``, used as a reader would:
HTML pasted into a page on another origin and driven in Chromium, JavaScript run in such a
page, shell through bash. The bridge serves the config ``bridge init`` writes for the setup
the docs describe (a contact form, Alertmanager and Grafana, a support widget, the site's
origin), so a snippet that config refuses fails here."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from bridge.intake.widget import identity_signature
from bridge.proprofs.emulator import EmulatorServer
from tests.conftest import ACCOUNT_EMAIL, IN_CI, TOKEN
from tests.e2e.browser import add_page, chromium, need_chromium, static_site
from tests.e2e.harness import ROOT, bridge_server, free_port, wait_until

pytestmark = pytest.mark.e2e
RUNNABLE = re.compile(r"<!-- runnable -->\n```(\w+)\n(.*?)\n```", re.S)
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
MIN_SECONDS = 2  # what bridge init writes for forms and the widget
IDENTITY_SECRET = "identity-secret-for-the-docs-test"
IDENTITY_EMAIL = " Sam@Example.com"  # as a site might hold it: the signature is of its form


def runnable() -> list[object]:
    found = []
    for page in PAGES:
        for n, match in enumerate(RUNNABLE.finditer(page.read_text()), 1):
            found.append(
                pytest.param(match.group(1), match.group(2), id=f"{page.relative_to(ROOT)}-{n}")
            )
    return found


@dataclass(frozen=True)
class Setup:
    bridge: str  # the bridge's URL, for https://bridge.example.com and http://127.0.0.1:8000
    site: str  # the reader's site, another origin, for https://www.example.com
    env: dict[str, str]  # bridge.env as the reader fills it in
    emulator: EmulatorServer

    def paste(self, text: str) -> str:
        for placeholder, real in (
            ("https://bridge.example.com", self.bridge),
            ("http://127.0.0.1:8000", self.bridge),
            ("https://www.example.com", self.site),
        ):
            text = text.replace(placeholder, real)
        return text

    def ticket_with(self, marker: str) -> bool:
        return any(
            marker in (t.subject or "") + (t.description or "")
            for t in list(self.emulator.state.tickets.values())
        )


@pytest.fixture(scope="module")
def setup(
    emulator_server: EmulatorServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Setup]:
    need_chromium()
    work = tmp_path_factory.mktemp("reader")
    with static_site({}) as site:
        port = free_port()
        bridge = f"http://127.0.0.1:{port}"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "bridge.cli",
                "init",
                "--form",
                "contact",
                "--alerts",
                "alertmanager,grafana",
                "--widget",
                "support",
                "--site",
                site,
                "--url",
                bridge,
            ],
            cwd=work,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert "wrote bridge.yaml" in done.stdout
        env: dict[str, str] = {}
        for line in (work / "bridge.env").read_text().splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.partition("=")
                env[name] = value
        env.update(
            PROPROFS_ACCOUNT_EMAIL=ACCOUNT_EMAIL,
            PROPROFS_TOKEN=TOKEN,
            BRIDGE_STORE=f"sqlite:///{work / 'bridge.db'}",
        )
        config = work / "bridge.yaml"
        # ProProfs is the emulator, not the vendor's host; and the widget takes the signed
        # identity docs/widget.md sets up (its identity_secret).
        env["WIDGET_IDENTITY_SECRET"] = IDENTITY_SECRET
        config.write_text(
            config.read_text()
            .replace("proprofs:\n", f"proprofs:\n  base_url: {emulator_server.base_url}\n", 1)
            .replace(
                '    widget: {title: "Need help?", launcher: Help}',
                '    widget: {title: "Need help?", launcher: Help,'
                ' identity_secret: "${WIDGET_IDENTITY_SECRET}"}',
            )
        )
        with bridge_server(config, env=env, port=port, log=work / "serve.log"):
            yield Setup(bridge, site, env, emulator_server)


@pytest.mark.parametrize(("language", "snippet"), runnable())
def test_a_runnable_snippet_works_as_pasted(setup: Setup, language: str, snippet: str) -> None:
    marker = f"snippet-{uuid.uuid4().hex[:10]}"
    text = setup.paste(snippet)
    if language == "html" and "<form" in text:
        _post_the_form(setup, text, marker)
    elif language == "html" and "<%= hmac %>" in text:  # the site's server fills it in
        signed = text.replace("<%= hmac %>", identity_signature(IDENTITY_SECRET, "sam@example.com"))
        _write_in_through_the_widget(setup, signed, marker, as_identity="sam@example.com")
    elif language == "html" and "widget.js" in text:
        _write_in_through_the_widget(setup, text, marker)
    elif language in ("python", "js") and "signature" in text:
        _sign_on_the_server(language, text)
        return  # no ticket: the signature is compared with the bridge's
    elif language == "js":
        _run_the_script(setup, text, marker)
    elif language == "sh":
        _run_in_bash(setup, text)
        return  # the shell snippet's own data: its answer is checked in _run_in_bash
    else:
        pytest.fail(f"no way to run a {language} snippet")
    assert wait_until(lambda: setup.ticket_with(marker), timeout=30), marker


def _page(setup: Setup, body: str) -> str:
    html = f'<!doctype html><html lang="en"><meta charset="utf-8"><title>Shop</title><body>{body}</body></html>'
    return add_page(setup.site, f"{uuid.uuid4().hex}.html", html)


def _post_the_form(setup: Setup, snippet: str, marker: str) -> None:
    with chromium() as browser:
        page = browser.new_page()  # type: ignore[attr-defined]
        page.goto(_page(setup, snippet))
        opened = time.monotonic()
        page.get_by_label("Name").fill("Sam Reader")
        page.get_by_label("Email").fill("sam@example.com")
        page.get_by_label("Message").fill(f"Do you ship to Lisbon? {marker}")
        time.sleep(max(0.0, MIN_SECONDS + 0.5 - (time.monotonic() - opened)))  # a person types
        with page.expect_navigation():
            page.get_by_role("button", name="Send").click()
        assert "Thank" in page.content() or page.url.startswith(setup.site), page.url


def _write_in_through_the_widget(
    setup: Setup, snippet: str, marker: str, as_identity: str | None = None
) -> None:
    with chromium() as browser:
        page = browser.new_page()  # type: ignore[attr-defined]
        page.goto(_page(setup, snippet))
        page.get_by_role("button", name="Help").click()
        opened = time.monotonic()
        if as_identity:  # filled in and locked by the signed identity
            email = page.get_by_label("Email")
            assert email.input_value() == as_identity and not email.is_editable()
        else:
            page.get_by_label("Name").fill("Sam Reader")
            page.get_by_label("Email").fill("sam@example.com")
        page.get_by_label("Message").fill(f"Where is my order? {marker}")
        time.sleep(max(0.0, MIN_SECONDS + 0.5 - (time.monotonic() - opened)))
        page.get_by_role("button", name="Send").click()
        page.get_by_role("status").filter(has_text="received").wait_for(timeout=15000)


def _run_the_script(setup: Setup, snippet: str, marker: str) -> None:
    module = f'<script type="module">{snippet}\nwindow.send = send; window.ready = true;</script>'
    with chromium() as browser:
        page = browser.new_page()  # type: ignore[attr-defined]
        page.goto(_page(setup, module))
        page.wait_for_function("window.ready === true", timeout=15000)
        time.sleep(MIN_SECONDS + 0.5)  # a person types
        status, answer = page.evaluate(
            f"send('Sam Reader', 'sam@example.com', 'Do you ship to Porto? {marker}')"
        )
        assert (status, answer["status"]) == (202, "accepted"), answer
        status, answer = page.evaluate("send('Sam Reader', 'not-an-address', 'Hello')")
        assert status == 422 and "email" in answer["errors"], answer


def _run_in_bash(setup: Setup, snippet: str) -> None:
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", snippet],
        env={**os.environ, **setup.env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    comments = [line[2:] for line in snippet.splitlines() if line.startswith("# {")]
    for expected in comments:  # the answer the docs show, "…" standing for what varies
        pattern = ".*?".join(re.escape(part) for part in expected.split("…"))
        assert re.search(pattern, done.stdout), (expected, done.stdout)


def _sign_on_the_server(language: str, snippet: str) -> None:
    """The host site's side of a signed identity, in the docs' languages: the same
    signature the bridge computes."""
    if language == "python":
        program = f"WIDGET_IDENTITY_SECRET = {IDENTITY_SECRET!r}\nemail = {IDENTITY_EMAIL!r}\n"
        command = [sys.executable, "-c", program + snippet + "\nprint(signature)"]
    else:
        node = shutil.which("node")
        if node is None:
            pytest.skip("node is not installed") if not IN_CI else pytest.fail("node missing")
        program = f"const email = {IDENTITY_EMAIL!r};\n"
        command = [node, "-e", program + snippet + "\nconsole.log(signature);"]
    done = subprocess.run(
        command,
        env={**os.environ, "WIDGET_IDENTITY_SECRET": IDENTITY_SECRET},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == identity_signature(IDENTITY_SECRET, IDENTITY_EMAIL)
