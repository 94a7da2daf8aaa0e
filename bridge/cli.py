"""The ``bridge`` command."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO
from zoneinfo import ZoneInfo

import click
from marshmallow import ValidationError

from . import __version__
from .app import proprofs_client, signing_key, usable_cpus
from .attachments import open_store
from .config import ConfigError, Settings, config_path, load_settings, parse_duration
from .export import export
from .mapping import MappingError, validation_messages
from .observability import Metrics, RedactFilter, configure_logging, settings_secrets
from .outbox.notify import DeadLetterNotifier
from .outbox.store import StoreUnavailable, SubmissionStore, describe_erasure, sqlite_problem
from .outbox.tables import STATES
from .outbox.worker import DELIVERY_GATHER, Worker
from .proprofs.emulator import EmulatorServer, EmulatorState, Faults
from .proprofs.errors import ProProfsError
from .proprofs.models import STATUSES as STATUSES_FOR_EXPORT
from .resources import examples_dir
from .shutdown import StopSignals
from .watches import AlertWatches

DEMO_EMAIL = "demo@example.com"
DEMO_TOKEN = "demo-token"
#: How much lower the CPU priority of the delivery worker ``bridge serve`` starts is.
SERVE_DELIVERY_NICE = 10


@click.group()
@click.version_option(__version__, prog_name="bridge")
def main() -> None:
    """proprofs-bridge: forms, alerts and a support widget in; ProProfs tickets out."""


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


config_option = click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Config file (default: $BRIDGE_CONFIG, then ./bridge.yaml).",
)


def _settings(config_file: str | None) -> Settings:
    try:
        return load_settings(config_file)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        raise SystemExit(1) from None


@main.command("check-config")
@config_option
def check_config(config_file: str | None) -> None:
    """Validate the config; every problem names the file, line and key path."""
    settings = _settings(config_file)
    problem = _boot_problem(settings)
    if problem:
        click.echo(problem, err=True)
        raise SystemExit(1)
    for warning in settings.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"{settings.source_path}: OK — {len(settings.routes)} route(s)")
    for route in settings.routes.values():
        what = (
            route.source.name
            if route.source
            else ("declared fields" if route.fields else "custom schema")
        )
        click.echo(f"  {route.kind:<6} {route.path:<28} {what}")


def _boot_problem(settings: Settings) -> str | None:
    """Build everything ``create_app`` builds (OpenAPI document included), and check that a
    SQLite store can be written here: what would stop the app from starting."""
    from .app import create_app

    try:
        create_app(settings)
    except Exception as exc:
        text = RedactFilter(settings_secrets(settings)).clean(f"{type(exc).__name__}: {exc}")
        return f"{settings.source_path}: the app cannot start with this config: {text}"
    return _store_problem(settings)


def _store_problem(settings: Settings) -> str | None:
    problem = sqlite_problem(settings.store)
    return f"{settings.source_path}: store: {problem}" if problem else None


def _names(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


@main.command()
@click.option("--form", "forms", help="Contact form route name(s), comma separated.")
@click.option("--alerts", help="Alert sender presets, comma separated (e.g. alertmanager,grafana).")
@click.option("--widget", "widgets", help="Support widget route name(s), comma separated.")
@click.option(
    "--url",
    "base_url",
    default="https://bridge.example.com",
    show_default=True,
    help="Where the bridge will be reachable (for the instructions).",
)
@click.option(
    "--out",
    default="bridge.yaml",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="The config to write; the env file goes beside it.",
)
@click.option("--force", is_flag=True, help="Overwrite existing files.")
def init(
    forms: str | None,
    alerts: str | None,
    widgets: str | None,
    base_url: str,
    out: str,
    force: bool,
) -> None:
    """Write a commented, working config for what you have, and say what to set up."""
    from .init import presets, render

    if not (forms or alerts or widgets):
        if not sys.stdin.isatty():
            click.echo(
                "say what you have: --form NAME, --alerts PRESET[,PRESET…], --widget NAME "
                f"(presets: {presets()})",
                err=True,
            )
            raise SystemExit(2)
        forms = click.prompt("A contact form? Its route name, or - for none", default="contact")
        alerts = click.prompt(
            f"Alert senders, comma separated, or - for none ({presets()})", default="-"
        )
        widgets = click.prompt("A support widget? Its route name, or - for none", default="-")
    chosen = [[n for n in _names(v) if n != "-"] for v in (forms, alerts, widgets)]
    try:
        written = render(
            forms=chosen[0], alerts=chosen[1], widgets=chosen[2], base_url=base_url.rstrip("/")
        )
    except ValueError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(2) from None
    config = Path(out)
    env_file = config.with_suffix(".env")
    for path in (config, env_file):
        if path.exists() and not force:
            click.echo(f"{path} exists; use --force to overwrite it", err=True)
            raise SystemExit(1)
    config.write_text(written.text)
    env_file.write_text("")
    env_file.chmod(0o600)  # before the secrets go in
    env_file.write_text(written.env_text())
    click.echo(f"wrote {config} and {env_file} (secrets; readable by you only)\n")
    if written.to_fill:
        click.echo(f"Fill in, in {env_file}: {', '.join(written.to_fill)}")
    click.echo(
        f"Then load it and check:\n  set -a; . ./{env_file}; set +a\n"
        f"  bridge check-config --config {config}\n"
        f"  bridge serve --config {config}\n"
    )
    click.echo("On the sender side (values of $VARS are in " + str(env_file) + "):")
    for line in written.instructions:
        click.echo(f"- {line}")


@main.command()
@config_option
def doctor(config_file: str | None) -> None:
    """Check a deployment from its config: store, Redis, ProProfs, each route's templates."""
    from .doctor import run

    settings = _settings(config_file)
    lines = run(settings)
    for line in lines:
        click.echo(str(line))
    failed = sum(1 for line in lines if not line.ok)
    click.echo(f"{failed} problem(s)" if failed else "all good")
    raise SystemExit(1 if failed else 0)


