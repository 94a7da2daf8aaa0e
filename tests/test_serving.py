"""How the app gunicorn loads sets up the worker it runs in: its store opened and the
garbage collector's view frozen before any request; with ``server.pin_cpus``, its threads
scheduled as batch work (``bridge.serving.batch_scheduling``) on a CPU of its own.
``tests/e2e/test_serve.py`` checks them in a real ``bridge serve``."""

from __future__ import annotations

import gc
import logging
import os
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bridge import app as app_module
from bridge.app import from_environment
from bridge.outbox.database import Database
from bridge.outbox.records import StoreUnavailable
from bridge.serving import CpuClaim, batch_scheduling, claim_a_cpu

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="scheduling policies are Linux's"
)


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    """The app's set-up freezes the garbage collector's view of this process: undone."""
    yield
    gc.unfreeze()


def _in_a_thread(work: Callable[[dict[str, object]], None]) -> dict[str, object]:
    """Run ``work`` in a thread of its own (a policy is set per thread) and return what
    it recorded."""
    seen: dict[str, object] = {}
    thread = threading.Thread(target=work, args=(seen,))
    thread.start()
    thread.join(timeout=10)
    return seen


def test_the_calling_thread_and_the_threads_it_starts_are_batch_work() -> None:
    def work(seen: dict[str, object]) -> None:
        seen["set"] = batch_scheduling()
        seen["own"] = os.sched_getscheduler(0)
        child = _in_a_thread(lambda inner: inner.update(policy=os.sched_getscheduler(0)))
        seen["child"] = child["policy"]

    seen = _in_a_thread(work)
    assert seen == {"set": True, "own": os.SCHED_BATCH, "child": os.SCHED_BATCH}
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # this thread was left alone


def test_a_refused_change_leaves_the_policy_as_it_was(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)

    def work(seen: dict[str, object]) -> None:
        seen["set"] = batch_scheduling()
        seen["own"] = os.sched_getscheduler(0)

    assert _in_a_thread(work) == {"set": False, "own": os.SCHED_OTHER}


@pytest.mark.parametrize(
    ("server", "policy"),
    [("", os.SCHED_OTHER), ("server: {pin_cpus: true}\n", os.SCHED_BATCH)],
    ids=["default", "pin_cpus"],
)
def test_the_app_gunicorn_loads_sets_up_the_worker_it_runs_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: str, policy: int
) -> None:
    """``bridge.app:from_environment()``: with ``server.pin_cpus``, batch scheduling for
    the thread that loads it (a gunicorn worker's main thread, whose request threads
    inherit it); by default, the ordinary policy."""
    config = tmp_path / "bridge.yaml"
    config.write_text(
        "proprofs: {account_email: a@example.com, token: t0ken-secret}\n"
        f"store: sqlite:///{tmp_path / 'o.db'}\n"
        "routes: {events: {kind: hook, ticket: {email: a@example.com, subject: x}}}\n" + server
    )
    monkeypatch.setenv("BRIDGE_CONFIG", str(config))
    logged: list[object] = []  # the test run's own logging stays as it is
    monkeypatch.setattr(app_module, "configure_logging", lambda **kw: logged.append(kw))

    def work(seen: dict[str, object]) -> None:
        seen["app"] = from_environment().name
        seen["own"] = os.sched_getscheduler(0)

    assert _in_a_thread(work) == {"app": "bridge", "own": policy}
    assert len(logged) == 1


def _worker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "bridge.yaml"
    config.write_text(
        "proprofs: {account_email: a@example.com, token: t0ken-secret}\n"
        f"store: sqlite:///{tmp_path / 'o.db'}\n"
        "routes: {events: {kind: hook, ticket: {email: a@example.com, subject: x}}}\n"
    )
    monkeypatch.setenv("BRIDGE_CONFIG", str(config))
    monkeypatch.setattr(app_module, "configure_logging", lambda **kw: None)


