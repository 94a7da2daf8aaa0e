"""Sender presets: what a hook route's ``source:`` brings.

Every preset is data over one mechanism (:class:`Source`): a tolerant schema for
the sender's real payload, default subject and description templates (files in
``templates/sources/``), the status (firing or resolved), the default dedup key
and priority map, and how its body is parsed. Payloads are read by the sender's
format, not by the request's content type.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields, pre_load

from .. import jsonbody
from ..resources import templates_dir


def template(name: str) -> str:
    """A preset's default template text (``templates/sources/<name>``)."""
    return (templates_dir() / "sources" / name).read_text().rstrip("\n")


def parse_json_or_form(body: bytes, form: Mapping[str, str]) -> Any:
    """JSON whatever the content type; else form fields, with JSON-looking values decoded."""
    if form:
        out: dict[str, Any] = {}
        for key, value in form.items():
            out[key] = _maybe_json(value)
        if set(out) == {"data"} and isinstance(out["data"], dict):
            return out["data"]  # a sender that wraps its JSON in one form field
        return out
    return jsonbody.loads(body)


def _maybe_json(value: str) -> Any:
    text = value.strip()
    if text[:1] in ("{", "["):
        try:
            return jsonbody.loads(text)
        except ValueError:
            return value
    return value


@dataclass(frozen=True)
class Source:
    """A sender preset."""

    name: str
    schema: type[Schema]
    subject: str
    description: str
    status: str = "firing"  # template: "firing" or "resolved"
    priority: str | None = None  # template yielding a severity, mapped by priority_map
    priority_map: Mapping[str, str] = field(default_factory=dict)
    dedup_key: str | None = None
    accepts_form: bool = False
    preprocess: Callable[[Any], Any] | None = None
    split: Callable[[Mapping[str, Any]], list[dict[str, Any]]] | None = None
    alert_dedup_key: str | None = None  # the dedup key in per-alert mode
    # Put before the subject of a resolved group's ticket (``update:``): nothing when the
    # preset's own subject already says the state.
    resolved_prefix: str = ""
    docs: str = ""

    def parse(self, body: bytes, mimetype: str, form: Mapping[str, str]) -> Any:
        """The payload from the raw body (raises ValueError when it is not this format)."""
        if self.name == "generic":
            return jsonbody.loads(body)
        use_form = self.accepts_form and mimetype in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        )
        payload = parse_json_or_form(body, form if use_form else {})
        return self.preprocess(payload) if self.preprocess else payload


#: The resolved prefix of a subject that does not say the state itself.
RESOLVED_PREFIX = "[RESOLVED] "

NOT_AN_OBJECT = "The body must be a JSON object."


class Tolerant(Schema):
    """Senders add fields over versions: keep what we do not know, check what we use."""

    class Meta:
        unknown = INCLUDE

    @pre_load
    def require_object(self, data: Any, **_: Any) -> Any:
        """Refuse a payload that is not a JSON object."""
        if not isinstance(data, Mapping):
            raise ValidationError(NOT_AN_OBJECT, field_name="_schema")
        return data


def tolerant(name: str, declared: Mapping[str, fields.Field[Any]]) -> type[Schema]:
    """A :class:`Tolerant` schema class with ``declared`` fields."""
    return Tolerant.from_dict(dict(declared), name=name)


def nested(name: str, declared: Mapping[str, fields.Field[Any]], **kw: Any) -> fields.Nested:
    """A tolerant nested object field."""
    return fields.Nested(tolerant(name, declared), **kw)


class GenericSchema(Tolerant):
    """Any JSON object, taken as it is."""


SEVERITY_MAP = {
    "critical": "high",
    "high": "high",
    "error": "high",
    "page": "high",
    "warning": "normal",
    "warn": "normal",
    "medium": "normal",
    "normal": "normal",
    "info": "low",
    "informational": "low",
    "low": "low",
    "none": "low",
}

GENERIC = Source(
    name="generic",
    schema=GenericSchema,
    subject=(
        "{{ data.subject or data.title or data.summary or data.message or data.text"
        " or ('Webhook received on ' ~ route) }}"
    ),
    description="{{ data | kv }}",
    status="{{ 'resolved' if (data.status or data.state or '')|lower in "
    "('resolved', 'ok', 'closed', 'recovered') else 'firing' }}",
    priority="{{ data.priority or data.severity or '' }}",
    priority_map=SEVERITY_MAP,
    resolved_prefix=RESOLVED_PREFIX,
    docs="Any JSON object; subject from subject/title/summary/message/text, body lists every key.",
)

REGISTRY: dict[str, Source] = {}


def register(source: Source) -> Source:
    """Add a sender preset."""
    REGISTRY[source.name] = source
    return source


register(GENERIC)


def get_source(name: str) -> Source:
    """The sender preset called ``name``."""
    _load_presets()
    return REGISTRY[name]


def source_names() -> list[str]:
    """Every sender preset's name, sorted."""
    _load_presets()
    return sorted(REGISTRY)


def _load_presets() -> None:
    from . import presets  # noqa: F401 - registers every preset
