"""The operator console: login, CSRF, replay, masked secrets."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.security import generate_password_hash

from bridge.app import create_app
from bridge.config import ConfigError, settings_from_text
from bridge.outbox.records import Outcome
from bridge.outbox.store import SubmissionStore
from bridge.proprofs import TicketDraft
from tests.support.console import PASSWORD, log_in, token

SECRETS = ["tok-admin-secret-1", "bearer-admin-secret-2", "hmac-admin-secret-3"]


@pytest.fixture
def console(tmp_path: Path) -> Iterator[tuple[FlaskClient, SubmissionStore]]:
    url = f"sqlite:///{tmp_path / 'admin.db'}"
    settings = settings_from_text(
        f"""
proprofs: {{account_email: o@example.com, token: {SECRETS[0]}}}
store: "{url}"
admin: {{password_hash: "{generate_password_hash(PASSWORD)}", ticket_url: "https://desk.example.com/t/{{ticket_id}}"}}
routes:
  alerts: {{kind: hook, source: alertmanager, auth: {{bearer: {SECRETS[1]}}}, ticket: {{email: a@example.com}}}}
  signed: {{kind: hook, source: sentry, auth: {{hmac: {{scheme: sentry, secret: {SECRETS[2]}}}}}, ticket: {{email: a@example.com}}}}
