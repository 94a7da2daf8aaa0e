"""The store as a failing neighbour, under the real ``bridge serve``.

- PostgreSQL restarted while senders post: while it is down every post gets ``503
  store_unavailable`` with ``Retry-After`` (never a 2xx for what was not stored, never a
  500); once it is back, intake and delivery carry on by themselves, and every accepted
  submission — and every refused one the sender sent again — becomes exactly one ticket.
- SQLite in a read-only directory: check-config, serve and worker each name the directory
  in one line, before anything starts (no traceback).
- SQLite's disk full: ``503`` and nothing half-stored; space freed, it takes submissions
  again without a restart, and nothing is lost.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from bridge.outbox.store import SubmissionStore
from bridge.proprofs.emulator import EmulatorServer
from tests.conftest import record_figures
from tests.e2e.harness import (
    PrivatePostgres,
    bridge_server,
    error_lines,
    free_port,
    ledger,
    run_bridge,
    tmpfs,
    wait_until,
    write_config,
)

pytestmark = pytest.mark.e2e

SENDERS = 4


class Senders:
    """Threads posting alerts with unique ids until told to stop; every answer recorded."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answers: dict[str, list[tuple[float, int | None, str | None]]] = {}
        self.unclear: list[str] = []  # 503s without Retry-After or the store_unavailable code
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.threads = [
            threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(SENDERS)
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.done.set()
        for thread in self.threads:
            thread.join(60)

    def post(self, event_id: str) -> tuple[int | None, str | None]:
        try:
            answer = requests.post(
                f"{self.url}/hooks/events",
                json={"id": event_id, "title": event_id},
                timeout=20,
            )
        except requests.RequestException:
            return None, None
        body = answer.json()
        if answer.status_code == 503 and not (
            answer.headers.get("Retry-After") and body.get("code") == "store_unavailable"
        ):
            with self.lock:
                self.unclear.append(f"{event_id}: {body} {dict(answer.headers)}")
        return answer.status_code, body.get("id")

    def _run(self, sender: int) -> None:
        for n in range(100_000):  # bounded; the test stops it long before
            if self.done.is_set():
                return
            event_id = f"pg-{sender}-{n}"
            status, submission = self.post(event_id)
            with self.lock:
                self.answers.setdefault(event_id, []).append((time.monotonic(), status, submission))
            time.sleep(0.01)


def test_postgresql_restarted_under_load(emulator: EmulatorServer, tmp_path: Path) -> None:
    pg = PrivatePostgres()
    try:
        pg.start()
        config = write_config(tmp_path / "bridge.yaml", pg.url, emulator)
        assert run_bridge("db", "upgrade", "--config", str(config)).returncode == 0
        log = tmp_path / "serve.log"
        with bridge_server(config, log=log) as url:
            senders = Senders(url)
            senders.start()
            time.sleep(2)
            down_at = time.monotonic()
            pg.stop("fast")  # every session ends, as in a restart for an upgrade
            time.sleep(1)
            ready_while_down = requests.get(f"{url}/readyz", timeout=10).status_code
            time.sleep(2)
            pg.start()
            up_at = time.monotonic()
            time.sleep(4)
            senders.stop()
            ready_after = requests.get(f"{url}/readyz", timeout=10).status_code

            statuses = Counter(s for tries in senders.answers.values() for _, s, _ in tries)
            assert statuses[202] > 0 and statuses[503] > 0, statuses
            assert set(statuses) <= {202, 503}, statuses  # no 500, no lost connection
            # A sender retries what was refused; the dedup key makes a retry of something
            # that was in fact stored a duplicate, never a second ticket.
            retried = Counter()
            for event_id, tries in senders.answers.items():
                if tries[-1][1] != 202:
                    status, submission = senders.post(event_id)
                    retried[status] += 1
                    tries.append((time.monotonic(), status, submission))
            assert set(retried) <= {200, 202}, retried
            accepted = sorted({tries[-1][2] for tries in senders.answers.values()})
            recovered = [
                t
                for tries in senders.answers.values()
                for t, s, _ in tries
                if s == 202 and t > up_at
            ]
            first_after = min(recovered) - up_at if recovered else None
            with SubmissionStore(pg.url) as store:
                assert wait_until(
                    lambda: store.counts()["delivered"] == len(accepted), timeout=60
                ), store.counts()
                result = ledger(store, emulator, [a for a in accepted if a])
        outage = up_at - down_at
    finally:
        pg.remove()
    assert result == {
        "accepted": len(senders.answers),
        "delivered": len(senders.answers),
        "dead": 0,
        "tickets": len(senders.answers),
        "duplicates": 0,
        "lost": 0,
        "wrong_ticket": 0,
    }
    assert (ready_while_down, ready_after) == (503, 200)
    assert senders.unclear == []
    assert first_after is not None and first_after < 3, first_after
    assert not [line for line in error_lines(log) if "Traceback" in line]
    record_figures(
        "PostgreSQL restarted under load (bridge serve, 4 senders)",
        [
            f"down {outage:.1f} s; answers while posting: "
            + ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items())),
            f"refused posts sent again after: {sum(retried.values())} "
            + str(dict(sorted(retried.items()))),
            f"first 202 {first_after:.2f} s after PostgreSQL was back; "
            f"{result['tickets']} tickets for {result['accepted']} alerts, 0 duplicates, 0 lost",
        ],
    )


