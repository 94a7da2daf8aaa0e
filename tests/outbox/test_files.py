"""Kept files and their rows, on both engines and both file stores: committed with the
submission, removed with it (purge, retention, erasure, quarantine), orphans swept."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bridge.attachments import WRITE_GRACE, Attachment, DirectoryStore, FileStore, S3Store
from bridge.outbox.records import new_submission_id
from bridge.outbox.store import SubmissionStore
from bridge.proprofs import TicketDraft
from tests.e2e.harness import free_port, wait_until

PNG = b"\x89PNG\r\n\x1a\n" + b"jane's screenshot"
PDF = b"%PDF-1.7\njane's invoice"
OTHER = b"%PDF-1.7\nsomeone else's invoice"
LATER = 10 * WRITE_GRACE  # a clock far enough ahead that every file is old


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A real S3-compatible server (moto's) on loopback, for the bucket store."""
    pytest.importorskip("boto3")
    server = Path(sys.executable).parent / "moto_server"
    if not server.exists():
        pytest.skip("moto_server is not installed (pip install 'moto[server]')")
    port = free_port()
    proc = subprocess.Popen(
        [str(server), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def up() -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    try:
        assert wait_until(up, 30), "the S3 server did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def s3_store(endpoint: str, bucket: str) -> S3Store:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    client.create_bucket(Bucket=bucket)
    return S3Store(client, bucket, prefix="bridge/")


@pytest.fixture(params=["directory", "s3"])
def files(request: pytest.FixtureRequest, tmp_path: Path) -> FileStore:
    if request.param == "directory":
        return DirectoryStore(tmp_path / "kept")
    endpoint = request.getfixturevalue("s3_endpoint")
    return s3_store(endpoint, f"b{os.urandom(6).hex()}")


def draft(email: str) -> TicketDraft:
    return TicketDraft(email=email, subject="Charged twice", description="See the files.")


def submit(store: SubmissionStore, email: str, blobs: list[bytes], *, held: bool = False) -> str:
    assert store.files is not None
    sid = new_submission_id()
    now = time.time()
    rows = []
    for position, data in enumerate(blobs):
        kept = store.files.put(data)
        rows.append(
            Attachment(
                sid,
                position,
                "r",
                "files",
                f"f{position}",
                "application/pdf",
                kept.size,
                kept.digest,
                now,
                now + 86400,
            )
        )
    if held:
        store.quarantine.hold(
            "r",
            "form",
            draft(email),
            score=9,
            reasons=["keyword"],
            expires_at=now + 60,
            submission_id=sid,
            attachments=rows,
        )
    else:
        store.enqueue("r", "form", draft(email), submission_id=sid, attachments=rows)
    return sid


def present(files: FileStore, *blobs: bytes) -> list[bool]:
    import hashlib

    return [files.read(hashlib.sha256(b).hexdigest()) == b for b in blobs]


def attachment_rows(store: SubmissionStore) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.text("select count(*) from attachments")).scalar() or 0)


@pytest.fixture
def both(store_url: str, files: FileStore) -> Iterator[SubmissionStore]:
    store = SubmissionStore(store_url, files=files)
    yield store
    store.dispose()


def test_rows_commit_with_the_submission_and_a_duplicate_adds_none(
    both: SubmissionStore,
) -> None:
    sid = submit(both, "jane@example.com", [PNG, PDF])
    assert [a.position for a in both.attachments.of(sid)] == [0, 1]
    assert both.attachments.get(sid, 1) is not None and both.attachments.get(sid, 2) is None
    assert present(both.files, PNG, PDF) == [True, True]  # type: ignore[arg-type]
    # A repeated dedup key stores nothing: no second set of rows.
    assert both.files is not None
    now = time.time()
    kept = both.files.put(PNG)
    row = Attachment("pb-dup", 0, "r", "files", "x", "image/png", kept.size, kept.digest, now, now)
    first = both.enqueue("r", "form", draft("a@example.com"), dedup_key="k", attachments=[])
    again = both.enqueue(
        "r",
        "form",
        draft("a@example.com"),
        dedup_key="k",
        submission_id="pb-dup",
        attachments=[row],
    )
    assert again.duplicate and again.id == first.id
    assert both.attachments.of("pb-dup") == [] and attachment_rows(both) == 2


def test_purge_and_retention_remove_the_files_nobody_else_refers_to(
    both: SubmissionStore,
) -> None:
    jane = submit(both, "jane@example.com", [PNG, PDF])
    other = submit(both, "olga@example.com", [PDF, OTHER])  # shares the PDF's bytes
    with both.engine.begin() as conn:
        conn.execute(
            sa.text("update submissions set state='delivered', delivered_at=1, updated_at=1")
        )
    # Files written moments ago stay (a submission with the same bytes may be committing);
    # their rows go at once, and the sweep takes the files once they are old.
    assert both.privacy.scrub_due("r", "delivered", 60, now=time.time()) == 2
    assert attachment_rows(both) == 0
    assert present(both.files, PNG, PDF, OTHER) == [True, True, True]  # type: ignore[arg-type]
    assert both.attachments.sweep(now=time.time() + LATER) == 3
    assert present(both.files, PNG, PDF, OTHER) == [False, False, False]  # type: ignore[arg-type]
    assert both.attachments.of(jane) == [] and both.attachments.of(other) == []


