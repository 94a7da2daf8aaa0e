"""Shared bits for benchmarks: an emulator subprocess on loopback and timing summaries."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
ACCOUNT_EMAIL = "bench@example.com"
TOKEN = "bench-token-not-secret-here"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    url: str, timeout: float = 15.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Until ``url`` answers; not past ``timeout``, nor past the exit of ``process``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            requests.get(url, timeout=1)
            return
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{url} did not come up: exited with code {process.returncode}")
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up in {timeout}s")


@contextlib.contextmanager
def emulator_process(*flags: str) -> Iterator[str]:
    """Run ``bridge emulator`` in its own process; yield its root URL."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "bridge.cli",
        "emulator",
        "--port",
        str(port),
        "--account-email",
        ACCOUNT_EMAIL,
        "--token",
        TOKEN,
        *flags,
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.DEVNULL, env=dict(os.environ))
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(url + "/_emulator/faults", process=proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def write_config(
    path: Path, emulator_url: str, store: str, routes: dict[str, object], **extra: object
) -> Path:
    """A bridge config (JSON is YAML) pointing at the emulator with the bench account."""
    import json

    path.write_text(
        json.dumps(
            {
                "proprofs": {
                    "base_url": emulator_url + "/app/api/v1/",
                    "account_email": ACCOUNT_EMAIL,
                    "token": TOKEN,
                },
                "store": store,
                "routes": routes,
                **extra,
            }
        )
    )
    return path


@contextlib.contextmanager
def bridge_serve(
    config: Path, log: Path, *, workers: int = 2, delivery: bool = False, root: Path = ROOT
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``bridge serve`` as a user runs it (gthread, 16 threads per worker) on a free port,
    its output in ``log``; yields its URL and process, and stops it with SIGTERM.

    ``root``: the source tree whose ``bridge`` package is served (another checkout, to
    compare with this one in the same run), with this environment's packages."""
    port = free_port()
    cmd = [sys.executable, "-m", "bridge.cli", "serve", "--config", str(config)]
    cmd += ["--port", str(port), "--workers", str(workers), "--threads", "16"]
    cmd += [] if delivery else ["--no-delivery"]
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ)
    if root != ROOT:  # the package is imported from there, in every process serve starts
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=root, stdout=out, stderr=out, env=env)
        try:
            try:
                wait_for(url + "/healthz", timeout=60, process=proc)
            except RuntimeError as exc:
                lines = log.read_text(errors="replace").splitlines()[-12:]
                told = "\n  ".join([f"bridge serve: {exc}; its log ends:", *lines])
                raise RuntimeError(told) from None
            yield url, proc
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)


@dataclass(frozen=True)
class Usage:
    """CPU seconds and context switches that a process and every process under it have
    used so far (Linux ``/proc``)."""

    user: float
    system: float
    voluntary: int
    involuntary: int

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.user + other.user,
            self.system + other.system,
            self.voluntary + other.voluntary,
            self.involuntary + other.involuntary,
        )

    def __sub__(self, earlier: Usage) -> Usage:
        return self + Usage(
            -earlier.user, -earlier.system, -earlier.voluntary, -earlier.involuntary
        )

    def per_request(self, requests: int) -> str:
        """The line a benchmark prints: µs of CPU and context switches per request."""
        n = max(1, requests)
        return (
            f"CPU per request: user {self.user / n * 1e6:4.0f} us, sys "
            f"{self.system / n * 1e6:4.0f} us; context switches {self.voluntary / n:.1f} "
            f"waiting, {self.involuntary / n:.1f} preempted"
        )


def tree_usage(pid: int) -> Usage | None:
    """What ``pid`` and its descendants have used so far; ``None`` without ``/proc``."""
    proc = Path("/proc")
    if not (proc / str(pid) / "stat").exists():
        return None
    stats: dict[int, list[str]] = {}  # every process's stat fields, after its name
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:
                stats[int(entry.name)] = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # gone meanwhile
                continue
    tree, grew = {pid}, True
    while grew:
        found = {child for child, fields in stats.items() if int(fields[1]) in tree} - tree
        tree |= found
        grew = bool(found)
    tick = os.sysconf("SC_CLK_TCK")
    user = system = voluntary = involuntary = 0
    for member in tree & stats.keys():
        user, system = user + int(stats[member][11]), system + int(stats[member][12])
        try:
            for task in (proc / str(member) / "task").iterdir():
                for line in (task / "status").read_text().splitlines():
                    if line.startswith("voluntary_ctxt_switches:"):
                        voluntary += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches:"):
                        involuntary += int(line.split()[1])
        except OSError:  # a process or thread that ended meanwhile
            continue
    return Usage(user / tick, system / tick, voluntary, involuntary)


