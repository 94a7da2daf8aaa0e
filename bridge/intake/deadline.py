"""A body that is still arriving after ``server.body_timeout`` is cut off (408).

A public form or widget meets slow clients, and sometimes slowloris: a body sent a byte a
second holds a gunicorn thread while the app reads it. A per-call socket timeout does not
help (each byte arrives in time), so one watchdog thread per process keeps the deadlines of
the bodies being read; when one passes, it shuts the read side of that connection's socket
(``gunicorn.socket``). The blocked read then ends at once, the intake answers 408 with
``Connection: close``, and the thread is free again. Writing the answer still works.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

log = logging.getLogger(__name__)


class Reading:
    """One body being read: set :attr:`cut` if its deadline passed before it finished."""

    __slots__ = ("cut", "done", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.done = False
        self.cut = False


class BodyDeadlines:
    """The deadlines of the bodies this process is reading, kept by one watchdog thread."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Reading]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._pid = 0  # the watchdog belongs to the process that started it (gunicorn forks)

    @contextlib.contextmanager
    def reading(self, environ: Mapping[str, Any], seconds: float) -> Iterator[Reading | None]:
        """Read the body inside this block; ``None`` when the server gives no socket."""
        sock = environ.get("gunicorn.socket")
        if not isinstance(sock, socket.socket) or seconds <= 0:
            yield None
            return
        entry = Reading(sock)
        with self._cond:
            self._start()
            heapq.heappush(self._heap, (time.monotonic() + seconds, next(self._order), entry))
            self._cond.notify()
        try:
            yield entry
        finally:
            entry.done = True  # the watchdog drops it when its turn comes

    def _start(self) -> None:
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._heap.clear()
            threading.Thread(target=self._watch, name="body-deadlines", daemon=True).start()

    def _watch(self) -> None:
        while True:
            with self._cond:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                due, _, entry = self._heap[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self._cond.wait(min(wait, 1.0))
                    continue
                heapq.heappop(self._heap)
                if entry.done:
                    continue
                entry.cut = True
            with contextlib.suppress(OSError):
                entry.sock.shutdown(socket.SHUT_RD)  # the blocked read returns now
            log.info("a request body was still arriving at its deadline; cut off")