@main.command("try")
@config_option
@click.argument("route")
@click.argument("payload", type=click.File("rb"), required=False)
def try_route(config_file: str | None, route: str, payload: BinaryIO | None) -> None:
    """Show the ticket PAYLOAD (JSON file, or -) would become on ROUTE; creates nothing.

    The payload is read as intake reads it on that route (a preset may unwrap it). Without
    PAYLOAD, a hook route uses its sender preset's shipped sample and a form or widget
    route sample values for its fields."""
    from .doctor import sample

    settings = _settings(config_file)
    selected = settings.routes.get(route)
    if selected is None:
        click.echo(f"no route {route!r}; routes: {', '.join(settings.routes)}", err=True)
        raise SystemExit(1)
    if payload is None:
        found = sample(selected)
        if found is None:
            click.echo(f"route {route!r} has its own schema: give a PAYLOAD file", err=True)
            raise SystemExit(1)
        shown, body = found
        click.echo(f"trying {shown}", err=True)
    else:
        try:
            body = selected.read_json(payload.read())
        except ValueError as exc:
            click.echo(f"the payload is not JSON: {exc}", err=True)
            raise SystemExit(1) from None
    try:
        data, extra = selected.mapping.load(body)
    except ValidationError as exc:
        click.echo(
            json.dumps(
                {
                    "status": "error",
                    "code": "validation_failed",
                    "errors": validation_messages(exc),
                },
                indent=2,
            )
        )
        raise SystemExit(1) from None
    try:
        draft = selected.mapping.render(data, ref="pb-try0000000000000", extra=extra)
        dedup = selected.mapping.dedup_key(data)
    except MappingError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(1) from None
    out = {"route": selected.name, "ticket": draft.to_dict()}
    if dedup:
        out["dedup_key"] = dedup
    click.echo(json.dumps(out, indent=2, ensure_ascii=False, default=str))


def _store(settings: Settings, *, gather: float = 0.0) -> SubmissionStore:
    return SubmissionStore(
        settings.store,
        pool_size=settings.delivery.concurrency + 2,
        files=open_store(settings.files),
        gather=gather,
    )


