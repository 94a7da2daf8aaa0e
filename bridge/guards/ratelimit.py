"""Rate limits per client IP and per route, counted by Flask-Limiter's storage.

In-memory storage by default (one process); ``redis://`` storage counts across
every instance. The checks run at a fixed point of the intake order, not as a
view decorator, so cheaper refusals (size, origin) come first.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from flask import Flask
from flask_limiter import Limiter
from limits import RateLimitItem, parse_many

from . import GuardRefusal


class RateLimits:
    """Per-IP and per-route limits over one Flask-Limiter storage."""

    def __init__(self, storage_uri: str = "memory://") -> None:
        self.storage_uri = storage_uri
        self.limiter = Limiter(
            key_func=lambda: "",
            storage_uri=storage_uri,
            default_limits=[],
            key_prefix="bridge",
            strategy="fixed-window",
            swallow_errors=False,
        )
        self._parsed: dict[str, list[RateLimitItem]] = {}

    def init_app(self, app: Flask) -> None:
        self.limiter.init_app(app)
        app.extensions["bridge_rate_limits"] = self

    def _items(self, limits: Sequence[str]) -> list[RateLimitItem]:
        key = ";".join(limits)
        if key not in self._parsed:
            self._parsed[key] = [item for text in limits for item in parse_many(text)]
        return self._parsed[key]

    def check(self, route: str, ip: str, per_ip: Sequence[str], per_route: Sequence[str]) -> None:
        """Count this request; raise a 429 refusal with ``retry_after`` if over any limit.

        Each limit is counted with one atomic hit (INCR in Redis), so two instances racing
        for the last slot cannot both get it.
        """
        strategy = self.limiter.limiter
        scopes = [
            (self._items(per_ip), ("ip", route, ip)),
            (self._items(per_route), ("route", route)),
        ]
        for items, identifiers in scopes:
            for item in items:
                if not strategy.hit(item, *identifiers):
                    reset = strategy.get_window_stats(item, *identifiers).reset_time
                    wait = max(1, math.ceil(reset - time.time()))
                    raise GuardRefusal(
                        429,
                        "rate_limited",
                        f"Too many submissions ({item}). Please try again in {_human(wait)}.",
                        retry_after=wait,
                    )

    def reset(self) -> None:
        self.limiter.reset()


def _human(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} seconds"
    if seconds < 5400:
        return f"{round(seconds / 60)} minutes"
    return f"{round(seconds / 3600)} hours"
