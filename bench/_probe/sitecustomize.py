"""Times a served bridge's request phases: `bench/served_phases.py` puts this directory on
the ``PYTHONPATH`` of the ``bridge serve`` it starts, so every Python process of that serve
loads it; with ``$BRIDGE_BENCH_PHASES`` set, each gunicorn worker wraps the functions that
begin and end each phase and, as it exits, writes what it timed to
``$BRIDGE_BENCH_PHASES/phases-<pid>.json`` (writing while serving would hold the GIL, and
stall the very requests being timed). Without that variable it does nothing.
"""

from __future__ import annotations

import atexit
import json
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

OUT = os.environ.get("BRIDGE_BENCH_PHASES")
_timings: dict[str, list[float]] = defaultdict(list)
_lock = threading.Lock()


def _timed(phase: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            elapsed = time.perf_counter() - started
            with _lock:
                _timings[phase].append(elapsed)

    return wrapper


def _install() -> None:
    from flask import Flask

    from bridge.intake import accept, hooks
    from bridge.outbox.store import SubmissionStore

    hooks.authenticate = _timed("guard", hooks.authenticate)
    hooks.read_body = _timed("read body", hooks.read_body)
    hooks.parse = _timed("parse", hooks.parse)
    accept.prepare = _timed("validate and map", accept.prepare)
    hooks.prepare = _timed("validate and map", hooks.prepare)
    SubmissionStore.enqueue = _timed("enqueue and commit", SubmissionStore.enqueue)
    hooks.observed = _timed("count and log", hooks.observed)
    Flask.wsgi_app = _timed("total", Flask.wsgi_app)


def _write_out(directory: str) -> None:
    with _lock:
        if _timings:
            Path(directory, f"phases-{os.getpid()}.json").write_text(json.dumps(_timings))


def _in_child() -> None:
    _timings.clear()  # what the parent timed is the parent's
    if OUT:
        atexit.register(_write_out, OUT)


if OUT:
    _install()
    os.register_at_fork(after_in_child=_in_child)
