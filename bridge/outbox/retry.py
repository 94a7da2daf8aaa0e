"""When to try a failed delivery again (DESIGN.md: Store, retry schedule)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..proprofs.errors import ProProfsError, RateLimitedError

#: Defaults: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h — then dead.
DEFAULT_SCHEDULE: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)


@dataclass(frozen=True)
class RetryPolicy:
    """``schedule[n]`` is the wait before attempt n+1; past its end a submission is dead."""

    schedule: Sequence[float] = DEFAULT_SCHEDULE
    jitter: float = 0.2
    min_after_timeout: float = 60.0  # after a timeout or a 429, never sooner than this
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    @property
    def max_attempts(self) -> int:
        """How many attempts the schedule allows."""
        return len(self.schedule)

    def next_delay(self, attempts_made: int, error: ProProfsError | None = None) -> float | None:
        """Seconds until the next attempt, or ``None`` when the attempts are spent."""
        if attempts_made >= len(self.schedule):
            return None
        delay = float(self.schedule[attempts_made])
        if self.jitter and delay:
            delay *= 1 + self.rng.uniform(-self.jitter, self.jitter)
        if isinstance(error, RateLimitedError) or (error is not None and error.timed_out):
            delay = max(delay, self.min_after_timeout)
        if isinstance(error, RateLimitedError) and error.retry_after is not None:
            delay = max(delay, error.retry_after)  # Retry-After honoured
        return delay
