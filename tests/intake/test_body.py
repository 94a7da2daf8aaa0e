"""A request costs at most what its limit says: JSON and urlencoded bodies have their own
limit (files count only in multipart), the JSON's shape is bounded before anything is built,
and credentials and rate limits are checked before a byte of the body is read."""

from __future__ import annotations

import io
import json
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from bridge import jsonbody
from bridge.app import create_app
from bridge.config import DEFAULT_MAX_BODY, settings_from_text
from bridge.outbox.store import SubmissionStore

CONFIG = """
proprofs: {{account_email: a@example.com, token: t0ken-for-tests}}
store: {store}
files: {{directory: {files}}}
routes:
  contact:
    kind: form
    fields:
      email: {{type: email, required: true}}
      message: {{type: text, required: true}}
      files: {{type: file}}
    attachments: {{max_size: 8MB, max_total: 16MB}}
    limits: {{per_ip: ["2/hour"]}}
  alertmanager:
    kind: hook
    source: alertmanager
    ticket: {{email: alerts@example.com}}
  secured:
    kind: hook
    auth: {{bearer: s3cret-bearer-token}}
    ticket: {{email: hooks@example.com}}
"""


@pytest.fixture
def web(tmp_path: Path) -> Iterator[tuple[FlaskClient, SubmissionStore]]:
    url = f"sqlite:///{tmp_path / 'limits.db'}"
    settings = settings_from_text(CONFIG.format(store=url, files=tmp_path / "kept"), env={})
    store = SubmissionStore(url)
    yield create_app(settings, store=store).test_client(), store
    store.dispose()


class Untouchable(io.RawIOBase):
    """A body that fails the test if anything reads it."""

    read_from = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0  # the test client asks where the body starts and ends

    def tell(self) -> int:
        return 0

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        Untouchable.read_from = True
        raise AssertionError("the body was read")


def test_a_json_body_on_a_route_with_files_is_held_to_max_body(
    web: tuple[FlaskClient, SubmissionStore],
) -> None:
    client, store = web
    tiny_objects = b"[" + b"{}," * (3 * 1024 * 1024 // 3) + b"{}]"  # 3 MB: under the files' total
    response = client.post("/forms/contact", data=tiny_objects, content_type="application/json")
    assert response.status_code == 413, response.get_data(as_text=True)
    assert response.get_json()["message"] == (
        f"The body is larger than this route accepts ({DEFAULT_MAX_BODY} bytes)."
    )
    urlencoded = b"email=a%40b.co&message=" + b"x" * DEFAULT_MAX_BODY
    response = client.post(
        "/forms/contact", data=urlencoded, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 413
    # Multipart may carry the files on top of the fields.
    big_file = FileStorage(io.BytesIO(b"%PDF-1.7\n" + b"0" * 2_000_000), "big.pdf")
    boundary, body = encode_multipart(
        MultiDict({"email": "a@b.co", "message": "see the file", "files": big_file})
    )
    response = client.post(
        "/forms/contact",
        data=body,  # bytes: the test client would spool a file this size to disk
        content_type=f"multipart/form-data; boundary={boundary}",
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    assert sum(store.counts().values()) == 1


def test_an_alert_group_of_1000_alerts_fits_the_default_limit(
    web: tuple[FlaskClient, SubmissionStore],
) -> None:
    client, _ = web
    alert = {
        "status": "firing",
        "labels": {
            "alertname": "DiskFull",
            "instance": "db-0.example.com:9100",
            "job": "node",
            "severity": "critical",
            "mountpoint": "/var/lib/postgresql",
            "device": "/dev/nvme0n1p1",
            "fstype": "ext4",
        },
        "annotations": {
            "summary": "The disk is almost full",
            "description": "Less than 5% of the disk is free on db-0.example.com:9100.",
            "runbook_url": "https://runbooks.example.com/disk-full",
        },
        "startsAt": "2026-12-07T10:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example.com:9090/graph?g0.expr=node_filesystem_avail",
        "fingerprint": "0123456789abcdef",
    }
    group = {
        "version": "4",
        "groupKey": '{}:{alertname="DiskFull"}',
        "status": "firing",
        "receiver": "bridge",
        "groupLabels": {"alertname": "DiskFull"},
        "commonLabels": {"alertname": "DiskFull"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example.com:9093",
        "alerts": [
            {**alert, "labels": {**alert["labels"], "instance": f"db-{n}:9100"}}
            for n in range(1000)
        ],
    }
    body = json.dumps(group).encode()
    assert 500_000 < len(body) < DEFAULT_MAX_BODY
    response = client.post("/hooks/alertmanager", data=body, content_type="application/json")
    assert response.status_code == 202, response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        ("[" + "{}," * 200_000 + "{}]", jsonbody.TooWide),
        ("[" + "0," * 200_000 + "0]", jsonbody.TooWide),
        ('{"a": [' + '"x",' * 150_000 + '"y"]}', jsonbody.TooWide),
        ("[" * 65 + "]" * 65, jsonbody.TooDeep),
        ('{"a":' * 65 + "1" + "}" * 65, jsonbody.TooDeep),
        ("[" * 30 + "{}," * 40 + '{"a":' * 40 + "1" + "}" * 40 + "]" * 30, jsonbody.TooDeep),
    ],
    ids=["empty objects", "numbers", "strings", "deep list", "deep object", "deep, mixed"],
)
def test_hostile_shapes_are_refused_before_anything_is_built(
    text: str, refusal: type[jsonbody.Unacceptable]
) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(refusal):
            jsonbody.loads(text.encode())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # A few copies of the text, never the objects (200,000 dicts alone take ~13 MB).
    assert peak < 6 * len(text) + 50_000, peak


@pytest.mark.parametrize(
    "text",
    [
        "[" * 64 + "]" * 64,
        '{"a":' * 64 + "1" + "}" * 64,
        '{"brackets in words": "' + "[[[[{{{{" * 100 + '", "n": [1, 2, 3]}',
        '{"commas, in words": "' + "," * 200_000 + '"}',
        "[" + "0," * 99_000 + "0]",
    ],
    ids=["64 deep list", "64 deep object", "brackets in a string", "commas in a string", "wide"],
)
def test_shapes_within_the_bounds_are_read(text: str) -> None:
    assert jsonbody.loads(text) == json.loads(text)


def test_wrong_credentials_are_refused_before_the_body_is_read(
    web: tuple[FlaskClient, SubmissionStore],
) -> None:
    client, store = web
    Untouchable.read_from = False
    response = client.post(
        "/hooks/secured",
        input_stream=Untouchable(),
        content_type="application/json",
        content_length=500_000,
        headers={"Authorization": "Bearer wrong"},
    )
    assert response.status_code == 401 and not Untouchable.read_from
    assert sum(store.counts().values()) == 0


def test_rate_limits_are_checked_before_the_body_is_read(
    web: tuple[FlaskClient, SubmissionStore],
) -> None:
    client, _ = web
    person = {"email": "a@b.co", "message": "hello"}
    for n in range(2):
        answer = client.post("/forms/contact", json={**person, "message": f"hello {n}"})
        assert answer.status_code == 202
    Untouchable.read_from = False
    response = client.post(
        "/forms/contact",
        input_stream=Untouchable(),
        content_type="application/json",
        content_length=1000,
    )
    assert response.status_code == 429 and not Untouchable.read_from
    assert response.headers["Retry-After"]
