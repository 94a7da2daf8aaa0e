"""Fields declared in the config (`fields: {name: {type, required, …}}`) → a marshmallow Schema."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

FIELD_TYPES = (
    "string",
    "text",
    "email",
    "phone",
    "integer",
    "number",
    "boolean",
    "choice",
    "date",
    "datetime",
    "url",
    "list",
    "dict",
    "file",
)
PHONE_RE = re.compile(r"^\+?[0-9][0-9 ()./-]{3,30}[0-9)]( ?(x|ext\.?) ?[0-9]{1,6})?$")
LINE_BREAKS = re.compile(r"[\r\n\x0b\x0c\x85\u2028\u2029]")


@dataclass(frozen=True)
class FieldSpec:
    """One declared field, as the config states it."""

    name: str
    type: str
    required: bool = False
    max_length: int | None = None
    min_length: int | None = None
    choices: tuple[str, ...] = ()
    pattern: str | None = None
    default: Any = None
    label: str | None = None
    help: str | None = None
    placeholder: str | None = None
    custom_field: str | None = None  # ProProfs custom field id this field fills

    @property
    def title(self) -> str:
        """The field's label: its own, or its name made readable."""
        return self.label or self.name.replace("_", " ").capitalize()


def _one_line(value: str) -> None:
    # A single-line field can never carry a header-injection newline.
    if LINE_BREAKS.search(value):
        raise ValidationError("Must be a single line.")


def _not_blank(value: Any) -> None:
    if isinstance(value, str) and not value.strip():
        raise ValidationError("Missing data for required field.")


def build_field(spec: FieldSpec) -> fields.Field[Any]:
    """The marshmallow field for one declared field."""
    validators: list[Any] = []
    if spec.max_length is not None or spec.min_length is not None:
        validators.append(validate.Length(min=spec.min_length, max=spec.max_length))
    if spec.pattern:
        validators.append(
            validate.Regexp(spec.pattern, error="Does not match the expected format.")
        )
    if spec.required and spec.type in ("string", "text", "email", "phone", "choice", "url"):
        validators.append(_not_blank)
    kwargs: dict[str, Any] = {
        "required": spec.required,
        "metadata": {
            "title": spec.title,
            "description": spec.help or "",
            "x-field-type": spec.type,
        },
    }
    if spec.default is not None:
        kwargs["load_default"] = spec.default
    kind = spec.type
    field_obj: fields.Field[Any]
    if kind in ("string", "phone"):
        validators.append(_one_line)
        if kind == "phone":
            validators.append(validate.Regexp(PHONE_RE, error="Not a valid phone number."))
        field_obj = fields.String(validate=validators, **kwargs)
    elif kind == "text":
        field_obj = fields.String(validate=validators, **kwargs)
    elif kind == "email":
        field_obj = fields.Email(validate=[*validators, _one_line], **kwargs)
    elif kind == "choice":
        validators.append(validate.OneOf(spec.choices))
        field_obj = fields.String(validate=validators, **kwargs)
    elif kind == "integer":
        field_obj = fields.Integer(validate=validators, **kwargs)
    elif kind == "number":
        field_obj = fields.Float(allow_nan=False, validate=validators, **kwargs)
    elif kind == "boolean":
        field_obj = fields.Boolean(validate=validators, **kwargs)
    elif kind == "date":
        field_obj = fields.Date(validate=validators, **kwargs)
    elif kind == "datetime":
        field_obj = fields.DateTime(validate=validators, **kwargs)
    elif kind == "url":
        field_obj = fields.URL(
            schemes={"http", "https"}, validate=[*validators, _one_line], **kwargs
        )
    elif kind == "list":
        item = (
            fields.String(validate=validate.OneOf(spec.choices))
            if spec.choices
            else fields.String()
        )
        field_obj = fields.List(item, validate=validators, **kwargs)
    elif kind == "dict":
        field_obj = fields.Dict(keys=fields.String(), validate=validators, **kwargs)
    else:  # the config schema admits only FIELD_TYPES
        raise ValueError(f"unknown field type {kind!r}")
    return field_obj


def build_schema(name: str, specs: Mapping[str, FieldSpec]) -> type[Schema]:
    """A Schema class for a route's declared fields, in declaration order. File fields are
    not in it: intake checks files against the route's attachment limits and keeps them."""
    return Schema.from_dict(
        {key: build_field(spec) for key, spec in specs.items() if spec.type != "file"},
        name=f"{name.title().replace('_', '').replace('-', '')}Schema",
    )
