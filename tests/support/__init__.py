"""Helpers several test modules share (fixtures live in conftest.py)."""