def _logging(settings: Settings) -> None:
    configure_logging(
        level=settings.server.log_level,
        json_lines=settings.server.log_json,
        secrets=settings_secrets(settings),
    )


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
    settings = _settings(config_file)
    _logging(settings)
    delivery = settings.delivery
    if concurrency:
        delivery = replace(delivery, concurrency=concurrency)
    problem = _store_problem(settings)
    if problem:
        click.echo(problem, err=True)
        raise SystemExit(1)
    store = _store(settings, gather=DELIVERY_GATHER)
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
    settings = _settings(config_file)
    problem = _boot_problem(settings)
    if problem:
        click.echo(problem, err=True)
        raise SystemExit(1)
    path = str(config_path(config_file).resolve())
    raise SystemExit(_serve(settings, path, host, port, workers, not no_delivery, threads=threads))


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


def _serve(
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
            _store(settings).engine  # noqa: B018 - migrate once, before any child opens it
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


@main.command()
@click.option("--port", default=8000, show_default=True, type=int, help="Bridge port.")
@click.option("--emulator-port", default=8025, show_default=True, type=int, help="Emulator port.")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    help="Config (default: the demo config shipped with the package).",
)
def demo(port: int, emulator_port: int, config_file: str | None) -> None:
    """The ProProfs emulator and the bridge, with delivery, on embedded defaults."""
    path = Path(config_file) if config_file else examples_dir() / "demo.yaml"
    if not path.is_file():
        click.echo(f"cannot find {path}", err=True)
        raise SystemExit(1)
    state = EmulatorState(DEMO_EMAIL, DEMO_TOKEN)
    emulator_server = EmulatorServer(state, "127.0.0.1", emulator_port).start()
    extra = {"DEMO_PROPROFS_URL": emulator_server.base_url}
    os.environ.update(extra)
    settings = _settings(str(path))
    bridge_url = f"http://127.0.0.1:{port}"
    click.echo(f"""
proprofs-bridge demo
  bridge:    {bridge_url}   (store: {settings.store})
  emulator:  {emulator_server.base_url}

Open the hosted contact form:   {bridge_url}/forms/contact
API description:                {bridge_url}/openapi.json   metrics: {bridge_url}/metrics

Send an alert-style webhook (becomes a ticket within a second):
  curl -s -X POST {bridge_url}/hooks/events -H 'Content-Type: application/json' \\
       -d '{{"id": "evt-1", "title": "Nightly backup failed", "severity": "critical"}}'

See the tickets the emulator holds:
  curl -s {emulator_server.url}/_emulator/tickets

Inspect the outbox:
  .venv/bin/bridge outbox list --config {path}
Press Ctrl-C to stop.
""")
    sys.stdout.flush()
    try:
        code = _serve(settings, str(path.resolve()), "127.0.0.1", port, 2, True, extra)
    finally:
        emulator_server.stop()
    raise SystemExit(code)


@main.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
@config_option
def db_upgrade(config_file: str | None) -> None:
    """Apply the outbox migrations (SQLite also does this by itself at start)."""
    settings = _settings(config_file)
    store = SubmissionStore(settings.store, auto_upgrade=False)
    try:
        store.upgrade()
    except StoreUnavailable as exc:
        click.echo(f"cannot reach the store: {exc}", err=True)
        raise SystemExit(1) from None
    click.echo("the outbox schema is up to date")


@main.group()
def outbox() -> None:
    """Inspect and act on submissions."""


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


@outbox.command("list")
@config_option
@click.option("--state", type=click.Choice(STATES), help="Only submissions in this state.")
@click.option("--route", help="Only this route's submissions.")
@click.option("--limit", default=50, show_default=True, type=int, help="At most this many.")
def outbox_list(config_file: str | None, state: str | None, route: str | None, limit: int) -> None:
    """Recent submissions, newest first."""
    store = _store(_settings(config_file))
    rows = store.list(state=state, route=route, limit=limit)
    click.echo(f"{'id':<24} {'route':<14} {'state':<10} {'tries':>5} {'ticket':<8} created")
    for sub in rows:
        click.echo(
            f"{sub.id:<24} {sub.route:<14} {sub.state:<10} {sub.attempts:>5} "
            f"{sub.ticket_id or '-':<8} {_when(sub.created_at)}"
        )
    counts = store.counts()
    click.echo("totals: " + ", ".join(f"{k} {v}" for k, v in counts.items() if v))


