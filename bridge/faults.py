"""Named points on the way to a ticket, where a test may install a fault (a crash at the
worst moment). In production nothing is installed and reaching a point does nothing."""

from __future__ import annotations

from collections.abc import Callable

#: The points: a claim taken, a create sent, its answer stored (delivery); a submission's
#: files kept, before the submission is committed (intake).
POINTS = ("claimed", "sent", "stored", "files-kept")

_installed: list[Callable[[str], None]] = []


def reached(point: str) -> None:
    """This process has reached ``point``."""
    for fault in _installed:
        fault(point)


def install(fault: Callable[[str], None]) -> None:
    """Call ``fault(point)`` at every point this process reaches (tests)."""
    _installed.append(fault)
