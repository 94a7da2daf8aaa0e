"""The configuration reference, generated from the marshmallow schemas that load ``bridge.yaml``.

Every key's type, default, allowed values and text come from its schema field (its
``metadata`` holds the text), so the documentation site's reference page cannot drift from
what the loader accepts. A key without a text is an error here, and so fails the docs build.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from marshmallow import Schema, fields, missing, validate

from . import auth, browser, route_schema, schema
from .fields import Duration
from .schema import TopSchema

UNIT_NAMES = (("d", 86400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0))


@dataclass(frozen=True)
class Key:
    """One config key in the reference."""

    path: str  # dotted, with <placeholders> for names the user picks: routes.<route>.kind
    name: str
    type: str
    default: str  # "" when none; "required" when the key must be given
    allowed: str
    about: str
    kinds: tuple[str, ...] = ()


@dataclass(frozen=True)
class Section:
    """One section of the reference: a schema and its keys."""

    path: str  # "" for the top level
    about: str
    keys: tuple[Key, ...]


def sections() -> list[Section]:
    """Every section of the config, top level first, each nested section after its parent."""
    found: list[Section] = []
    _walk(TopSchema, "", "The top level of `bridge.yaml`.", found, seen=set())
    return found


def accepted_paths() -> set[str]:
    """Every key path the config accepts (``routes.<route>.fields.<field>.type``)."""
    return {key.path for section in sections() for key in section.keys}


def markdown() -> str:
    """The reference as Markdown: a table per section."""
    out: list[str] = []
    for section in sections():
        title = f"`{section.path}`" if section.path else "Top level"
        out += [f"## {title}", "", section.about, ""]
        out += ["| key | type | default | what it does |", "|---|---|---|---|"]
        for key in section.keys:
            what = key.about
            if key.kinds:
                what += f" *Only {' and '.join(key.kinds)} routes.*"
            if key.allowed:
                what += f" {key.allowed}"
            default = "**required**" if key.default == "required" else key.default
            out.append(f"| `{key.name}` | {key.type} | {default} | {_cell(what)} |")
        out.append("")
    return "\n".join(out)


def _walk(
    schema: type[Schema], path: str, about: str, found: list[Section], seen: set[type[Schema]]
) -> None:
    seen.add(schema)
    keys: list[Key] = []
    nested: list[tuple[type[Schema], str, str]] = []
    for attr, field in schema().fields.items():
        name = field.data_key or attr
        key_path = f"{path}.{name}" if path else name
        meta = field.metadata
        if not meta.get("about"):
            raise ValueError(f"{schema.__name__}.{attr} has no reference text (metadata about)")
        child: type[Schema] | None = meta.get("schema")
        each = meta.get("each")
        type_name = _type(field)
        if child is not None and each:
            type_name = f"mapping of {each} name → settings"
        elif child is not None:
            type_name = "mapping"
        keys.append(
            Key(
                path=key_path,
                name=name,
                type=type_name,
                default=_default(field),
                allowed=_allowed(field),
                about=meta["about"],
                kinds=tuple(meta.get("kinds", ())),
            )
        )
        if child is not None and child not in seen:
            nested.append((child, f"{key_path}.<{each}>" if each else key_path, meta["about"]))
    found.append(Section(path, about, tuple(keys)))
    for child, child_path, child_about in nested:
        if child not in seen:
            _walk(child, child_path, child_about, found, seen)


def _type(field: fields.Field[Any]) -> str:
    if isinstance(field, fields.List):
        return f"list of {_type(field.inner)}"
    for kind, name in (
        (Duration, "duration"),
        (fields.Email, "email address"),
        (fields.URL, "URL"),
        (fields.String, "string"),
        (fields.Boolean, "boolean"),
        (fields.Integer, "integer"),
        (fields.Float, "number"),
        (fields.Dict, "mapping"),
        (fields.Nested, "mapping"),
    ):
        if isinstance(field, kind):
            return name
    return "any"


def _default(field: fields.Field[Any]) -> str:
    if field.required:
        return "required"
    value = field.load_default
    if value is missing or value is None:
        return ""
    if callable(value):
        value = value()
    if not value and isinstance(value, dict | list):
        return ""
    if isinstance(field, Duration):
        return f"`{_duration(float(value))}`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`"


def _duration(seconds: float) -> str:
    for unit, size in UNIT_NAMES:
        if seconds >= size and (seconds / size).is_integer():
            return f"{int(seconds / size)}{unit}"
    return f"{seconds:g}s"


def _allowed(field: fields.Field[Any]) -> str:
    parts = list(_rules(field))
    if isinstance(field, fields.List):
        parts += [f"Each: {_lower(rule)}" for rule in _rules(field.inner)]
    if isinstance(field, fields.Dict) and field.key_field is not None:
        parts += [f"Keys: {_lower(rule)}" for rule in _rules(field.key_field)]
    return " ".join(parts)


def _rules(field: fields.Field[Any]) -> Iterator[str]:
    for rule in field.validators:
        if isinstance(rule, validate.OneOf):
            yield "One of " + ", ".join(f"`{choice}`" for choice in rule.choices) + "."
        elif isinstance(rule, validate.Range):
            low = "" if rule.min is None else _number(rule.min)
            high = "" if rule.max is None else _number(rule.max)
            yield f"From {low} to {high}." if low and high else f"At least {low}."
        elif isinstance(rule, validate.Length) and rule.min == 1:
            yield "Not empty."
        elif isinstance(rule, validate.Length) and rule.min:
            unit = "items" if isinstance(field, fields.List) else "characters"
            yield f"At least {rule.min} {unit}."
        elif isinstance(rule, validate.Regexp) and not rule.error.startswith("String does not"):
            yield rule.error[0].upper() + rule.error[1:] + "."


def _number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def _lower(rule: str) -> str:
    return rule[0].lower() + rule[1:]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def schemas_in_config() -> set[type[Schema]]:
    """Every schema class the config package defines (the reference must reach them all)."""
    return {
        value
        for module in (auth, browser, route_schema, schema)
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, Schema)
        and value.__module__ == module.__name__
        and not value.__name__.startswith("_")
    }
