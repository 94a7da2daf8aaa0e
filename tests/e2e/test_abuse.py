"""Hostile posts against a real `bridge serve`: each class answered at once with its
documented status, 8 at a time, and the largest process stays small (bench/abuse.py
prints the same figures for every class)."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import pytest

from bridge.outbox.store import SubmissionStore
from bridge.proprofs.emulator import EmulatorServer
from tests.e2e.harness import bridge_server, write_config
from tests.support.configs import FILE_FORM

pytestmark = pytest.mark.e2e


def test_hostile_bodies_cost_little_and_get_their_status(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    from bench.abuse import Hostile, PeakMemory, hostile_classes, post

    db = tmp_path / "abuse.db"
    config = write_config(
        tmp_path / "bridge.yaml",
        f"sqlite:///{db}",
        emulator,
        routes=FILE_FORM,
        top=f"files: {{directory: {tmp_path / 'files'}}}\nserver: {{body_timeout: 3}}",
    )
    expected = {
        "oversized JSON": "413",
        "oversized JSON, chunked": "413",
        "deep JSON": "400",
        "wide JSON": "400",
        "oversized multipart": "413",
    }
    classes = [h for h in hostile_classes() if h.name in expected]
    with bridge_server(config, delivery=False) as url:
        port = int(url.rsplit(":", 1)[1])
        serve = serving(config)
        for hostile in classes:
            with PeakMemory(serve) as peak, concurrent.futures.ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(lambda h: post(port, h), [hostile] * 8))
            codes = {status.split(" ")[0] for status, _ in answers}
            slowest = max(took for _, took in answers)
            assert codes == {expected[hostile.name]}, (hostile.name, answers)
            assert slowest < 2.0, (hostile.name, slowest)  # the bench's target is 1 s
            assert peak.peak < 150, (hostile.name, peak.peak)
        # A chunked body one byte over the limit is too large, as one with a Content-Length.
        limit = 1024 * 1024
        head, tail = b'{"email": "not an address", "message": "', b'"}'
        for size, status in ((limit + 1, "413"), (limit, "422")):
            body = head + b"x" * (size - len(head) - len(tail)) + tail
            got, _ = post(port, Hostile("at the limit", body, chunked=True))
            assert got.startswith(status), (size, got)
    with SubmissionStore(f"sqlite:///{db}") as store:
        assert sum(store.counts().values()) == 0


def serving(config: Path) -> int:
    """The pid of the ``bridge serve`` started with ``config``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"serve" in cmdline and str(config).encode() in cmdline:
            return int(entry.name)
    raise AssertionError("bridge serve is not running")
