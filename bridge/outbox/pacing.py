"""How fast the delivery worker may go: a rate limit on calls, and a circuit breaker that
stops claiming while ProProfs cannot be reached at all."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ..proprofs.errors import ProProfsError, RateLimitedError, TransientError


class RateLimiter:
    """A token bucket shared by the worker's threads: at most ``rate`` calls per second."""

    def __init__(self, rate: float | None, burst: int = 1) -> None:
        self.rate = rate
        self.capacity = float(max(1, burst))
        self.tokens = self.capacity
        self.updated = time.monotonic()
        self.lock = threading.Lock()

    def acquire(self, stop: threading.Event) -> bool:
        """Wait for a token; ``False`` if asked to stop first."""
        if not self.rate:
            return not stop.is_set()
        while not stop.is_set():
            with self.lock:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return True
                wait = (1 - self.tokens) / self.rate
            stop.wait(wait)
        return False


class Breaker:
    """Stops claiming while ProProfs cannot be reached at all (each attempt would fail at
    once, and cycle the backlog through the store intake writes to). After ``threshold``
    unreachable calls in a row nothing is claimed for ``cooldown`` seconds, then one claim
    goes as a probe; an answer closes the circuit, a failed probe doubles the cooldown (up
    to ``max_cooldown``)."""

    def __init__(
        self,
        threshold: int = 5,
        cooldown: float = 1.0,
        max_cooldown: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.first_cooldown = cooldown
        self.max_cooldown = max_cooldown
        self.clock = clock
        self.lock = threading.Lock()
        self.failures = 0
        self.cooldown = cooldown
        self.open_until: float | None = None  # None: closed
        self.probing = False

    @property
    def is_open(self) -> bool:
        """Whether claiming is stopped."""
        return self.open_until is not None

    def allowance(self, wanted: int) -> int:
        """How many submissions may be claimed now (all when closed, one probe after the
        cooldown, none before it)."""
        with self.lock:
            if self.open_until is None:
                return wanted
            if self.probing or self.clock() < self.open_until:
                return 0
            self.probing = True
            return min(1, wanted)

    def wait(self) -> float:
        """Seconds until a probe may be claimed (0 when closed)."""
        with self.lock:
            if self.open_until is None:
                return 0.0
            return max(0.0, self.open_until - self.clock())

    def may_send(self) -> bool:
        """False while open and not probing: a claim made before the circuit opened is
        handed back instead of being sent at an unreachable server."""
        with self.lock:
            return self.open_until is None or self.probing

    def abandon_probe(self) -> None:
        """The probe claimed nothing, or was handed back unsent: another may go."""
        with self.lock:
            self.probing = False

    def reached(self) -> bool:
        """ProProfs answered (whatever it said). True when this closed an open circuit."""
        with self.lock:
            was_open = self.open_until is not None
            self.failures = 0
            self.open_until = None
            self.probing = False
            self.cooldown = self.first_cooldown
            return was_open

    def unreachable(self) -> float | None:
        """A call reached no server. The cooldown when this opened the circuit, else None."""
        with self.lock:
            self.failures += 1
            if self.probing:  # the probe failed: open again, for longer
                self.probing = False
                self.cooldown = min(self.max_cooldown, self.cooldown * 2)
            elif self.open_until is not None or self.failures < self.threshold:
                return None
            self.open_until = self.clock() + self.cooldown
            return self.cooldown


def unreachable(error: ProProfsError) -> bool:
    """The call never reached a server: refused, unresolvable, or its connect timed out."""
    return (
        isinstance(error, TransientError)
        and error.status is None
        and not (isinstance(error, RateLimitedError))
    )
