"""``/forms/<route>``: hosted form, both answer modes, safe redirects and every spam defence."""

from __future__ import annotations

import io
import json
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, request
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from bridge.app import create_app
from bridge.config import settings_from_text
from bridge.outbox.store import SubmissionStore

BROWSER = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Sec-Fetch-Mode": "navigate",
}
AJAX = {"Accept": "application/json"}
GOOD = {
    "name": "Jane Doe",
    "email": "jane@example.com",
    "topic": "billing",
    "message": "My invoice is wrong.",
}

CONFIG = """
proprofs: {account_email: owner@example.com, token: tok-forms}
store: STORE
server: {trusted_proxies: PROXIES}
routes:
  contact:
    kind: form
    fields:
      name:    {type: string, required: true, max_length: 200, label: Your name}
      email:   {type: email, required: true, help: We reply here.}
      topic:   {type: choice, choices: [sales, support, billing], custom_field: CF007-07}
      tags:    {type: list, choices: [a, b, c]}
      message: {type: text, required: true, max_length: 10000}
    page: {title: Contact ACME, intro: We answer within a day., submit: Send it}
    redirect:
      allow_next: [https://www.example.com/]
    origins: [https://www.example.com]
    spam: {honeypot: _gotcha}
    limits: {per_ip: ["5/hour"], per_route: ["8/day"]}
  plain:
    kind: form
    fields:
      email:   {type: email, required: true}
      message: {type: text, required: true}
    redirect: {success: https://www.example.com/thanks, error: https://www.example.com/oops}
  timed:
    kind: form
    fields:
      email:   {type: email, required: true}
      message: {type: text, required: true}
    spam: {min_seconds: 2, max_age: 1h}
  french:
    kind: form
    fields:
      email:   {type: email, required: true, label: Courriel}
      message: {type: text, required: true, label: Message}
    page:
      title: Contactez-nous
      submit: Envoyer
      lang: fr
      messages:
        errors_summary: "Veuillez corriger :"
        "Missing data for required field.": Ce champ est obligatoire.
        "Not a valid email address.": Adresse courriel invalide.
"""


def app_for(
    tmp_path: Any, extra: str = "", proxies: int = 0
) -> tuple[FlaskClient, SubmissionStore]:
    url = f"sqlite:///{tmp_path / 'forms.db'}"
    text = CONFIG.replace("STORE", url).replace("PROXIES", str(proxies)) + extra
    store = SubmissionStore(url)
    app = create_app(settings_from_text(text, env={}), store=store)
    return app.test_client(), store


@pytest.fixture
def web(tmp_path: Any) -> Iterator[tuple[FlaskClient, SubmissionStore]]:
    client, store = app_for(tmp_path)
    yield client, store
    store.dispose()


ORIGIN = {"Origin": "https://www.example.com"}


def stored(store: SubmissionStore) -> int:
    return sum(store.counts().values())


# --- the hosted form -------------------------------------------------------------------------


def test_the_hosted_form_is_complete_and_accessible(
    web: tuple[FlaskClient, SubmissionStore],
) -> None:
    client, _ = web
    response = client.get("/forms/contact")
    html = re.sub(r"\s+", " ", response.get_data(as_text=True))
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert '<html lang="en">' in html and "<title>Contact ACME</title>" in html
    assert "We answer within a day." in html and ">Send it</button>" in html
    assert (
        '<label for="f-name">Your name <span class="required" aria-hidden="true">*</span>' in html
    )
    assert 'autocomplete="name"' in html
    assert (
        'type="email" id="f-email" name="email" required aria-required="true" aria-describedby="h-email"'
        in html
    )
    assert '<p class="help" id="h-email">We reply here.</p>' in html
    assert '<select id="f-topic" name="topic">' in html
    assert (
        '<textarea id="f-message" name="message" required aria-required="true" maxlength="10000">'
        in html
    )
    assert 'type="checkbox" name="tags" value="b"' in html
    assert 'role="status" aria-live="polite"' in html
    assert re.search(
        r'<div class="hp" aria-hidden="true">.*name="_gotcha" tabindex="-1"', html, re.S
    )
    assert response.headers["Cache-Control"] == "no-store"
    assert client.get("/forms/nope").status_code == 404


