"""The YAML document: plain data, the line of every key path, ``${VAR}`` expanded."""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from marshmallow import Schema, ValidationError, fields

INTERPOLATION = re.compile(r"\$\$|\$\{([^}]*)\}")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


SECRET_KEYS = frozenset(
    {
        "token",
        "secret",
        "password",
        "bearer",
        "password_hash",
        "signing_key",
        "api_key",
        "hmac_secret",
        "identity_secret",
        "secret_key",
        "secret_access_key",
    }
)


class ConfigError(Exception):
    """The config is unusable; ``problems`` lists every reason, each naming file:line path."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class Document:
    """A YAML document as plain data plus the line of every key path."""

    def __init__(self, text: str, filename: str, env: Mapping[str, str]) -> None:
        self.filename = filename
        self.env = env
        self.lines: dict[tuple[Any, ...], int] = {}
        self.problems: list[str] = []
        self.failed: set[str] = set()  # key paths whose interpolation failed
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else 1
            problem = getattr(exc, "problem", None) or str(exc)
            raise ConfigError([f"{filename}:{line} (yaml): {problem}"]) from None
        self.data = self._walk(node, ()) if node is not None else {}

    def _walk(self, node: yaml.Node, path: tuple[Any, ...]) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = str(key_node.value)
                line = key_node.start_mark.line + 1
                if key in out:
                    self.problems.append(
                        f"{self.filename}:{line} {dotted((*path, key))}: duplicate key"
                    )
                self.lines[(*path, key)] = line
                out[key] = self._walk(value_node, (*path, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self._walk(item, (*path, i)) for i, item in enumerate(node.value)]
        assert isinstance(node, yaml.ScalarNode)
        value = _SCALARS.construct_object(node)
        if isinstance(value, str) and "$" in value:
            value = self._interpolate(value, path)
        return value

    def _interpolate(self, text: str, path: tuple[Any, ...]) -> str:
        def replace(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            expr = match.group(1)
            if expr.startswith("file:"):
                file_path = expr[5:]
                try:
                    return Path(file_path).read_text().rstrip("\r\n")
                except OSError as exc:
                    self._problem(path, f"cannot read {file_path}: {exc.strerror}")
                    return ""
            name, has_default, default = expr.partition(":-")
            if not ENV_NAME.match(name):
                self._problem(path, f"'${{{expr}}}' is not a variable reference")
                return ""
            value = self.env.get(name)
            if value is None or (has_default and value == ""):
                if has_default:
                    return default
                self._problem(path, f"environment variable {name} is not set (and has no default)")
                return ""
            return value

        # "$${" stays a literal "${" (escape), as in compose files.
        return INTERPOLATION.sub(replace, text)

    def _problem(self, path: tuple[Any, ...], message: str) -> None:
        self.failed.add(dotted(path))
        self.problems.append(f"{self.filename}:{self.line(path)} {dotted(path)}: {message}")

    def line(self, path: tuple[Any, ...]) -> int:
        """The line of ``path``, or of its nearest ancestor the file states."""
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, 1)


_SCALARS = yaml.SafeLoader("")  # only its constructor is used, for plain scalars


def dotted(path: tuple[Any, ...]) -> str:
    """A key path as people write it: ``routes.contact.kind``."""
    return ".".join(str(p) for p in path) or "(top)"


def flatten(messages: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], str]]:
    """marshmallow's nested messages as (sub-path, text); Dict's 'key'/'value' levels folded."""
    out: list[tuple[tuple[Any, ...], str]] = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            if (key in ("value", "key") and prefix) or key == "_schema":
                out += flatten(value, prefix)
            else:
                out += flatten(value, (*prefix, key))
    elif isinstance(messages, list):
        for item in messages:
            out += flatten(item, prefix)
    else:
        text = str(messages)
        if text == "Unknown field.":
            text = UNKNOWN_KEY
        if text.split(" ", 1)[0] in MARSHMALLOW_OPENERS:
            text = text[:1].lower() + text[1:]  # "Must be one of" → "must be one of"
        out.append((prefix, text))
    return out


UNKNOWN_KEY = "unknown key (check its spelling)"


def known_keys(schema: Schema, path: tuple[Any, ...]) -> list[str]:
    """The keys the section at ``path`` under ``schema`` takes, as the file spells them
    (none where the path leads out of the schemas, into a mapping of the user's names)."""
    current = schema
    for part in path:
        found = next(
            (f for name, f in current.fields.items() if (f.data_key or name) == part), None
        )
        if not isinstance(found, fields.Nested) or not isinstance(found.schema, Schema):
            return []
        current = found.schema
    return [f.data_key or name for name, f in current.fields.items() if not f.dump_only]


MARSHMALLOW_OPENERS = frozenset(
    {
        "Must",
        "Not",
        "Missing",
        "Unknown",
        "Length",
        "Field",
        "Invalid",
        "Shorter",
        "Longer",
        "String",
        "Does",
        "Value",
    }
)


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults under a route, dicts merged key by key (custom field maps too), lists replaced."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def mask_secrets(value: Any) -> Any:
    """A copy with every secret-looking key's value replaced, for display."""
    if isinstance(value, Mapping):
        return {
            k: ("********" if k in SECRET_KEYS and v else mask_secrets(v)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [mask_secrets(v) for v in value]
    return value


class Report:
    """What building settings found: problems (fatal) and warnings, each as
    ``file:line key.path: text``. Called with a path and marshmallow's messages."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.problems = list(doc.problems)
        self.warnings: list[str] = []

    def __call__(self, path: tuple[Any, ...], messages: Any, schema: Schema | None = None) -> None:
        for sub, message in flatten(messages):
            full = path + sub
            if dotted(full) in self.doc.failed:
                continue  # already reported: its variable or file is missing
            if message == UNKNOWN_KEY and schema is not None and sub:
                guess = difflib.get_close_matches(str(sub[-1]), known_keys(schema, sub[:-1]), 1)
                if guess:
                    message = f"unknown key; did you mean {guess[0]}?"
            self.problems.append(self._at(full, message))

    def warn(self, path: tuple[Any, ...], message: str) -> None:
        """Note something that works but is probably not meant."""
        self.warnings.append(self._at(path, message))

    def stop_if_any(self) -> None:
        """Stop here (:class:`ConfigError`) when a problem was found."""
        if self.problems:
            raise ConfigError(self.problems)

    def _at(self, path: tuple[Any, ...], message: str) -> str:
        return f"{self.doc.filename}:{self.doc.line(path)} {dotted(path)}: {message}"


def load(schema: Schema, data: Any, path: tuple[Any, ...], report: Report) -> dict[str, Any] | None:
    """The loaded data, or ``None`` after reporting every problem under ``path``."""
    try:
        return dict(schema.load(data))
    except ValidationError as exc:
        report(path, exc.messages, schema)
        return None


def load_partly(
    schema: Schema, data: Any, path: tuple[Any, ...], report: Report
) -> tuple[dict[str, Any], bool]:
    """Like :func:`_load`, but keeps what was valid so later checks can still report."""
    try:
        return dict(schema.load(data)), True
    except ValidationError as exc:
        report(path, exc.messages, schema)
        valid = exc.valid_data if isinstance(exc.valid_data, dict) else {}
        return dict(valid), False