def test_a_worker_opens_its_store_and_sets_its_imports_aside_before_any_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What would stall a first request, or a commit: the store is open and migrated, and
    what the imports made is out of the garbage collector's full collections."""
    _worker_config(tmp_path, monkeypatch)
    gc.unfreeze()
    app = from_environment()
    db = app.extensions["bridge"].store.db
    assert db._engine is not None and db._ready
    with sqlite3.connect(tmp_path / "o.db") as conn:
        assert conn.execute("select count(*) from submissions").fetchone() == (0,)
    assert gc.get_freeze_count() > 10_000


def test_a_worker_whose_store_cannot_open_yet_still_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _worker_config(tmp_path, monkeypatch)

    def down(self: object, engine: object) -> None:
        raise StoreUnavailable("the store cannot be migrated: OperationalError")

    monkeypatch.setattr(Database, "_migrate", down)
    with caplog.at_level(logging.WARNING, logger="bridge.app"):
        app = from_environment()
    assert app.name == "bridge"
    assert "the store could not be opened yet" in caplog.text
    assert app.extensions["bridge"].store.db._ready is False  # the first request tries again


def _claim_in_a_thread(slots: Path) -> tuple[CpuClaim | None, set[int]]:
    """A claim made in a thread of its own, and the CPUs that thread may then run on."""
    found: list[tuple[CpuClaim | None, set[int]]] = []
    _in_a_thread(lambda _: found.append((claim_a_cpu(slots), os.sched_getaffinity(0))))
    return found[0]


def test_each_worker_takes_a_free_slot_and_runs_on_its_cpu(tmp_path: Path) -> None:
    for slot in range(3):
        (tmp_path / f"worker-{slot}").touch()
    usable = sorted(os.sched_getaffinity(0))
    made = [_claim_in_a_thread(tmp_path) for _ in range(3)]
    claims = [claim for claim, _ in made if claim is not None]
    assert [claim.slot for claim in claims] == [0, 1, 2]
    # Each on the CPU its slot stands for, round the CPUs again past the last.
    assert [cpus for _, cpus in made] == [{usable[n % len(usable)]} for n in range(3)]
    assert [claim.cpu for claim in claims] == [usable[n % len(usable)] for n in range(3)]
    assert _claim_in_a_thread(tmp_path) == (None, set(usable))  # none free: left alone
    claims[1].release()  # that worker exited
    again, _ = _claim_in_a_thread(tmp_path)
    assert again is not None and again.slot == 1  # its replacement takes its slot
    for claim in (claims[0], claims[2], again):
        claim.release()


def test_a_refused_pin_lets_the_slot_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "worker-0").touch()

    def refuse(*_: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    with monkeypatch.context() as patched:
        patched.setattr(os, "sched_setaffinity", refuse)
        assert _claim_in_a_thread(tmp_path)[0] is None
    claim, cpus = _claim_in_a_thread(tmp_path)
    assert claim is not None and claim.slot == 0 and cpus == {claim.cpu}
    claim.release()


def test_the_banner_names_every_route_the_console_and_the_probes() -> None:
    from bridge.config import settings_from_text
    from bridge.serving import banner

    settings = settings_from_text(
        """
proprofs: {account_email: a@example.com, token: t0ken}
admin: {password_hash: "pbkdf2:sha256:600000$salt$0123456789abcdef"}
server: {public_url: "https://help.example.com"}
routes:
  contact: {kind: form, fields: {email: {type: email, required: true}}}
  alerts: {kind: hook, source: alertmanager, ticket: {email: a@example.com}}
  help: {kind: widget, fields: {email: {type: email, required: true}}}
""",
        env={},
    )
    text = banner(settings, "0.0.0.0", 8080, 2, 16, delivery=False)
    assert text.startswith("proprofs-bridge ") and "serving on http://127.0.0.1:8080" in text
    assert "public URL https://help.example.com" in text and "every interface" in text
    for path in ("/forms/contact", "/hooks/alerts", "/widget/help", "/widget.js", "/admin"):
        assert f"https://help.example.com{path}" in text
    assert "delivery off (--no-delivery): run bridge worker" in text
