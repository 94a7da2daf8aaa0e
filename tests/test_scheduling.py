"""A gunicorn worker's threads are scheduled as batch work (``bridge.app.batch_scheduling``);
``tests/e2e/test_serve.py`` checks it in a real ``bridge serve``."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from bridge.app import batch_scheduling

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="scheduling policies are Linux's"
)


def _in_a_thread(work: object) -> dict[str, object]:
    """Run ``work`` in a thread of its own (a policy is set per thread) and return what
    it recorded."""
    seen: dict[str, object] = {}
    thread = threading.Thread(target=work, args=(seen,))  # type: ignore[arg-type]
    thread.start()
    thread.join(timeout=10)
    return seen


def test_the_calling_thread_and_the_threads_it_starts_are_batch_work() -> None:
    def work(seen: dict[str, object]) -> None:
        seen["set"] = batch_scheduling()
        seen["own"] = os.sched_getscheduler(0)
        child = _in_a_thread(lambda inner: inner.update(policy=os.sched_getscheduler(0)))
        seen["child"] = child["policy"]

    seen = _in_a_thread(work)
    assert seen == {"set": True, "own": os.SCHED_BATCH, "child": os.SCHED_BATCH}
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # this thread was left alone


def test_a_refused_change_leaves_the_policy_as_it_was(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)

    def work(seen: dict[str, object]) -> None:
        seen["set"] = batch_scheduling()
        seen["own"] = os.sched_getscheduler(0)

    assert _in_a_thread(work) == {"set": False, "own": os.SCHED_OTHER}
