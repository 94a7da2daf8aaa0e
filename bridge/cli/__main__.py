"""``python -m bridge.cli``."""

from . import main

main()
