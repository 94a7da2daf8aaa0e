"""Serving: the web workers with delivery beside them, delivery alone, the emulator; how
they start, are supervised and stop."""

from __future__ import annotations

import os
import threading
from dataclasses import replace
from typing import TYPE_CHECKING

import click

from ..outbox.records import StoreUnavailable
from ..serving import SERVE_DELIVERY_NICE
from ..shutdown import StopSignals
from .group import (
    DEMO_EMAIL,
    DEMO_TOKEN,
    boot_problem,
    config_option,
    configure_logs,
    main,
    open_outbox,
    settings_or_exit,
    store_problem,
)

if TYPE_CHECKING:
    from ..config import Settings
    from ..proprofs.emulator import EmulatorServer


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
    from ..proprofs.emulator import EmulatorServer, EmulatorState, Faults

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
    from ..app import mirror_of, proprofs_client, signing_key
    from ..observability import Metrics
    from ..outbox.notify import DeadLetterNotifier
    from ..outbox.worker import DELIVERY_GATHER, Worker
    from ..watches import AlertWatches

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
            mirror=mirror_of(settings, store, client),
            subscribers=settings.events,
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
    from ..config import config_path
    from ..serving import run_serve

    settings = settings_or_exit(config_file)
    problem = boot_problem(settings)
    if problem:
        click.echo(problem, err=True)
        raise SystemExit(1)
    path = str(config_path(config_file).resolve())
    threading.Thread(target=warn_if_refused, args=(settings,), daemon=True).start()
    raise SystemExit(
        run_serve(settings, path, host, port, workers, not no_delivery, threads=threads)
    )


def warn_if_refused(settings: Settings) -> None:
    """Say at start, once, when ProProfs refuses the account or cannot be reached: the
    bridge still takes submissions, and they wait until tickets can be made."""
    from ..app import proprofs_client
    from ..health import credentials_check

    with proprofs_client(settings, pool_size=1) as client:
        answer = credentials_check(client)
    if answer != "reachable":
        click.echo(
            f"warning: ProProfs at {settings.proprofs.base_url}: {answer}. Submissions are "
            "taken and kept, but no ticket is made until this is fixed: check "
            "proprofs.account_email and proprofs.token (bridge doctor says more).",
            err=True,
        )
