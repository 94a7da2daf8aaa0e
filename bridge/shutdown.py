"""SIGTERM and SIGINT turned into a ``threading.Event`` without doing work in the handler.

A Python signal handler runs in the main thread between two bytecodes — possibly while
that thread holds the very lock ``Event.set()`` needs (it may be inside ``Event.wait()``,
between taking the condition's lock and sleeping on it). A handler that calls ``set()``
there deadlocks the process, and only SIGKILL ends it. So the handler here only counts;
the interpreter's C-level handler writes the signal number to a self-pipe
(``signal.set_wakeup_fd``), and a watcher thread reading that pipe sets the event.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    """Sets ``event`` when SIGTERM or SIGINT arrives (install from the main thread)."""

    def __init__(self, event: threading.Event | None = None) -> None:
        self.event = event or threading.Event()
        self.received = 0

    def install(self) -> threading.Event:
        """Route the stop signals to :attr:`event`; returns it."""
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)  # the C handler must never block on a full pipe
        signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._handle)
        threading.Thread(
            target=self._watch, args=(read_fd,), name="stop-signals", daemon=True
        ).start()
        return self.event

    @staticmethod
    def ignore() -> None:
        """Once stopping: further stop signals change nothing, and must not kill the process
        while it tears down (the interpreter restores the default handlers as it exits)."""
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received += 1  # nothing that takes a lock: the watcher thread does the rest

    def _watch(self, read_fd: int) -> None:
        wanted = {int(sig) for sig in STOP_SIGNALS}
        while True:
            data = os.read(read_fd, 64)
            if not data:
                return
            if wanted.intersection(data):
                self.event.set()
