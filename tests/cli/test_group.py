"""The ``bridge`` group: it starts without the web or database stack, and its help is text."""

from __future__ import annotations

import subprocess
import sys

import click
from click.testing import CliRunner

from bridge.cli import main

HEAVY = ("sqlalchemy", "flask", "marshmallow", "jinja2", "requests", "gunicorn", "alembic")


def test_the_command_loads_no_web_or_database_stack_until_a_command_runs() -> None:
    probe = f"import sys, bridge.cli; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    assert loaded == ""


def test_every_commands_help_is_plain_text() -> None:
    def walk(group: click.Group, path: list[str]) -> list[list[str]]:
        found = [path]
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                found += walk(command, [*path, name])
            else:
                found.append([*path, name])
        return found

    for path in walk(main, []):
        result = CliRunner().invoke(main, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        for markup in ("``", ":class:", ":func:", ":data:"):
            assert markup not in result.output, (path, markup)