def stored(db: Path, where: str = "") -> int:
    """Rows in a SQLite store's outbox (``where``: a condition such as state = 'delivered')."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        sql = "select count(*) from submissions" + (f" where {where}" if where else "")
        return int(conn.execute(sql).fetchone()[0])


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "mean_ms": statistics.fmean(ordered) * 1000,
        "p50_ms": ordered[len(ordered) // 2] * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        "per_s": len(ordered) / sum(ordered),
    }


@contextlib.contextmanager
def gunicorn(
    app_spec: str, *, workers: int = 2, env: dict[str, str] | None = None
) -> Iterator[str]:
    """``gunicorn APP`` on a free loopback port with the bridge's serve settings; yields its URL."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--timeout",
        "30",
        "--no-control-socket",
        "--log-level",
        "warning",
        app_spec,
    ]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env={**os.environ, **(env or {})}, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(url + "/healthz", timeout=30, process=proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def load(
    url: str,
    bodies: list[object],
    *,
    threads: int = 8,
    headers: dict[str, str] | None = None,
    form: bool = False,
    method: str = "POST",
) -> tuple[float, dict[int, int]]:
    """Send every body (POST, or GET) with ``threads`` keep-alive clients; (req/s, statuses)."""
    import concurrent.futures
    import threading

    local = threading.local()
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def post(body: object) -> None:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        if method == "GET":
            response = session.get(url, headers=headers, timeout=30)
        elif form:
            response = session.post(url, data=body, headers=headers, timeout=30)
        else:
            response = session.post(url, json=body, headers=headers, timeout=30)
        with lock:
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(post, bodies))
    return len(bodies) / (time.perf_counter() - started), statuses


class SlowClients:
    """Connections that send a POST's headers, then its body one byte every ``interval`` s.

    What a phone on a bad network looks like to a server, or slowloris on purpose. Each
    keeps going until its body is sent, the server answers or closes, or :meth:`close`.
    """

    def __init__(
        self, host: str, port: int, path: str, count: int, *, size: int = 400, interval=1.0
    ) -> None:
        import threading

        self.host, self.port, self.path = host, port, path
        self.size, self.interval = size, interval
        self.stop = threading.Event()
        self.answers: list[str] = []  # the status line each got, "" if closed without one
        self.threads = [threading.Thread(target=self._trickle, daemon=True) for _ in range(count)]

    def __enter__(self) -> SlowClients:
        for thread in self.threads:
            thread.start()
        time.sleep(0.5)  # all connected and holding whatever they hold
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=10)

    def _trickle(self) -> None:
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {self.size}\r\n\r\n"
        )
        try:
            sock = socket.create_connection((self.host, self.port), timeout=5)
        except OSError:
            self.answers.append("")
            return
        with sock:
            sock.sendall(head.encode())
            sock.setblocking(False)
            answer = b""
            for _ in range(self.size):
                if self.stop.wait(self.interval):
                    return
                try:
                    answer = sock.recv(200)
                    break  # the server answered (or closed: b"")
                except BlockingIOError:
                    pass
                except OSError:
                    break
                try:
                    sock.send(b" ")
                except OSError:
                    break
            self.answers.append(answer.split(b"\r\n", 1)[0].decode(errors="replace"))


def ordinary_posts(
    url: str, seconds: float, body: dict[str, object], gap: float = 0.1
) -> list[float]:
    """Ordinary posts, one after another for ``seconds``: each one's latency."""
    latencies = []
    deadline = time.monotonic() + seconds
    with requests.Session() as session:
        while time.monotonic() < deadline:
            began = time.perf_counter()
            try:
                response = session.post(
                    url, json=body, headers={"Accept": "application/json"}, timeout=60
                )
            except requests.Timeout:
                latencies.append(60.0)  # no answer in a minute: counted as a minute
                continue
            latencies.append(time.perf_counter() - began)
            if response.status_code >= 500:
                raise RuntimeError(f"{url} answered {response.status_code}")
            time.sleep(gap)
    return latencies


#: The gunicorn settings `bridge serve` uses, for a bare app served alike.
GUNICORN = ["--workers", "2", "--worker-class", "gthread", "--threads", "16"]
GUNICORN += ["--timeout", "30", "--graceful-timeout", "20", "--reuse-port"]


@contextlib.contextmanager
def process(cmd: list[str], health: str, log: Path, env: dict[str, str]) -> Iterator[int]:
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=out)
        try:
            wait_for(health, timeout=60, process=proc)
            yield proc.pid
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)


@contextlib.contextmanager
def bare(workdir: Path) -> Iterator[tuple[str, int]]:
    """The bare Flask app (``bench/bare_app.py``) under the same gunicorn settings as
    `bridge serve`: its URL and its gunicorn's pid."""
    port = free_port()
    cmd = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", *GUNICORN]
    cmd += ["bench.bare_app:app"]
    url = f"http://127.0.0.1:{port}"
    with process(cmd, url + "/healthz", workdir / "bare.log", dict(os.environ)) as pid:
        yield url + "/hooks/alerts", pid
