"""The widget renders the route's CAPTCHA, sends its token, and resets it after each post.

The provider's script is a stand-in served from loopback (``spam.captcha.script_url``):
it offers the same explicit-render API as Turnstile, hCaptcha and reCAPTCHA v2 (render,
getResponse, reset) and reCAPTCHA v3's ready/execute, and issues tokens that the test's
stand-in verifier (``verify_url``) accepts once each.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from bridge.proprofs.emulator import EmulatorServer
from tests.e2e.browser import chromium, site_and_bridge
from tests.e2e.harness import wait_until

pytestmark = pytest.mark.e2e

SECRET = "captcha-secret-for-the-test"
SITE_KEY = "site-key-0001"

STAND_IN = """(function () {
  var params = new URL(document.currentScript.src).searchParams;
  var issued = 0, widgets = [];
  var root = document.documentElement;
  root.setAttribute("data-standin-render", params.get("render") || "");
  root.setAttribute("data-standin-resets", "0");
  var api = {
    render: function (element, options) {
      if (options.sitekey !== "@SITE_KEY@") throw new Error("wrong site key");
      var box = { token: "", options: options, resets: 0 };
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = "I am human";
      button.addEventListener("click", function () {
        issued += 1;
        box.token = "standin-" + issued;
        button.textContent = "Verified";
        options.callback(box.token);
      });
      element.appendChild(button);
      widgets.push(box);
      return widgets.length - 1;
    },
    getResponse: function (id) { return widgets[id].token; },
    reset: function (id) {
      widgets[id].token = "";
      widgets[id].resets += 1;
      root.setAttribute("data-standin-resets", String(widgets[id].resets));
      document.querySelector("[slot=captcha] button").textContent = "I am human";
    },
    ready: function (callback) { callback(); },
    execute: function (siteKey, options) {
      if (siteKey !== "@SITE_KEY@") return Promise.reject(new Error("wrong site key"));
      issued += 1;
      return Promise.resolve("standin-score-" + issued + "-" + options.action);
    }
  };
  window.turnstile = api;
  window.hcaptcha = api;
  window.grecaptcha = api;
  var onload = params.get("onload");
  if (onload) setTimeout(function () { window[onload](); }, 0);
})();
""".replace("@SITE_KEY@", SITE_KEY)

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title>
<style>div { display: none !important; }</style></head><body><p>Welcome.</p>
<script src="{bridge}/widget.js" data-route="support" async></script></body></html>"""

ROUTES = """
  support:
    kind: widget
    fields:
      email:   {{type: email, required: true, label: Email}}
      message: {{type: text, required: true, max_length: 5000, label: Message}}
    origins: ["{site}"]
    widget: {{title: "Need help?", launcher: Help}}
    spam:
      captcha: {captcha}
"""


class Verifier:
    """The provider's siteverify: each token it issued is good once; the first one it is
    asked about is refused (a challenge the provider did not believe)."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.lock = threading.Lock()
        verifier = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = parse_qs(self.rfile.read(length).decode())
                answer = verifier.check(form.get("secret", [""])[0], form.get("response", [""])[0])
                body = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/siteverify"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def check(self, secret: str, token: str) -> dict[str, Any]:
        with self.lock:
            first = not self.asked
            reused = token in self.asked
            self.asked.append(token)
        if secret != SECRET or reused or not token.startswith("standin-"):
            return {"success": False}
        if token.startswith("standin-score-"):
            return {"success": True, "score": 0.9}
        return {"success": not first}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def verifier() -> Iterator[Verifier]:
    running = Verifier()
    yield running
    running.close()


@contextlib.contextmanager
def widget_with(
    captcha: dict[str, Any], emulator: EmulatorServer, tmp_path: Path
) -> Iterator[tuple[str, str]]:
    def routes(site: str) -> str:
        spec = {**captcha, "script_url": f"{site}/captcha.js?hl=en"}
        return ROUTES.format(site=site, captcha=json.dumps(spec))

    pages = {"shop.html": PAGE, "captcha.js": STAND_IN}
    with site_and_bridge(emulator, tmp_path, pages, routes) as both:
        yield both


def open_and_write(page: Any, site: str) -> None:
    page.goto(f"{site}/shop.html")
    page.get_by_role("button", name="Help").click()
    page.get_by_label("Email").fill("robin@example.com")
    page.get_by_label("Message").fill("The checkout button does nothing.")


@pytest.mark.parametrize("provider", ["turnstile", "hcaptcha", "recaptcha"])
def test_a_challenge_is_shown_solved_sent_and_reset_after_every_post(
    provider: str, verifier: Verifier, emulator: EmulatorServer, tmp_path: Path
) -> None:
    captcha = {"provider": provider, "secret": SECRET, "site_key": SITE_KEY}
    captcha["verify_url"] = verifier.url
    with widget_with(captcha, emulator, tmp_path) as (_, site):
        with chromium() as browser:
            page = browser.new_page()  # type: ignore[attr-defined]
            open_and_write(page, site)
            human = page.get_by_role("button", name="I am human")
            human.wait_for(state="visible", timeout=15000)  # shown in the panel, page CSS or not
            assert page.get_attribute("html", "data-standin-render") == "explicit"
            send = page.get_by_role("button", name="Send")
            # Not solved: said at once, nothing sent.
            send.click()
            problem = page.locator("#pb-captcha-error")
            problem.filter(has_text="Please complete the CAPTCHA.").wait_for(timeout=5000)
            assert verifier.asked == []
            # Solved, but the provider does not believe it: its message, and a fresh challenge.
            human.click()
            send.click()
            problem.filter(has_text="The CAPTCHA was not solved; please try again.").wait_for(
                timeout=15000
            )
            assert page.get_attribute("html", "data-standin-resets") == "1"
            assert page.get_by_label("Message").input_value() == "The checkout button does nothing."
            # Solved again: accepted, one ticket, and the spent token is not kept.
            page.get_by_role("button", name="I am human").click()
            send.click()
            page.get_by_role("status").filter(has_text="received").wait_for(timeout=15000)
            assert problem.is_hidden()
            assert page.get_attribute("html", "data-standin-resets") == "2"
            assert verifier.asked == ["standin-1", "standin-2"]
            assert wait_until(lambda: len(emulator.state.tickets) == 1, timeout=20)
            (ticket,) = emulator.state.tickets.values()
            assert ticket.email == "robin@example.com"
            assert "standin-" not in (ticket.description or "")


def test_recaptcha_v3_scores_each_post_without_a_challenge(
    verifier: Verifier, emulator: EmulatorServer, tmp_path: Path
) -> None:
    captcha = {"provider": "recaptcha", "secret": SECRET, "site_key": SITE_KEY, "min_score": 0.5}
    captcha["verify_url"] = verifier.url
    with widget_with(captcha, emulator, tmp_path) as (_, site):
        with chromium() as browser:
            page = browser.new_page()  # type: ignore[attr-defined]
            open_and_write(page, site)
            page.get_by_role("button", name="Send").click()
            page.get_by_role("status").filter(has_text="received").wait_for(timeout=15000)
            assert page.get_attribute("html", "data-standin-render") == SITE_KEY
            assert page.get_by_role("button", name="I am human").count() == 0
            assert verifier.asked == ["standin-score-1-support"]
            assert wait_until(lambda: len(emulator.state.tickets) == 1, timeout=20)
