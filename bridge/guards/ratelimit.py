"""Rate limits per client IP and per route, counted with ``limits`` (Flask-Limiter's engine).

In memory by default (one process); ``redis://`` storage counts across every instance.
The checks run at a fixed point of the intake order, so cheaper refusals come first and
a route without limits costs nothing. When the shared storage cannot be reached, each
process counts in its own memory until it answers again (docs/forms.md): a person's
message is never refused because a counter is unreachable.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import FixedWindowRateLimiter, RateLimiter

from . import GuardRefusal

log = logging.getLogger(__name__)

#: How long a shared storage may take to answer before it counts as down.
STORAGE_TIMEOUT = 0.5


class RateLimits:
    """Per-IP and per-route limits over one `limits` storage, with an in-memory fallback."""

    def __init__(
        self,
        storage_uri: str = "memory://",
        *,
        probe_interval: float = 5.0,
        observer: Callable[[bool], None] | None = None,
    ) -> None:
        self.storage_uri = storage_uri
        self.shared = shared = not storage_uri.startswith("memory://")
        options: dict[str, Any] = (
            {
                "socket_connect_timeout": STORAGE_TIMEOUT,
                "socket_timeout": STORAGE_TIMEOUT,
                "key_prefix": "bridge",
            }
            if shared
            else {}
        )
        self.strategy: RateLimiter = FixedWindowRateLimiter(
            storage_from_string(storage_uri, **options)
        )
        self.fallback: RateLimiter = FixedWindowRateLimiter(MemoryStorage())
        self.probe_interval = probe_interval
        self.observer = observer
        self.degraded_since: float | None = None
        self._next_probe = 0.0
        self._lock = threading.Lock()
        self._parsed: dict[str, list[RateLimitItem]] = {}
        #: The thread that probes the storage while it is down (one at a time).
        self.watcher: threading.Thread | None = None
        self.closed = False

    def init_app(self, app: Flask) -> None:
        """Take the app's rate limits from its routes."""
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
        scopes = [
            (self._items(per_ip), ("ip", route, ip)),
            (self._items(per_route), ("route", route)),
        ]
        strategy = self._strategy()
        if strategy is not self.fallback:
            try:
                self._count(strategy, scopes)
                return
            except GuardRefusal:
                raise
            except Exception as exc:  # any storage failure: count here instead, never fail
                self._degrade(exc)
        self._count(self.fallback, scopes)

    def failures_wait(self, scope: str, keys: Sequence[str], limits: Sequence[str]) -> int:
        """Seconds until any of ``keys`` may try again in ``scope`` (0: now), counting
        nothing: failures are counted apart, with :meth:`failed`."""
        wait = 0
        for strategy in self._tries():
            try:
                for key in keys:
                    for item in self._items(limits):
                        if not strategy.test(item, scope, key):
                            reset = strategy.get_window_stats(item, scope, key).reset_time
                            wait = max(wait, math.ceil(reset - time.time()), 1)
                return wait
            except Exception as exc:  # the shared storage failed: ask the fallback
                self._degrade(exc)
        return wait

    def failed(self, scope: str, keys: Sequence[str], limits: Sequence[str]) -> None:
        """Count one failure for each of ``keys`` in ``scope``."""
        for strategy in self._tries():
            try:
                for key in keys:
                    for item in self._items(limits):
                        strategy.hit(item, scope, key)
                return
            except Exception as exc:
                self._degrade(exc)

    def _tries(self) -> list[RateLimiter]:
        """The storage to count in, then the fallback should it fail."""
        strategy = self._strategy()
        return [strategy] if strategy is self.fallback else [strategy, self.fallback]

    @staticmethod
    def _count(
        strategy: RateLimiter, scopes: list[tuple[list[RateLimitItem], tuple[str, ...]]]
    ) -> None:
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

    def _strategy(self) -> RateLimiter:
        """The shared storage's strategy, or the fallback while the storage is down."""
        if self.degraded_since is None:
            return self.strategy
        now = time.monotonic()
        with self._lock:
            if now < self._next_probe:
                return self.fallback
            self._next_probe = now + self.probe_interval
        if self._storage_answers():
            with self._lock:
                down_for = time.time() - (self.degraded_since or time.time())
                self.degraded_since = None
            log.warning(
                "rate-limit storage %s answers again after %.0f s; counting there again",
                self.storage_name,
                down_for,
            )
            if self.observer is not None:
                self.observer(False)
            return self.strategy
        return self.fallback

    def _storage_answers(self) -> bool:
        try:
            return bool(self.strategy.storage.check())
        except Exception:  # a failed probe is the answer
            return False

    def _degrade(self, exc: Exception) -> None:
        with self._lock:
            if self.degraded_since is not None:
                return
            self.degraded_since = time.time()
            self._next_probe = time.monotonic() + self.probe_interval
        log.warning(
            "rate-limit storage %s is unreachable (%s); counting limits per process in "
            "memory until it answers again",
            self.storage_name,
            type(exc).__name__,
        )
        if self.observer is not None:
            self.observer(True)
        if self.watcher is None or not self.watcher.is_alive():  # else it goes on probing
            self.watcher = threading.Thread(
                target=_watch, args=(weakref.ref(self),), name="rate-limit-probe", daemon=True
            )
            self.watcher.start()

    @property
    def storage_name(self) -> str:
        """The storage's scheme, host and port: never its password."""
        parts = urlsplit(self.storage_uri)
        host = parts.hostname or ""
        return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}"

    def state(self) -> dict[str, str]:
        """What ``/readyz`` says of the rate-limit storage (probed, at most every interval)."""
        if self.shared and self.degraded_since is None:
            now = time.monotonic()
            if now >= self._next_probe:
                self._next_probe = now + self.probe_interval
                if not self._storage_answers():
                    self._degrade(ConnectionError("the readiness probe had no answer"))
        else:
            self._strategy()  # a readiness poll may notice the storage is back
        if self.degraded_since is None:
            return {"storage": self.storage_name, "state": "ok"}
        return {
            "storage": self.storage_name,
            "state": "degraded: unreachable, counting per process in memory",
        }

    def close(self) -> None:
        """Stop probing and let go of the shared storage's connections (an app let go of)."""
        self.closed = True
        client = getattr(self.strategy.storage, "storage", None)
        pool = getattr(client, "connection_pool", None)
        if pool is not None:
            with contextlib.suppress(Exception):  # a storage already gone has nothing to close
                pool.disconnect()

    def reset(self) -> None:
        """Forget every count (tests)."""
        self.strategy.storage.reset()
        self.fallback.storage.reset()


def _watch(ref: weakref.ref[RateLimits]) -> None:
    """Probe a degraded storage each interval until it answers, requests or none; ends
    too when its limits are gone (an app that was let go of)."""
    while True:
        limits = ref()
        if limits is None or limits.closed or limits.degraded_since is None:
            return
        wait = max(0.05, limits._next_probe - time.monotonic())
        del limits  # sleep without keeping the limits alive
        time.sleep(wait)
        limits = ref()
        if limits is None or limits.closed:
            return
        limits._strategy()
        del limits


def _human(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} seconds"
    if seconds < 5400:
        return f"{round(seconds / 60)} minutes"
    return f"{round(seconds / 3600)} hours"
