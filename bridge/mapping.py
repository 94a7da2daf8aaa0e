"""Route schema + sandboxed templates → :class:`TicketDraft`.

Templates come from the config only. Submitted data reaches them as values,
never as template source, so ``{{ 7*7 }}`` typed into a form stays text.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from jinja2 import ChainableUndefined, TemplateError, meta, nodes
from jinja2 import Template as JinjaTemplate
from jinja2.exceptions import SecurityError
from jinja2.runtime import new_context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import concat
from marshmallow import EXCLUDE, INCLUDE, RAISE, Schema, ValidationError

from .proprofs.models import PRIORITIES, TicketDraft
from .sources import NOT_AN_OBJECT, GenericSchema

TICKET_FIELDS = ("subject", "description", "name", "email", "phone", "priority", "staff", "inbox")
DEFAULT_MAX_LENGTHS = {
    "subject": 200,
    "description": 60_000,
    "name": 200,
    "email": 254,
    "phone": 40,
    "staff": 40,
    "inbox": 40,
    "custom_field": 1_000,
}
UNKNOWN_POLICIES = ("reject", "drop", "append")
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f\u200b\ufeff]")
LINE_SEPARATORS = re.compile(r"[\x0b\x0c\x85\u2028\u2029]")
WHITESPACE_RUN = re.compile(r"\s+")
EMAIL_RE = re.compile(r"^[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;]+$")
TRUNCATION_MARK = "…"

#: What marshmallow does with keys a schema does not declare.
UnknownMode = Literal["exclude", "include", "raise"]


class MappingError(Exception):
    """A route's templates could not make a ticket from valid data (a config problem)."""


#: ``json.dumps(…, default=str, ensure_ascii=False)``, one encoder for every call.
_encode = json.JSONEncoder(default=str, ensure_ascii=False).encode


def _is_mapping(value: Any) -> bool:
    """``isinstance(value, Mapping)``, answered at once for a plain dict (what JSON and the
    schemas give): the abstract class's check costs a dozen times more."""
    return type(value) is dict or isinstance(value, Mapping)


def _kv(value: Any, indent: str = "") -> str:
    """A mapping as readable ``key: value`` lines (nested values indented)."""
    if not _is_mapping(value):
        return _text(value)
    lines = []
    for key, item in value.items():
        if type(item) is str:
            lines.append(f"{indent}{key}: {item}")
        elif _is_mapping(item) and item:
            lines.append(f"{indent}{key}:")
            lines.append(_kv(item, indent + "  "))
        elif isinstance(item, list | tuple):
            lines.append(f"{indent}{key}: {', '.join(_text(i) for i in item)}")
        else:
            lines.append(f"{indent}{key}: {_text(item)}")
    return "\n".join(lines)


