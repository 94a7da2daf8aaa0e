"""Where the shipped templates live: ``templates/`` in a checkout, or where the package put it."""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path


@cache
def templates_dir() -> Path:
    """``templates/`` beside the package (a checkout), or ``<prefix>/share/proprofs-bridge``."""
    here = Path(__file__).resolve().parent
    for candidate in (
        here.parent / "templates",
        Path(sys.prefix) / "share" / "proprofs-bridge" / "templates",
    ):
        if (candidate / "form.html").is_file():
            return candidate
    raise RuntimeError("the bridge's templates are missing; reinstall proprofs-bridge")
