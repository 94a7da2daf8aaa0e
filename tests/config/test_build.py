"""The config file: shape, interpolation, defaults, and errors that name file:line key.path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bridge.config import ConfigError, load_settings, settings_from_text
from tests.support.configs import BASE, problems


def test_the_base_config_loads_with_safe_defaults() -> None:
    settings = settings_from_text(BASE, env={})
    assert settings.proprofs.base_url == "https://www.proprofsdesk.com/app/api/v1/"
    assert settings.proprofs.timezone == "America/Chicago"
    assert settings.store == "sqlite:///bridge.db"
    route = settings.routes["contact"]
    assert (route.kind, route.path) == ("form", "/forms/contact")
    assert list(route.fields) == ["email", "message"]


def test_paths_follow_kind_and_name() -> None:
    text = BASE + (
        "  hooks-1:\n    kind: hook\n    ticket: {email: alerts@example.com}\n"
        "  help:\n    kind: widget\n    fields: {email: {type: email, required: true}}\n"
        '    ticket: {email: "{{ email }}", subject: Widget}\n'
    )
    settings = settings_from_text(text, env={})
    assert {r.name: r.path for r in settings.routes.values()} == {
        "contact": "/forms/contact",
        "hooks-1": "/hooks/hooks-1",
        "help": "/widget/help",
    }
    assert settings.routes["hooks-1"].source is not None
    assert settings.routes["hooks-1"].source.name == "generic"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("type: email, required", "type: emial, required"),
            "bridge.yaml:8 routes.contact.fields.email.type: must be one of: string, text, email",
        ),
        (
            ('description: "{{ message }}"', 'description: "{{ message.__class__ }}"'),
            "bridge.yaml:12 routes.contact.ticket.description: templates may not read private attributes (__class__)",
        ),
        (
            ("{type: text, required: true}", "{type: text, required: true, default: Hi}"),
            "bridge.yaml:9 routes.contact.fields.message.default: a required field has no default",
        ),
        (
            ("routes:\n", "stroe: sqlite:///x.db\nroutes:\n"),
            "bridge.yaml:4 stroe: unknown key; did you mean store?",
        ),
        (
            ("kind: form", "kind: page"),
            "bridge.yaml:6 routes.contact.kind: must be one of: form, hook, widget.",
        ),
        (
            ("    ticket:\n", "    tikcet: {}\n    ticket:\n"),
            "bridge.yaml:10 routes.contact.tikcet: unknown key; did you mean ticket?",
        ),
        (
            ("  token: tok-123456\n", "  token: tok-123456\n  tokne: x\n"),
            "bridge.yaml:4 proprofs.tokne: unknown key",
        ),
        (
            ("  account_email: owner@example.com\n", ""),
            "bridge.yaml:1 proprofs.account_email: missing data for required field.",
        ),
        (
            ("  account_email: owner@example.com", "  account_email: owner"),
            "bridge.yaml:2 proprofs.account_email: not a valid email address.",
        ),
        (
            ("  token: tok-123456\n", "  token: tok-123456\n  timezone: Mars/Olympus\n"),
            "bridge.yaml:4 proprofs.timezone: not a known time zone",
        ),
        (
            ("{type: text, required: true}", "{type: text, required: maybe}"),
            "bridge.yaml:9 routes.contact.fields.message.required: not a valid boolean.",
        ),
        (
            ("{type: text, required: true}", "{type: choice}"),
            "bridge.yaml:9 routes.contact.fields.message.choices: a choice field needs choices",
        ),
        (
            ("{type: text, required: true}", "{type: text, pattern: '(['}"),
            "bridge.yaml:9 routes.contact.fields.message.pattern: not a valid regular expression",
        ),
        (
            ("{type: text, required: true}", "{type: text, max_lenght: 9}"),
            "bridge.yaml:9 routes.contact.fields.message.max_lenght: unknown key",
        ),
        (
            ('description: "{{ message }}"', 'description: "{{ message }"'),
            "bridge.yaml:12 routes.contact.ticket.description: template error",
        ),
        (
            ('description: "{{ message }}"', 'description: "{{ message|shout }}"'),
            "bridge.yaml:12 routes.contact.ticket.description: template error: No filter named 'shout'",
        ),
        (
            ("{type: email, required: true}", "{type: email}"),
            "bridge.yaml:13 routes.contact.ticket.email: uses email, which may be absent",
        ),
        (
            ("    ticket:\n", "    ticket:\n      priority_map: {sev1: urgent}\n"),
            "bridge.yaml:11 routes.contact.ticket.priority_map.sev1: must be one of: high, normal, low.",
        ),
        (
            ("    ticket:\n", "    ticket:\n      custom_fields: {topic: x}\n"),
            "bridge.yaml:11 routes.contact.ticket.custom_fields.topic: custom field ids look like CF007-07",
        ),
        (
            ("    ticket:\n", "    ticket:\n      max_lengths: {subject: 5}\n"),
            "bridge.yaml:11 routes.contact.ticket.max_lengths.subject: must be greater than or equal to 10",
        ),
        (
            ("    kind: form\n", "    kind: form\n    source: generic\n"),
            "bridge.yaml:7 routes.contact.source: only hook routes take source",
        ),
        (
            ("    kind: form\n", "    kind: form\n    unknown: keep\n"),
            "bridge.yaml:7 routes.contact.unknown: must be one of: reject, drop, append.",
        ),
        (
            ("  contact:\n", "  Contact Us:\n"),
            "bridge.yaml:5 routes.Contact Us: route names are lower-case letters",
        ),
        (
            ("    kind: form\n", "    kind: form\n    auth: {bearer: abcdefghijk}\n"),
            "bridge.yaml:7 routes.contact.auth: only hook routes take auth",
        ),
        (
            ("    kind: form\n", "    kind: form\n    kind: hook\n"),
            "bridge.yaml:7 routes.contact.kind: duplicate key",
        ),
        (("routes:", "routs:"), "bridge.yaml:4 routs: unknown key"),
        (
            ("  contact:\n", "  contact: [1, 2]\n  old:\n"),
            "bridge.yaml:5 routes.contact: a route must be a mapping",
        ),
    ],
)
def test_every_error_names_file_line_and_key_path(change: tuple[str, str], expected: str) -> None:
    old, new = change
    assert old in BASE
    found = problems(BASE.replace(old, new, 1))
    assert any(p.startswith(expected) for p in found), found


def test_every_problem_is_listed_not_just_the_first() -> None:
    found = problems(
        BASE.replace("type: email, required", "type: x, required")
        .replace("kind: form", "kind: page")
        .replace("owner@example.com", "owner")
    )
    assert len(found) == 3


def test_routes_without_a_subject_are_refused_but_forms_get_defaults() -> None:
    found = problems(
        BASE + "  typed:\n    kind: hook\n    schema: tests.sample_schema:ContactSchema\n"
        "    ticket: {email: x@example.com}\n"
    )
    assert any(
        p.startswith("bridge.yaml:17 routes.typed.ticket.subject: ProProfs requires subject")
        for p in found
    ), found
    text = (
        BASE.replace('      subject: "Contact: {{ message|truncate(40) }}"\n', "")
        .replace('      email: "{{ email }}"\n', "")
        .replace('      description: "{{ message }}"\n', "")
    )
    spec = (
        settings_from_text(text.replace("    ticket:\n", ""), env={}).routes["contact"].mapping.spec
    )
    assert spec.email == "{{ email }}"
    assert spec.description == "{{ message }}\n\n{{ data|without('message', 'email')|kv }}"
    assert spec.subject == "[contact] {{ message|oneline|truncate(70) }}"


def test_hook_routes_need_a_fixed_requester() -> None:
    found = problems(BASE + "  alerts:\n    kind: hook\n    ticket: {email: '{{ sender }}'}\n")
    assert any(
        "routes.alerts.ticket.email: a hook route needs a fixed requester" in p for p in found
    )
    found = problems(BASE + "  alerts:\n    kind: hook\n")
    assert any("alerts@example.com" in p for p in found)


def test_defaults_are_inherited_and_custom_fields_merge_key_by_key() -> None:
    text = BASE.replace(
        "routes:",
        textwrap.dedent("""\
        defaults:
          unknown: drop
          ticket:
            priority: low
            inbox: IB238-436
            custom_fields: {CF1-1: default-one, CF1-2: default-two}
        routes:""").rstrip(),
    ).replace(
        '      email: "{{ email }}"\n',
        '      email: "{{ email }}"\n      priority: high\n      custom_fields: {CF1-2: mine}\n',
    )
    route = settings_from_text(text, env={}).routes["contact"]
    spec = route.mapping.spec
    assert (spec.priority, spec.inbox) == ("high", "IB238-436")
    assert dict(spec.custom_fields) == {"CF1-1": "default-one", "CF1-2": "mine"}
    assert route.mapping.unknown == "drop"


def test_a_defaults_error_names_the_defaults_line() -> None:
    text = BASE.replace("routes:", "defaults:\n  unknwn: drop\nroutes:")
    assert any(p.startswith("bridge.yaml:5 defaults.unknwn: unknown key") for p in problems(text))


def test_load_settings_reads_the_file_named_by_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "custom.yaml"
    path.write_text(BASE)
    monkeypatch.setenv("BRIDGE_CONFIG", str(path))
    assert load_settings().source_path == str(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "nope.yaml")


def test_custom_schema_by_dotted_path() -> None:
    text = BASE.replace(
        "    fields:\n      email:   {type: email, required: true}\n"
        "      message: {type: text, required: true}\n",
        "    schema: tests.sample_schema:ContactSchema\n",
    )
    route = settings_from_text(text, env={}).routes["contact"]
    data, _ = route.mapping.load({"email": "a@b.co", "message": "hi"})
    assert data == {"email": "a@b.co", "message": "HI"}
    found = problems(
        BASE.replace(
            "    fields:\n      email:   {type: email, required: true}\n"
            "      message: {type: text, required: true}\n",
            "    schema: tests.sample_schema:NotASchema\n",
        )
    )
    assert any("is not a marshmallow Schema class" in p for p in found)


def test_a_misspelt_top_level_key_is_the_only_problem_reported() -> None:
    assert problems(BASE.replace("routes:\n", "stroe: sqlite:///x.db\nroutes:\n", 1)) == [
        "bridge.yaml:4 stroe: unknown key; did you mean store?"
    ]


def test_a_key_unlike_any_other_is_unknown_without_a_guess() -> None:
    assert problems(BASE.replace("routes:\n", "zzzqqq: 1\nroutes:\n", 1)) == [
        "bridge.yaml:4 zzzqqq: unknown key (check its spelling)"
    ]


def test_every_section_is_checked_in_one_pass_and_misspellings_get_a_guess() -> None:
    """A typo in server: is reported with the route's problems, not after they are fixed."""
    text = (
        BASE.replace("      email:   {type: email", "      email:   {type: emial")
        .replace("    ticket:\n", "    spam: {honeypt: _hp}\n    ticket:\n")
        .replace(
            "routes:\n",
            "server: {secret_kye: abcdefgh}\nmetrics: {tokn: abcdefgh}\nroutes:\n",
        )
    )
    found = problems(text)
    assert "bridge.yaml:4 server.secret_kye: unknown key; did you mean secret_key?" in found
    assert (
        "bridge.yaml:12 routes.contact.spam.honeypt: unknown key; did you mean honeypot?" in found
    )
    assert any(
        p.startswith("bridge.yaml:10 routes.contact.fields.email.type: must be one of")
        for p in found
    )
    assert "bridge.yaml:5 metrics.tokn: unknown key; did you mean token?" in found
