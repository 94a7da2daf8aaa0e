"""The command reference, generated from the click commands (the docs site's Commands page)."""

from __future__ import annotations

import inspect

import click


def markdown() -> str:
    """The command reference page, from the CLI's own help."""
    from .cli import main

    out: list[str] = []
    for path, command in _commands(main, ("bridge",)):
        if isinstance(command, click.Group):
            continue
        out += _command(path, command)
    return "\n".join(out)


def _commands(
    group: click.Group, path: tuple[str, ...]
) -> list[tuple[tuple[str, ...], click.Command]]:
    found: list[tuple[tuple[str, ...], click.Command]] = []
    for name in sorted(group.commands):
        command = group.commands[name]
        if command.hidden:
            continue
        found.append(((*path, name), command))
        if isinstance(command, click.Group):
            found += _commands(command, (*path, name))
    return found


def _command(path: tuple[str, ...], command: click.Command) -> list[str]:
    ctx = click.Context(command, info_name=" ".join(path))
    usage = " ".join([*path, *command.collect_usage_pieces(ctx)])
    help_text = inspect.cleandoc(command.help or "").replace("\b\n", "").replace("``", "`")
    out = [f"## `{' '.join(path)}`", "", help_text, "", "```", usage, "```", ""]
    rows = []
    for param in command.get_params(ctx):
        if not isinstance(param, click.Option) or "--help" in param.opts:
            continue
        names = ", ".join(f"`{n}`" for n in [*param.opts, *param.secondary_opts])
        what = param.help or ""
        if isinstance(param.type, click.Choice):
            what += (
                (" " if what else "")
                + "One of "
                + ", ".join(f"`{c}`" for c in param.type.choices)
                + "."
            )
        elif not param.is_flag:
            names += f" `{param.metavar or param.make_metavar(ctx)}`"
        value = param.get_default(ctx, call=False)
        shown = value is not None and not callable(value) and value not in ((), False, "")
        shown = shown and value is not getattr(click.core, "UNSET", object())
        default = f"`{value}`" if shown and param.show_default is not False else ""
        if not what:
            raise ValueError(f"{' '.join(path)} {param.opts[0]} has no help text")
        rows.append(f"| {names} | {default} | {_cell(what)} |")
    if rows:
        out += ["| option | default | what it does |", "|---|---|---|", *rows, ""]
    return out


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())