""",
        env={},
    )
    store = SubmissionStore(url)
    client = create_app(settings, store=store).test_client()
    client.environ_base["wsgi.url_scheme"] = "https"  # secure cookies travel over https only
    yield client, store
    store.dispose()


def test_every_page_needs_a_login(console: Any) -> None:
    client, _ = console
    for path in ("/admin", "/admin/submissions", "/admin/routes", "/admin/submissions/pb-x"):
        response = client.get(path)
        assert response.status_code == 302 and "/admin/login" in response.headers["Location"]
    assert client.post("/admin/dead/replay").status_code == 302


def test_a_wrong_password_is_refused_and_the_cookie_is_hardened(console: Any) -> None:
    client, _ = console
    page = client.get("/admin/login")
    cookie = page.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=Lax" in cookie
    bad = client.post(
        "/admin/login", data={"password": "nope", "csrf_token": token(page.get_data(as_text=True))}
    )
    assert bad.status_code == 401 and "not right" in bad.get_data(as_text=True)
    assert client.get("/admin").status_code == 302


def test_forms_without_the_csrf_token_are_refused(console: Any) -> None:
    client, store = console
    assert client.post("/admin/login", data={"password": PASSWORD}).status_code == 400
    log_in(client)
    sid = store.enqueue("alerts", "hook", TicketDraft(email="a@b.co", subject="x")).id
    (claim,) = store.claim("w", 1)
    store.finish(claim, Outcome.dead("refused"), kind="create", started_at=time.time())
    assert client.post(f"/admin/submissions/{sid}/replay").status_code == 400
    assert (
        client.post(f"/admin/submissions/{sid}/replay", data={"csrf_token": "forged"}).status_code
        == 400
    )
    assert store.get(sid).state == "dead"  # type: ignore[union-attr]


def test_replay_one_and_all(console: Any) -> None:
    client, store = console
    log_in(client)
    ids = [
        store.enqueue("alerts", "hook", TicketDraft(email="a@b.co", subject=f"s{n}")).id
        for n in range(3)
    ]
    for claim in store.claim("w", 3):
        store.finish(claim, Outcome.dead("refused"), kind="create", started_at=time.time())
    page = client.get(f"/admin/submissions/{ids[0]}").get_data(as_text=True)
    assert "Replay this submission" in page and "refused" in page
    response = client.post(f"/admin/submissions/{ids[0]}/replay", data={"csrf_token": token(page)})
    assert response.status_code == 303 and store.get(ids[0]).state == "pending"  # type: ignore[union-attr]
    home = client.get("/admin").get_data(as_text=True)
    assert client.post("/admin/dead/replay", data={"csrf_token": token(home)}).status_code == 303
    assert store.counts()["pending"] == 3


def test_dead_letters_replay_by_route_error_and_time_after_showing_how_many(
    console: Any,
) -> None:
    client, store = console
    log_in(client)
    t0 = time.time() - 7200
    dead = {}
    for n, (route, error, age) in enumerate(
        [
            ("alerts", "ProProfs answered 503", 3600),
            ("alerts", "ProProfs answered 503", 60),
            ("alerts", "refused: bad inbox", 60),
            ("signed", "ProProfs answered 503", 60),
        ]
    ):
        sid = store.enqueue(route, "hook", TicketDraft(email="a@b.co", subject=f"s{n}")).id
        (claim,) = store.claim("w", 1)
        store.finish(claim, Outcome.dead(error), kind="create", started_at=t0, now=t0 + 7200 - age)
        dead[n] = sid
    since = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(time.time() - 1800))
    query = {"route": "alerts", "error": "503", "since": since}
    page = client.get("/admin/dead", query_string=query).get_data(as_text=True)
    assert "<b>1</b> dead submission(s) match" in page and "Replay these 1" in page
    assert dead[1] in page and dead[0] not in page and dead[3] not in page
    # What was shown is what runs: a count that changed meanwhile sends nothing.
    stale = client.post(
        "/admin/dead/replay", data={**query, "expected": "2", "csrf_token": token(page)}
    )
    assert stale.status_code == 200 and "the number has changed" in stale.get_data(as_text=True)
    assert store.get(dead[1]).state == "dead"  # type: ignore[union-attr]
    done = client.post(
        "/admin/dead/replay", data={**query, "expected": "1", "csrf_token": token(page)}
    )
    assert done.status_code == 303 and "replayed=1" in done.headers["Location"]
    assert [store.get(dead[n]).state for n in range(4)] == [  # type: ignore[union-attr]
        "dead",
        "pending",
        "dead",
        "dead",
    ]
    assert "Replayed 1 dead" in client.get(done.headers["Location"]).get_data(as_text=True)
    bad = client.get("/admin/dead", query_string={"since": "yesterday"})
    assert bad.status_code == 200
    assert "since: &#39;yesterday&#39; is not a time" in bad.get_data(as_text=True)
    everything = client.get("/admin/dead").get_data(as_text=True)
    assert "<b>3</b> dead submission(s) match (all)" in everything


def test_ticket_updates_show_beside_their_create(console: Any) -> None:
    client, store = console
    log_in(client)
    draft = TicketDraft(email="a@b.co", subject="Disk full", priority="normal")
    create = store.incidents.open(
        "alerts", "hook", "alerts:g", 1, draft, submission_id="pb-" + "a" * 20
    )
    store.claim("w", 1)  # sent: a notification now needs an update
    noted = store.updates.note(
        "alerts",
        "alerts:g",
        1,
        status="resolved",
        priority=None,
        rule="raise",
        every=60,
        build=lambda tracked, made: dataclasses.replace(made.draft, subject="[RESOLVED] Disk full"),
    )
    assert noted is not None
    page = client.get(f"/admin/submissions/{create.id}").get_data(as_text=True)
    assert "Updates of this ticket" in page and noted.submission_id in page
    page = client.get(f"/admin/submissions/{noted.submission_id}").get_data(as_text=True)
    assert f'An update of the ticket made by <a href="/admin/submissions/{create.id}">' in page
    listed = client.get("/admin/submissions").get_data(as_text=True)
    assert "update of</span>" in listed and "[RESOLVED] Disk full" in listed


def test_search_detail_and_ticket_link(console: Any) -> None:
    client, store = console
    log_in(client)
    sid = store.enqueue(
        "alerts", "hook", TicketDraft(email="find-me@example.com", subject="Disk full")
    ).id
    (claim,) = store.claim("w", 1)
    store.finish(claim, Outcome.delivered("00777"), kind="create", started_at=time.time())
    listing = client.get("/admin/submissions?q=find-me").get_data(as_text=True)
    assert sid in listing and "Disk full" in listing
    assert sid not in client.get("/admin/submissions?q=nobody").get_data(as_text=True)
    detail = client.get(f"/admin/submissions/{sid}").get_data(as_text=True)
    assert 'href="https://desk.example.com/t/00777"' in detail
    assert client.get("/admin/submissions/pb-nope").status_code == 404


def test_routes_page_masks_every_secret(console: Any) -> None:
    client, _ = console
    log_in(client)
    page = client.get("/admin/routes").get_data(as_text=True)
    assert "alertmanager" in page and "********" in page
    for secret in SECRETS:
        assert secret not in page
    for path in ("/admin", "/admin/submissions"):
        assert all(secret not in client.get(path).get_data(as_text=True) for secret in SECRETS)


def test_a_trusted_proxy_header_logs_in(tmp_path: Path) -> None:
    settings = settings_from_text(
        f"""
proprofs: {{account_email: o@example.com, token: t}}
store: "sqlite:///{tmp_path / "p.db"}"
admin: {{trusted_header: X-Forwarded-User}}
server: {{trusted_proxies: [127.0.0.1]}}
routes: {{e: {{kind: hook, ticket: {{email: a@example.com}}}}}}
""",
        env={},
    )
    store = SubmissionStore(settings.store)
    client = create_app(settings, store=store).test_client()
    assert client.get("/admin").status_code == 302
    page = client.get("/admin", headers={"X-Forwarded-User": "sam"})
    assert page.status_code == 200 and "sam" in page.get_data(as_text=True)
    store.dispose()


def test_no_console_without_admin_settings(tmp_path: Path) -> None:
    settings = settings_from_text(
        f"""
