"""Shared fixtures: a real emulator on loopback and a client pointed at it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import requests

from bridge.proprofs import ProProfsClient
from bridge.proprofs.emulator import EmulatorServer, EmulatorState

if TYPE_CHECKING:
    from bridge.outbox.store import SubmissionStore

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


# --- stores: the same tests on SQLite and PostgreSQL -------------------------------------------

PG_URL = os.environ.get("BRIDGE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BRIDGE_TEST_REDIS", "redis://127.0.0.1:6379/0")


def _pg_reachable() -> str | None:
    try:
        import sqlalchemy as sa

        engine = sa.create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any failure to reach it is a reason to skip
        return f"PostgreSQL at {PG_URL} is not reachable: {type(exc).__name__}"


def need_postgres() -> None:
    """Skip (fail under CI) when PostgreSQL cannot be reached."""
    reason = _pg_reachable()
    if reason:
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)


def need_redis() -> None:
    """Skip (fail under CI) when Redis cannot be reached."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        reason = f"Redis at {REDIS_URL} is not reachable: {type(exc).__name__}"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)


@contextmanager
def pg_schema_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    import uuid

    import sqlalchemy as sa

    need_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated outbox database on each engine."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'outbox.db'}"
        return
    with pg_schema_url() as url:
        from bridge.outbox.store import SubmissionStore

        with SubmissionStore(url, auto_upgrade=False) as migrator:
            migrator.upgrade()
        yield url


@pytest.fixture
def store(store_url: str) -> Iterator[SubmissionStore]:
    from bridge.outbox.store import SubmissionStore

    s = SubmissionStore(store_url, lease_seconds=30)
    yield s
    s.dispose()


# --- figures: what a test measured, printed at the end of the run ----------------------------

_FIGURES: list[tuple[str, list[str]]] = []


def record_figures(title: str, lines: list[str]) -> None:
    """Figures a test measured (counts, rates); printed in the run's summary."""
    _FIGURES.append((title, lines))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for title, lines in _FIGURES:
        terminalreporter.section(title)
        for line in lines:
            terminalreporter.write_line(line)
