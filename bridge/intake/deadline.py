"""A body that is still arriving after ``server.body_timeout`` is cut off (408).

A public form or widget meets slow clients, and sometimes slowloris: a body sent a byte a
second holds a gunicorn thread while the app reads it. A per-call socket timeout does not
help (each byte arrives in time), so one watchdog thread per process looks at the bodies
being read ten times a second; when one is past its deadline, it shuts the read side of that
connection's socket (``gunicorn.socket``). The blocked read then ends at once, the intake
answers 408 with ``Connection: close``, and the thread is free again. Writing the answer
still works. A request costs two dictionary updates under a lock, never a wake-up.
"""

from __future__ import annotations

import contextlib
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

    __slots__ = ("cut", "deadline", "done", "sock")

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline
        self.done = False
        self.cut = False


class BodyDeadlines:
    """The deadlines of the bodies this process is reading, kept by one watchdog thread."""

    def __init__(self, tick: float = 0.1) -> None:
        self.tick = tick
        self._reading: dict[int, Reading] = {}
        self._lock = threading.Lock()
        self._pid = 0  # the watchdog belongs to the process that started it (gunicorn forks)

    @contextlib.contextmanager
    def reading(self, environ: Mapping[str, Any], seconds: float) -> Iterator[Reading | None]:
        """Read the body inside this block; ``None`` when the server gives no socket."""
        sock = environ.get("gunicorn.socket")
        if not isinstance(sock, socket.socket) or seconds <= 0:
            yield None
            return
        entry = Reading(sock, time.monotonic() + seconds)
        with self._lock:
            if self._pid != os.getpid():
                self._start()
            self._reading[id(entry)] = entry
        try:
            yield entry
        finally:
            with self._lock:
                entry.done = True
                self._reading.pop(id(entry), None)

    def cut_all(self) -> None:
        """End every body being read now (the worker is stopping: a slow sender would
        hold it to gunicorn's graceful timeout, then get it killed)."""
        with self._lock:
            for entry in self._reading.values():
                entry.deadline = 0.0
        threading.Thread(target=self._cut_late, name="body-cut", daemon=True).start()

    def _cut_late(self) -> None:
        now = time.monotonic()
        with self._lock:
            late = [e for e in self._reading.values() if e.deadline <= now and not e.done]
            for entry in late:
                entry.cut = True
                del self._reading[id(entry)]
        for entry in late:
            with contextlib.suppress(OSError):
                entry.sock.shutdown(socket.SHUT_RD)  # the blocked read returns now
            log.info("a request body was still arriving at its deadline; cut off")

    def _start(self) -> None:
        self._pid = os.getpid()
        self._reading.clear()
        threading.Thread(target=self._watch, name="body-deadlines", daemon=True).start()

    def _watch(self) -> None:
        while True:
            time.sleep(self.tick)
            self._cut_late()
