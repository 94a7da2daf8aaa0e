"""The ``bridge`` command: one group, its commands in modules by what they are for."""

from . import operating, serving, setup  # noqa: F401 - each registers its commands
from .group import main

__all__ = ["main"]
