"""Rate limits over a shared storage that goes away and comes back (a private redis-server)."""

from __future__ import annotations

import gc
import time
from pathlib import Path

import pytest

from bridge.guards import GuardRefusal
from bridge.guards.ratelimit import RateLimits
from tests.e2e.harness import PrivateRedis, wait_until


def test_an_idle_process_notices_the_storage_is_back(tmp_path: Path) -> None:
    redis = PrivateRedis(tmp_path)
    redis.start()
    seen: list[bool] = []
    limits = RateLimits(redis.url, probe_interval=0.3, observer=seen.append)
    try:
        limits.check("contact", "192.0.2.1", ["2/minute"], [])
        redis.stop()
        limits.check("contact", "192.0.2.1", ["2/minute"], [])  # counted here instead,
        limits.check("contact", "192.0.2.1", ["2/minute"], [])  # from nothing
        with pytest.raises(GuardRefusal) as refused:
            limits.check("contact", "192.0.2.1", ["2/minute"], [])
        assert refused.value.status == 429
        assert seen == [True]
        assert limits.state()["state"].startswith("degraded")

        redis.start()
        # No request and no readiness poll from here on: the process finds out by itself.
        started = time.monotonic()
        assert wait_until(lambda: seen == [True, False], 5, 0.05), seen
        assert time.monotonic() - started < 2
        assert limits.degraded_since is None
        assert limits.state() == {"storage": f"redis://127.0.0.1:{redis.port}", "state": "ok"}
        # Shared counts again: the fresh server has none for this client yet.
        limits.check("contact", "192.0.2.1", ["2/minute"], [])
        limits.check("contact", "192.0.2.1", ["2/minute"], [])
        with pytest.raises(GuardRefusal):
            limits.check("contact", "192.0.2.1", ["2/minute"], [])
    finally:
        limits.close()
        redis.stop()


def test_the_watcher_keeps_probing_while_the_storage_stays_down(tmp_path: Path) -> None:
    redis = PrivateRedis(tmp_path)
    seen: list[bool] = []
    limits = RateLimits(redis.url, probe_interval=0.2, observer=seen.append)
    limits.check("contact", "192.0.2.1", [], ["5/minute"])  # nothing listens: degraded
    assert seen == [True]
    time.sleep(1.0)  # several intervals: each probe fails, no flapping is reported
    assert seen == [True] and limits.degraded_since is not None
    redis.start()
    try:
        assert wait_until(lambda: seen == [True, False], 5, 0.05), seen
    finally:
        limits.close()
        redis.stop()


def test_the_watcher_ends_with_its_limits(tmp_path: Path) -> None:
    redis = PrivateRedis(tmp_path)  # never started: nothing listens on its port
    limits = RateLimits(redis.url, probe_interval=0.1)
    limits.check("contact", "192.0.2.1", ["5/minute"], [])
    watcher = limits.watcher
    assert watcher is not None and watcher.is_alive()
    del limits
    gc.collect()
    watcher.join(timeout=3)
    assert not watcher.is_alive()


def test_closed_limits_stop_probing(tmp_path: Path) -> None:
    redis = PrivateRedis(tmp_path)  # never started
    limits = RateLimits(redis.url, probe_interval=0.1)
    limits.check("contact", "192.0.2.1", [], ["5/minute"])
    assert limits.watcher is not None and limits.watcher.is_alive()
    limits.close()
    limits.watcher.join(timeout=3)
    assert not limits.watcher.is_alive()
    assert limits.degraded_since is not None  # closed, not recovered


def test_an_outage_right_after_a_recovery_keeps_one_watcher(tmp_path: Path) -> None:
    redis = PrivateRedis(tmp_path)  # never started
    limits = RateLimits(redis.url, probe_interval=5.0)
    try:
        limits.check("contact", "192.0.2.1", [], ["5/minute"])
        first = limits.watcher
        assert first is not None and first.is_alive()  # asleep until the next probe
        # Back and gone again while the watcher sleeps: it goes on probing, alone.
        limits.degraded_since = None
        limits.check("contact", "192.0.2.1", [], ["5/minute"])
        assert limits.degraded_since is not None
        assert limits.watcher is first and first.is_alive()
    finally:
        limits.close()