def test_purge_keeps_a_file_another_submission_still_has(both: SubmissionStore) -> None:
    first = submit(both, "jane@example.com", [PDF])
    submit(both, "olga@example.com", [PDF, OTHER])
    with both.engine.begin() as conn:
        conn.execute(
            sa.text("update submissions set state='delivered', updated_at=1 where id=:i"),
            {"i": first},
        )
    assert both.privacy.purge(older_than=0, state="delivered") == 1
    assert both.attachments.sweep(now=time.time() + LATER) == 0
    assert present(both.files, PDF, OTHER) == [True, True]  # type: ignore[arg-type]


def test_erase_takes_the_persons_files_and_quarantined_ones_and_no_one_elses(
    both: SubmissionStore,
) -> None:
    submit(both, "jane@example.com", [PNG])
    submit(both, "Jane@Example.com", [PDF], held=True)
    olga = submit(both, "olga@example.com", [OTHER])
    report = both.privacy.erase("jane@example.com")
    assert report["files"] == 2 and report["scrubbed"] == 1 and report["quarantine_deleted"] == 1
    assert [a.name for a in both.attachments.of(olga)] == ["f0"]
    both.attachments.sweep(now=time.time() + LATER)
    assert present(both.files, PNG, PDF, OTHER) == [False, False, True]  # type: ignore[arg-type]


def test_the_sweep_takes_old_orphans_and_leaves_new_ones(both: SubmissionStore) -> None:
    assert both.files is not None
    orphan = both.files.put(b"%PDF-1.7\nwritten by a process that died before its commit")
    submit(both, "jane@example.com", [PNG])
    assert both.attachments.sweep(now=time.time()) == 0  # too new to tell from a commit under way
    assert both.attachments.sweep(now=time.time() + LATER) == 1
    assert both.files.read(orphan.digest) is None
    assert present(both.files, PNG) == [True]


def test_expired_quarantine_takes_its_files(both: SubmissionStore) -> None:
    submit(both, "jane@example.com", [PNG], held=True)
    assert both.quarantine.expire(now=time.time() + 120) == {"r": 1}
    assert attachment_rows(both) == 0
    both.attachments.sweep(now=time.time() + LATER)
    assert present(both.files, PNG) == [False]


def test_s3_store_round_trip_and_missing_keys(s3_endpoint: str) -> None:
    store = s3_store(s3_endpoint, "roundtrip")
    kept = store.put(PNG)
    assert store.read(kept.digest) == PNG
    assert store.read("0" * 64) is None and store.read("../etc/passwd") is None
    assert store.stale(time.time() + 60) == {kept.digest}
    assert store.stale(time.time() - 60) == set()
    assert not store.delete(kept.digest, written_before=time.time() - 60)
    assert store.delete(kept.digest)
    assert store.read(kept.digest) is None
    assert not store.delete("0" * 64, written_before=time.time())


def test_a_bridge_on_an_s3_bucket_keeps_and_serves_files(s3_endpoint: str, tmp_path: Path) -> None:
    import io
    import re

    from bridge.app import create_app
    from bridge.config import settings_from_text

    s3_store(s3_endpoint, "served")  # creates the bucket
    url = f"sqlite:///{tmp_path / 's3.db'}"
    settings = settings_from_text(
        f"""
proprofs: {{account_email: a@example.com, token: t0ken-for-tests}}
store: {url}
files:
  s3: {{bucket: served, endpoint_url: "{s3_endpoint}", region: us-east-1,
        access_key_id: test, secret_access_key: s3-secret-for-tests, prefix: "b/"}}
routes:
  contact:
    kind: form
    fields:
      email: {{type: email, required: true}}
      files: {{type: file}}
""",
        env={},
    )
    assert "s3-secret-for-tests" not in repr(settings)
    from bridge.observability import settings_secrets

    assert "s3-secret-for-tests" in settings_secrets(settings)  # redacted from every log
    app = create_app(settings)
    client = app.test_client()
    answer = client.post(
        "/forms/contact",
        data={"email": "pat@example.com", "files": (io.BytesIO(PDF), "invoice.pdf")},
        content_type="multipart/form-data",
        headers={"Accept": "application/json"},
    )
    assert answer.status_code == 202
    store: Any = app.extensions["bridge"].store
    assert isinstance(store.files, S3Store)
    description = store.get(answer.json["id"]).draft.description
    link = re.search(r"(/files/\S+)", description).group(1)  # type: ignore[union-attr]
    assert client.get(link).data == PDF
    store.dispose()
