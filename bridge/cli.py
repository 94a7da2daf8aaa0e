"""The ``bridge`` command."""

from __future__ import annotations

import json
import signal
import sys
import threading

import click
from marshmallow import ValidationError

from .config import ConfigError, Settings, load_settings
from .mapping import MappingError, validation_messages
from .proprofs.emulator import EmulatorServer, EmulatorState, Faults

DEMO_EMAIL = "demo@example.com"
DEMO_TOKEN = "demo-token"


@click.group()
@click.version_option(package_name="proprofs-bridge")
def main() -> None:
    """proprofs-bridge: forms, alerts and a support widget in; ProProfs tickets out."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8025, show_default=True, type=int)
@click.option("--account-email", default=DEMO_EMAIL, show_default=True)
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
@click.option("--lose-mode", type=click.Choice(["hang", "drop"]), default="hang")
@click.option("--hang-seconds", type=float, default=10.0)
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
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    server.start()
    try:
        stop.wait()
    finally:
        server.stop()


@main.command()
@click.option("--port", default=8025, show_default=True, type=int, help="Emulator port.")
def demo(port: int) -> None:
    """Start the emulator and show how to create and list a ticket against it."""
    state = EmulatorState(DEMO_EMAIL, DEMO_TOKEN)
    server = EmulatorServer(state, "127.0.0.1", port)
    base = server.base_url
    create = {
        "account_email": DEMO_EMAIL,
        "token": DEMO_TOKEN,
        "email": "jane@example.com",
        "name": "Jane Doe",
        "subject": "Hello from the demo",
        "description": "My first ticket.",
        "priority": "normal",
    }
    listing = {"account_email": DEMO_EMAIL, "token": DEMO_TOKEN}
    headers = "-H 'Accept: application/json' -H 'Content-Type: application/json'"
    click.echo(f"""ProProfs emulator running at {base}

Create a ticket:
  curl -s {headers} -d '{json.dumps(create)}' {base}create/ticket/

List tickets:
  curl -s {headers} -d '{json.dumps(listing)}' {base}list/ticket/

Everything stored: curl -s {server.url}/_emulator/tickets
Press Ctrl-C to stop.""")
    sys.stdout.flush()
    _serve_until_signal(server)


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
    click.echo(f"{settings.source_path}: OK — {len(settings.routes)} route(s)")
    for route in settings.routes.values():
        what = (
            route.source.name
            if route.source
            else ("declared fields" if route.fields else "custom schema")
        )
        click.echo(f"  {route.kind:<6} {route.path:<28} {what}")


@main.command("try")
@config_option
@click.argument("route")
@click.argument("payload", type=click.File("r"))
def try_route(config_file: str | None, route: str, payload: click.utils.LazyFile) -> None:
    """Show the ticket PAYLOAD (JSON file, or -) would become on ROUTE; creates nothing."""
    settings = _settings(config_file)
    selected = settings.routes.get(route)
    if selected is None:
        click.echo(f"no route {route!r}; routes: {', '.join(settings.routes)}", err=True)
        raise SystemExit(1)
    try:
        body = json.load(payload)
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


if __name__ == "__main__":  # pragma: no cover
    main()