def test_labels_and_messages_can_be_french(web: tuple[FlaskClient, SubmissionStore]) -> None:
    client, _ = web
    html = client.get("/forms/french").get_data(as_text=True)
    assert '<html lang="fr">' in html and "Contactez-nous" in html and ">Envoyer</button>" in html
    response = client.post("/forms/french", data={"email": "nope"}, headers=BROWSER)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Veuillez corriger :" in html and "Adresse courriel invalide." in html
    assert "Ce champ est obligatoire." in html


# --- answer modes ----------------------------------------------------------------------------


def encode(content_type: str, data: dict[str, str]) -> dict[str, Any]:
    if content_type == "json":
        return {"data": json.dumps(data), "content_type": "application/json"}
    if content_type == "multipart":
        return {"data": dict(data), "content_type": "multipart/form-data"}
    return {"data": dict(data), "content_type": "application/x-www-form-urlencoded"}


#: Formspree's answer matrix: (content type, Accept, X-Requested-With) → answered in JSON?
ANSWER_MATRIX = {
    # A form post is a browser's unless it asks for JSON: no Accept, */* and HTML redirect.
    ("urlencoded", "browser", False): False,
    ("urlencoded", "json", False): True,
    ("urlencoded", "any", False): False,
    ("urlencoded", "none", False): False,
    ("urlencoded", "html_over_json", False): False,
    ("urlencoded", "json_over_html", False): True,
    ("multipart", "browser", False): False,
    ("multipart", "json", False): True,
    ("multipart", "any", False): False,
    ("multipart", "none", False): False,
    ("multipart", "html_over_json", False): False,
    ("multipart", "json_over_html", False): True,
    # A JSON body gets JSON unless its Accept prefers HTML.
    ("json", "browser", False): False,
    ("json", "json", False): True,
    ("json", "any", False): True,
    ("json", "none", False): True,
    ("json", "html_over_json", False): False,
    ("json", "json_over_html", False): True,
    # X-Requested-With always means a script.
    **{
        (ct, accept, True): True
        for ct in ("urlencoded", "multipart", "json")
        for accept in ("browser", "json", "any", "none", "html_over_json", "json_over_html")
    },
}
ACCEPTS = {
    "browser": BROWSER,
    "json": AJAX,
    "any": {"Accept": "*/*"},
    "none": {},
    "html_over_json": {"Accept": "text/html, application/json;q=0.5"},
    "json_over_html": {"Accept": "application/json, text/html;q=0.5"},
}


@pytest.mark.parametrize(("content_type", "accept", "xrw"), sorted(ANSWER_MATRIX))
def test_answer_mode_matrix(tmp_path: Any, content_type: str, accept: str, xrw: bool) -> None:
    client, store = app_for(tmp_path)
    headers = dict(ACCEPTS[accept])
    headers = {**headers, **({"X-Requested-With": "XMLHttpRequest"} if xrw else {})}
    response = client.post(
        "/forms/plain",
        headers=headers,
        **encode(
            content_type, {"email": "a@example.com", "message": f"{content_type} {accept} {xrw}"}
        ),
    )
    browser_post = not ANSWER_MATRIX[(content_type, accept, xrw)]
    if browser_post:
        assert response.status_code == 303
        assert response.headers["Location"] == "https://www.example.com/thanks"
    else:
        assert response.status_code == 202 and response.mimetype == "application/json"
        assert response.get_json()["status"] == "accepted"
    assert stored(store) == 1
    bad = client.post("/forms/plain", headers=headers, **encode(content_type, {"email": "x"}))
    if browser_post:
        assert (bad.status_code, bad.headers["Location"]) == (303, "https://www.example.com/oops")
    else:
        assert bad.status_code == 422 and bad.get_json()["code"] == "validation_failed"
        assert set(bad.get_json()["errors"]) == {"email", "message"}
    store.dispose()


def test_a_browser_post_lands_on_the_bridge_thank_you_page(
    web: tuple[FlaskClient, SubmissionStore],
) -> None:
    client, store = web
    response = client.post("/forms/contact", data=GOOD, headers={**BROWSER, **ORIGIN})
    assert response.status_code == 303 and response.headers["Location"] == "/forms/contact/thanks"
    page = client.get("/forms/contact/thanks").get_data(as_text=True)
    assert "Thank you" in page and "Your message has been received" in page
    (sub,) = store.list()
    assert (sub.draft.email, sub.draft.name) == ("jane@example.com", "Jane Doe")
    assert sub.draft.custom_fields == {"CF007-07": "billing"}
    assert sub.draft.subject == "[contact] My invoice is wrong."


