"""End-to-end fixtures: no process a test started outlives it, even when the test fails."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e import harness


@pytest.fixture(autouse=True)
def reap_processes() -> Iterator[None]:
    yield
    while harness.RUNNING:
        harness.stop(harness.RUNNING.pop(), timeout=15)
