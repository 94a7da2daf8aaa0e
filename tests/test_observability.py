"""Metrics after known traffic, readiness, request ids in logs, and no secret or email in them."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from bridge.app import create_app, proprofs_client
from bridge.config import Settings, settings_from_text
from bridge.observability import REQUEST_ID, Metrics, configure_logging, settings_secrets
from bridge.outbox.store import SubmissionStore
from bridge.outbox.worker import DeliverySettings, Worker
from bridge.proprofs.emulator import EmulatorServer
from tests.conftest import ACCOUNT_EMAIL, TOKEN

BEARER = "bearer-secret-for-metrics"


def settings_for(emulator: EmulatorServer, tmp_path: Path, base_url: str | None = None) -> Settings:
    return settings_from_text(
        f"""
proprofs: {{base_url: "{base_url or emulator.base_url}", account_email: {ACCOUNT_EMAIL}, token: {TOKEN}}}
store: "sqlite:///{tmp_path / "obs.db"}"
routes:
  events: {{kind: hook, auth: {{bearer: {BEARER}}}, dedup_key: "{{{{ data.id }}}}",
           ticket: {{email: hooks@example.com}}}}
  contact:
    kind: form
    fields: {{email: {{type: email, required: true}}, message: {{type: text, required: true}}}}
    spam: {{honeypot: _hp}}
