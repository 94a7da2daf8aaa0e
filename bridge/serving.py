"""Serving on this host: tuning a web worker's process (opt-in), and ``bridge serve``'s
supervision of gunicorn and the delivery worker beside it."""

from __future__ import annotations

import fcntl
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from .outbox.records import StoreUnavailable
from .shutdown import StopSignals

if TYPE_CHECKING:
    from .config.settings import Settings
    from .intake.deadline import BodyDeadlines

#: How much lower the CPU priority of the delivery worker ``bridge serve`` starts is.
SERVE_DELIVERY_NICE = 10


def batch_scheduling() -> bool:
    """Run this thread, and those it starts from now on, as batch work (Linux
    ``SCHED_BATCH``: a woken thread does not preempt the one holding the GIL); whether it
    could. Nothing changes where the call is refused.
    """
    try:
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    except (AttributeError, OSError):
        return False
    return True


@dataclass(frozen=True)
class CpuClaim:
    """A worker's slot (held by a lock on its file, let go when the process ends) and the
    CPU it stands for."""

    slot: int
    cpu: int
    fd: int

    def release(self) -> None:
        """Let the CPU go for another worker."""
        os.close(self.fd)


def usable_cpus() -> list[int]:
    """The CPUs this process may run on, in order; none where the system cannot say."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return []


def claim_a_cpu(slots: Path) -> CpuClaim | None:
    """Keep this thread, and those it starts, on the CPU of the first free slot under
    ``slots`` (one file per gunicorn worker; opt-in, ``server.pin_cpus``). ``None``, and
    nothing changed, when no slot is free or the system refuses. A worker's slot is let go
    with its lock when it exits.
    """
    cpus = usable_cpus()
    try:
        names = sorted(slots.iterdir(), key=lambda path: int(path.name.rpartition("-")[2]))
    except (OSError, ValueError):
        return None
    if not cpus:
        return None
    for slot, name in enumerate(names):
        try:
            fd = os.open(name, os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            cpu = cpus[slot % len(cpus)]
            os.sched_setaffinity(0, {cpu})
        except OSError:  # taken by another worker, or pinning refused
            os.close(fd)
            continue
        return CpuClaim(slot, cpu, fd)
    return None


def cut_bodies_on_stop(deadlines: BodyDeadlines) -> None:
    """When gunicorn tells this worker to stop (SIGTERM, or SIGINT from Ctrl-C), bodies
    still arriving are cut off at once, then gunicorn's own handler runs: the worker
    finishes its requests and exits instead of waiting out a slow sender."""
    if threading.current_thread() is not threading.main_thread():
        return  # not a gunicorn worker (signals are the main thread's)
    for number in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(number)
        if not callable(previous):
            continue

        def handler(
            signum: int, frame: FrameType | None, previous: Callable[..., Any] = previous
        ) -> None:
            deadlines.cut_all()
            previous(signum, frame)

        signal.signal(number, handler)


# --- bridge serve -----------------------------------------------------------------------


#: Seconds ``bridge serve`` waits for intake to answer before it starts delivery anyway.
DELIVERY_START_WAIT = 15.0


def listening(host: str, port: int) -> bool:
    """Whether a gunicorn worker on ``host:port`` answers ``/healthz``."""
    target = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host
    conn = http.client.HTTPConnection(target, port, timeout=0.5)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def port_taken(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on, or ``None``. Each worker binds its own
    socket with SO_REUSEPORT, which another listener (even another bridge of the same
    user) would share or refuse worker by worker, over and over; this bind, without
    SO_REUSEPORT, is refused by any listener at all, before gunicorn starts."""
    if not port:
        return None
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return str(exc.strerror or exc)
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn does
        try:
            probe.bind(address)
        except OSError as exc:
            return str(exc.strerror or exc)
    return None


def banner(
    settings: Settings, host: str, port: int, workers: int, threads: int, delivery: bool
) -> str:
    """What ``bridge serve`` serves, with the URLs to reach it (printed once it answers)."""
    from . import __version__

    shown = "127.0.0.1" if host in ("0.0.0.0", "") else f"[{host}]" if ":" in host else host
    local = f"http://{shown}:{port}"
    base = settings.server.public_url or local
    lines = [
        f"proprofs-bridge {__version__} serving on {local}"
        + (f" (public URL {base})" if base != local else "")
        + (" — every interface" if host in ("0.0.0.0", "::", "") else ""),
        f"  {workers} worker(s) × {threads} threads; delivery "
        + ("running beside them" if delivery else "off (--no-delivery): run bridge worker"),
    ]
    for route in sorted(settings.routes.values(), key=lambda r: (r.kind, r.name)):
        lines.append(f"  {route.kind:<7} {route.name:<20} {base}{route.path}")
    if any(route.kind == "widget" for route in settings.routes.values()):
        lines.append(f"  {'':<7} {'widget script':<20} {base}/widget.js")
    if settings.admin.enabled:
        lines.append(f"  {'':<7} {'console':<20} {base}/admin")
    lines.append(f"  {'':<7} {'API description':<20} {base}/openapi.json")
    lines.append(f"  {'':<7} {'health':<20} {base}/healthz  {base}/readyz")
    lines.append("Press Ctrl+C to stop.")
    return "\n".join(lines)


