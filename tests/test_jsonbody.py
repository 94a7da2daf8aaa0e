"""JSON nested thousands of levels deep, at every route of the kitchen-sink config: once a
``RecursionError`` inside ``json.loads`` and a 500 with a traceback; now ``400
malformed_json`` with a message a person can act on, nothing stored, nothing logged at ERROR."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient

from bridge.app import create_app
from bridge.config import Route, Settings
from bridge.outbox.store import SubmissionStore
from tests.e2e.kitchen import SECRETS, credentials, kitchen_settings

LEVELS = 5000
DEEP = {
    "list": ("[" * LEVELS + "]" * LEVELS).encode(),
    "object": ('{"a":' * LEVELS + "1" + "}" * LEVELS).encode(),
    "inside an object": ('{"title": "x", "labels": ' + "[" * LEVELS + "]" * LEVELS + "}").encode(),
}
ODD_JSON = {
    "an integer past Python's digit limit": (
        b'{"id": ' + b"9" * 5000 + b', "email": "a@b.co", "message": "hi"}',
        "more than 4300 digits",
    ),
    "a float that overflows": (b'{"title": 1e999999, "email": "a@b.co"}', "too large for a float"),
    "NaN": (b'{"title": NaN, "email": "a@b.co"}', "NaN, which JSON does not allow"),
    "-Infinity": (b'{"title": -Infinity}', "-Infinity, which JSON does not allow"),
    "a surrogate encoded in the bytes": (
        b'{"email": "sam@ex\xed\xa0\x80ample.com", "message": "x"}',
        "not UTF-8 text",
    ),
    "a lone surrogate escape": (
        b'{"title": "\\ud800", "email": "\\udfff@b.co", "message": "x"}',
        "lone \\u surrogate escape",
    ),
}
#: Each refused body, and what its answer must say.
REFUSED = {
    **{f"nested: {shape}": (body, "nests deeper than 64 levels") for shape, body in DEEP.items()},
    **ODD_JSON,
}
ORIGINS = {
    "contact": "https://www.example.com",
    "support": "https://www.example.com",
    "billing-help": "https://billing.example.com",
}


@pytest.fixture(scope="module")
def kitchen(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Settings, FlaskClient, SubmissionStore]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('deep') / 'deep.db'}"
    env = {
        **SECRETS,
        "PROPROFS_BASE_URL": "http://127.0.0.1:9/app/api/v1/",
        "PROPROFS_ACCOUNT_EMAIL": "owner@example.com",
        "PROPROFS_TOKEN": "tok-deep-json",
        "BRIDGE_STORE": url,
    }
    settings = kitchen_settings(env)
    store = SubmissionStore(url)
    yield settings, create_app(settings, store=store).test_client(), store
    store.dispose()


def routes() -> list[str]:
    env = {**SECRETS, "BRIDGE_STORE": "sqlite://"}
    return sorted(kitchen_settings(env).routes)


def send(client: FlaskClient, route: Route, body: bytes) -> tuple[int, dict[str, object]]:
    headers: dict[str, str] = {"Accept": "application/json"}
    query: dict[str, str] = {}
    if route.kind == "hook":
        headers, query = credentials(route, body)
    if route.name in ORIGINS:
        headers["Origin"] = ORIGINS[route.name]
    answer = client.post(
        route.path,
        data=body,
        query_string=query,
        headers={**headers, "Accept": "application/json"},
        content_type="application/json",
    )
    return answer.status_code, answer.get_json()


@pytest.mark.parametrize("case", sorted(REFUSED))
@pytest.mark.parametrize("name", routes())
def test_json_the_bridge_will_not_read_is_a_400_everywhere(
    kitchen: tuple[Settings, FlaskClient, SubmissionStore],
    caplog: pytest.LogCaptureFixture,
    name: str,
    case: str,
) -> None:
    """Deep nesting once raised RecursionError; found by the hostile-input run, 5,000 digits
    raised a ValueError without a JSON error's attributes and a lone surrogate broke the
    first encoder it met: each was a 500."""
    settings, client, store = kitchen
    body, reason = REFUSED[case]
    caplog.set_level(logging.INFO)
    stored = sum(store.counts().values())
    status, answer = send(client, settings.routes[name], body)
    assert (status, answer["code"]) == (400, "malformed_json"), answer
    assert reason in str(answer["message"]), answer
    assert sum(store.counts().values()) == stored
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_deep_json_inside_an_sns_message_is_a_400(
    kitchen: tuple[Settings, FlaskClient, SubmissionStore],
) -> None:
    """SNS carries the alarm as a JSON string inside the envelope: parsed with the same bound."""
    settings, client, store = kitchen
    stored = sum(store.counts().values())
    envelope = {
        "Type": "Notification",
        "MessageId": "d0c5e5c4-0000-4000-8000-000000000001",
        "TopicArn": "arn:aws:sns:eu-west-1:123456789012:alerts",
        "Subject": "ALARM",
        "Message": "[" * LEVELS + "]" * LEVELS,
        "Timestamp": "2026-11-22T10:00:00.000Z",
    }
    status, body = send(client, settings.routes["cloudwatch-relay"], json.dumps(envelope).encode())
    assert (status, body["code"]) == (400, "malformed_json"), body
    assert sum(store.counts().values()) == stored


def test_json_at_the_depth_limit_is_still_read(
    kitchen: tuple[Settings, FlaskClient, SubmissionStore],
) -> None:
    settings, client, store = kitchen
    nested: object = "deep but fine"
    for _ in range(60):
        nested = {"n": nested}
    body = json.dumps({"id": "evt-depth", "title": "Nested", "detail": nested}).encode()
    stored = sum(store.counts().values())
    status, answer = send(client, settings.routes["deploys"], body)
    assert status == 202, answer
    assert sum(store.counts().values()) == stored + 1


def test_a_surrogate_pair_is_text_and_is_kept(
    kitchen: tuple[Settings, FlaskClient, SubmissionStore],
) -> None:
    settings, client, store = kitchen
    body = b'{"id": "evt-emoji", "title": "Deploy \\ud83d\\ude80 done"}'
    status, answer = send(client, settings.routes["deploys"], body)
    assert status == 202, answer
    submission = store.get(str(answer["id"]))
    assert submission is not None and submission.draft.subject == "Deploy: Deploy \U0001f680 done"
