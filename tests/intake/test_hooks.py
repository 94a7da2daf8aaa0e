"""``POST /hooks/<route>``: every documented answer, and nothing stored that was refused."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from bridge.app import create_app
from bridge.config import settings_from_text
from bridge.outbox.store import SubmissionStore

CONFIG = """
proprofs: {account_email: owner@example.com, token: tok}
store: STORE
routes:
  events:
    kind: hook
    dedup_key: "{{ data.id or '' }}"
    ticket: {email: hooks@example.com}
  secured:
    kind: hook
    auth: {bearer: s3cret-bearer-token}
    max_body: 2048
    ticket: {email: hooks@example.com}
  typed:
    kind: hook
    schema: tests.sample_schema:ContactSchema
    ticket: {email: "{{ email }}", subject: "{{ message }}"}
  broken:
    kind: hook
    ticket: {email: hooks@example.com, subject: "{{ data.n // 0 }}"}
  form:
    kind: form
    fields: {email: {type: email, required: true}}
    ticket: {email: "{{ email }}", subject: Hi}
"""


def make_client(store_url: str) -> tuple[FlaskClient, SubmissionStore]:
    settings = settings_from_text(CONFIG.replace("STORE", store_url), env={})
    store = SubmissionStore(store_url)
    return create_app(settings, store=store).test_client(), store


@pytest.fixture
def hooks(store_url: str) -> Iterator[tuple[FlaskClient, SubmissionStore]]:
    client, store = make_client(store_url)
    yield client, store
    store.dispose()


def post(
    client: FlaskClient, route: str, body: object, **kw: object
) -> tuple[int, dict[str, object]]:
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    kw.setdefault("content_type", "application/json")
    response = client.post(f"/hooks/{route}", data=data, **kw)  # type: ignore[arg-type]
    assert response.mimetype == "application/json"
    return response.status_code, response.get_json()


def test_accepted_then_duplicate(hooks: tuple[FlaskClient, SubmissionStore]) -> None:
    client, store = hooks
    status, body = post(client, "events", {"id": "e1", "title": "Disk full"})
    assert status == 202 and body["status"] == "accepted"
    sub = store.get(str(body["id"]))
    assert sub is not None and sub.draft.subject == "Disk full" and sub.state == "pending"
    assert sub.draft.description and sub.draft.description.endswith(f"Reference: {body['id']}")
    assert post(client, "events", {"id": "e1", "title": "again"}) == (
        200,
        {"status": "duplicate", "id": body["id"]},
    )
    assert store.counts()["pending"] == 1


@pytest.mark.parametrize(
    ("route", "body", "headers", "status", "code"),
    [
        ("nope", {"a": 1}, {}, 404, "unknown_route"),
        ("form", {"email": "a@b.co"}, {}, 404, "unknown_route"),
        ("events", "not json", {}, 400, "malformed_json"),
        ("events", "", {}, 400, "malformed_json"),
        ("events", b"\xff\xfe{", {}, 400, "malformed_json"),
        ("events", [1, 2], {}, 422, "validation_failed"),
        ("events", {"a": 1}, {"content_type": "text/plain"}, 415, "unsupported_media_type"),
        (
            "events",
            {"a": 1},
            {"content_type": "application/x-www-form-urlencoded"},
            415,
            "unsupported_media_type",
        ),
        ("secured", {"a": 1}, {}, 401, "unauthorized"),
        ("secured", {"a": 1}, {"headers": {"Authorization": "Bearer wrong"}}, 401, "unauthorized"),
        (
            "secured",
            {"a": 1},
            {"headers": {"Authorization": "Basic s3cret-bearer-token"}},
            401,
            "unauthorized",
        ),
        (
            "secured",
            {"a": "x" * 5000},
            {"headers": {"Authorization": "Bearer s3cret-bearer-token"}},
            413,
            "too_large",
        ),
        ("typed", {"email": "nope", "message": "hi"}, {}, 422, "validation_failed"),
        ("broken", {"n": 1}, {}, 422, "mapping_failed"),
    ],
)
def test_refusals_have_their_status_and_store_nothing(
    hooks: tuple[FlaskClient, SubmissionStore],
    route: str,
    body: object,
    headers: dict[str, object],
    status: int,
    code: str,
) -> None:
    client, store = hooks
    got_status, got = post(client, route, body, **headers)
    assert (got_status, got["code"], got["status"]) == (status, code, "error")
    assert isinstance(got["message"], str) and got["message"]
    assert sum(store.counts().values()) == 0


def test_validation_errors_name_each_field(hooks: tuple[FlaskClient, SubmissionStore]) -> None:
    client, _ = hooks
    status, body = post(client, "typed", {"email": "nope", "extra": 1})
    assert status == 422
    assert body["errors"] == {
        "email": ["Not a valid email address."],
        "message": ["Missing data for required field."],
        "extra": ["Unknown field."],
    }


def test_a_good_bearer_token_is_accepted(hooks: tuple[FlaskClient, SubmissionStore]) -> None:
    client, _ = hooks
    status, _ = post(
        client, "secured", {"a": 1}, headers={"Authorization": "Bearer s3cret-bearer-token"}
    )
    assert status == 202


def test_a_chunked_body_over_the_limit_is_refused(
    hooks: tuple[FlaskClient, SubmissionStore],
) -> None:
    client, store = hooks

    # No Content-Length: the server (gunicorn) de-chunks and marks the input terminated.
    body = b'{"a": "' + b"x" * 10_000 + b'"}'
    response = client.post(
        "/hooks/secured",
        input_stream=io.BytesIO(body),
        content_type="application/json",
        environ_overrides={"wsgi.input_terminated": True},
        headers={"Authorization": "Bearer s3cret-bearer-token"},
    )
    assert response.status_code == 413
    assert sum(store.counts().values()) == 0


def test_wrong_methods_and_paths_answer_json(hooks: tuple[FlaskClient, SubmissionStore]) -> None:
    client, _ = hooks
    response = client.get("/hooks/events")
    assert response.status_code == 405 and response.get_json()["status"] == "error"
    response = client.get("/nowhere")
    assert response.status_code == 404 and response.get_json()["code"] == "not_found"


def test_a_store_that_cannot_write_answers_503_never_202(tmp_path: Path) -> None:
    path = tmp_path / "ro.db"
    with SubmissionStore(f"sqlite:///{path}") as writable:
        writable.upgrade()
    client, store = make_client(f"sqlite:///file:{path}?mode=ro&uri=true")
    status, body = post(client, "events", {"id": "x"})
    assert status == 503 and body["code"] == "store_unavailable"
    store.dispose()
    client, store = make_client("postgresql+psycopg://postgres@127.0.0.1:9/x?connect_timeout=2")
    response = client.post("/hooks/events", json={"id": "y"})
    assert response.status_code == 503 and response.headers["Retry-After"] == "30"
    store.dispose()
