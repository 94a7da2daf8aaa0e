"""An intake process killed between keeping a submission's files and committing it, under
``bridge serve``: no answer of success without the files, no orphan ever linked, and the
orphans swept."""

from __future__ import annotations

import hashlib
import os
import re
import time
from pathlib import Path

import pytest
import requests

from bridge.attachments import WRITE_GRACE, DirectoryStore
from bridge.outbox.store import SubmissionStore
from bridge.proprofs.emulator import EmulatorServer
from tests.conftest import record_figures
from tests.e2e.harness import (
    bridge_server,
    crash_env,
    free_port,
    wait_until,
    write_config,
)
from tests.support.configs import FILE_FORM

pytestmark = pytest.mark.e2e


def test_a_crash_after_the_files_are_kept_loses_nothing_answered_and_links_no_orphan(
    store_url: str, emulator: EmulatorServer, tmp_path: Path
) -> None:
    kept = tmp_path / "kept"
    port = free_port()
    config = write_config(
        tmp_path / "bridge.yaml",
        store_url,
        emulator,
        routes=FILE_FORM,
        top=f"files: {{directory: {kept}}}\n"
        f'server: {{public_url: "http://127.0.0.1:{port}"}}',  # the tickets' links
    )
    env = crash_env("files-kept", after=3)
    blobs = {n: b"%PDF-1.7\n" + f"invoice {n} ".encode() * 40 for n in range(12)}
    answered: dict[int, str] = {}
    cut: list[int] = []
    with bridge_server(config, workers=2, env=env, port=port) as url:
        for n, blob in blobs.items():
            try:
                answer = requests.post(
                    f"{url}/forms/contact",
                    data={"email": f"p{n}@example.com", "message": f"Invoice {n} is wrong"},
                    files={"files": (f"invoice-{n}.pdf", blob)},
                    headers={"Accept": "application/json"},
                    timeout=30,
                )
            except requests.ConnectionError:
                cut.append(n)  # the process died before it answered
                continue
            assert answer.status_code == 202, answer.text
            answered[n] = answer.json()["id"]
        assert cut, "no intake process was killed"
        with SubmissionStore(store_url) as store:
            assert wait_until(lambda: store.counts()["delivered"] == len(answered), 60)
            # Every answered submission has its file, and the ticket's link gives its bytes.
            for n, sid in answered.items():
                rows = store.attachments.of(sid)
                assert [(r.name, r.size) for r in rows] == [(f"invoice-{n}.pdf", len(blobs[n]))]
                ticket = next(
                    t for t in emulator.state.tickets.values() if sid in (t.description or "")
                )
                link = re.search(r"(http://\S+/files/\S+)", ticket.description or "")
                assert link is not None
                assert requests.get(link.group(1), timeout=10).content == blobs[n]
            # What was cut left its file behind (if the process got that far: a post queued
            # on a dying worker's socket is cut before it is read), referred to by nothing,
            # never linked from a ticket.
            files = DirectoryStore(kept)
            with store.engine.connect() as conn:
                referenced = {r[0] for r in conn.exec_driver_sql("select digest from attachments")}
            orphans = files.digests() - referenced
            assert orphans, "no process died between keeping files and committing"
            assert orphans <= {hashlib.sha256(blobs[n]).hexdigest() for n in cut}
            for n in cut:
                assert not any(
                    f"Invoice {n} is wrong" in (t.description or "")
                    for t in emulator.state.tickets.values()
                )
            store.files = files
            for path in kept.rglob("*"):
                if path.is_file() and path.name in orphans:
                    os.utime(path, (time.time() - 2 * WRITE_GRACE,) * 2)
            swept = store.attachments.sweep()
            assert swept == len(orphans)
            assert files.digests() == {hashlib.sha256(blobs[n]).hexdigest() for n in answered}
    record_figures(
        "intake killed between keeping files and committing (bridge serve)",
        [
            f"posts: {len(blobs)}; answered 202: {len(answered)}; cut: {len(cut)}",
            f"answered with their files: {len(answered)}; orphans swept: {swept}; linked: 0",
        ],
    )
