"""Sender presets: what a hook route's ``source:`` brings — schema, default templates, dedup key.

Every preset is data over one mechanism (:class:`Source`); the alert presets
live in their own modules and register themselves here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, pre_load


@dataclass(frozen=True)
class Source:
    """A sender preset."""

    name: str
    schema: type[Schema]
    subject: str
    description: str
    priority: str | None = None  # template yielding a severity, mapped by priority_map
    priority_map: Mapping[str, str] = field(default_factory=dict)
    dedup_key: str | None = None
    docs: str = ""


class GenericSchema(Schema):
    """Any JSON object, taken as it is."""

    class Meta:
        unknown = INCLUDE

    @pre_load
    def require_object(self, data: Any, **_: Any) -> Any:
        if not isinstance(data, Mapping):
            raise ValidationError("The body must be a JSON object.", field_name="_schema")
        return data


GENERIC = Source(
    name="generic",
    schema=GenericSchema,
    subject=(
        "{{ data.subject or data.title or data.summary or data.message or data.text"
        " or ('Webhook received on ' ~ route) }}"
    ),
    description="{{ data | kv }}",
    priority="{{ data.priority or data.severity or '' }}",
    priority_map={
        "critical": "high",
        "high": "high",
        "error": "high",
        "warning": "normal",
        "normal": "normal",
        "info": "low",
        "low": "low",
    },
    docs="Any JSON object; subject from subject/title/summary/message/text, body lists every key.",
)

REGISTRY: dict[str, Source] = {GENERIC.name: GENERIC}


def get_source(name: str) -> Source:
    return REGISTRY[name]


def source_names() -> list[str]:
    return sorted(REGISTRY)
