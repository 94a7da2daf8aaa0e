"""``bridge doctor`` against a healthy setup (the emulator, SQLite, Redis) and against each
broken part, with the exact lines it prints; never a secret."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from werkzeug.security import generate_password_hash

from bridge.cli import main
from bridge.outbox.migrate import head_revision
from bridge.outbox.store import SubmissionStore
from bridge.proprofs.emulator import EmulatorServer
from bridge.resources import templates_dir
from tests.conftest import ACCOUNT_EMAIL, REDIS_URL, TOKEN, need_redis
from tests.e2e.harness import free_port

ROUTES = """
routes:
  contact:
    kind: form
    fields:
      email:   {type: email, required: true}
      topic:   {type: choice, choices: [sales, support]}
      message: {type: text, required: true}
    ticket: {subject: "[{{ topic }}] {{ message }}", email: "{{ email }}"}
  alertmanager:
    kind: hook
    source: alertmanager
    auth: {bearer: doctor-bearer-token}
    ticket: {email: alerts@example.com}
  support:
    kind: widget
    origins: [https://shop.example.com]
    fields: {email: {type: email, required: true}, message: {type: text, required: true}}
"""


def config(
    tmp_path: Path,
    emulator: EmulatorServer,
    *,
    store: str | None = None,
    token: str = TOKEN,
    redis: str = REDIS_URL,
    routes: str = ROUTES,
) -> Path:
    path = tmp_path / "bridge.yaml"
    store = store or f"sqlite:///{tmp_path / 'b.db'}"
    path.write_text(
        f"proprofs: {{base_url: '{emulator.base_url}', account_email: {ACCOUNT_EMAIL}, "
        f"token: {token}}}\nstore: '{store}'\nserver: {{rate_limit_storage: '{redis}'}}\n{routes}"
    )
    if store.startswith("sqlite"):
        with SubmissionStore(store) as ready:
            ready.upgrade()
    return path


def doctor(path: Path) -> tuple[int, list[str]]:
    result = CliRunner().invoke(main, ["doctor", "--config", str(path)])
    assert TOKEN not in result.output and "doctor-bearer-token" not in result.output
    return result.exit_code, [" ".join(line.split()) for line in result.output.splitlines()]


def healthy_lines(tmp_path: Path, emulator: EmulatorServer) -> list[str]:
    return [
        f"ok store sqlite:///{tmp_path / 'b.db'}: reachable, migrations current ({head_revision()})",
        f"ok rate limits {REDIS_URL}: answers",
        f"ok proprofs {emulator.base_url}: credentials accepted (0 ticket(s) read)",
        "ok route contact sample fields → '[sales] A sample message'",
        "ok route alertmanager the alertmanager sample → '[FIRING:2] High CPU Temperature (critical)'",
        "ok route support sample fields → '[support] A sample message'",
        "all good",
    ]


def test_a_healthy_setup(tmp_path: Path, emulator: EmulatorServer) -> None:
    need_redis()
    code, lines = doctor(config(tmp_path, emulator))
    assert (code, lines) == (0, healthy_lines(tmp_path, emulator))


@pytest.mark.parametrize(
    "broken", ["store down", "bad token", "redis down", "template error", "widget without origins"]
)
def test_each_broken_part_is_named(tmp_path: Path, emulator: EmulatorServer, broken: str) -> None:
    need_redis()
    expected = healthy_lines(tmp_path, emulator)
    if broken == "store down":
        port = free_port()
        store = f"postgresql+psycopg://postgres@127.0.0.1:{port}/test"
        path = config(tmp_path, emulator, store=store)
        expected[0] = f"FAIL store {store}: unreachable (OperationalError)"
    elif broken == "bad token":
        path = config(tmp_path, emulator, token="not-the-token-0000")
        expected[2] = (
            f"FAIL proprofs {emulator.base_url}: credentials refused (ProProfs error (HTTP 200): "
            "Unable to authenticate request using account email and token)"
        )
    elif broken == "redis down":
        redis = f"redis://127.0.0.1:{free_port()}/0"
        path = config(tmp_path, emulator, redis=redis)
        expected[1] = (
            f"FAIL rate limits {redis}: unreachable (ConnectionError); intake would count per process"
        )
    elif broken == "widget without origins":
        path = config(
            tmp_path,
            emulator,
            routes=ROUTES.replace("    origins: [https://shop.example.com]\n", ""),
        )
        expected[5] = (
            "FAIL route support no origins: the widget works only on pages the bridge serves "
            "itself; list the site it goes on, e.g. origins: [https://www.example.com]"
        )
    else:
        routes = ROUTES.replace('"[{{ topic }}] {{ message }}"', '"{{ message ~ (1 // 0) }}"')
        path = config(tmp_path, emulator, routes=routes)
        expected[3] = (
            "FAIL route contact sample fields does not map: MappingError: "
            "routes.contact.ticket.subject: template failed: ZeroDivisionError"
        )
    expected[-1] = "1 problem(s)"
    code, lines = doctor(path)
    assert (code, lines) == (1, expected)


def test_the_pages_a_person_sees_are_rendered(
    tmp_path: Path, emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The thank-you page and the console's sign-in page are rendered too: a template that
    fails there (here, a broken copy of the installed thank-you page) is named."""
    need_redis()
    path = config(tmp_path, emulator)
    hashed = generate_password_hash("console password 42")
    path.write_text(path.read_text() + f'admin: {{password_hash: "{hashed}"}}\n')
    expected = [*healthy_lines(tmp_path, emulator)]
    expected.insert(-1, "ok admin console /admin/login renders")
    assert doctor(path) == (0, expected)

    broken = tmp_path / "templates"
    shutil.copytree(templates_dir(), broken)
    (broken / "thanks.html").write_text("{% extends 'base.html' %}{% block content %}{{ 1 // 0 }}")
    monkeypatch.setattr("bridge.app.templates_dir", lambda: broken)
    expected[3] = "FAIL route contact /forms/contact/thanks answered 500"
    expected[-1] = "1 problem(s)"
    assert doctor(path) == (1, expected)