@outbox.command("show")
@config_option
@click.argument("submission_id")
def outbox_show(config_file: str | None, submission_id: str) -> None:
    """One submission, its ticket draft and every attempt."""
    store = _store(_settings(config_file))
    sub = store.get(submission_id)
    if sub is None:
        click.echo(f"no submission {submission_id}", err=True)
        raise SystemExit(1)
    click.echo(
        json.dumps(
            {
                "id": sub.id,
                "route": sub.route,
                "kind": sub.kind,
                "state": sub.state,
                "attempts": sub.attempts,
                "ticket_id": sub.ticket_id,
                "dedup_key": sub.dedup_key,
                "last_error": sub.last_error,
                "created": _when(sub.created_at),
                "next_attempt": _when(sub.next_attempt_at)
                if sub.state in ("pending", "unknown")
                else None,
                "draft": sub.draft.to_dict(),
                "attempt_log": [
                    {
                        "number": a.number,
                        "kind": a.kind,
                        "outcome": a.outcome,
                        "at": _when(a.finished_at),
                        "http_status": a.http_status,
                        "ticket_id": a.ticket_id,
                        "error": a.error,
                    }
                    for a in store.attempts_for(sub.id)
                ],
            },
            indent=2,
            ensure_ascii=False,
        )
    )


@outbox.command("replay")
@config_option
@click.argument("submission_id", required=False)
@click.option("--all-dead", is_flag=True, help="Replay every dead submission.")
@click.option("--route", help="With --all-dead: only this route's.")
def outbox_replay(
    config_file: str | None, submission_id: str | None, all_dead: bool, route: str | None
) -> None:
    """Send dead submissions again from a fresh retry schedule."""
    store = _store(_settings(config_file))
    if all_dead == bool(submission_id):
        click.echo("give a submission id or --all-dead", err=True)
        raise SystemExit(2)
    if all_dead:
        click.echo(f"replaying {store.replay_all_dead(route=route)} dead submission(s)")
        return
    assert submission_id is not None
    if not store.replay(submission_id):
        click.echo(f"{submission_id} is not a dead submission", err=True)
        raise SystemExit(1)
    click.echo(f"replaying {submission_id}")


@outbox.command("purge")
@config_option
@click.option("--older-than", required=True, help="e.g. 30d, 12h")
@click.option(
    "--state",
    type=click.Choice(["delivered", "dead", "suppressed"]),
    default="delivered",
    show_default=True,
)
def outbox_purge(config_file: str | None, older_than: str, state: str) -> None:
    """Delete old delivered (or dead) submissions and their attempts."""
    try:
        seconds = parse_duration(older_than)
    except ValueError:
        raise click.BadParameter(
            "use a duration like 30d or 12h", param_hint="--older-than"
        ) from None
    store = _store(_settings(config_file))
    click.echo(f"purged {store.purge(older_than=seconds, state=state)} {state} submission(s)")


@main.command()
@config_option
@click.option("--email", required=True, help="The person's email address (any case).")
def erase(config_file: str | None, email: str) -> None:
    """Remove everything the bridge holds about one person (their submissions' content,
    quarantined ones entirely); tickets in ProProfs are left alone."""
    if "@" not in email:
        raise click.BadParameter("an email address, like person@example.com", param_hint="--email")
    try:
        with _store(_settings(config_file)) as store:
            report = store.erase(email)
    except StoreUnavailable as exc:
        click.echo(f"cannot reach the store: {exc}", err=True)
        raise SystemExit(1) from None
    click.echo(describe_erasure(email, report))


@main.group("routes")
def routes_group() -> None:
    """Pause and resume delivery per route."""


