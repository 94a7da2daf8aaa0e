"""The files the service reads besides its code: templates and example configs.

An installed wheel carries them inside the package (``bridge/templates``,
``bridge/examples``; the build maps the repository's top-level folders there), read
through :mod:`importlib.resources`. In a checkout they are the top-level folders.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from pathlib import Path


def _shipped(name: str, probe: str) -> Path:
    packaged = files("bridge") / name
    if isinstance(packaged, Path) and (packaged / probe).is_file():
        return packaged
    checkout = Path(__file__).resolve().parent.parent / name
    if (checkout / probe).is_file():
        return checkout
    raise RuntimeError(f"the bridge's {name} are missing; reinstall proprofs-bridge")


@cache
def templates_dir() -> Path:
    """The templates: hosted form, thank-you and admin pages, widget.js, presets' texts."""
    return _shipped("templates", "form.html")


@cache
def examples_dir() -> Path:
    """The example configs (the demo's among them) and their sample payloads."""
    return _shipped("examples", "demo.yaml")
