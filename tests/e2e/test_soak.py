"""Soak: 1,000 submissions through a worker killed 10 times while ProProfs misbehaves.

The emulator loses 10 % of create responses (the ticket is stored, the answer never
arrives) and fails 10 % of calls with 5xx. The ledger must balance: every accepted
submission delivered exactly once, nothing lost, no duplicate ticket.
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import pytest

from bridge.outbox.store import SubmissionStore
from bridge.proprofs.emulator import EmulatorServer
from tests.conftest import set_faults
from tests.e2e.harness import enqueue_many, ledger, start_worker, stop, wait_until, write_config

pytestmark = pytest.mark.e2e

SUBMISSIONS = 1000
KILLS = 10


def test_soak_with_kills_lost_responses_and_server_errors(
    store_url: str, emulator: EmulatorServer, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path / "bridge.yaml", store_url, emulator, delivery={"lease": "1s", "concurrency": 8}
    )
    set_faults(emulator, lose_create_rate=0.1, lose_mode="hang", hang_seconds=1.2, error_rate=0.1)
    rng = random.Random(1234)
    started = time.monotonic()
    with SubmissionStore(store_url) as store:
        ids = enqueue_many(store, SUBMISSIONS)
        worker = start_worker(config)
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.3, 2.0))
            stop(worker, sig=signal.SIGKILL)
            worker = start_worker(config)
        done = wait_until(
            lambda: store.counts()["delivered"] + store.counts()["dead"] >= SUBMISSIONS,
            timeout=240,
            interval=0.5,
        )
        stop(worker)
        result = ledger(store, emulator, ids)
    elapsed = time.monotonic() - started
    print(
        f"\nsoak ledger ({store_url.split(':')[0]}, {elapsed:.0f}s): accepted "
        f"{result['accepted']} = delivered {result['delivered']} + dead {result['dead']}; "
        f"tickets {result['tickets']}, duplicates {result['duplicates']}, "
        f"lost {result['lost']}; emulator lost {emulator.state.counters.get('create.lost', 0)}"
        f" responses, {emulator.state.counters.get('create.server_error', 0)} create 5xx"
    )
    assert done, result
    assert result["accepted"] == result["delivered"] + result["dead"]
    assert result == {
        "accepted": SUBMISSIONS,
        "delivered": SUBMISSIONS,
        "dead": 0,
        "tickets": SUBMISSIONS,
        "duplicates": 0,
        "lost": 0,
        "wrong_ticket": 0,
    }
    assert emulator.state.counters.get("create.lost", 0) >= 50  # the faults really happened
