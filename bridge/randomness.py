"""Random hex for the ids made on every request, drawn from the OS a block at a time.

Asking the OS for a few bytes per id is a system call that lets go of the GIL; under load
another thread takes it, and the request waits to get it back — twice per submission
(its request id and its submission id). One block from ``os.urandom`` serves a few
hundred ids instead; every byte is used once, and a forked child starts with no block
rather than its parent's (it would repeat the parent's ids).
"""

from __future__ import annotations

import os
import threading

BLOCK = 4096


class _Pool:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._block = b""
        self._used = 0

    def forget(self) -> None:
        """In a forked child: drop the parent's bytes (and its lock, which may be held)."""
        self._lock = threading.Lock()
        self._block = b""
        self._used = 0

    def hex(self, size: int) -> str:
        """``size`` random bytes as hex, cut from the pool."""
        with self._lock:
            if self._used + size > len(self._block):
                self._block = os.urandom(max(BLOCK, size))
                self._used = 0
            start = self._used
            self._used = start + size
            return self._block[start : start + size].hex()


_pool = _Pool()
os.register_at_fork(after_in_child=_pool.forget)


def token_hex(size: int) -> str:
    """``size`` random bytes as hex, as :func:`secrets.token_hex` gives them."""
    return _pool.hex(size)
