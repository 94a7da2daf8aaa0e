"""Each declared field type, with values a person would send and values they should not."""

from __future__ import annotations

from typing import Any

import pytest
from marshmallow import ValidationError

from bridge.declared import FieldSpec, build_schema


def load(spec: FieldSpec, value: Any) -> Any:
    schema = build_schema("t", {"f": spec})()
    return schema.load({"f": value})["f"]


@pytest.mark.parametrize(
    ("spec", "value", "expected"),
    [
        (FieldSpec("f", "string"), "Jane", "Jane"),
        (FieldSpec("f", "text"), "line one\nline two", "line one\nline two"),
        (FieldSpec("f", "email"), "jane@example.com", "jane@example.com"),
        (FieldSpec("f", "phone"), "+1 (555) 010-9999", "+1 (555) 010-9999"),
        (FieldSpec("f", "phone"), "555-0100 ext 12", "555-0100 ext 12"),
        (FieldSpec("f", "integer"), "42", 42),
        (FieldSpec("f", "number"), "4.5", 4.5),
        (FieldSpec("f", "boolean"), "on", True),
        (FieldSpec("f", "boolean"), "false", False),
        (FieldSpec("f", "choice", choices=("a", "b")), "b", "b"),
        (FieldSpec("f", "date"), "2024-02-29", "2024-02-29"),
        (FieldSpec("f", "datetime"), "2024-02-29T10:00:00+00:00", "2024-02-29T10:00:00+00:00"),
        (FieldSpec("f", "url"), "https://example.com/x?y=1", "https://example.com/x?y=1"),
        (FieldSpec("f", "list"), ["a", "b"], ["a", "b"]),
        (FieldSpec("f", "list", choices=("a", "b")), ["b"], ["b"]),
        (FieldSpec("f", "dict"), {"k": 1}, {"k": 1}),
        (FieldSpec("f", "string", pattern=r"^[A-Z]{3}$"), "ABC", "ABC"),
    ],
)
def test_valid_values_load(spec: FieldSpec, value: Any, expected: Any) -> None:
    loaded = load(spec, value)
    assert (loaded.isoformat() if hasattr(loaded, "isoformat") else loaded) == expected


@pytest.mark.parametrize(
    ("spec", "value", "message"),
    [
        (FieldSpec("f", "string"), "two\nlines", "single line"),
        (FieldSpec("f", "string", max_length=3), "abcd", "Longer than maximum length 3"),
        (FieldSpec("f", "string", required=True), "   ", "Missing data"),
        (FieldSpec("f", "text", min_length=5), "abc", "Shorter than minimum length 5"),
        (FieldSpec("f", "email"), "not-an-email", "Not a valid email"),
        (FieldSpec("f", "email"), "a@b.co\r\nBcc: x@y.z", "Not a valid email"),
        (FieldSpec("f", "phone"), "call me", "Not a valid phone"),
        (FieldSpec("f", "integer"), "4.5", "Not a valid integer"),
        (FieldSpec("f", "number"), "NaN", "not permitted"),
        (FieldSpec("f", "number"), "four", "Not a valid number"),
        (FieldSpec("f", "boolean"), "perhaps", "Not a valid boolean"),
        (FieldSpec("f", "choice", choices=("a", "b")), "c", "Must be one of: a, b"),
        (FieldSpec("f", "date"), "2024-02-30", "Not a valid date"),
        (FieldSpec("f", "datetime"), "yesterday", "Not a valid datetime"),
        (FieldSpec("f", "url"), "javascript:alert(1)", "Not a valid URL"),
        (FieldSpec("f", "list"), "a", "Not a valid list"),
        (FieldSpec("f", "list", choices=("a",)), ["z"], "Must be one of"),
        (FieldSpec("f", "dict"), ["a"], "Not a valid mapping"),
        (FieldSpec("f", "string", pattern=r"^[A-Z]{3}$"), "abc", "expected format"),
    ],
)
def test_invalid_values_are_refused_with_a_message(
    spec: FieldSpec, value: Any, message: str
) -> None:
    with pytest.raises(ValidationError) as info:
        load(spec, value)
    assert message in str(info.value.messages["f"])


def test_required_and_default() -> None:
    schema = build_schema(
        "t",
        {
            "a": FieldSpec("a", "string", required=True),
            "b": FieldSpec("b", "choice", choices=("x", "y"), default="y"),
        },
    )()
    assert schema.load({"a": "v"}) == {"a": "v", "b": "y"}
    with pytest.raises(ValidationError) as info:
        schema.load({})
    assert info.value.messages == {"a": ["Missing data for required field."]}


def test_field_order_is_declaration_order() -> None:
    schema = build_schema("t", {n: FieldSpec(n, "string") for n in ("zeta", "alpha", "mid")})()
    assert list(schema.fields) == ["zeta", "alpha", "mid"]
