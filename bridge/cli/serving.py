"""Serving: the web workers with delivery beside them, delivery alone, the emulator; how
they start, are supervised and stop."""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import click

from ..app import proprofs_client, signing_key, usable_cpus
from ..config import Settings, config_path
from ..observability import Metrics
from ..outbox.notify import DeadLetterNotifier
from ..outbox.store import StoreUnavailable
from ..outbox.worker import DELIVERY_GATHER, Worker
from ..proprofs.emulator import EmulatorServer, EmulatorState, Faults
from ..shutdown import StopSignals
from ..watches import AlertWatches
from .group import (
    DEMO_EMAIL,
    DEMO_TOKEN,
    SERVE_DELIVERY_NICE,
    boot_problem,
    config_option,
    configure_logs,
    main,
    open_outbox,
    settings_or_exit,
    store_problem,
)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8025, show_default=True, type=int, help="Port to listen on.")
@click.option("--account-email", default=DEMO_EMAIL, show_default=True, help="The account's email.")
@click.option(
    "--token",
    default=DEMO_TOKEN,
    envvar="EMULATOR_TOKEN",
    help="The API token the emulator accepts (or $EMULATOR_TOKEN).",
)
@click.option(
    "--timezone",
    default="America/Chicago",
    show_default=True,
    help="The account's time zone (PROPROFS_API L7).",
)
@click.option(
    "--data",
    "data_path",
    type=click.Path(dir_okay=False),
    help="Keep tickets in this JSON file across restarts.",
)
@click.option(
    "--error-status",
    default=200,
    show_default=True,
    type=int,
    help="HTTP status sent with error bodies (the vendor documents none).",
)
@click.option("--seed", type=int, help="Seed for fault dice, for repeatable runs.")
@click.option("--latency-ms", type=float, default=0.0, help="Added to every API call.")
@click.option("--error-rate", type=float, default=0.0, help="Fraction answered with HTTP 5xx.")
@click.option(
    "--rate-limit-rate", type=float, default=0.0, help="Fraction answered with 429 and Retry-After."
)
@click.option("--retry-after", type=int, default=1, help="Retry-After seconds sent with 429.")
@click.option("--auth-failure", is_flag=True, help="Refuse every credential.")
@click.option(
    "--lose-create-rate",
    type=float,
    default=0.0,
    help="Fraction of creates stored whose response never arrives.",
)
@click.option(
    "--lose-mode",
    type=click.Choice(["hang", "drop"]),
    default="hang",
    help="A lost create hangs past the client's timeout, or drops the connection.",
)
@click.option("--hang-seconds", type=float, default=10.0, help="How long a hung create hangs.")
@click.option(
    "--list-lag-seconds",
    type=float,
    default=0.0,
    help="Delay before a new ticket shows up in the list.",
)
def emulator(
    host: str,
    port: int,
    account_email: str,
    token: str,
    timezone: str,
    data_path: str | None,
    error_status: int,
    seed: int | None,
    **fault_flags: object,
) -> None:
    """Run the ProProfs emulator (a strict stand-in for the ProProfs API)."""
    state = EmulatorState(
        account_email,
        token,
        timezone=timezone,
        data_path=data_path,
        seed=seed,
        error_status=error_status,
    )
    faults = Faults()
    try:
        faults.update(dict(fault_flags))
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    state.faults = faults
    server = EmulatorServer(state, host, port)
    click.echo(f"ProProfs emulator on {server.base_url} (account {account_email})", err=True)
    _serve_until_signal(server)


def _serve_until_signal(server: EmulatorServer) -> None:
    stop = StopSignals().install()
    server.start()
    try:
        stop.wait()
    finally:
        StopSignals.ignore()
        server.stop()


@main.command()
@config_option
@click.option("--concurrency", type=int, help="Creates in flight at once (default: config).")
@click.option("--until-idle", is_flag=True, help="Exit once nothing is due.")
@click.option(
    "--nice",
    type=click.IntRange(0, 19),
    default=0,
    help="Lower this process's CPU priority by N (bridge serve runs its worker at "
    f"{SERVE_DELIVERY_NICE}, so that intake answers first when the host is busy).",
)
def worker(config_file: str | None, concurrency: int | None, until_idle: bool, nice: int) -> None:
    """Deliver submissions (any number of these may run against one database)."""
    if nice:
        os.nice(nice)
    settings = settings_or_exit(config_file)
    configure_logs(settings)
    delivery = settings.delivery
    if concurrency:
        delivery = replace(delivery, concurrency=concurrency)
    problem = store_problem(settings)
    if problem:
        click.echo(problem, err=True)
        raise SystemExit(1)
    store = open_outbox(settings, gather=DELIVERY_GATHER)
    try:
        store.engine  # noqa: B018 - open (and, on SQLite, migrate) before the first claim
    except StoreUnavailable as exc:
        click.echo(f"cannot open the store: {exc}", err=True)
        raise SystemExit(1) from None
    metrics = Metrics(enabled=settings.server.metrics)
    with proprofs_client(
        settings, pool_size=delivery.concurrency + 2, observer=metrics.api_call
    ) as client:
        retention = {name: route.retention for name, route in settings.routes.items()}
        notify = DeadLetterNotifier(settings.dead_letters) if settings.dead_letters else None
        runner = Worker(
            store,
            client,
            delivery,
            metrics=metrics,
            retention=retention,
            on_dead=notify,
            watches=AlertWatches(settings, lambda: signing_key(settings, store)),
            captures={name: route.alerts.capture for name, route in settings.routes.items()},
        )
        runner.install_signal_handlers()
        click.echo(
            f"worker {runner.owner} delivering with concurrency {delivery.concurrency}", err=True
        )
        runner.run(until_idle=until_idle)
        if notify is not None:
            notify.drain()  # notifications under way are sent before the process goes
        StopSignals.ignore()
    store.dispose()


