"""Shared fixtures: a real emulator on loopback and a client pointed at it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from bridge.proprofs import ProProfsClient
from bridge.proprofs.emulator import EmulatorServer, EmulatorState

ACCOUNT_EMAIL = "owner@acme.example"
TOKEN = "tok-6fea0d6144d2b9c1-secret"
FIXTURES = Path(__file__).parent / "fixtures"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[EmulatorServer]:
    state = EmulatorState(ACCOUNT_EMAIL, TOKEN, seed=7)
    with EmulatorServer(state) as server:
        yield server


@pytest.fixture
def emulator(emulator_server: EmulatorServer) -> Iterator[EmulatorServer]:
    """The session's emulator, emptied and fault-free for each test."""
    emulator_server.state.reset()
    yield emulator_server
    emulator_server.state.reset()


@pytest.fixture
def client(emulator: EmulatorServer) -> Iterator[ProProfsClient]:
    with ProProfsClient(
        emulator.base_url, ACCOUNT_EMAIL, TOKEN, read_timeout=5, list_backoff=0.01
    ) as c:
        yield c


def set_faults(server: EmulatorServer, **faults: object) -> None:
    """Set faults the way a test harness would: over HTTP."""
    response = requests.post(f"{server.url}/_emulator/faults", json=faults, timeout=5)
    response.raise_for_status()


def raw_post(
    server: EmulatorServer, path: str, body: object, **kwargs: object
) -> requests.Response:
    """A bare POST to the emulator's API, for rules the client would refuse to break."""
    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    return requests.post(server.url + path, json=body, headers=headers, timeout=10, **kwargs)