def test_a_read_only_sqlite_directory_is_named_before_anything_starts(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    """Once a traceback from three processes and exit 1 while check-config said OK."""
    with tmpfs(tmp_path / "ro", "1m", read_only=True) as directory:
        config = write_config(tmp_path / "bridge.yaml", f"sqlite:///{directory}/b.db", emulator)
        expected = (
            f"{config}: store: the directory {directory} is read-only for this user, and SQLite "
            "needs to create its journal files there; point store: at a writable directory"
        )
        for command in (
            ["check-config"],
            ["serve", "--port", str(free_port())],
            ["worker", "--until-idle"],
        ):
            done = run_bridge(*command, "--config", str(config), timeout=60)
            assert (done.returncode, done.stderr.strip()) == (1, expected), done.stderr
            assert "Traceback" not in done.stdout + done.stderr


def fill(path: Path) -> None:
    """Write ``path`` until the disk has no byte left."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        for size in (65536, 4096, 1):
            with contextlib.suppress(OSError):
                for _ in range(100_000):
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)


def test_a_full_disk_under_sqlite(emulator: EmulatorServer, tmp_path: Path) -> None:
    """The disk the SQLite store lives on fills up while senders post: 503 with
    Retry-After, nothing half-stored; space freed, intake and delivery carry on without a
    restart, and every submission is one ticket."""
    with tmpfs(tmp_path / "disk", "8m") as disk:
        config = write_config(tmp_path / "bridge.yaml", f"sqlite:///{disk}/b.db", emulator)
        log = tmp_path / "serve.log"
        filler = disk / "filler"
        with bridge_server(config, log=log) as url:
            senders = Senders(url)
            answers: dict[str, list[tuple[float, int | None, str | None]]] = {}

            def post(event_id: str) -> int | None:
                status, submission = senders.post(event_id)
                answers.setdefault(event_id, []).append((time.monotonic(), status, submission))
                return status

            assert all(post(f"disk-{n}") == 202 for n in range(10))
            fill(filler)
            statuses = Counter(post(f"full-{n}") for n in range(40))
            assert statuses[503] > 0 and set(statuses) <= {202, 503}, statuses
            ready_while_full = requests.get(f"{url}/readyz", timeout=10).status_code
            filler.unlink()
            assert post("space-again") == 202
            for event_id, tries in answers.items():  # what was refused is sent again
                if tries[-1][1] != 202:
                    assert post(event_id) in (200, 202)
            accepted = sorted({tries[-1][2] for tries in answers.values() if tries[-1][2]})
            with SubmissionStore(f"sqlite:///{disk}/b.db") as store:
                assert wait_until(
                    lambda: store.counts()["delivered"] == len(answers), timeout=60
                ), store.counts()
                result = ledger(store, emulator, accepted)
    assert result == {
        "accepted": len(answers),
        "delivered": len(answers),
        "dead": 0,
        "tickets": len(answers),
        "duplicates": 0,
        "lost": 0,
        "wrong_ticket": 0,
    }
    assert senders.unclear == []
    assert not [line for line in error_lines(log) if "Traceback" in line]
    record_figures(
        "SQLite disk full under bridge serve",
        [
            "40 posts on a full disk: "
            + ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items()))
            + f"; /readyz {ready_while_full}",
            f"after space was freed: {result['tickets']} tickets for {result['accepted']} "
            "submissions, 0 duplicates, 0 lost",
        ],
    )
