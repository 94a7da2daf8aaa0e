"""The ``bridge`` group, and what every command loads: its config, store and logging."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from .. import __version__

if TYPE_CHECKING:
    from ..config import Settings
    from ..outbox.store import SubmissionStore

DEMO_EMAIL = "demo@example.com"
DEMO_TOKEN = "demo-token"


@click.group()
@click.version_option(__version__, prog_name="bridge")
def main() -> None:
    """proprofs-bridge: forms, alerts and a support widget in; ProProfs tickets out."""


config_option = click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Config file (default: $BRIDGE_CONFIG, then ./bridge.yaml).",
)


def settings_or_exit(config_file: str | None) -> Settings:
    """The settings, or every problem printed and exit code 2."""
    from ..config import ConfigError, load_settings

    try:
        return load_settings(config_file)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        raise SystemExit(1) from None


def boot_problem(settings: Settings) -> str | None:
    """Build everything ``create_app`` builds (OpenAPI document included), and check that a
    SQLite store can be written here: what would stop the app from starting."""
    from ..app import create_app
    from ..observability import RedactFilter, settings_secrets

    try:
        create_app(settings)
    except Exception as exc:
        text = RedactFilter(settings_secrets(settings)).clean(f"{type(exc).__name__}: {exc}")
        return f"{settings.source_path}: the app cannot start with this config: {text}"
    return store_problem(settings)


def store_problem(settings: Settings) -> str | None:
    """Why this process cannot write the configured SQLite store, or ``None``."""
    from ..outbox.sqlite import sqlite_problem

    problem = sqlite_problem(settings.store)
    return f"{settings.source_path}: store: {problem}" if problem else None


def split_names(value: str | None) -> list[str]:
    """``"a, b"`` → ``["a", "b"]`` (an option's comma-separated names)."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def open_outbox(settings: Settings, *, gather: float = 0.0) -> SubmissionStore:
    """The outbox, with a connection for each delivery slot and two to spare."""
    from ..attachments import open_store
    from ..outbox.store import SubmissionStore

    return SubmissionStore(
        settings.store,
        pool_size=settings.delivery.concurrency + 2,
        files=open_store(settings.files),
        gather=gather,
    )


def configure_logs(settings: Settings) -> None:
    """JSON or plain lines at the configured level, secrets redacted."""
    from ..observability import configure_logging, settings_secrets

    configure_logging(
        level=settings.server.log_level,
        json_lines=settings.server.log_json,
        secrets=settings_secrets(settings),
    )