proprofs: {{account_email: o@example.com, token: t}}
store: "sqlite:///{tmp_path / "n.db"}"
routes: {{e: {{kind: hook, ticket: {{email: a@example.com}}}}}}
""",
        env={},
    )
    store = SubmissionStore(settings.store)
    client = create_app(settings, store=store).test_client()
    assert client.get("/admin").status_code == 404 and client.get("/admin/login").status_code == 404
    store.dispose()


def test_the_console_cookie_is_read_only_on_console_paths(console: Any) -> None:
    """A submission never builds a signer for a cookie only /admin ever receives; a signed-in
    console keeps its session."""
    client, _ = console
    log_in(client)
    app = client.application
    with app.test_request_context("/hooks/alerts", method="POST"):
        from flask import request

        outside = app.session_interface.open_session(app, request)
    assert app.session_interface.is_null_session(outside)
    assert client.get("/admin/").status_code == 200  # still signed in on the console
    with app.test_request_context("/admin/"):
        from flask import request

        inside = app.session_interface.open_session(app, request)
    assert inside is not None and not app.session_interface.is_null_session(inside)


def test_the_identity_header_is_believed_only_from_a_trusted_proxy(tmp_path: Path) -> None:
    text = f"""
proprofs: {{account_email: o@example.com, token: t}}
store: "sqlite:///{tmp_path / "p.db"}"
admin: {{trusted_header: X-Forwarded-User}}
server: {{trusted_proxies: [10.0.0.5]}}
routes: {{e: {{kind: hook, ticket: {{email: a@example.com}}}}}}
"""
    settings = settings_from_text(text, env={})
    store = SubmissionStore(settings.store)
    client = create_app(settings, store=store).test_client()
    staff = {"X-Forwarded-User": "sam"}
    # Straight from anyone else (a client that reached the bridge around the proxy).
    assert client.get("/admin", headers=staff).status_code == 302
    proxied = client.get("/admin", headers=staff, environ_base={"REMOTE_ADDR": "10.0.0.5"})
    assert proxied.status_code == 200 and "sam" in proxied.get_data(as_text=True)
    store.dispose()
    for server in ("", "server: {trusted_proxies: 1}\n"):
        with pytest.raises(ConfigError) as refused:
            settings_from_text(
                text.replace("server: {trusted_proxies: [10.0.0.5]}\n", server), env={}
            )
        assert "admin.trusted_header" in str(refused.value)
        assert "server.trusted_proxies" in str(refused.value)


def test_failed_sign_ins_are_logged_and_throttled(
    console: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client, _ = console
    page = client.get("/admin/login").get_data(as_text=True)

    def attempt(password: str, user: str = "admin", peer: str = "192.0.2.7") -> Any:
        return client.post(
            "/admin/login",
            data={"username": user, "password": password, "csrf_token": token(page)},
            environ_base={"REMOTE_ADDR": peer, "wsgi.url_scheme": "https"},
        )

    with caplog.at_level("INFO", logger="bridge.admin"):
        for n in range(5):
            assert attempt(f"guess-{n}").status_code == 401
    failures = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert len(failures) == 5 and all("'admin'" in f and "192.0.2.7" in f for f in failures)
    assert not any("guess-" in r.getMessage() for r in caplog.records)  # never the password
    refused = attempt(PASSWORD)  # the right password, but this peer must wait
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    # The user name is throttled from any peer; another user name from another peer is not.
    assert attempt(PASSWORD, peer="198.51.100.9").status_code == 429
    assert attempt("x", user="root", peer="198.51.100.9").status_code == 401


def test_logout_revokes_the_session_on_the_server(console: Any) -> None:
    client, _ = console
    log_in(client)
    copied = client.get_cookie("bridge_admin", path="/admin")
    assert copied is not None
    home = client.get("/admin").get_data(as_text=True)
    assert client.post("/admin/logout", data={"csrf_token": token(home)}).status_code == 303
    client.set_cookie("bridge_admin", copied.value, path="/admin", secure=True)
    assert client.get("/admin").status_code == 302  # the copied cookie no longer works


def test_a_line_break_in_next_is_refused(console: Any) -> None:
    client, _ = console
    for target in ("/admin%0d%0aSet-Cookie:%20x=1", "/admin%0a"):
        response = client.get(f"/admin/login?next={target}")
        assert response.status_code == 400