@main.command()
@config_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option("--workers", default=2, show_default=True, type=int, help="gunicorn workers.")
@click.option(
    "--threads",
    default=16,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Threads per worker: slow clients each hold one while their body arrives.",
)
@click.option("--no-delivery", is_flag=True, help="Serve intake only; run `bridge worker` apart.")
def serve(
    config_file: str | None, host: str, port: int, workers: int, threads: int, no_delivery: bool
) -> None:
    """Serve the bridge with gunicorn, with delivery running unless --no-delivery."""
    settings = settings_or_exit(config_file)
    problem = boot_problem(settings)
    if problem:
        click.echo(problem, err=True)
        raise SystemExit(1)
    path = str(config_path(config_file).resolve())
    raise SystemExit(
        run_serve(settings, path, host, port, workers, not no_delivery, threads=threads)
    )


#: Seconds ``bridge serve`` waits for intake to answer before it starts delivery anyway.
DELIVERY_START_WAIT = 15.0


def _listening(host: str, port: int) -> bool:
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


def _port_taken(host: str, port: int) -> str | None:
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
    env = {**os.environ, **(env_extra or {}), "BRIDGE_CONFIG": path}
    metrics_dir = None
    if not env.get("PROMETHEUS_MULTIPROC_DIR"):
        # Every gunicorn worker and the delivery process write here; /metrics adds them up.
        metrics_dir = tempfile.mkdtemp(prefix="bridge-metrics-")
        env["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    if settings.store.startswith("sqlite"):
        try:
            open_outbox(settings).engine  # noqa: B018 - migrate once, before any child opens it
        except StoreUnavailable as exc:
            click.echo(f"cannot open the store: {exc}", err=True)
            return 1
    taken = _port_taken(host, port)
    if taken:
        click.echo(f"cannot listen on {host}:{port}: {taken}", err=True)
        return 1
    cpu_dir = None
    if settings.server.pin_cpus and 1 < workers <= len(usable_cpus()):
        # One slot per worker: each takes a free one, and runs on a CPU of its own
        # (bridge.app.claim_a_cpu; docs/production.md). With more workers than CPUs, a
        # CPU would hold two for good, however the connections fell: the kernel places
        # them instead.
        cpu_dir = tempfile.mkdtemp(prefix="bridge-cpus-")
        for slot in range(workers):
            Path(cpu_dir, f"worker-{slot}").touch()
        env["BRIDGE_CPU_SLOTS"] = cpu_dir
    web_cmd = [
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
        "bridge.app:from_environment()",
    ]
    if port:
        # A listening socket per worker: new connections are spread by the kernel instead
        # of going to whichever worker wakes first (docs/production.md). (Port 0 would
        # give each worker a port of its own.)
        web_cmd[-1:-1] = ["--reuse-port"]
    # Delivery beside intake on one host: when both want the CPU, intake goes first (a
    # sender waits for its answer; a ticket a few seconds later is no worse), and delivery
    # has every cycle intake leaves.
    worker_cmd = [sys.executable, "-m", "bridge.cli", "worker", "--config", path]
    worker_cmd += ["--nice", str(SERVE_DELIVERY_NICE)]
    stop = StopSignals().install()
    web = subprocess.Popen(web_cmd, env=env)
    deliverer: subprocess.Popen[bytes] | None = None
    # Delivery starts once intake answers: on a small host the two would share the CPUs
    # while both import, and the first answer would come a second later.
    deliver_after = time.monotonic() + (DELIVERY_START_WAIT if port else 0)
    code = 0
    try:
        while not stop.is_set():
            if web.poll() is not None:
                code = web.returncode or 1
                click.echo(f"gunicorn exited ({web.returncode}); stopping", err=True)
                break
            if delivery and deliverer is None:
                if time.monotonic() >= deliver_after or _listening(host, port):
                    deliverer = subprocess.Popen(worker_cmd, env=env)
                else:
                    stop.wait(0.05)
                    continue
            if deliverer is not None and deliverer.poll() is not None:
                click.echo(f"delivery worker exited ({deliverer.returncode}); restarting", err=True)
                time.sleep(1)
                deliverer = subprocess.Popen(worker_cmd, env=env)
            stop.wait(0.5)
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
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
        if cpu_dir:
            shutil.rmtree(cpu_dir, ignore_errors=True)
    return code
