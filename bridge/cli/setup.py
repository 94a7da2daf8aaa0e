"""Setting up: ``init``, ``check-config``, ``try``, ``doctor`` and the ``demo``."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import click

from ..resources import examples_dir
from .group import (
    DEMO_EMAIL,
    DEMO_TOKEN,
    boot_problem,
    config_option,
    main,
    settings_or_exit,
    split_names,
)


@main.command("check-config")
@config_option
def check_config(config_file: str | None) -> None:
    """Validate the config; every problem names the file, line and key path."""
    settings = settings_or_exit(config_file)
    problem = boot_problem(settings)
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
@click.option(
    "--site",
    "sites",
    help="Your site's address(es), comma separated: its pages may post to the forms and "
    "embed the widget (their origins:).",
)
@click.option("--force", is_flag=True, help="Overwrite existing files.")
def init(
    forms: str | None,
    alerts: str | None,
    widgets: str | None,
    base_url: str,
    out: str,
    sites: str | None,
    force: bool,
) -> None:
    """Write a commented, working config for what you have, and say what to set up."""
    from ..init import render, site_origin

    if not (forms or alerts or widgets):
        if not sys.stdin.isatty():
            from ..init import presets

            click.echo(
                "say what you have: --form NAME, --alerts PRESET[,PRESET…], --widget NAME "
                f"(presets: {presets()})",
                err=True,
            )
            raise SystemExit(2)
        forms, alerts, widgets, base_url, sites = _ask(base_url)
    chosen = [[n for n in split_names(v) if n != "-"] for v in (forms, alerts, widgets)]
    try:
        origins = [site_origin(site) for site in split_names(sites)]
        written = render(
            forms=chosen[0],
            alerts=chosen[1],
            widgets=chosen[2],
            base_url=base_url.rstrip("/"),
            sites=origins,
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


def _ask(base_url: str) -> tuple[str, str, str, str, str]:
    """The questions ``bridge init`` asks on a terminal; each answer is checked as it is
    given, and asked again until it is usable."""
    from ..init import bad_route_names, presets, site_origin, unknown_presets

    def chosen(value: str) -> list[str]:
        return [name for name in split_names(value) if name != "-"]

    def names(kind: str) -> Callable[[str], str]:
        def check(value: str) -> str:
            bad = bad_route_names(chosen(value))
            if bad:
                raise click.BadParameter(f"{bad[0]!r} is not a route name ({kind}: a-z, 0-9, - _)")
            return value

        return check

    def senders(value: str) -> str:
        unknown = unknown_presets(chosen(value))
        if unknown:
            raise click.BadParameter(f"unknown: {', '.join(unknown)}; one of {presets()}")
        return value

    def address(value: str) -> str:
        try:
            site_origin(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
        return value.rstrip("/")

    def addresses(value: str) -> str:
        for site in chosen(value):
            address(site)
        return value

    forms = click.prompt(
        "A contact form? Its route name, or - for none", default="contact", value_proc=names("form")
    )
    alerts = click.prompt(
        f"Alert senders, comma separated, or - for none ({presets()})",
        default="-",
        value_proc=senders,
    )
    widgets = click.prompt(
        "A support widget? Its route name, or - for none", default="-", value_proc=names("widget")
    )
    sites = "-"
    if any(n != "-" for n in split_names(forms) + split_names(widgets)):
        sites = click.prompt(
            "Your site's address, where the form or widget goes (comma separated; - for none)",
            default="https://www.example.com",
            value_proc=addresses,
        )
    base = click.prompt(
        "Where will the bridge be reached (its public URL)?", default=base_url, value_proc=address
    )
    return forms, alerts, widgets, base, "" if sites == "-" else sites


@main.command()
@config_option
def doctor(config_file: str | None) -> None:
    """Check a deployment from its config: store, Redis, ProProfs, each route's templates."""
    from ..doctor import run

    settings = settings_or_exit(config_file)
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
    from marshmallow import ValidationError

    from ..doctor import sample
    from ..mapping import MappingError, validation_messages

    settings = settings_or_exit(config_file)
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


@main.command()
@click.option("--port", default=8000, show_default=True, type=int, help="Bridge port.")
@click.option("--emulator-port", default=8025, show_default=True, type=int, help="Emulator port.")
@click.option(
    "--site-port",
    default=8026,
    show_default=True,
    type=int,
    help="Port of the sample shop page (another origin) with the form and the widget.",
)
@click.option(
    "--data",
    default="bridge-demo",
    show_default=True,
    type=click.Path(file_okay=False),
    help="The one directory the demo writes to (database, lock file, kept files).",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    help="Config (default: the demo config shipped with the package).",
)
def demo(port: int, emulator_port: int, site_port: int, data: str, config_file: str | None) -> None:
    """The ProProfs emulator and the bridge, with delivery, on embedded defaults."""
    from ..demo import command_name, data_directory, serve_shop
    from ..proprofs.emulator import EmulatorServer, EmulatorState
    from ..serving import run_serve

    path = (Path(config_file) if config_file else examples_dir() / "demo.yaml").resolve()
    if not path.is_file():
        click.echo(f"cannot find {path}", err=True)
        raise SystemExit(1)
    directory = data_directory(data)
    bridge_url = f"http://127.0.0.1:{port}"
    state = EmulatorState(DEMO_EMAIL, DEMO_TOKEN)
    emulator_server = EmulatorServer(state, "127.0.0.1", emulator_port).start()
    shop, site = serve_shop(directory / "shop", site_port, bridge_url)
    extra = {
        "DEMO_PROPROFS_URL": emulator_server.base_url,
        "DEMO_SITE": site,
        "DEMO_STORE": os.environ.get("BRIDGE_STORE") or f"sqlite:///{directory / 'demo.db'}",
    }
    os.environ.update(extra)
    settings = settings_or_exit(str(path))
    bridge = command_name()
    click.echo(f"""
proprofs-bridge demo
  bridge:    {bridge_url}
  emulator:  {emulator_server.base_url}
  data:      {directory}   (store: {settings.store}; delete the directory to start afresh)

A shop page on another origin, with the contact form and the support widget:
  {site}/
The hosted contact form:   {bridge_url}/forms/contact
API description:           {bridge_url}/openapi.json   metrics: {bridge_url}/metrics

Send an alert-style webhook (becomes a ticket within a second):
  curl -s -X POST {bridge_url}/hooks/events -H 'Content-Type: application/json' \\
       -d '{{"id": "evt-1", "title": "Nightly backup failed", "severity": "critical"}}'

See the tickets the emulator holds:
  curl -s {emulator_server.url}/_emulator/tickets

Inspect the outbox:
  {bridge} outbox list --config {path}
Press Ctrl-C to stop.
""")
    sys.stdout.flush()
    try:
        code = run_serve(settings, str(path), "127.0.0.1", port, 2, True, extra)
    finally:
        shop.shutdown()
        emulator_server.stop()
    raise SystemExit(code)
