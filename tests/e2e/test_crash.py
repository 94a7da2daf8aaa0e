"""A real worker process killed with SIGKILL at each dangerous point: still exactly one ticket each."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from bridge.outbox.store import SubmissionStore
from bridge.proprofs.emulator import EmulatorServer
from tests.e2e.harness import enqueue_many, ledger, start_worker, stop, write_config

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("point", ["claimed", "sent", "stored"])
def test_sigkill_at_each_point_still_gives_one_ticket_each(
    point: str, store_url: str, emulator: EmulatorServer, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "bridge.yaml", store_url, emulator, delivery={"lease": "1s"})
    with SubmissionStore(store_url) as store:
        ids = enqueue_many(store, 6)
        crashed = start_worker(config, crash_at=point, crash_after=2, concurrency=1)
        assert crashed.wait(timeout=60) == -signal.SIGKILL
        survivor = start_worker(config, until_idle=True)
        assert stop(survivor, sig=0, timeout=90) == 0  # it leaves by itself once idle
        result = ledger(store, emulator, ids)
    assert result == {
        "accepted": 6,
        "delivered": 6,
        "dead": 0,
        "tickets": 6,
        "duplicates": 0,
        "lost": 0,
        "wrong_ticket": 0,
    }, result
