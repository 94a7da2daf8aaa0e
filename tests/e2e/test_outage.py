"""A ProProfs outage: every call fails for 60 s; nothing is lost, all is delivered after."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bridge.outbox.store import SubmissionStore
from bridge.proprofs.emulator import EmulatorServer
from tests.conftest import set_faults
from tests.e2e.harness import enqueue_many, ledger, start_worker, stop, wait_until, write_config

pytestmark = pytest.mark.e2e
OUTAGE_SECONDS = 60


def test_a_sixty_second_outage_loses_nothing(
    emulator: EmulatorServer, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    store_url = f"sqlite:///{tmp_path / 'outbox.db'}"
    config = write_config(
        tmp_path / "bridge.yaml",
        store_url,
        emulator,
        delivery={"retry_schedule": [0, 1, 2, 4, 8, 15, 20, 30, 30, 30]},
    )
    set_faults(emulator, error_rate=1.0)
    with SubmissionStore(store_url) as store:
        ids = enqueue_many(store, 40)
        worker = start_worker(config)
        request.addfinalizer(lambda: stop(worker))
        started = time.monotonic()
        time.sleep(OUTAGE_SECONDS / 2)
        ids += enqueue_many(store, 40)  # submissions keep arriving during the outage
        time.sleep(OUTAGE_SECONDS / 2)
        failed_calls = emulator.state.counters.get("create.server_error", 0)
        assert store.counts()["delivered"] == 0 and failed_calls >= 80
        set_faults(emulator, error_rate=0.0)
        recovered = time.monotonic()
        assert wait_until(lambda: store.counts()["delivered"] == len(ids), timeout=60)
        caught_up = time.monotonic() - recovered
        stop(worker)
        result = ledger(store, emulator, ids)
    print(
        f"\noutage {time.monotonic() - started:.0f}s: {failed_calls} failed creates during the "
        f"outage; all {len(ids)} delivered {caught_up:.1f}s after recovery"
    )
    assert result == {
        "accepted": 80,
        "delivered": 80,
        "dead": 0,
        "tickets": 80,
        "duplicates": 0,
        "lost": 0,
        "wrong_ticket": 0,
    }