""",
        env={},
    )


@pytest.fixture
def app_client(
    emulator: EmulatorServer, tmp_path: Path
) -> Iterator[tuple[FlaskClient, SubmissionStore, Settings]]:
    settings = settings_for(emulator, tmp_path)
    store = SubmissionStore(settings.store)
    yield create_app(settings, store=store).test_client(), store, settings
    store.dispose()


def sample(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            found = dict(
                re.findall(
                    r'(\w+)="([^"]*)"',
                    line.split(" ")[0]
                    if "{" not in line
                    else line[line.index("{") : line.index("}")],
                )
            )
            if all(found.get(k) == v for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_known_traffic(app_client: Any, emulator: EmulatorServer) -> None:
    client, store, settings = app_client
    auth = {"Authorization": f"Bearer {BEARER}"}
    for n in range(3):
        assert client.post("/hooks/events", json={"id": f"e{n}"}, headers=auth).status_code == 202
    assert client.post("/hooks/events", json={"id": "e0"}, headers=auth).status_code == 200
    assert client.post("/hooks/events", json={"id": "x"}).status_code == 401
    assert client.post("/forms/contact", json={"email": "bad"}).status_code == 422
    assert (
        client.post(
            "/forms/contact", json={"email": "a@example.com", "message": "m", "_hp": "bot"}
        ).status_code
        == 202
    )
    metrics = client.application.extensions["bridge"].metrics
    with proprofs_client(settings, observer=metrics.api_call) as api:
        Worker(store, api, DeliverySettings(poll_interval=0.05), metrics=metrics).run(
            until_idle=True, max_seconds=20
        )
    text = client.get("/metrics").get_data(as_text=True)
    assert sample(text, "bridge_submissions_total", route="events", outcome="accepted") == 3
    assert sample(text, "bridge_submissions_total", route="events", outcome="duplicate") == 1
    assert (
        sample(
            text,
            "bridge_submissions_total",
            route="events",
            outcome="rejected",
            reason="unauthorized",
        )
        == 1
    )
    assert (
        sample(
            text,
            "bridge_submissions_total",
            route="contact",
            outcome="rejected",
            reason="validation_failed",
        )
        == 1
    )
    assert sample(text, "bridge_submissions_total", route="contact", outcome="spam") == 1
    assert sample(text, "bridge_deliveries_total", route="events", outcome="delivered") == 3
    assert sample(text, "bridge_delivery_latency_seconds_count", route="events") == 3
    assert sample(text, "bridge_proprofs_requests_total", endpoint="create", result="ok") == 3
    assert sample(text, "bridge_proprofs_request_duration_seconds_count", endpoint="create") == 3
    assert sample(text, "bridge_outbox_submissions", state="delivered") == 3
    assert sample(text, "bridge_outbox_submissions", state="pending") == 0
    assert "bridge_outbox_oldest_pending_age_seconds 0.0" in text


def test_health_and_readiness(app_client: Any, emulator: EmulatorServer, tmp_path: Path) -> None:
    client, _, _ = app_client
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz").get_json()
    assert ready["status"] == "ready" and ready["proprofs"] == "reachable"
    assert str(tmp_path) not in json.dumps(ready) and ready["config"] == "loaded"
    down = settings_for(emulator, tmp_path, base_url="http://127.0.0.1:9/app/api/v1/")
    store = SubmissionStore(down.store)
    other = create_app(down, store=store).test_client().get("/readyz")
    assert other.status_code == 200 and other.get_json()["proprofs"].startswith("unreachable")
    assert other.get_json()["status"] == "degraded"  # submissions kept; no ticket made yet
    store.dispose()
    broken = SubmissionStore("postgresql+psycopg://postgres@127.0.0.1:9/x?connect_timeout=1")
    answer = create_app(down, store=broken).test_client().get("/readyz")
    assert answer.status_code == 503 and answer.get_json()["store"] == "unreachable"
    broken.dispose()


def test_request_ids_are_kept_or_given(app_client: Any) -> None:
    client, _, _ = app_client
    assert (
        client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"]
        == "abc-123"
    )
    given = client.get("/healthz", headers={"X-Request-ID": "bad id <script>"}).headers[
        "X-Request-ID"
    ]
    assert re.fullmatch(r"[0-9a-f]{32}", given)


def test_logs_are_json_with_request_ids_and_hold_no_secret_or_email(
    app_client: Any, emulator: EmulatorServer
) -> None:
    client, store, settings = app_client
    stream = io.StringIO()
    handler = configure_logging(level="INFO", secrets=settings_secrets(settings), stream=stream)
    try:
        logging.getLogger("test").info("the token is %s and the bearer %s", TOKEN, BEARER)
        response = client.post(
            "/hooks/events",
            json={"id": "log-1", "email": "person@private.example"},
            headers={"Authorization": f"Bearer {BEARER}", "X-Request-ID": "req-42"},
        )
        assert response.status_code == 202
        client.post("/forms/contact", json={"email": "person@private.example", "message": "hi"})
        with proprofs_client(settings) as api:
            Worker(store, api, DeliverySettings(poll_interval=0.05)).run(
                until_idle=True, max_seconds=20
            )
    finally:
        logging.getLogger().removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    text = stream.getvalue()
    assert TOKEN not in text and BEARER not in text and "[redacted]" in text
    assert "person@private.example" not in text
    delivered = [line for line in lines if "delivered as ticket" in line["message"]]
    assert any(line["request_id"] == "req-42" for line in delivered)


def test_metrics_can_be_switched_off() -> None:
    metrics = Metrics(enabled=False)
    metrics.submission("r", "hook", "accepted")
    assert b"bridge_submissions_total{" not in metrics.exposition()


def test_a_json_line_holds_the_fields_the_extras_and_the_traceback_all_redacted() -> None:
    stream = io.StringIO()
    handler = configure_logging(stream=stream, secrets=["s3cret-token-value"])
    try:
        log = logging.getLogger("bridge.test")
        token = REQUEST_ID.set("req-1")
        try:
            log.info("sent with %s", "s3cret-token-value")
            try:
                raise RuntimeError("failed near s3cret-token-value")
            except RuntimeError:
                log.exception("it broke")
            log.warning("odd", extra={"detail": "key=s3cret-token-value", "count": 3})
        finally:
            REQUEST_ID.reset(token)
    finally:
        logging.getLogger().removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [sorted(line) for line in lines[:1]] == [
        ["level", "logger", "message", "request_id", "time"]
    ]
    assert lines[0]["message"] == "sent with [redacted]" and lines[0]["request_id"] == "req-1"
    assert lines[0]["level"] == "INFO" and lines[0]["logger"] == "bridge.test"
    assert lines[1]["level"] == "ERROR" and "RuntimeError" in lines[1]["exc_info"]
    assert "[redacted]" in lines[1]["exc_info"]
    assert lines[2]["detail"] == "key=[redacted]" and lines[2]["count"] == 3
    assert "s3cret-token-value" not in stream.getvalue()


def test_a_plain_line_is_written_exactly_as_the_json_encoder_writes_it() -> None:
    stream = io.StringIO()
    handler = configure_logging(stream=stream, secrets=["s3cret-token-value"])
    awkward = 'quote " backslash \\ tab \t newline \n bell \x07 accents é ☃ emoji \U0001f600'
    try:
        token = REQUEST_ID.set('req "2" é')
        try:
            logging.getLogger('bridge.odd "name" é').info("said %s", awkward)
            logging.getLogger("bridge.test").warning("no request id here %d", 7)
        finally:
            REQUEST_ID.reset(token)
    finally:
        logging.getLogger().removeHandler(handler)
    written = stream.getvalue().splitlines()
    assert len(written) == 2
    for text in written:
        line = json.loads(text)
        assert list(line) == ["time", "level", "logger", "message", "request_id"]
        assert text == json.dumps(line)  # the same text the encoder gives, byte for byte
    first = json.loads(written[0])
    assert first["message"] == f"said {awkward}" and first["request_id"] == 'req "2" é'
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}", first["time"])


def test_metrics_can_require_a_bearer_token(emulator: EmulatorServer, tmp_path: Path) -> None:
    secret = "metrics-token-0123456789"
    base = settings_for(emulator, tmp_path)
    text = f"""
