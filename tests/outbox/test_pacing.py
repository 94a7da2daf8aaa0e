"""The delivery worker's pacing: the rate limit and the circuit breaker."""

from __future__ import annotations

import threading
import time

import pytest

from bridge.outbox.pacing import Breaker, RateLimiter, unreachable
from bridge.proprofs.errors import AmbiguousError, RateLimitedError, TransientError


def test_the_rate_limiter_spaces_calls() -> None:
    limiter = RateLimiter(20.0)
    stop = threading.Event()
    started = time.monotonic()
    for _ in range(11):
        assert limiter.acquire(stop)
    assert time.monotonic() - started >= 0.45


def test_the_breaker_opens_after_unreachable_calls_probes_once_per_cooldown_and_closes() -> None:
    now = [100.0]
    breaker = Breaker(threshold=3, cooldown=1.0, max_cooldown=3.0, clock=lambda: now[0])
    assert breaker.allowance(6) == 6
    assert breaker.unreachable() is None and breaker.unreachable() is None
    assert breaker.unreachable() == 1.0  # the third in a row opens it
    assert breaker.is_open and not breaker.may_send()
    assert breaker.allowance(6) == 0 and breaker.wait() == pytest.approx(1.0)
    now[0] += 1.0
    assert breaker.allowance(6) == 1  # one probe
    assert breaker.allowance(6) == 0  # and only one while it is out
    assert breaker.may_send()
    assert breaker.unreachable() == 2.0  # the probe failed: twice as long
    now[0] += 1.5
    assert breaker.allowance(6) == 0
    now[0] += 0.5
    assert breaker.allowance(6) == 1
    breaker.abandon_probe()  # the probe found nothing to send: another may go
    assert breaker.allowance(6) == 1
    assert breaker.unreachable() == 3.0  # capped
    now[0] += 3.0
    assert breaker.allowance(6) == 1
    assert breaker.reached() is True  # an answer closes it
    assert not breaker.is_open and breaker.allowance(6) == 6
    assert breaker.unreachable() is None  # counting starts again from nothing
    assert breaker.reached() is False


def test_errors_that_reached_a_server_do_not_count_as_unreachable() -> None:
    assert unreachable(TransientError("cannot reach ProProfs (create/ticket/): refused"))
    assert unreachable(TransientError("connect to ProProfs timed out", timed_out=True))
    assert not unreachable(TransientError("HTTP 503", status=503))
    assert not unreachable(RateLimitedError("HTTP 429", retry_after=1))
    assert not unreachable(AmbiguousError("did not answer the create"))
