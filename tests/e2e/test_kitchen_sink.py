"""The kitchen-sink config as users run it: booted by the real ``bridge serve``, every
shipped sender payload posted to its routes with that route's credentials, forms and
widgets used as browsers and pages use them, the OpenAPI document checked against the
config, and schemathesis run against that document."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
import requests

from bridge.outbox.store import SubmissionStore
from bridge.proprofs.emulator import EmulatorServer
from tests.conftest import pg_schema_url
from tests.e2e.harness import bridge_server, error_lines, schemathesis, wait_until
from tests.e2e.kitchen import (
    EXAMPLE_PAYLOADS,
    KITCHEN_SINK,
    credentials,
    kitchen_env,
    kitchen_settings,
    shipped,
)

pytestmark = pytest.mark.e2e

SECURITY = {"bearer": "bearer", "basic": "basic", "query": "query_", "hmac": "hmac_"}


def post_hook(url: str, route: Any, body: bytes, content_type: str) -> requests.Response:
    headers, query = credentials(route, body)
    return requests.post(
        f"{url}/hooks/{route.name}",
        data=body,
        params=query,
        headers={**headers, "Content-Type": content_type},
        timeout=15,
    )


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_every_shipped_payload_through_its_routes(
    emulator: EmulatorServer, tmp_path: Path, engine: str
) -> None:
    with contextlib.ExitStack() as stack:
        if engine == "postgres":
            store_url = stack.enter_context(pg_schema_url())
            with SubmissionStore(store_url, auto_upgrade=False) as migrator:
                migrator.upgrade()  # as `bridge db upgrade` does before serving
        else:
            store_url = f"sqlite:///{tmp_path / 'kitchen.db'}"
        _through_every_route(emulator, tmp_path, store_url)


def _through_every_route(emulator: EmulatorServer, tmp_path: Path, store_url: str) -> None:
    env = kitchen_env(emulator, store_url)
    settings = kitchen_settings(env)
    hooks = [r for r in settings.routes.values() if r.kind == "hook"]
    presets = {r.source.name for r in hooks if r.source is not None}
    assert len(presets) == 13 and all(
        sum(1 for r in hooks if r.source and r.source.name == p) >= 2 for p in presets
    )
    log = tmp_path / "serve.log"
    accepted: list[str] = []
    updated: set[str] = set()  # creates whose tickets a resolve or repeat updated
    answers: dict[str, dict[int, int]] = {}
    with bridge_server(KITCHEN_SINK, env=env, log=log) as url:
        for route in hooks:
            assert route.source is not None
            sns = route.source.name == "aws_sns"
            for path in shipped(route.source.name):
                body = path.read_bytes()
                answer = post_hook(url, route, body, "text/plain" if sns else "application/json")
                counts = answers.setdefault(route.name, {})
                counts[answer.status_code] = counts.get(answer.status_code, 0) + 1
                reply = answer.json()
                if route.name == "cloudwatch":
                    # Verified by default: AWS's certificate cannot be fetched from here, so
                    # no shipped message can be verified, and none may get through.
                    assert answer.status_code == 401, (path.name, reply)
                    assert "certificate" in reply["message"] or "signature" in reply["message"]
                    continue
                kind = _sns_kind(body) if sns else None
                if kind == "SubscriptionConfirmation":
                    assert (answer.status_code, reply["code"]) == (403, "topic_not_allowed")
                elif kind == "UnsubscribeConfirmation":
                    assert (answer.status_code, reply["status"]) == (200, "ignored")
                else:
                    assert answer.status_code in (200, 202), (route.name, path.name, reply)
                    if answer.status_code == 202:  # per-alert routes store one per alert
                        accepted.extend(reply.get("ids", [reply["id"]]))
                    else:
                        assert reply["status"] in ("ignored", "duplicate", "updated"), reply
                        if reply["status"] == "updated":  # the route keeps tickets current
                            assert route.alerts.update is not None, route.name
                            updated.add(reply["id"])

        for preset in presets:  # each preset made a ticket through at least one route
            assert any(
                202 in answers[r.name] for r in hooks if r.source and r.source.name == preset
            ), (preset, answers)

        # The two forms, as a page's fetch() and as a plain browser post.
        contact = json.loads((EXAMPLE_PAYLOADS / "contact.json").read_text())
        page = {"Origin": "https://www.example.com"}
        answer = requests.post(f"{url}/forms/contact", json=contact, headers=page, timeout=10)
        assert answer.status_code == 202, answer.text
        assert answer.headers["Access-Control-Allow-Origin"] == "https://www.example.com"
        accepted.append(answer.json()["id"])
        answer = requests.post(
            f"{url}/forms/feedback",
            data={
                "email": "kim@example.org",
                "rating": "4",
                "areas": "docs\nsearch",
                "consent": "on",
            },
            headers={"Accept": "text/html"},
            allow_redirects=False,
            timeout=10,
        )
        assert answer.status_code == 303, answer.text
        accepted.append("feedback (a browser post: its id is not shown)")
        assert requests.get(url + answer.headers["Location"], timeout=10).status_code == 200

        # The two widgets: the shape the shipped script posts, and flat fields.
        widget = json.loads((EXAMPLE_PAYLOADS / "widget.json").read_text())
        answer = requests.post(f"{url}/widget/support", json=widget, headers=page, timeout=10)
        assert answer.status_code == 202, answer.text
        receipt = answer.json()["receipt"]
        accepted.append(answer.json()["id"])
        billing = {"email": "ana@example.net", "invoice": "INV-20931", "message": "Charged twice."}
        answer = requests.post(
            f"{url}/widget/billing-help",
            json=billing,
            headers={"Origin": "https://billing.example.com"},
            timeout=10,
        )
        assert answer.status_code == 202, answer.text
        accepted.append(answer.json()["id"])

        # Every accepted submission becomes exactly one ticket.
        assert wait_until(lambda: len(emulator.state.tickets) == len(accepted), 60), (
            len(emulator.state.tickets),
            len(accepted),
        )

        # …and every update of a ticket goes out too.
        with SubmissionStore(store_url) as watching:
            waiting = ("pending", "in_flight", "unknown")
            assert wait_until(lambda: not any(watching.counts()[s] for s in waiting), 60), (
                watching.counts()
            )

        # The ticket exists at ProProfs a moment before the bridge records it.
        def status_of(receipt: str) -> dict:
            return requests.get(f"{url}/widget/support/status/{receipt}", timeout=10).json()

        assert wait_until(lambda: status_of(receipt)["state"] == "delivered", 30)
        status = status_of(receipt)
        assert status["ticket_id"], status
        assert status["messages"][0]["from"] == "you", status

        document = requests.get(f"{url}/openapi.json", timeout=10).json()
    store = SubmissionStore(store_url)
    try:
        delivered = store.list(state="delivered", limit=1000)
        assert len([s for s in delivered if not s.is_update]) == len(accepted)
        # Each notification that updated a ticket did so through a delivered update (or
        # went into the create, when that had not been sent yet).
        assert updated, "no shipped payload resolved or repeated a group on an update route"
        sent = {s.target for s in delivered if s.is_update}
        folded = {sid for sid in updated - sent if "Status: resolved" in _ticket_of(emulator, sid)}
        assert sent | folded >= updated, (updated, sent)
        assert store.counts()["dead"] == 0
        # The capturing routes kept what they were sent, without their credentials.
        kept = {name: store.captures.list(name) for name in ("alerts-prod", "grafana-signed")}
        assert all(kept.values()), {name: len(c) for name, c in kept.items()}
        text = json.dumps([dict(c) for c in kept["alerts-prod"] + kept["grafana-signed"]])
        assert env["ALERTMANAGER_TOKEN"] not in text and env["GRAFANA_SECRET"] not in text
        assert "authorization" not in text.lower() and "signature" not in text.lower()
    finally:
        store.dispose()

    # The document describes every route, and each hook route's auth as configured.
    paths = document["paths"]
    schemes = document["components"]["securitySchemes"]
    for route in settings.routes.values():
        assert route.path in paths, route.path
        if route.kind != "hook":
            continue
        operation = paths[route.path]["post"]
        named = {name for requirement in operation.get("security", []) for name in requirement}
        if "sns" in route.auth:
            assert "SNS" in operation["description"], route.name
        assert named <= set(schemes), route.name
        for kind in set(route.auth) - {"sns"}:
            assert any(n.startswith(SECURITY[kind]) for n in named), (route.name, kind, named)
    for route in settings.routes.values():
        if route.kind == "widget":
            assert f"{route.path}/status/{{receipt}}" in paths

    assert error_lines(log) == []
    text = log.read_text()
    for secret in kitchen_env(emulator, store_url).values():
        if "ks-" in secret or secret.startswith("whsec_"):
            assert secret not in text


def _ticket_of(emulator: EmulatorServer, ref: str) -> str:
    """The description of the ticket whose reference is ``ref``."""
    for ticket in emulator.state.tickets.values():
        if ref in (ticket.description or ""):
            return ticket.description or ""
    return ""


def _sns_kind(body: bytes) -> str | None:
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value.get("Type") if isinstance(value, dict) else None


def test_schemathesis_against_the_kitchen_sink(emulator: EmulatorServer, tmp_path: Path) -> None:
    env = kitchen_env(emulator, f"sqlite:///{tmp_path / 'schemathesis.db'}")
    with bridge_server(KITCHEN_SINK, env=env, delivery=False) as url:
        result = schemathesis(url, max_examples=25)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