def _text(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return value  # type: ignore[no-any-return]
    if kind is int:
        return str(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping | list | tuple):
        return _encode(value)
    return str(value)


def _without(value: Any, *keys: str) -> Any:
    """A mapping without some keys (``data|without('message')|kv``)."""
    if not isinstance(value, Mapping):
        return value
    return {k: v for k, v in value.items() if k not in keys}


def _oneline(value: Any) -> str:
    return WHITESPACE_RUN.sub(" ", _text(value)).strip()


def _digest(value: Any, length: int = 16) -> str:
    return hashlib.sha256(_text(value).encode()).hexdigest()[:length]


def _finalize(value: Any) -> Any:
    """A missing optional value prints as nothing, not "None"."""
    return "" if value is None else value


_PATH = r"[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)*"
#: ``{{ name }}`` or ``{{ a.b }}``: rendered by a plain lookup, the same result without Jinja.
SIMPLE_LOOKUP = re.compile(rf"^\{{\{{\s*({_PATH})\s*\}}\}}$")
#: ``{{ a.b or c.d or '' }}`` (the presets' fallbacks): the first value that is set, by
#: plain lookups too.
OR_CHAIN = re.compile(rf"^\{{\{{\s*({_PATH}(?:\s+or\s+{_PATH})+)(\s+or\s+(?:''|\"\"))?\s*\}}\}}$")
#: ``{{ data | kv }}`` (the presets' descriptions): the filter called on a plain lookup.
KV_OF = re.compile(rf"^\{{\{{\s*({_PATH})\s*\|\s*kv\s*\}}\}}$")
_TEXT = r"[^'\\]*"  # inside single quotes, with no quote or backslash to unescape
_WORD = rf"'({_TEXT})'"
#: ``{{ 'resolved' if (data.status or data.state or '')|lower in ('resolved', 'ok') else
#: 'firing' }}`` (the generic preset's status): one of two words, by whether the first set
#: value of an ``or`` chain is one of a few words, in lower case.
CHOICE = re.compile(
    rf"^\{{\{{\s*{_WORD}\s+if\s+\(({_PATH}(?:\s+or\s+{_PATH})*)\s+or\s+''\)\s*\|\s*lower\s+in"
    rf"\s+\(('{_TEXT}'(?:\s*,\s*'{_TEXT}')*)\s*,?\s*\)\s+else\s+{_WORD}\s*\}}\}}$"
)


def make_environment() -> ImmutableSandboxedEnvironment:
    """The one template environment: sandboxed, immutable, plain text (no HTML escaping)."""
    env = ImmutableSandboxedEnvironment(
        autoescape=False,
        undefined=ChainableUndefined,
        keep_trailing_newline=False,
        finalize=_finalize,
    )
    env.filters.update(
        {"kv": _kv, "without": _without, "oneline": _oneline, "hash": _digest, "text": _text}
    )
    return env


ENV = make_environment()
#: The only globals templates see (Jinja's cycler, joiner and lipsum are left out).
TEMPLATE_GLOBALS = {
    "range": ENV.globals["range"],
    "dict": dict,
    "namespace": ENV.globals["namespace"],
}
BUILTIN_VARIABLES = frozenset({"data", "route", "ref", "received_at", "meta", "extra"})


@dataclass(frozen=True)
class TicketSpec:
    """The ``ticket:`` block of a route: a literal or template per create-ticket field."""

    subject: str | None = None
    description: str | None = None
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    priority: str | None = None
    staff: str | None = None
    inbox: str | None = None
    custom_fields: Mapping[str, str] = field(default_factory=dict)
    priority_map: Mapping[str, str] = field(default_factory=dict)
    priority_default: str = "normal"
    max_lengths: Mapping[str, int] = field(default_factory=dict)
    ref_field: str | None = None


@functools.lru_cache(maxsize=4096)
def _compile(source: str) -> tuple[JinjaTemplate, frozenset[str], bool, str, tuple[str, ...]]:
    """A source compiled once per process, however many routes share it (presets do):
    the template, the variables it reads, whether it has a default, its literal text, and
    the private attributes it would read."""
    tree = ENV.parse(source)
    variables = frozenset(meta.find_undeclared_variables(tree))
    has_default = any(f.name in ("default", "d") for f in tree.find_all(nodes.Filter))
    literal_text = "".join(n.data for n in tree.find_all(nodes.TemplateData)).strip()
    private = tuple(_private_names(tree))
    return ENV.from_string(source), variables, has_default, literal_text, private


class Template:
    """One compiled template with the variables it reads, for check-config."""

    def __init__(self, source: str, where: str) -> None:
        self.source = source
        self.where = where
        try:
            compiled = _compile(source)
        except TemplateError as exc:
            raise MappingError(f"{where}: template error: {exc}") from None
        self.compiled, self.variables, self.has_default, self.literal_text, private = compiled
        if private:
            raise MappingError(
                f"{where}: templates may not read private attributes ({', '.join(private)})"
            )
        self.is_literal = "{{" not in source and "{%" not in source
        lookup = SIMPLE_LOOKUP.match(source.strip())
        self.lookup = tuple(lookup.group(1).split(".")) if lookup else None
        chain = OR_CHAIN.match(source.strip()) if lookup is None else None
        self.chain = (
            _paths(chain.group(1))
            if chain and chain.group(2)  # ends in '': nothing falls through to Jinja's last value
            else None
        )
        kv_of = KV_OF.match(source.strip())
        self.kv_of = tuple(kv_of.group(1).split(".")) if kv_of else None
        choice = CHOICE.match(source.strip())
        #: (the word when the value is one of ``words``, the chain, ``words``, else-word)
        self.choice = (
            (
                choice.group(1),
                _paths(choice.group(2)),
                frozenset(re.findall(_WORD, choice.group(3))),
                choice.group(4),
            )
            if choice
            else None
        )

    def render(self, context: dict[str, Any]) -> str:
        """The template's text for ``context``."""
        if self.is_literal:
            return self.source
        if self.lookup is not None:
            return self._lookup(context)
        if self.chain is not None:
            found = _first(context, self.chain)
            if found is not None:
                return found
        if self.choice is not None:
            then, paths, words, otherwise = self.choice
            found = _first(context, paths)
            if found is not None:
                return then if found.lower() in words else otherwise
        if self.kv_of is not None:
            listed = _walk(context, self.kv_of)
            if isinstance(listed, Mapping):
                return _kv(listed)
        try:
            # One context, no copy of the environment's globals: the render context already
            # holds every name a ticket template may use (see RouteMapping.context). Made
            # directly, without the set of the globals' names Template.new_context builds
            # for modules (a tenth of a ticket's rendering).
            compiled = self.compiled
            ctx = new_context(ENV, compiled.name, compiled.blocks, context, shared=True)
            return concat(compiled.root_render_func(ctx))
        except SecurityError:
            raise MappingError(f"{self.where}: the template tried something unsafe") from None
        except TemplateError as exc:
            raise MappingError(f"{self.where}: template error: {exc}") from None
        except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as exc:
            raise MappingError(f"{self.where}: template failed: {type(exc).__name__}") from None

    def _lookup(self, context: Mapping[str, Any]) -> str:
        assert self.lookup is not None
        value = _walk(context, self.lookup)
        if value is None:
            return ""
        if value is _SANDBOX or isinstance(value, Mapping | list | tuple | bool | float):
            return self.compiled.render(context)  # Jinja's own formatting for these
        return str(value)


#: What :func:`_walk` gives where a path goes through something other than a mapping.
_SANDBOX = object()


def _paths(chain: str) -> list[tuple[str, ...]]:
    """The lookups of an ``or`` chain's text (``a.b or c``), each as its keys."""
    return [tuple(path.split(".")) for path in re.split(r"\s+or\s+", chain)]


def _first(context: Mapping[str, Any], chain: list[tuple[str, ...]]) -> str | None:
    """The first set value of an ``or`` chain of lookups (``""`` when none is), or ``None``
    where only Jinja can say (a value that is not plain text or a whole number, an
    attribute)."""
    for path in chain:
        value = _walk(context, path)
        if value is _SANDBOX:
            return None
        if value is None or value == "":
            continue
        if isinstance(value, str) or (type(value) is int):
            if value:
                return str(value)
            continue  # 0: false, as in Jinja
        return None
    return ""


def _walk(context: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """The value at ``path`` by plain key lookups: ``None`` where a key is missing or
    null, :data:`_SANDBOX` where the path goes on through anything but a mapping (an
    attribute, which only the sandbox may judge)."""
    value: Any = context
    for part in path:
        if _is_mapping(value):
            value = value.get(part)
        elif value is None:
            return None
        else:
            return _SANDBOX
    return value


def _in_sent_order(data: Mapping[str, Any], payload: Any) -> dict[str, Any]:
    """The loaded fields in the order the sender sent them (then defaults), not the schema's."""
    if not isinstance(payload, Mapping):
        return dict(data)
    ordered = {key: data[key] for key in payload if key in data}
    ordered.update((key, value) for key, value in data.items() if key not in ordered)
    return ordered


def _private_names(tree: nodes.Template) -> list[str]:
    """Attribute and item names starting with "_" — the first step of every sandbox escape."""
    found = [n.attr for n in tree.find_all(nodes.Getattr) if n.attr.startswith("_")]
    found += [
        str(n.arg.value)
        for n in tree.find_all(nodes.Getitem)
        if isinstance(n.arg, nodes.Const) and str(n.arg.value).startswith("_")
    ]
    return sorted(set(found))


class RouteMapping:
    """How one route turns a payload into a :class:`TicketDraft`."""

    def __init__(
        self,
        route: str,
        schema: Schema,
        spec: TicketSpec,
        *,
        unknown: str = "reject",
        dedup_key: str | None = None,
    ) -> None:
        if unknown not in UNKNOWN_POLICIES:
            raise ValueError(f"unknown must be one of {UNKNOWN_POLICIES}")
        self.route = route
        self.schema = schema
        self.spec = spec
        self.unknown = unknown
        self.max_lengths = {**DEFAULT_MAX_LENGTHS, **spec.max_lengths}
        where = f"routes.{route}.ticket"
        self.templates = {
            key: Template(getattr(spec, key), f"{where}.{key}")
            for key in TICKET_FIELDS
            if getattr(spec, key) is not None
        }
        self.custom_templates = {
            cf_id: Template(value, f"{where}.custom_fields.{cf_id}")
            for cf_id, value in spec.custom_fields.items()
        }
        self.dedup_template = (
            Template(dedup_key, f"routes.{route}.dedup_key") if dedup_key else None
        )
        self._priority_map = {k.lower(): v for k, v in spec.priority_map.items()}
        modes: dict[str, UnknownMode] = {"reject": RAISE, "drop": EXCLUDE, "append": INCLUDE}
        self._unknown_mode = modes[unknown]
        self._declared = frozenset(schema.fields)
        self.passthrough = getattr(schema, "unknown", RAISE) == INCLUDE
        # Any JSON object as it is: what marshmallow's load of this schema gives, without it.
        self.verbatim = type(schema) is GenericSchema

    # --- load -------------------------------------------------------------------------------

    def load(self, payload: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """Validate ``payload``; return (loaded data, undeclared extras for ``append``).

        Raises :class:`marshmallow.ValidationError` with per-field messages.
        """
        if self.verbatim:
            if not isinstance(payload, Mapping):
                raise ValidationError({"_schema": [NOT_AN_OBJECT]})
            return dict(payload), {}
        if self.passthrough:
            data = self.schema.load(payload)
            return dict(data), {}
        data = _in_sent_order(self.schema.load(payload, unknown=self._unknown_mode), payload)
        if self.unknown != "append":
            return data, {}
        known = {k: v for k, v in data.items() if k in self._declared}
        # The sender's order, not the loader's: a person reads them as they were sent.
        extras = {k: data[k] for k in payload if k in data and k not in self._declared}
        return known, extras

    # --- render -----------------------------------------------------------------------------

    def context(
        self,
        data: Mapping[str, Any],
        *,
        ref: str = "",
        meta: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
        received_at: datetime | None = None,
    ) -> dict[str, Any]:
        """What a route's templates see for one submission."""
        context: dict[str, Any] = dict(TEMPLATE_GLOBALS)
        context.update(data)
        context.update(
            data=data,
            route=self.route,
            ref=ref,
            meta=dict(meta or {}),
            extra=dict(extra or {}),
            received_at=received_at,
        )
        return context

    def render(
        self,
        data: Mapping[str, Any],
        *,
        ref: str,
        meta: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
        received_at: datetime | None = None,
    ) -> TicketDraft:
        """The ticket for already-loaded ``data``; its description ends with ``ref``'s footer."""
        context = self.context(data, ref=ref, meta=meta, extra=extra, received_at=received_at)
        values = {key: tpl.render(context) for key, tpl in self.templates.items()}
        email = self._line("email", values.get("email", ""))
        if not email or not EMAIL_RE.match(email):
            raise MappingError(
                f"routes.{self.route}.ticket.email: produced no valid requester email"
            )
        # A sender's words may be nothing but control characters or blanks: the ticket is
        # still made, under the route's name, rather than the submission refused.
        subject = self._line("subject", values.get("subject", "")) or (
            f"Submission on route {self.route}"
        )
        description = self._block(values.get("description", ""), extra)
        custom = {
            cf_id: self._cut(self._clean(tpl.render(context)).strip(), "custom_field")
            for cf_id, tpl in self.custom_templates.items()
        }
        if self.spec.ref_field and ref:
            custom[self.spec.ref_field] = ref
        return TicketDraft(
            email=email,
            subject=subject,
            name=self._line("name", values.get("name", "")) or None,
            phone=self._line("phone", values.get("phone", "")) or None,
            description=description + footer(ref) if ref else description,
            staff=self._line("staff", values.get("staff", "")) or None,
            priority=self._priority(values.get("priority", "")),  # type: ignore[arg-type]
            inbox=self._line("inbox", values.get("inbox", "")) or None,
            custom_fields={k: v for k, v in custom.items() if v != ""},
        )

    def dedup_key(
        self, data: Mapping[str, Any], meta: Mapping[str, Any] | None = None
    ) -> str | None:
        """The route-namespaced dedup key, or ``None`` when the route sets none."""
        if self.dedup_template is None:
            return None
        key = _oneline(self.dedup_template.render(self.context(data, meta=meta)))
        return f"{self.route}:{key}" if key else None

    def _priority(self, raw: str) -> str:
        value = _oneline(raw)
        mapped = self._priority_map.get(value.lower())
        if mapped:
            return mapped
        if value.lower() in PRIORITIES:
            return value.lower()
        return self.spec.priority_default

    def _line(self, key: str, value: str) -> str:
        if value.isascii() and value.isprintable() and "  " not in value:
            return self._cut(value.strip(), key)  # nothing to clean: the common case, fast
        return self._cut(_oneline(self._clean(value)), key)

    def _block(self, value: str, extra: Mapping[str, Any] | None) -> str:
        text = self._clean(value).strip()
        if extra:
            text = (text + "\n\nOther fields:\n" + _kv(extra)).strip()
        return self._cut(text, "description")

    @staticmethod
    def _clean(value: str) -> str:
        text = value.replace("\r\n", "\n").replace("\r", "\n")
        if not text.isascii():
            text = unicodedata.normalize("NFC", text)
        return CONTROL_CHARS.sub("", LINE_SEPARATORS.sub("\n", text))

    def _cut(self, value: str, key: str) -> str:
        limit = self.max_lengths.get(key)
        if limit is None or len(value) <= limit:
            return value
        if key == "description":
            marker = f"\n[… {len(value) - limit} more characters cut]"
            return value[: max(0, limit - len(marker))].rstrip() + marker
        return value[: max(0, limit - 1)].rstrip() + TRUNCATION_MARK


FOOTER_PREFIX = "\n\n--\nReference: "


def footer(ref: str) -> str:
    """The reference footer every ticket description ends with (DESIGN.md, Store)."""
    return FOOTER_PREFIX + ref


def without_footer(text: str) -> str:
    """A description as the person wrote it, without the bridge's reference footer."""
    return text.split(FOOTER_PREFIX, 1)[0]


def validation_messages(exc: ValidationError) -> dict[str, list[str]]:
    """marshmallow's nested messages flattened to ``{"field": [...]}`` (one shape everywhere)."""
    out: dict[str, list[str]] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), item)
        elif isinstance(value, list | tuple):
            for item in value:
                if isinstance(item, Mapping | list):
                    walk(prefix, item)
                else:
                    out.setdefault(prefix or "_schema", []).append(str(item))
        else:
            out.setdefault(prefix or "_schema", []).append(str(value))

    walk("", exc.messages)
    return out
