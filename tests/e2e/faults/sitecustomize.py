"""Installed in a process the crash tests start (the harness puts this folder on its
PYTHONPATH): at the point ``BRIDGE_CRASH_AT`` names, after ``BRIDGE_CRASH_AFTER``
occurrences, the process kills itself with SIGKILL, as a power cut would."""

from __future__ import annotations

import os
import signal
import threading

POINT = os.environ.get("BRIDGE_CRASH_AT", "")
AFTER = int(os.environ.get("BRIDGE_CRASH_AFTER", "1") or 1)

if POINT:
    from bridge import faults

    seen = 0
    lock = threading.Lock()

    def crash(point: str) -> None:
        global seen
        if point != POINT:
            return
        with lock:
            seen += 1
            if seen >= AFTER:
                os.kill(os.getpid(), signal.SIGKILL)

    faults.install(crash)