def _known_route(settings: Settings, route: str) -> None:
    if route not in settings.routes:
        raise click.BadParameter(
            f"no route {route!r} in {settings.source_path} (routes: "
            f"{', '.join(sorted(settings.routes))})",
            param_hint="ROUTE",
        )


@routes_group.command("list")
@config_option
def routes_list(config_file: str | None) -> None:
    """Each route, its kind, and whether its delivery is paused."""
    settings = _settings(config_file)
    with _store(settings) as store:
        paused = store.paused_routes()
    for name, route in sorted(settings.routes.items()):
        state = f"paused since {_when(paused[name])}" if name in paused else "delivering"
        click.echo(f"{name:<24} {route.kind:<7} {state}")


@routes_group.command("pause")
@config_option
@click.argument("route")
def routes_pause(config_file: str | None, route: str) -> None:
    """Stop delivering ROUTE's submissions; it keeps taking and storing them."""
    settings = _settings(config_file)
    _known_route(settings, route)
    with _store(settings) as store:
        done = store.pause_route(route, by="cli")
    click.echo(f"route {route}: " + ("paused" if done else "was already paused"))


@routes_group.command("resume")
@config_option
@click.argument("route")
def routes_resume(config_file: str | None, route: str) -> None:
    """Deliver ROUTE's submissions again, the ones stored while it was paused first."""
    settings = _settings(config_file)
    _known_route(settings, route)
    with _store(settings) as store:
        done = store.resume_route(route)
    click.echo(f"route {route}: " + ("resumed" if done else "was not paused"))


@main.group("admin")
def admin_group() -> None:
    """Operator console helpers."""


@admin_group.command("hash-password")
@click.password_option(
    "--password", prompt="Console password", help="The password (asked for when not given)."
)
def hash_password(password: str) -> None:
    """Print the hash to put in ``admin.password_hash``."""
    from werkzeug.security import generate_password_hash

    click.echo(generate_password_hash(password))


@main.group()
def tickets() -> None:
    """Read tickets back from ProProfs."""


def _day_or_time(value: str, tz: ZoneInfo, end: bool = False) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD) or an ISO time") from None
    if len(value) == 10 and end:
        parsed = parsed + timedelta(days=1) - timedelta(seconds=1)  # the whole day
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)  # dates are the account's days
    return parsed


@tickets.command("export")
@config_option
@click.option("--since", required=True, help="First day (YYYY-MM-DD), in the account's zone.")
@click.option("--until", help="Last day (default: now).")
@click.option("--status", type=click.Choice([s.lower() for s in STATUSES_FOR_EXPORT]))
@click.option("--inbox", help="An inbox id, e.g. IB238-436.")
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv", show_default=True
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write here (resumable); default: standard output.",
)
def tickets_export(
    config_file: str | None,
    since: str,
    until: str | None,
    status: str | None,
    inbox: str | None,
    fmt: str,
    out: Path | None,
) -> None:
    """Export tickets over any date range (3-month windows), resumable, with a summary."""
    settings = _settings(config_file)
    tz = ZoneInfo(settings.proprofs.timezone)
    start = _day_or_time(since, tz)
    end = _day_or_time(until, tz, end=True) if until else None
    if end is not None and end <= start:
        raise click.BadParameter("--until must be after --since")
    tty = sys.stderr.isatty()

    def report(text: str) -> None:
        if tty:
            click.echo(f"\r\033[K{text}", nl=False, err=True)

    with proprofs_client(settings) as client:
        try:
            summary = export(
                client,
                since=start,
                until=end,
                fmt=fmt,
                out=out,
                status=status,
                inbox=inbox,
                report=report,
            )
        except ProProfsError as exc:
            if tty:
                click.echo("", err=True)
            click.echo(
                f"export stopped: {exc}; run the same command again to resume"
                if out
                else f"export stopped: {exc}",
                err=True,
            )
            raise SystemExit(1) from None
    if tty:
        click.echo("", err=True)
    click.echo(summary.line(str(out) if out else "standard output"), err=True)


if __name__ == "__main__":  # pragma: no cover
    main()