def test_invalid_input_re_renders_the_form_with_input_and_messages(
    web: tuple[FlaskClient, SubmissionStore],
) -> None:
    client, store = web
    response = client.post(
        "/forms/contact", data={**GOOD, "email": "jane-at-example"}, headers={**BROWSER, **ORIGIN}
    )
    html = re.sub(r"\s+", " ", response.get_data(as_text=True))
    assert response.status_code == 422 and response.mimetype == "text/html"
    assert 'value="Jane Doe"' in html and "My invoice is wrong.</textarea>" in html
    assert 'aria-invalid="true" aria-describedby="h-email e-email"' in html
    assert '<p class="error" id="e-email">Not a valid email address.</p>' in html
    assert 'value="jane-at-example"' in html and 'role="alert"' in html
    assert stored(store) == 0


def test_optional_fields_left_blank_are_absent_not_invalid(
    web: tuple[FlaskClient, SubmissionStore],
) -> None:
    client, store = web
    response = client.post(
        "/forms/contact", data={**GOOD, "topic": ""}, headers={**BROWSER, **ORIGIN}
    )
    assert response.status_code == 303
    (sub,) = store.list()
    assert sub.draft.custom_fields == {}


def test_field_order_is_kept_and_lists_come_from_repeated_keys(
    web: tuple[FlaskClient, SubmissionStore],
) -> None:
    client, store = web
    body = "message=Hi&tags=a&name=Jo&topic=billing&tags=c&email=jo%40example.com"
    response = client.post(
        "/forms/contact",
        data=body,
        headers={**AJAX, **ORIGIN},
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 202
    (sub,) = store.list()
    description = sub.draft.description or ""
    # The words first, then the other fields in the order they were posted (tags before topic).
    assert description.startswith("Hi\n\ntags: a, c\ntopic: billing\n")
    assert (sub.draft.name, sub.draft.email) == ("Jo", "jo@example.com")


def test_repeated_keys_for_single_fields_and_files_are_refused(
    web: tuple[FlaskClient, SubmissionStore],
) -> None:
    client, store = web
    response = client.post(
        "/forms/contact",
        data="email=a%40b.co&email=c%40d.co&name=x&message=y",
        headers={**AJAX, **ORIGIN},
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 422
    assert response.get_json()["errors"] == {"email": ["Send one value for this field."]}
    response = client.post(
        "/forms/contact",
        headers={**AJAX, **ORIGIN},
        data={**GOOD, "attachment": (io.BytesIO(b"x"), "a.pdf")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert "File uploads are not accepted" in response.get_json()["errors"]["attachment"][0]
    assert stored(store) == 0


def test_other_content_types_and_huge_fields_are_refused(
    web: tuple[FlaskClient, SubmissionStore],
) -> None:
    client, store = web
    response = client.post("/forms/plain", data="hello", content_type="text/plain", headers=AJAX)
    assert response.status_code == 415
    response = client.post(
        "/forms/plain", data={"email": "a@b.co", "message": "x" * 1_100_000}, headers=AJAX
    )
    assert response.status_code == 413 and response.get_json()["code"] == "too_large"
    response = client.post(
        "/forms/plain", data={"email": "a@b.co", "message": "x" * 1_100_000}, headers=BROWSER
    )
    assert response.status_code == 413 and response.mimetype == "text/html"
    assert stored(store) == 0


# --- redirects -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "allowed"),
    [
        ("https://www.example.com/thanks?x=1", True),
        ("https://www.example.com/", True),
        ("//evil.example/", False),
        ("javascript:alert(1)", False),
        ("https://www.example.com.evil.example/", False),
        ("https://evil.example/https://www.example.com/", False),
        ("http://www.example.com/thanks", False),
        ("https://www.example.com\\@evil.example/", False),
        ("https://www.example.com/ok\r\nSet-Cookie: x=1", False),
        ("data:text/html,hi", False),
        ("/forms/contact/thanks", False),
    ],
)
def test_next_is_followed_only_into_the_allowlist(
    web: tuple[FlaskClient, SubmissionStore], target: str, allowed: bool
) -> None:
    client, _ = web
    response = client.post(
        "/forms/contact", data={**GOOD, "_next": target}, headers={**BROWSER, **ORIGIN}
    )
    assert response.status_code == 303
    expected = target if allowed else "/forms/contact/thanks"
    assert response.headers["Location"] == expected


# --- spam defences ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Origin": "https://www.example.com"}, 202),
        ({"Referer": "https://www.example.com/contact?x=1"}, 202),
        ({"Origin": "http://localhost"}, 202),  # the bridge's own hosted form
        ({"Origin": "https://evil.example"}, 403),
        ({"Referer": "https://evil.example/page"}, 403),
        ({"Origin": "null"}, 403),
        ({}, 403),
    ],
)
def test_allowed_origins(
    web: tuple[FlaskClient, SubmissionStore], headers: dict[str, str], status: int
) -> None:
    client, store = web
    response = client.post("/forms/contact", data=GOOD, headers={**AJAX, **headers})
    assert response.status_code == status
    if status == 403:
        assert response.get_json()["code"] == "origin_not_allowed"
        assert "Access-Control-Allow-Origin" not in response.headers
        assert stored(store) == 0
    elif "Origin" in headers and headers["Origin"].startswith("https"):
        assert response.headers["Access-Control-Allow-Origin"] == "https://www.example.com"


def test_cors_preflight(web: tuple[FlaskClient, SubmissionStore]) -> None:
    client, _ = web
    ok = client.options(
        "/forms/contact",
        headers={
            "Origin": "https://www.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert ok.status_code == 204
    assert ok.headers["Access-Control-Allow-Origin"] == "https://www.example.com"
    assert "POST" in ok.headers["Access-Control-Allow-Methods"]
    assert "Content-Type" in ok.headers["Access-Control-Allow-Headers"]
    refused = client.options(
        "/forms/contact",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert refused.status_code == 403 and "Access-Control-Allow-Origin" not in refused.headers


def test_rate_limits_per_ip_and_per_route(web: tuple[FlaskClient, SubmissionStore]) -> None:
    client, store = web
    for n in range(5):
        response = client.post(
            "/forms/contact", data={**GOOD, "message": f"m{n}"}, headers={**AJAX, **ORIGIN}
        )
        assert response.status_code == 202
    blocked = client.post(
        "/forms/contact", data={**GOOD, "message": "m5"}, headers={**AJAX, **ORIGIN}
    )
    assert blocked.status_code == 429 and blocked.get_json()["code"] == "rate_limited"
    assert 3000 <= int(blocked.headers["Retry-After"]) <= 3600
    page = client.post(
        "/forms/contact", data={**GOOD, "message": "m6"}, headers={**BROWSER, **ORIGIN}
    )
    assert page.status_code == 429 and "Too many submissions" in page.get_data(as_text=True)
    assert "Retry-After" in page.headers
    others = [
        client.post(
            "/forms/contact",
            data={**GOOD, "message": f"o{n}"},
            headers={**AJAX, **ORIGIN},
            environ_base={"REMOTE_ADDR": f"10.0.0.{n}"},
        )
        for n in range(4)
    ]
    assert [r.status_code for r in others] == [202, 202, 202, 429]  # the route's 8/day
    assert stored(store) == 8


def test_forwarded_for_is_believed_only_behind_trusted_proxies(tmp_path: Any) -> None:
    for proxies, expect_separate in ((0, False), (1, True)):
        client, store = (
            app_for(tmp_path / str(proxies), proxies=proxies)
            if ((tmp_path / str(proxies)).mkdir() is None)
            else app_for(tmp_path)
        )
        codes = [
            client.post(
                "/forms/contact",
                data={**GOOD, "message": f"x{n}"},
                headers={**AJAX, **ORIGIN, "X-Forwarded-For": f"203.0.113.{n}"},
            ).status_code
            for n in range(6)
        ]
        # Behind a trusted proxy each forwarded address has its own 5/hour; otherwise all
        # six come from the one peer and the sixth is refused.
        assert codes == ([202] * 6 if expect_separate else [202] * 5 + [429])
        store.dispose()


def test_the_honeypot_answers_like_success_and_stores_nothing(
    web: tuple[FlaskClient, SubmissionStore],
) -> None:
    client, store = web
    bot = client.post(
        "/forms/contact",
        data={**GOOD, "_gotcha": "http://spam.example"},
        headers={**AJAX, **ORIGIN},
    )
    person = client.post("/forms/contact", data={**GOOD, "_gotcha": ""}, headers={**AJAX, **ORIGIN})
    assert bot.status_code == person.status_code == 202
    assert bot.get_json().keys() == person.get_json().keys()
    assert re.fullmatch(r"pb-[0-9a-f]{20}", bot.get_json()["id"])
    browser_bot = client.post(
        "/forms/contact", data={**GOOD, "_gotcha": "x"}, headers={**BROWSER, **ORIGIN}
    )
    assert browser_bot.status_code == 303
    assert stored(store) == 1


def token_from(html: str) -> str:
    match = re.search(r'name="_ts" value="([^"]+)"', html)
    assert match
    return match.group(1)


def test_the_time_token_stops_fast_bots_and_lets_people_through(
    web: tuple[FlaskClient, SubmissionStore],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, store = web
    token = token_from(client.get("/forms/timed").get_data(as_text=True))
    fields = {"email": "a@example.com", "message": "hello"}
    fast = client.post("/forms/timed", data={**fields, "_ts": token}, headers=AJAX)
    assert fast.status_code == 422 and fast.get_json()["code"] == "too_fast"
    missing = client.post("/forms/timed", data=fields, headers=AJAX)
    assert missing.status_code == 422 and "_form" in missing.get_json()["errors"]
    tampered = client.post("/forms/timed", data={**fields, "_ts": token[:-2] + "xx"}, headers=AJAX)
    assert tampered.status_code == 422
    other_route = client.get("/forms/contact/token").get_json()["token"]
    assert (
        client.post("/forms/timed", data={**fields, "_ts": other_route}, headers=AJAX).status_code
        == 422
    )
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 3)
    person = client.post("/forms/timed", data={**fields, "_ts": token}, headers=AJAX)
    assert person.status_code == 202
    monkeypatch.setattr(time, "time", lambda: real_time() + 7200)
    stale = client.post(
        "/forms/timed", data={**fields, "message": "again", "_ts": token}, headers=AJAX
    )
    assert stale.status_code == 422 and "open too long" in stale.get_json()["message"]
    assert stored(store) == 1


def test_double_submits_make_one_ticket(web: tuple[FlaskClient, SubmissionStore]) -> None:
    client, store = web
    first = client.post(
        "/forms/plain", data={"email": "a@example.com", "message": "Same words"}, headers=AJAX
    )
    again = client.post(
        "/forms/plain", data={"email": "A@example.com", "message": "Same words"}, headers=AJAX
    )
    other = client.post(
        "/forms/plain", data={"email": "a@example.com", "message": "New words"}, headers=AJAX
    )
    assert first.status_code == 202 and again.status_code == 202 and other.status_code == 202
    assert first.get_json()["id"] == again.get_json()["id"] != other.get_json()["id"]
    assert stored(store) == 2


# --- CAPTCHA against a local verifier -------------------------------------------------------


@pytest.fixture(scope="module")
def verifier() -> Iterator[str]:
    app = Flask("fake-verifier")
    seen: list[dict[str, str]] = []

    @app.post("/<mode>")
    def verify(mode: str) -> Any:
        seen.append(request.form.to_dict())
        if mode == "slow":
            time.sleep(1.5)
        if mode == "garbage":
            return "<html>", 200
        ok = request.form.get("response") == "solved" and request.form.get("secret") == "cap-secret"
        return {"success": ok, "score": 0.3 if mode == "low" else 0.9}

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.port}"
    server.shutdown()


def captcha_route(verifier: str, provider: str, mode: str, score: str = "") -> str:
    return f"""
  cap:
    kind: form
    fields:
      email:   {{type: email, required: true}}
      message: {{type: text, required: true}}
    spam:
      captcha: {{provider: {provider}, secret: cap-secret, site_key: site-1,
                 verify_url: "{verifier}/{mode}", timeout: 1s {score}}}
"""


@pytest.mark.parametrize(
    ("provider", "mode", "answer", "score", "status"),
    [
        ("turnstile", "ok", "solved", "", 202),
        ("turnstile", "ok", "wrong", "", 422),
        ("turnstile", "ok", None, "", 422),
        ("hcaptcha", "ok", "solved", "", 202),
        ("recaptcha", "ok", "solved", "", 202),  # v2
        ("recaptcha", "ok", "solved", ", min_score: 0.5", 202),  # v3, confident
        ("recaptcha", "low", "solved", ", min_score: 0.5", 422),  # v3, a likely bot
        ("turnstile", "slow", "solved", "", 422),  # timeout: fail closed
        ("turnstile", "garbage", "solved", "", 422),
    ],
)
def test_captcha_verification(
    tmp_path: Any,
    verifier: str,
    provider: str,
    mode: str,
    answer: str | None,
    score: str,
    status: int,
) -> None:
    client, store = app_for(tmp_path, captcha_route(verifier, provider, mode, score))
    from bridge.guards.captcha import RESPONSE_FIELDS

    data = {"email": "a@example.com", "message": "hi"}
    if answer is not None:
        data[RESPONSE_FIELDS[provider]] = answer
    response = client.post("/forms/cap", data=data, headers=AJAX)
    assert response.status_code == status
    if status == 422:
        assert response.get_json()["code"] == "captcha_failed"
        assert "captcha" in response.get_json()["errors"]
    assert stored(store) == (1 if status == 202 else 0)
    html = client.get("/forms/cap").get_data(as_text=True)
    assert 'data-sitekey="site-1"' in html and "cap-secret" not in html
    store.dispose()


def test_an_unreachable_verifier_fails_closed(tmp_path: Any) -> None:
    client, store = app_for(tmp_path, captcha_route("http://127.0.0.1:9", "turnstile", "ok"))
    response = client.post(
        "/forms/cap",
        data={"email": "a@example.com", "message": "hi", "cf-turnstile-response": "solved"},
        headers=AJAX,
    )
    assert response.status_code == 422 and "could not be checked" in response.get_json()["message"]
    assert stored(store) == 0
    store.dispose()


def test_the_page_loads_the_providers_script_or_the_configured_one_and_allows_it(
    tmp_path: Any,
) -> None:
    client, store = app_for(tmp_path, captcha_route("http://127.0.0.1:9", "hcaptcha", "ok"))
    page = client.get("/forms/cap")
    assert '<script src="https://js.hcaptcha.com/1/api.js"' in page.get_data(as_text=True)
    assert "script-src https:;" in page.headers["Content-Security-Policy"]
    store.dispose()
    mirror = captcha_route(
        "http://127.0.0.1:9", "hcaptcha", "ok", ', script_url: "http://127.0.0.1:7001/h.js?x=1"'
    )
    client, store = app_for(tmp_path / "mirror", mirror)
    page = client.get("/forms/cap")
    assert '<script src="http://127.0.0.1:7001/h.js?x=1"' in page.get_data(as_text=True)
    assert "script-src https: http://127.0.0.1:7001;" in page.headers["Content-Security-Policy"]
    widget = client.get("/widget/cap/config")
    assert widget.status_code == 404  # a form route has no widget
    store.dispose()


# --- hostile input ---------------------------------------------------------------------------

XSS = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "</textarea><svg onload=alert(1)>",
    "javascript:alert(1)",
    "{{ 7*7 }}",
]


@pytest.mark.parametrize("payload", XSS)
def test_xss_payloads_are_escaped_on_every_page(
    web: tuple[FlaskClient, SubmissionStore], payload: str
) -> None:
    client, _ = web
    response = client.post(
        "/forms/contact",
        headers={**BROWSER, **ORIGIN},
        data={"name": payload, "email": payload, "message": payload, "topic": payload},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert payload not in html or payload in ("javascript:alert(1)", "{{ 7*7 }}")
    assert "<script>alert(1)</script>" not in html and "<img src=x" not in html
    assert "<svg onload" not in html


@pytest.mark.parametrize("field", ["name", "email"])
def test_header_injection_newlines_are_refused(
    web: tuple[FlaskClient, SubmissionStore], field: str
) -> None:
    client, store = web
    response = client.post(
        "/forms/contact",
        headers={**AJAX, **ORIGIN},
        data={**GOOD, field: "jane@example.com\r\nBcc: all@example.com"},
    )
    assert response.status_code == 422 and field in response.get_json()["errors"]
    assert stored(store) == 0


def test_malformed_json_and_a_store_that_cannot_write(tmp_path: Any) -> None:
    client, store = app_for(tmp_path)
    response = client.post("/forms/plain", data="{nope", content_type="application/json")
    assert response.status_code == 400 and response.get_json()["code"] == "malformed_json"
    store.dispose()
    path = tmp_path / "forms.db"
    url = f"sqlite:///file:{path}?mode=ro&uri=true"
    text = CONFIG.replace("STORE", url).replace("PROXIES", "0")
    ro = SubmissionStore(url, auto_upgrade=False)
    ro_client = create_app(settings_from_text(text, env={}), store=ro).test_client()
    answer = ro_client.post(
        "/forms/plain", data={"email": "a@example.com", "message": "hi"}, headers=AJAX
    )
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "30"
    page = ro_client.post(
        "/forms/plain", data={"email": "a@example.com", "message": "hi"}, headers=BROWSER
    )
    assert page.status_code == 503 and "could not be stored" in page.get_data(as_text=True)
    ro.dispose()


def test_redis_backed_limits_are_shared_across_instances(tmp_path: Any) -> None:
    """Two bridge instances on one Redis count one client's posts together."""
    import uuid

    from tests.conftest import REDIS_URL, need_redis

    need_redis()
    route = f"r{uuid.uuid4().hex[:8]}"  # fresh counters in the shared Redis
    extra = f"""
  {route}:
    kind: form
    fields:
      email:   {{type: email, required: true}}
      message: {{type: text, required: true}}
    limits: {{per_ip: ["3/hour"]}}
"""
    clients = []
    for n in range(2):
        url = f"sqlite:///{tmp_path / f'redis{n}.db'}"
        text = (
            CONFIG.replace("STORE", url)
            .replace("PROXIES", "0")
            .replace(
                "server: {trusted_proxies: 0}",
                f"server: {{trusted_proxies: 0, rate_limit_storage: '{REDIS_URL}'}}",
            )
            + extra
        )
        store = SubmissionStore(url)
        clients.append(
            (create_app(settings_from_text(text, env={}), store=store).test_client(), store)
        )
    codes = [
        clients[n % 2][0]
        .post(f"/forms/{route}", headers=AJAX, data={"email": "a@example.com", "message": f"m{n}"})
        .status_code
        for n in range(5)
    ]
    assert codes == [202, 202, 202, 429, 429]
    for _, store in clients:
        store.dispose()


@pytest.mark.parametrize(
    ("path", "status"),
    [("/forms/contact", 200), ("/forms/contact/thanks", 200), ("/forms/nowhere/thanks", 404)],
    ids=["form", "thank-you", "error"],
)
def test_every_page_carries_the_same_content_security_policy(
    web: tuple[FlaskClient, SubmissionStore], path: str, status: int
) -> None:
    client, _ = web
    response = client.get(path, headers=BROWSER)
    assert response.status_code == status and response.mimetype == "text/html"
    policy = response.headers["Content-Security-Policy"]
    for directive in ("default-src 'self'", "frame-ancestors 'self'", "base-uri 'none'"):
        assert directive in policy, policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_an_error_page_after_a_post_carries_the_policy(
    web: tuple[FlaskClient, SubmissionStore],
) -> None:
    client, _ = web
    response = client.post("/forms/plain", data="x" * 1_100_000, headers=BROWSER)
    assert response.status_code == 413 and response.mimetype == "text/html"
    assert "frame-ancestors 'self'" in response.headers["Content-Security-Policy"]


def test_forms_js_and_the_token_serve_pages_on_other_sites(
    web: tuple[FlaskClient, SubmissionStore],
) -> None:
    """forms.js is for any site; a token only for the sites a route takes posts from."""
    client, _ = web
    script = client.get("/forms.js")
    assert script.status_code == 200 and script.mimetype == "application/javascript"
    assert script.headers["Access-Control-Allow-Origin"] == "*" and "/token" in script.text
    assert (
        client.get("/forms.js", headers={"If-None-Match": script.headers["ETag"]}).status_code
        == 304
    )
    anywhere = client.get("/forms/plain/token", headers={"Origin": "https://elsewhere.example"})
    assert anywhere.headers["Access-Control-Allow-Origin"] == "*"  # plain lists no origins
    listed = client.get("/forms/contact/token", headers={"Origin": "https://www.example.com"})
    assert listed.headers["Access-Control-Allow-Origin"] == "https://www.example.com"
    other = client.get("/forms/contact/token", headers={"Origin": "https://elsewhere.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
