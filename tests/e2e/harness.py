"""Real processes for end-to-end tests: configs, worker and server processes, ledgers."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import requests

from bridge.mapping import footer
from bridge.outbox.records import new_submission_id
from bridge.outbox.store import SubmissionStore
from bridge.proprofs import TicketDraft
from bridge.proprofs.emulator import EmulatorServer
from tests.conftest import ACCOUNT_EMAIL, TOKEN

ROOT = Path(__file__).resolve().parents[2]


DELIVERY = {
    "concurrency": 4,
    "poll_interval": 0.1,
    "reconcile_lag": 1.5,
    "retry_schedule": [0, 0.2, 0.5, 1, 1, 2, 2, 2],
    "retry_jitter": 0,
    "min_retry_after_timeout": 0.5,
}


def write_config(
    path: Path,
    store_url: str,
    emulator: EmulatorServer,
    *,
    delivery: dict[str, object] | None = None,
    routes: str = "",
    top: str = "",
) -> Path:
    settings = json.dumps({**DELIVERY, **(delivery or {})})
    path.write_text(f"""
proprofs:
  base_url: {emulator.base_url}
  account_email: {ACCOUNT_EMAIL}
  token: {TOKEN}
  connect_timeout: 1
  read_timeout: 1
store: "{store_url}"
delivery: {settings}
routes:
  events:
    kind: hook
    dedup_key: "{{{{ data.id or '' }}}}"
    ticket: {{email: hooks@example.com, inbox: IB238-436}}
{routes}
{top}
""")
    return path


def enqueue_many(store: SubmissionStore, count: int) -> list[str]:
    ids = []
    for n in range(count):
        sid = new_submission_id()
        store.enqueue(
            "events",
            "hook",
            TicketDraft(
                email=f"user{n}@example.com",
                subject=f"Submission {n}",
                inbox="IB238-436",
                description=f"Body {n}" + footer(sid),
            ),
            submission_id=sid,
        )
        ids.append(sid)
    return ids


#: A folder whose sitecustomize.py installs the crash a process's environment asks for.
FAULTS = Path(__file__).resolve().parent / "faults"


def crash_env(point: str, after: int = 1) -> dict[str, str]:
    """The environment of a process that kills itself at ``point`` (bridge.faults), after
    ``after`` occurrences."""
    path = os.pathsep.join(filter(None, [str(FAULTS), os.environ.get("PYTHONPATH")]))
    return {"BRIDGE_CRASH_AT": point, "BRIDGE_CRASH_AFTER": str(after), "PYTHONPATH": path}


def start_worker(
    config: Path,
    *,
    crash_at: str = "",
    crash_after: int = 1,
    until_idle: bool = False,
    concurrency: int | None = None,
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_CRASH")}
    if crash_at:
        env.update(crash_env(crash_at, crash_after))
    cmd = [sys.executable, "-m", "bridge.cli", "worker", "--config", str(config)]
    if until_idle:
        cmd.append("--until-idle")
    if concurrency:
        cmd += ["--concurrency", str(concurrency)]
    log = open(config.with_suffix(".worker.log"), "ab")  # noqa: SIM115 - the child owns it
    try:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log)
    finally:
        log.close()
    RUNNING.append(proc)
    return proc


#: Worker processes started by the current test; the e2e conftest stops any left running.
RUNNING: list[subprocess.Popen[bytes]] = []


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(timeout=10)


def wait_until(predicate: object, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(interval)
    return bool(predicate())  # type: ignore[operator]


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A port nothing listens on, never the same one twice in this test run."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


@contextlib.contextmanager
def bridge_server(
    config: Path,
    *,
    workers: int = 2,
    delivery: bool = True,
    env: dict[str, str] | None = None,
    port: int | None = None,
    log: Path | None = None,
) -> Iterator[str]:
    """``bridge serve`` as a real process (gunicorn + delivery); yields its base URL."""
    port = port or free_port()
    cmd = [
        sys.executable,
        "-m",
        "bridge.cli",
        "serve",
        "--config",
        str(config),
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    if not delivery:
        cmd.append("--no-delivery")
    output = log.open("ab") if log else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=output,
            stderr=output,
        )
    finally:
        if log:
            output.close()  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}"
    try:
        up = wait_until(lambda: answering(url), 30, 0.2)
        if not up:
            raise RuntimeError(f"bridge serve did not come up (exit {proc.poll()})")
        yield url
    finally:
        code = stop(proc)
        assert code == 0, f"bridge serve exited with {code}"


def answering(url: str) -> bool:
    """Whether a bridge at ``url`` answers ``/healthz``."""
    try:
        return requests.get(url + "/healthz", timeout=1).status_code == 200
    except requests.RequestException:  # not up yet, or too busy to answer in time
        return False


def ledger(store: SubmissionStore, emulator: EmulatorServer, ids: list[str]) -> dict[str, int]:
    """Accepted vs delivered/dead, and what the help desk really holds."""
    import re

    refs: dict[str, list[str]] = {}
    for ticket in emulator.state.tickets.values():
        for ref in re.findall(r"pb-[0-9a-f]{20}", ticket.description or ""):
            refs.setdefault(ref, []).append(ticket.ticket_id)
    states = [store.get(i) for i in ids]
    delivered = [s for s in states if s is not None and s.state == "delivered"]
    wrong_ticket = sum(1 for s in delivered if s.ticket_id not in refs.get(s.id, []))
    return {
        "accepted": len(ids),
        "delivered": len(delivered),
        "dead": sum(1 for s in states if s is not None and s.state == "dead"),
        "tickets": len(emulator.state.tickets),
        "duplicates": sum(len(v) - 1 for v in refs.values()),
        "lost": sum(1 for i in ids if i not in refs),
        "wrong_ticket": wrong_ticket,
    }


class PrivateRedis:
    """A ``redis-server`` of the test's own on a free port, to stop and start at will."""

    def __init__(self, directory: Path) -> None:
        import shutil

        from tests.conftest import IN_CI

        binary = shutil.which("redis-server")
        if binary is None:
            reason = "redis-server is not installed"
            if IN_CI:
                raise RuntimeError(reason)
            import pytest

            pytest.skip(reason)
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.binary,
                *("--port", str(self.port), "--bind", "127.0.0.1", "--save", ""),
                *("--appendonly", "no", "--dir", str(self.directory)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not wait_until(self.answers, 10):
            raise RuntimeError("the private redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc, signal.SIGKILL)
            self.proc = None

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False


def error_lines(log: Path) -> list[str]:
    """Lines of a ``bridge serve`` log at ERROR or above, and any traceback, JSON or not."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        level = record.get("level") if isinstance(record, dict) else None
        if level in ("ERROR", "CRITICAL") or "Traceback" in line or "[ERROR]" in line:
            found.append(line)
    return found


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own on a free port, to stop and start at will.

    ``initdb`` refuses to run as root, so as root the cluster belongs to the ``postgres``
    user (Debian's packages make one). Trust auth on loopback, nothing kept after."""

    def __init__(self) -> None:
        import glob
        import pwd
        import shutil
        import tempfile

        from tests.conftest import IN_CI

        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        reason = None
        if not found:
            reason = "PostgreSQL's server binaries (initdb, pg_ctl) are not installed"
        self.prefix: list[str] = []
        if reason is None and os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
                self.prefix = ["runuser", "-u", "postgres", "--"]
            except KeyError:
                reason = "running as root and there is no postgres user to run initdb as"
        if reason is not None:
            if IN_CI:
                raise RuntimeError(reason)
            import pytest

            pytest.skip(reason)
        self.bin = Path(found[-1]).parent
        self.directory = Path(tempfile.mkdtemp(prefix="bridge-pg-"))
        if self.prefix:
            shutil.chown(self.directory, "postgres", "postgres")
        self.data = self.directory / "data"
        self.port = free_port()
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self.prefix, str(self.bin / tool), *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.directory / "log"),
            "-w",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """``fast`` ends every session, as a restart for an upgrade does; ``immediate`` is a
        crash (the next start recovers from the WAL)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def remove(self) -> None:
        import shutil

        with contextlib.suppress(subprocess.SubprocessError):
            self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)


@contextlib.contextmanager
def tmpfs(directory: Path, size: str, *, read_only: bool = False) -> Iterator[Path]:
    """A small filesystem of the test's own (a disk that fills up, or one mounted read-only:
    root writes through a read-only directory's permissions, not through a read-only mount)."""
    from tests.conftest import IN_CI

    directory.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        reason = f"cannot mount a tmpfs here: {done.stderr.strip()}"
        if IN_CI:
            raise RuntimeError(reason)
        import pytest

        pytest.skip(reason)
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)


def run_bridge(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``bridge ARGS…`` as a user runs it; its exit code and output."""
    return subprocess.run(
        [sys.executable, "-m", "bridge.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def schemathesis(url: str, max_examples: int) -> subprocess.CompletedProcess[str]:
    """schemathesis against a running bridge's ``/openapi.json``: no 5xx, and every answer
    as the document describes it."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{url}/openapi.json",
            "--checks",
            "not_a_server_error,response_schema_conformance",
            "--max-examples",
            str(max_examples),
            "--request-timeout",
            "10",
            "--suppress-health-check",
            "all",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )


def run_printed(output: str, marker: str, cwd: Path, env: dict[str, str]) -> str:
    """Run the command a process printed on the line holding ``marker`` (as a reader
    would paste it); its output, after checking it succeeded."""
    printed = next(line.strip() for line in output.splitlines() if marker in line)
    done = subprocess.run(
        shlex.split(printed), cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, (printed, done.stderr)
    return done.stdout