proprofs: {{base_url: "{emulator.base_url}", account_email: {ACCOUNT_EMAIL}, token: {TOKEN}}}
store: "{base.store}"
metrics: {{token: "{secret}"}}
routes: {{events: {{kind: hook, ticket: {{email: hooks@example.com}}}}}}
"""
    settings = settings_from_text(text, env={})
    assert secret not in repr(settings)
    store = SubmissionStore(settings.store)
    client = create_app(settings, store=store).test_client()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": secret}):
        refused = client.get("/metrics", headers=headers)
        assert refused.status_code == 401 and refused.get_json()["code"] == "unauthorized"
        assert secret not in refused.get_data(as_text=True)
    allowed = client.get("/metrics", headers={"Authorization": f"Bearer {secret}"})
    assert allowed.status_code == 200 and "bridge_" in allowed.get_data(as_text=True)
    store.dispose()


def test_readiness_says_a_refused_token_is_failing_and_keeps_taking_submissions(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    wrong = settings_from_text(
        f"""
proprofs: {{base_url: "{emulator.base_url}", account_email: {ACCOUNT_EMAIL}, token: not-the-token}}
store: "sqlite:///{tmp_path / "wrong.db"}"
routes:
  events: {{kind: hook, auth: {{bearer: {BEARER}}}, ticket: {{email: hooks@example.com}}}}
""",
        env={},
    )
    store = SubmissionStore(wrong.store)
    client = create_app(wrong, store=store).test_client()
    answer = client.get("/readyz")
    body = answer.get_json()
    assert answer.status_code == 200 and body["status"] == "degraded"
    assert body["proprofs"] == (
        "failing: the credentials are refused "
        "(Unable to authenticate request using account email and token)"
    )
    assert "not-the-token" not in answer.get_data(as_text=True)
    taken = client.post(
        "/hooks/events", json={"id": 1}, headers={"Authorization": f"Bearer {BEARER}"}
    )
    assert taken.status_code == 202
    store.dispose()
