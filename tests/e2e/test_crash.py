"""A real worker process killed with SIGKILL at each dangerous point: still exactly one ticket each."""

from __future__ import annotations

import dataclasses
import signal
from pathlib import Path

import pytest

from bridge.mapping import footer
from bridge.outbox.records import new_submission_id
from bridge.outbox.store import SubmissionStore
from bridge.proprofs import TicketDraft
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


def test_sigkill_after_an_update_is_sent_leaves_the_ticket_at_the_latest_state(
    store_url: str, emulator: EmulatorServer, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "bridge.yaml", store_url, emulator, delivery={"lease": "1s"})
    with SubmissionStore(store_url) as store:
        sid = new_submission_id()
        draft = TicketDraft(email="a@example.com", subject="Disk full", description=footer(sid))
        store.incidents.open("events", "hook", "events:g", 1, draft, submission_id=sid)
        assert stop(start_worker(config, until_idle=True), sig=0, timeout=90) == 0

        def note() -> str:
            noted = store.updates.note(
                "events",
                "events:g",
                1,
                status="firing",
                priority=None,
                rule="raise",
                every=0,
                build=lambda t, made: dataclasses.replace(
                    made.draft, description=f"{t.occurrences} firing" + footer(made.id)
                ),
            )
            assert noted is not None
            return noted.submission_id

        first = note()
        crashed = start_worker(config, crash_at="update_sent")
        assert crashed.wait(timeout=60) == -signal.SIGKILL  # sent, never recorded
        second = note()  # while the first is still in flight under the dead worker's lease
        assert stop(start_worker(config, until_idle=True), sig=0, timeout=90) == 0
        states = {u.id: u.state for u in store.updates.of(sid)}
        (ticket,) = emulator.state.tickets.values()
    assert states[second] == "delivered" and states[first] in ("delivered", "suppressed")
    history = [u["fields"]["description"].split(" ")[0] for u in ticket.updates]
    assert history[0] == "2" and history[-1] == "3", history
    assert history == sorted(history), history  # the older never landed after the newer
    assert (ticket.description or "").startswith("3 firing")