def run_serve(
    settings: Settings,
    path: str,
    host: str,
    port: int,
    workers: int,
    delivery: bool,
    env_extra: dict[str, str] | None = None,
    threads: int = 16,
) -> int:
    """``bridge serve``: gunicorn with the app, and delivery beside it unless ``delivery``
    is false, until a stop signal; the exit code."""
    env = {**os.environ, **(env_extra or {}), "BRIDGE_CONFIG": path}
    problem = _cannot_start(settings, host, port)
    if problem:
        click.echo(problem, err=True)
        return 1
    made: list[str] = []
    if not env.get("PROMETHEUS_MULTIPROC_DIR"):
        # Every gunicorn worker and the delivery process write here; /metrics adds them up.
        env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="bridge-metrics-")
        made.append(env["PROMETHEUS_MULTIPROC_DIR"])
    if settings.server.pin_cpus and 1 < workers <= len(usable_cpus()):
        # One slot per worker: each takes a free one, and runs on a CPU of its own
        # (claim_a_cpu; docs/production.md). With more workers than CPUs, a CPU would hold
        # two for good, however the connections fell: the kernel places them instead.
        env["BRIDGE_CPU_SLOTS"] = _cpu_slots(workers)
        made.append(env["BRIDGE_CPU_SLOTS"])
    # Delivery beside intake on one host: when both want the CPU, intake goes first (a
    # sender waits for its answer; a ticket a few seconds later is no worse), and delivery
    # has every cycle intake leaves.
    worker_cmd = [sys.executable, "-m", "bridge.cli", "worker", "--config", path]
    worker_cmd += ["--nice", str(SERVE_DELIVERY_NICE)]
    try:
        return _supervise(
            _gunicorn_command(host, port, workers, threads),
            worker_cmd if delivery else None,
            env,
            host,
            port,
            banner(settings, host, port, workers, threads, delivery),
        )
    finally:
        for directory in made:
            shutil.rmtree(directory, ignore_errors=True)


def _cannot_start(settings: Settings, host: str, port: int) -> str | None:
    """What would stop the serve before it starts: a store that cannot be migrated, a port
    something else listens on."""
    if settings.store.startswith("sqlite"):
        try:
            from .outbox.store import SubmissionStore

            with SubmissionStore(settings.store) as store:
                store.engine  # noqa: B018 - migrate once, before any child opens it
        except StoreUnavailable as exc:
            return f"cannot open the store: {exc}"
    taken = port_taken(host, port)
    return f"cannot listen on {host}:{port}: {taken}" if taken else None


def _cpu_slots(workers: int) -> str:
    """A directory with one slot file per worker; its path."""
    directory = tempfile.mkdtemp(prefix="bridge-cpus-")
    for slot in range(workers):
        Path(directory, f"worker-{slot}").touch()
    return directory


def _gunicorn_version() -> tuple[int, ...]:
    import gunicorn  # type: ignore[import-untyped]

    return tuple(gunicorn.version_info)


def _gunicorn_command(host: str, port: int, workers: int, threads: int) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"{host}:{port}",
        "--workers",
        str(workers),
        # Threaded workers: a slow client holds one thread, not the whole process.
        "--worker-class",
        "gthread",
        "--threads",
        str(threads),
        "--timeout",
        "30",
        "--graceful-timeout",
        "20",
    ]
    if _gunicorn_version() >= (25, 1):
        # No control socket: gunicorn would make one at one path per user (~/.gunicorn),
        # which a second bridge on the machine would fight over.
        command.append("--no-control-socket")
    if port:
        # A listening socket per worker: new connections are spread by the kernel instead
        # of going to whichever worker wakes first (docs/production.md). (Port 0 would
        # give each worker a port of its own.)
        command.append("--reuse-port")
    return [*command, "bridge.app:from_environment()"]


def _supervise(
    web_cmd: list[str],
    worker_cmd: list[str] | None,
    env: dict[str, str],
    host: str,
    port: int,
    announce: str = "",
) -> int:
    """Run gunicorn, print ``announce`` and start delivery once intake answers, restart
    delivery if it exits, and stop both on a signal (or when gunicorn exits); the exit
    code."""
    stop = StopSignals().install()
    web = subprocess.Popen(web_cmd, env=env)
    deliverer: subprocess.Popen[bytes] | None = None
    # Delivery starts once intake answers: on a small host the two would share the CPUs
    # while both import, and the first answer would come a second later.
    deliver_after = time.monotonic() + (DELIVERY_START_WAIT if port else 0)
    code = 0
    answering = not port  # port 0: gunicorn picks one; there is nothing to announce
    try:
        while not stop.is_set():
            if web.poll() is not None:
                code = web.returncode or 1
                click.echo(f"gunicorn exited ({web.returncode}); stopping", err=True)
                break
            if not answering and listening(host, port):
                answering = True
                if announce:
                    click.echo(announce)
            if worker_cmd is not None and deliverer is None:
                if answering or time.monotonic() >= deliver_after:
                    deliverer = subprocess.Popen(worker_cmd, env=env)
                else:
                    stop.wait(0.05)
                    continue
            if worker_cmd is not None and deliverer is not None and deliverer.poll() is not None:
                click.echo(f"delivery worker exited ({deliverer.returncode}); restarting", err=True)
                time.sleep(1)
                deliverer = subprocess.Popen(worker_cmd, env=env)
            stop.wait(0.5 if answering else 0.05)
    finally:
        StopSignals.ignore()  # stopping already; the children get their own TERM below
        for proc in (web, deliverer):
            if proc is not None and proc.poll() is None:
                proc.terminate()
        for proc in (web, deliverer):
            if proc is not None:
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
    return code
