"""Mapping a loaded submission to a TicketDraft: sandbox, cleaning, limits, priority, custom fields."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from marshmallow import ValidationError

from bridge.config import settings_from_text
from bridge.declared import FieldSpec, build_schema
from bridge.mapping import (
    MappingError,
    RouteMapping,
    Template,
    TicketSpec,
    footer,
    validation_messages,
)
from bridge.sources import GENERIC, GenericSchema

SPECS = {
    "name": FieldSpec("name", "string"),
    "email": FieldSpec("email", "email", required=True),
    "severity": FieldSpec("severity", "string"),
    "message": FieldSpec("message", "text", required=True),
}


def mapping(unknown: str = "reject", **ticket: Any) -> RouteMapping:
    base: dict[str, Any] = {
        "subject": "{{ message|oneline|truncate(50) }}",
        "description": "{{ message }}",
        "email": "{{ email }}",
        "name": "{{ name }}",
    }
    base.update(ticket)
    return RouteMapping(
        "contact", build_schema("contact", SPECS)(), TicketSpec(**base), unknown=unknown
    )


def render(m: RouteMapping, payload: dict[str, Any], ref: str = "pb-0123456789abcdef") -> Any:
    data, extra = m.load(payload)
    return m.render(data, ref=ref, extra=extra)


PAYLOAD = {"name": "Jane", "email": "jane@example.com", "message": "Hello\nthere"}


def test_a_submission_becomes_a_draft_with_the_reference_footer() -> None:
    draft = render(mapping(), PAYLOAD)
    assert (draft.email, draft.name, draft.subject) == ("jane@example.com", "Jane", "Hello there")
    assert draft.description == "Hello\nthere" + footer("pb-0123456789abcdef")
    assert draft.description.endswith("Reference: pb-0123456789abcdef")
    assert draft.priority == "normal"


@pytest.mark.parametrize(
    "hostile",
    [
        "{{ 7*7 }}",
        "{% for x in range(10**9) %}{% endfor %}",
        "{{ ''.__class__.__mro__ }}",
        "${PROPROFS_TOKEN}",
    ],
)
def test_submitted_data_is_only_ever_data(hostile: str) -> None:
    draft = render(mapping(), {**PAYLOAD, "message": hostile, "name": hostile})
    assert draft.description.startswith(hostile)
    assert draft.name == hostile
    assert "49" not in draft.subject or hostile != "{{ 7*7 }}"


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__.os.environ }}",
        "{{ joiner.__init__.__globals__ }}",
        "{{ namespace.__init__.__globals__ }}",
        "{{ data.__class__ }}",
        "{{ message.format.__globals__ }}",
        "{{ lipsum.__globals__['os'] }}",
        "{% set x = data.update({'a': 1}) %}{{ x }}",
    ],
)
def test_sandbox_escapes_are_refused(template: str) -> None:
    with pytest.raises(MappingError) as info:
        render(mapping(description=template), PAYLOAD)
    assert "routes.contact.ticket.description" in str(info.value)


def test_template_errors_at_run_time_are_clear_mapping_errors() -> None:
    with pytest.raises(MappingError, match=r"routes.contact.ticket.subject: template"):
        render(mapping(subject="{{ 1 // 0 }}"), PAYLOAD)
    with pytest.raises(MappingError, match="template error"):
        mapping(subject="{{ oops(")


def test_control_characters_are_stripped_and_the_subject_is_one_line() -> None:
    draft = render(
        mapping(subject="{{ message }}"),
        {**PAYLOAD, "message": "Bell\x07 and\r\nnew\x00line\u2028here\ttab"},
    )
    assert draft.subject == "Bell and newline here tab"
    assert draft.description.startswith("Bell and\nnewline\nhere\ttab")


def test_values_are_cut_to_their_limits_with_a_visible_marker() -> None:
    m = mapping(
        subject="{{ message }}", max_lengths={"subject": 20, "description": 100, "name": 10}
    )
    draft = render(m, {**PAYLOAD, "name": "Bartholomew Longname", "message": "x" * 500})
    assert draft.subject == "x" * 19 + "…" and len(draft.subject) == 20
    assert draft.name == "Bartholom…" and len(draft.name) == 10
    body = draft.description.removesuffix(footer("pb-0123456789abcdef"))
    assert len(body) <= 100 and body.endswith("more characters cut]")
    assert draft.description.endswith("Reference: pb-0123456789abcdef")  # the footer survives


@pytest.mark.parametrize(
    ("severity", "expected"),
    [
        ("critical", "high"),
        ("CRITICAL", "high"),
        ("warning", "normal"),
        ("info", "low"),
        ("low", "low"),
        ("bogus", "normal"),
        ("", "normal"),
    ],
)
def test_priority_map_with_a_default(severity: str, expected: str) -> None:
    m = mapping(
        priority="{{ severity }}",
        priority_map={"critical": "high", "warning": "normal", "info": "low"},
    )
    assert render(m, {**PAYLOAD, "severity": severity}).priority == expected
    m = mapping(priority="{{ severity }}", priority_default="low")
    assert render(m, {**PAYLOAD, "severity": "bogus"}).priority == "low"


def test_custom_fields_render_with_their_ids_and_the_ref_field() -> None:
    m = mapping(
        custom_fields={
            "CF007-07": "{{ severity|upper }}",
            "CF007-08": "{{ name }}",
            "CF007-09": "{{ missing_field }}",
        },
        ref_field="CF007-99",
    )
    draft = render(m, {**PAYLOAD, "severity": "high"})
    assert dict(draft.custom_fields) == {
        "CF007-07": "HIGH",
        "CF007-08": "Jane",
        "CF007-99": "pb-0123456789abcdef",
    }


@pytest.mark.parametrize(
    ("policy", "outcome"),
    [("reject", "error"), ("drop", "dropped"), ("append", "appended")],
)
def test_unknown_field_policies(policy: str, outcome: str) -> None:
    m = mapping(unknown=policy)
    payload = {**PAYLOAD, "utm_source": "newsletter", "plan": "pro"}
    if outcome == "error":
        with pytest.raises(ValidationError) as info:
            m.load(payload)
        assert validation_messages(info.value) == {
            "utm_source": ["Unknown field."],
            "plan": ["Unknown field."],
        }
        return
    data, extra = m.load(payload)
    assert "utm_source" not in data
    draft = m.render(data, ref="pb-x", extra=extra)
    if outcome == "dropped":
        assert extra == {} and "utm_source" not in draft.description
    else:
        assert "Other fields:\nutm_source: newsletter\nplan: pro" in draft.description
        assert draft.description.index("Other fields") < draft.description.index("Reference")


def test_a_route_that_produces_no_valid_email_fails_clearly() -> None:
    m = RouteMapping("hook", GenericSchema(), TicketSpec(subject="x", email="{{ data.who }}"))
    with pytest.raises(MappingError, match="produced no valid requester email"):
        m.render(m.load({"who": "not an email"})[0], ref="pb-1")


def test_dedup_keys_are_namespaced_by_route() -> None:
    m = RouteMapping(
        "contact",
        build_schema("c", SPECS)(),
        TicketSpec(subject="s", email="a@b.co"),
        dedup_key="{{ email|lower }}:{{ message|hash(8) }}",
    )
    key = m.dedup_key(m.load({**PAYLOAD, "email": "JANE@example.com"})[0])
    assert key is not None and key.startswith("contact:jane@example.com:") and len(key) == 33
    assert RouteMapping("x", GenericSchema(), TicketSpec()).dedup_key({}) is None


def test_generic_hook_route_accepts_any_json_object_only() -> None:
    settings = settings_from_text(
        "proprofs: {account_email: o@example.com, token: t}\n"
        "routes:\n  events:\n    kind: hook\n    ticket: {email: hooks@example.com}\n",
        env={},
    )
    m = settings.routes["events"].mapping
    draft = m.render(
        m.load({"title": "Backup failed", "severity": "critical", "nested": {"a": 1}})[0],
        ref="pb-1",
    )
    assert draft.subject == "Backup failed" and draft.priority == "high"
    assert "nested:\n  a: 1" in draft.description
    with pytest.raises(ValidationError):
        m.load(["not", "an", "object"])


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@given(payload=_JSON)
def test_a_generic_route_loads_what_marshmallow_loads(payload: Any) -> None:
    mapping = RouteMapping("events", GenericSchema(), TicketSpec(email="a@example.com"))
    assert mapping.verbatim
    try:
        expected: Any = (dict(GenericSchema().load(payload)), {})
    except ValidationError as exc:
        expected = validation_messages(exc)
    try:
        got: Any = mapping.load(payload)
    except ValidationError as exc:
        got = validation_messages(exc)
    assert got == expected


def test_validation_messages_flatten_to_one_shape() -> None:
    exc = ValidationError({"a": ["x"], "b": {"0": ["y"]}, "_schema": ["z"]})
    assert validation_messages(exc) == {"a": ["x"], "b.0": ["y"], "_schema": ["z"]}


_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.floats(allow_nan=False, width=16)
    | st.sampled_from(["", "high", "0", "a b", "<b>", "OK", "Resolved", "İ"]),
    lambda inner: (
        st.lists(inner, max_size=2)
        | st.dictionaries(st.sampled_from(["priority", "severity", "x"]), inner, max_size=3)
    ),
    max_leaves=6,
)


@given(
    data=st.dictionaries(
        st.sampled_from(["priority", "severity", "labels", "status", "state"]), _VALUES, max_size=4
    )
)
@pytest.mark.parametrize(
    "source",
    [
        "{{ data.priority }}",
        "{{ data.labels.severity }}",
        "{{ data.priority or data.severity or '' }}",
        '{{ data.labels.priority or data.severity or data.priority or "" }}',
        "{{ data.priority or data.severity }}",  # no '' at the end: Jinja's own answer
        "{{ data | kv }}",
        "{{ data.labels|kv }}",
        GENERIC.status,  # the generic preset's status: one of two words
        "{{ 'yes' if (data.labels.priority or data.priority or '')|lower in ('high', '0') else 'no' }}",
        "{{ 'one' if (data.severity or '') | lower in ('a b',) else '' }}",
    ],
)
def test_plain_lookups_render_what_jinja_renders(source: str, data: dict[str, Any]) -> None:
    template = Template(source, "t")
    plain = (template.lookup, template.chain, template.kv_of, template.choice)
    assert any(way is not None for way in plain) or "''" not in source
    context = {"data": data}
    assert template.render(context) == template.compiled.render(context)


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"status": "OK"},
        {"status": "Resolved"},
        {"status": "", "state": "closed"},
        {"status": 0, "state": "RECOVERED"},
        {"status": "firing", "state": "ok"},
        {"status": 1},
        {"status": 1.5},
        {"status": True},
        {"status": None, "state": ["ok"]},
        {"status": {"ok": 1}},
    ],
)
def test_the_generic_status_is_the_word_jinja_renders(data: dict[str, Any]) -> None:
    """The generic preset's status is worked out without Jinja where the values are plain
    (text, whole numbers), in any case, and by Jinja where they are not."""
    template = Template(GENERIC.status, "status")
    assert template.choice is not None
    context = {"data": data}
    assert template.render(context) == template.compiled.render(context)
