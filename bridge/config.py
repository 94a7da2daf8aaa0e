"""``bridge.yaml`` → validated, typed settings.

Safe defaults live in code; the file and the environment override them; a bad
config stops the program with messages naming the file, line and key path
(``bridge.yaml:14 routes.contact.fields.email.type: must be one of: …``).
"""

from __future__ import annotations

import copy
import functools
import importlib
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from marshmallow import Schema, ValidationError, fields, missing, validate, validates_schema

from . import jsonbody
from .attachments import DEFAULT_TYPES, KNOWN_TYPES, Limits
from .declared import FIELD_TYPES, FieldSpec, build_schema
from .mapping import UNKNOWN_POLICIES, MappingError, RouteMapping, Template, TicketSpec
from .outbox.notify import DeadLetterHook
from .outbox.retry import DEFAULT_SCHEDULE, RetryPolicy
from .outbox.worker import DeliverySettings
from .proprofs.client import DEFAULT_BASE_URL
from .proprofs.models import PRIORITIES
from .sources import Source, get_source, source_names

KINDS = ("form", "hook", "widget")
PATH_PREFIX = {"form": "/forms/", "hook": "/hooks/", "widget": "/widget/"}
ROUTE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
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
DEFAULT_STORE = "sqlite:///bridge.db"
#: The largest JSON or urlencoded body: a contact form, or an Alertmanager group of 1,000 alerts.
DEFAULT_MAX_BODY = 1024 * 1024


class ConfigError(Exception):
    """The config is unusable; ``problems`` lists every reason, each naming file:line path."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


# --- YAML with line numbers and interpolation --------------------------------------------------


class _Document:
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
                        f"{self.filename}:{line} {_dotted((*path, key))}: duplicate key"
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
        self.failed.add(_dotted(path))
        self.problems.append(f"{self.filename}:{self.line(path)} {_dotted(path)}: {message}")

    def line(self, path: tuple[Any, ...]) -> int:
        """The line of ``path``, or of its nearest ancestor the file states."""
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, 1)


_SCALARS = yaml.SafeLoader("")  # only its constructor is used, for plain scalars


def _dotted(path: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in path) or "(top)"


# --- marshmallow schemas for the config itself ---------------------------------------------------


class _Strict(Schema):
    """Unknown keys are errors: a typo must never be silently ignored."""


def _timezone(value: str) -> None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError("not a known time zone (e.g. America/Chicago, UTC)") from None


def _regex(value: str) -> None:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValidationError(f"not a valid regular expression: {exc}") from None


def _module_class(value: str) -> None:
    if not re.match(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", value):
        raise ValidationError("must be a dotted path 'module:Class'")


def _about(text: str, **more: Any) -> dict[str, Any]:
    """A config key's entry in the generated reference (``bridge.configref``): what it is
    for; ``schema`` names the schema of a nested section (of each entry, with ``each``), and
    ``kinds`` the route kinds that take the key."""
    return {"about": text, **more}


CUSTOM_FIELD_ID = validate.Regexp(r"^CF\d+-\d+$", error="custom field ids look like CF007-07")


class Duration(fields.Field[Any]):
    """A duration in seconds, written as a number or with a unit (``5m``, ``2h``)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> float:
        try:
            seconds = parse_duration(value)
        except ValueError:
            raise ValidationError("must be a duration like 30, 30s, 5m, 2h or 1d") from None
        if seconds < 0:
            raise ValidationError("must not be negative")
        return seconds


class ProProfsSchema(_Strict):
    base_url = fields.URL(
        load_default=DEFAULT_BASE_URL,
        require_tld=False,
        schemes={"http", "https"},
        metadata=_about("The ProProfs API's base URL (the emulator's, for tests and the demo)."),
    )
    account_email = fields.Email(
        required=True, metadata=_about("The ProProfs account's email (its API user).")
    )
    token = fields.String(
        required=True,
        validate=validate.Length(min=1),
        metadata=_about("The account's API token; keep it in `${VAR}` or `${file:PATH}`."),
    )
    timezone = fields.String(
        load_default="America/Chicago",
        validate=_timezone,
        metadata=_about(
            "The account's time zone: ProProfs reads and writes dates in it (list filters, "
            "ticket times)."
        ),
    )
    connect_timeout = fields.Float(
        load_default=5.0,
        validate=validate.Range(min=0.1, max=120),
        metadata=_about("Seconds to wait for a connection to ProProfs."),
    )
    read_timeout = fields.Float(
        load_default=30.0,
        validate=validate.Range(min=0.1, max=600),
        metadata=_about(
            "Seconds to wait for ProProfs' answer; a create whose answer does not come in "
            "time is reconciled through the list API."
        ),
    )


class FieldSpecSchema(_Strict):
    type = fields.String(
        required=True,
        validate=validate.OneOf(FIELD_TYPES),
        metadata=_about("What the field holds; it decides validation and the form control."),
    )
    required = fields.Boolean(
        load_default=False, metadata=_about("Refuse a submission without it.")
    )
    max_length = fields.Integer(
        validate=validate.Range(min=1), metadata=_about("Longest value accepted, in characters.")
    )
    min_length = fields.Integer(
        validate=validate.Range(min=0), metadata=_about("Shortest value accepted, in characters.")
    )
    choices = fields.List(
        fields.String(),
        validate=validate.Length(min=1),
        metadata=_about("The values a `choice` (or `list`) field allows."),
    )
    pattern = fields.String(
        validate=_regex, metadata=_about("A regular expression the whole value must match.")
    )
    default = fields.Raw(
        allow_none=True, metadata=_about("The value used when the field is not sent.")
    )
    label = fields.String(metadata=_about("The label shown on the hosted form and the widget."))
    help = fields.String(metadata=_about("A hint shown under the field."))
    placeholder = fields.String(metadata=_about("Placeholder text inside the empty control."))
    custom_field = fields.String(
        validate=CUSTOM_FIELD_ID,
        metadata=_about("Also put the value into this ProProfs custom field (`CF007-07`)."),
    )

    @validates_schema
    def consistent(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("required") and "default" in data:
            raise ValidationError(
                "a required field has no default: drop one of required and default", "default"
            )
        if data.get("type") == "choice" and not data.get("choices"):
            raise ValidationError("a choice field needs choices", "choices")
        if data.get("choices") and data.get("type") not in ("choice", "list"):
            raise ValidationError("only choice and list fields take choices", "choices")
        if data.get("type") == "file":
            for key in ("default", "pattern", "max_length", "min_length", "custom_field"):
                if key in data:
                    raise ValidationError(
                        f"a file field takes no {key}; its limits are the route's attachments",
                        key,
                    )


TICKET_TEXT_FIELDS = (
    "subject",
    "description",
    "name",
    "email",
    "phone",
    "priority",
    "staff",
    "inbox",
)


def _ticket_text(what: str) -> fields.String:
    return fields.String(metadata=_about(f"{what} A literal or a template."))


class TicketSpecSchema(_Strict):
    subject = _ticket_text("The ticket's subject (one line, at most 255 characters).")
    description = _ticket_text(
        "The ticket's first message; the submission's reference footer is added after it."
    )
    name = _ticket_text("The requester's name.")
    email = _ticket_text(
        "The requester's email. ProProfs requires one: a hook route needs a fixed address, or "
        "a template with a `default('…')`."
    )
    phone = _ticket_text("The requester's phone number.")
    priority = _ticket_text(
        "The priority; the rendered value is looked up in `priority_map`, then must be one "
        f"of: {', '.join(PRIORITIES)}."
    )
    staff = _ticket_text("The ProProfs staff id to assign the ticket to (`ST007-007`).")
    inbox = _ticket_text("The ProProfs inbox id the ticket goes to (`IB238-436`).")
    custom_fields = fields.Dict(
        keys=fields.String(validate=CUSTOM_FIELD_ID),
        values=fields.String(),
        metadata=_about('ProProfs custom fields by id: `{CF007-07: "{{ topic }}"}`.'),
    )
    priority_map = fields.Dict(
        keys=fields.String(),
        values=fields.String(validate=validate.OneOf(PRIORITIES)),
        metadata=_about(
            "Rendered priority (a sender's severity, a form's topic) → ProProfs priority; "
            "merged over a sender preset's own map."
        ),
    )
    priority_default = fields.String(
        validate=validate.OneOf(PRIORITIES),
        metadata=_about("The priority when the rendered value maps to nothing."),
    )
    max_lengths = fields.Dict(
        keys=fields.String(validate=validate.OneOf([*TICKET_TEXT_FIELDS, "custom_field"])),
        values=fields.Integer(validate=validate.Range(min=10, max=1_000_000)),
        metadata=_about("Cut a rendered value to this many characters, with a visible marker."),
    )
    ref_field = fields.String(
        validate=CUSTOM_FIELD_ID,
        metadata=_about("Also store the submission's reference (`pb-…`) in this custom field."),
    )


SECRET_LENGTH = validate.Length(min=8, error="use a secret of 8 characters or more")


class BasicAuthSchema(_Strict):
    username = fields.String(
        required=True, validate=validate.Length(min=1), metadata=_about("The user name.")
    )
    password = fields.String(
        required=True, validate=SECRET_LENGTH, metadata=_about("The password.")
    )


class QueryAuthSchema(_Strict):
    param = fields.String(
        load_default="token",
        validate=validate.Regexp(r"^[A-Za-z0-9_-]+$"),
        metadata=_about("The query parameter that carries the token (`?token=…`)."),
    )
    token = fields.String(
        required=True, validate=SECRET_LENGTH, metadata=_about("The token it must equal.")
    )


class HmacAuthSchema(_Strict):
    scheme = fields.String(
        required=True,
        validate=validate.OneOf(["grafana", "sentry", "pagerduty", "standard"]),
        metadata=_about("Whose signature format: Grafana, Sentry, PagerDuty or Standard Webhooks."),
    )
    secret = fields.String(
        required=True, validate=SECRET_LENGTH, metadata=_about("The shared signing secret.")
    )
    header = fields.String(
        metadata=_about("Grafana's signature header, when not `X-Grafana-Alerting-Signature`.")
    )
    timestamp_header = fields.String(
        metadata=_about(
            "A header holding the signing time, signed with the body (Grafana's "
            "`X-Grafana-Alerting-Timestamp`); stale requests are refused."
        )
    )
    tolerance = fields.Float(
        load_default=300.0,
        validate=validate.Range(min=1, max=86400),
        metadata=_about("Seconds a signed timestamp may be away from now."),
    )


class SnsAuthSchema(_Strict):
    topics = fields.List(
        fields.String(
            validate=validate.Regexp(
                r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_.-]+$",
                error="must be an SNS topic ARN",
            )
        ),
        load_default=list,
        metadata=_about(
            "Topic ARNs the route takes messages from (every type; required while "
            "signatures are verified)."
        ),
    )
    max_age = Duration(
        load_default=3600.0,
        metadata=_about("A message whose Timestamp is older than this is refused as a replay."),
    )
    verify = fields.Boolean(
        load_default=True,
        metadata=_about(
            "Check each message's signature with its signing certificate; `false` is warned "
            "about by `check-config`."
        ),
    )


class HookAuthSchema(_Strict):
    bearer = fields.String(
        validate=SECRET_LENGTH, metadata=_about("`Authorization: Bearer <token>` must carry this.")
    )
    basic = fields.Nested(
        BasicAuthSchema, metadata=_about("HTTP basic authentication.", schema=BasicAuthSchema)
    )
    query = fields.Nested(
        QueryAuthSchema,
        metadata=_about("A token in the URL's query string.", schema=QueryAuthSchema),
    )
    hmac = fields.Nested(
        HmacAuthSchema,
        metadata=_about("An HMAC signature of the raw body.", schema=HmacAuthSchema),
    )
    sns = fields.Nested(
        SnsAuthSchema,
        metadata=_about(
            "AWS SNS message signatures (on by default for `source: aws_sns`).",
            schema=SnsAuthSchema,
        ),
    )


DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(value: Any) -> float:
    """Seconds from ``30``, ``"30s"``, ``"5m"``, ``"2h"``, ``"1d"`` (ValueError otherwise)."""
    if isinstance(value, bool):
        raise ValueError("not a duration")
    if isinstance(value, int | float):
        return float(value)
    match = DURATION.match(str(value))
    if not match:
        raise ValueError("not a duration")
    return float(match.group(1)) * UNIT_SECONDS[match.group(2)]


SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?\s*$", re.IGNORECASE)
SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}


class Size(fields.Field[Any]):
    """A size in bytes, written as a number or with a unit (``512KB``, ``10MB``, ``2MiB``)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> int:
        match = None if isinstance(value, bool) else SIZE.match(str(value))
        if not match:
            raise ValidationError("must be a size like 500000, 512KB, 10MB or 2MiB")
        size = int(float(match.group(1)) * SIZE_UNITS[(match.group(2) or "b").lower()])
        if size < 1:
            raise ValidationError("must be at least one byte")
        return size


class Proxies(fields.Field[Any]):
    """The proxies in front: how many (``1``), or their addresses (``[10.0.0.0/8]``),
    which also limits whose forwarded headers are believed to those peers."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            if not 0 <= value <= 10:
                raise ValidationError("must be from 0 to 10, or a list of addresses")
            return value
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value:
            raise ValidationError("must be a number of proxies, or a list of their addresses")
        networks = []
        for item in value:
            try:
                networks.append(str(ipaddress.ip_network(str(item), strict=False)))
            except ValueError:
                raise ValidationError(f"{item!r} is not an IP address or network") from None
        return tuple(networks)


def _limit_string(value: str) -> None:
    from limits import parse_many

    try:
        parse_many(value)
    except ValueError:
        raise ValidationError("must be a rate like 10/hour or 50 per day") from None


def _url_prefix(value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or not parts.path.endswith("/"):
        raise ValidationError(
            "must be an http(s) URL prefix ending with / (e.g. https://www.example.com/)"
        )


class PageSchema(_Strict):
    title = fields.String(metadata=_about("The hosted form's heading (default: the route's name)."))
    intro = fields.String(metadata=_about("A paragraph under the heading."))
    submit = fields.String(metadata=_about("The submit button's text (default `Send`)."))
    lang = fields.String(
        load_default="en",
        validate=validate.Regexp(
            r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$", error="must be a language tag like en or fr-CA"
        ),
        metadata=_about("The page's language tag (`lang` attribute)."),
    )
    thanks = fields.String(metadata=_about("The thank-you page's text."))
    messages = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        metadata=_about(
            "Any text of the page (`errors_summary`, `choice.<value>`, …) and field messages "
            "by their English text, for translations."
        ),
    )


class RedirectSchema(_Strict):
    success = fields.URL(
        schemes={"http", "https"},
        require_tld=False,
        metadata=_about("Send browsers here after a stored post (else the bridge's thanks page)."),
    )
    error = fields.URL(
        schemes={"http", "https"},
        require_tld=False,
        metadata=_about("Send browsers here after a refused post (else the form re-renders)."),
    )
    allow_next = fields.List(
        fields.String(validate=_url_prefix),
        metadata=_about("URL prefixes a posted `_next` field may redirect into."),
    )


CAPTCHA_PROVIDERS = ("turnstile", "hcaptcha", "recaptcha")


class CaptchaSchema(_Strict):
    provider = fields.String(
        required=True,
        validate=validate.OneOf(CAPTCHA_PROVIDERS),
        metadata=_about("Cloudflare Turnstile, hCaptcha or reCAPTCHA (v2, v3)."),
    )
    secret = fields.String(
        required=True,
        validate=validate.Length(min=1),
        metadata=_about("The provider's server-side secret."),
    )
    site_key = fields.String(
        required=True,
        validate=validate.Length(min=1),
        metadata=_about("The provider's public site key, put on the page."),
    )
    verify_url = fields.URL(
        schemes={"http", "https"},
        require_tld=False,
        metadata=_about("Verify somewhere else than the provider's own URL (testing)."),
    )
    min_score = fields.Float(
        validate=validate.Range(min=0, max=1),
        metadata=_about(
            "reCAPTCHA v3: the lowest score accepted. Setting it makes the route reCAPTCHA "
            "v3 (a score, no challenge shown); without it reCAPTCHA is v2 (the checkbox)."
        ),
    )
    script_url = fields.URL(
        schemes={"http", "https"},
        require_tld=False,
        metadata=_about(
            "Load the provider's script from somewhere else than its own URL (a mirror, "
            "or a stand-in provider for tests). The hosted form and the widget both use it."
        ),
    )
    timeout = Duration(
        load_default=5.0,
        metadata=_about("How long to wait for the verifier; no answer refuses the post."),
    )


RULE_SCORES = {
    "keyword": 3.0,
    "pattern": 3.0,
    "links": 5.0,
    "blocked_domain": 10.0,
    "disposable_domain": 5.0,
    "too_short": 3.0,
}


class ContentRulesSchema(_Strict):
    keywords = fields.List(
        fields.String(validate=validate.Length(min=1)),
        metadata=_about("Words or phrases (any case); each one found adds the keyword score."),
    )
    patterns = fields.List(
        fields.String(validate=_regex),
        metadata=_about("Regular expressions; each one that matches adds the pattern score."),
    )
    max_links = fields.Integer(
        validate=validate.Range(min=0),
        metadata=_about("More links than this (http://, https://, www.) add the links score."),
    )
    blocked_domains = fields.List(
        fields.String(validate=validate.Length(min=1)),
        metadata=_about(
            "Email domains (and their subdomains) whose senders add the blocked-domain score."
        ),
    )
    disposable_domains = fields.Boolean(
        load_default=False,
        metadata=_about(
            "A throwaway-address email domain (the maintained `disposable-email-domains` "
            "list) adds the disposable-domain score."
        ),
    )
    min_length = fields.Integer(
        validate=validate.Range(min=0),
        metadata=_about(
            "A message shorter than this (the route's `text` fields together) adds the "
            "too-short score."
        ),
    )
    threshold = fields.Float(
        load_default=5.0,
        validate=validate.Range(min=0, min_inclusive=False),
        metadata=_about("A submission scoring this much or more is quarantined."),
    )
    scores = fields.Dict(
        keys=fields.String(validate=validate.OneOf(list(RULE_SCORES))),
        values=fields.Float(validate=validate.Range(min=0)),
        metadata=_about(
            "What each rule adds: keyword 3, pattern 3, links 5, blocked_domain 10, "
            "disposable_domain 5, too_short 3 unless set here."
        ),
    )


class SpamSchema(_Strict):
    honeypot = fields.String(
        validate=validate.Regexp(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"),
        metadata=_about(
            "A hidden field people never fill; a post that fills it is answered as if stored "
            "and dropped."
        ),
    )
    min_seconds = Duration(
        metadata=_about("A post sooner than this after the form was shown is refused.")
    )
    max_age = Duration(
        load_default=86400.0,
        metadata=_about("A form shown longer ago than this asks the person to reload."),
    )
    captcha = fields.Nested(
        CaptchaSchema, metadata=_about("Verify a CAPTCHA server-side.", schema=CaptchaSchema)
    )
    content = fields.Nested(
        ContentRulesSchema,
        metadata=_about(
            "Content rules, each adding to a score; at the threshold a submission is "
            "quarantined: answered as usual, kept without a ticket for an operator to "
            "release or discard.",
            schema=ContentRulesSchema,
        ),
    )
    keep = fields.Boolean(
        load_default=False,
        metadata=_about(
            "Quarantine honeypot and time-token catches too, instead of dropping or refusing "
            "them, so a person a rule was wrong about can be released."
        ),
    )
    quarantine_for = Duration(
        load_default=30 * 86400.0,
        metadata=_about("How long a quarantined submission is kept before it is deleted."),
    )


class LimitsSchema(_Strict):
    per_ip = fields.List(
        fields.String(validate=_limit_string),
        metadata=_about('Rates per client address: `["10/hour", "50/day"]`; over one is 429.'),
    )
    per_route = fields.List(
        fields.String(validate=_limit_string),
        metadata=_about("Rates for the whole route, whoever posts."),
    )


class WidgetSchema(_Strict):
    title = fields.String(load_default="Contact support", metadata=_about("The panel's heading."))
    launcher = fields.String(load_default="Help", metadata=_about("The launcher button's text."))
    color = fields.String(
        load_default="#2455c3",
        validate=validate.Regexp(r"^#[0-9a-fA-F]{3,8}$", error="a colour like #2455c3"),
        metadata=_about("The accent colour."),
    )
    position = fields.String(
        load_default="right",
        validate=validate.OneOf(["right", "left"]),
        metadata=_about("Which bottom corner the launcher sits in."),
    )
    identity_secret = fields.String(
        validate=validate.Length(min=16),
        metadata=_about(
            "Verifies the HMAC of a signed-in user's email, so the widget can pre-fill and "
            "lock name and email."
        ),
    )
    page_url_field = fields.String(
        validate=CUSTOM_FIELD_ID,
        metadata=_about("Put the page the person wrote from into this custom field."),
    )
    user_agent_field = fields.String(
        validate=CUSTOM_FIELD_ID,
        metadata=_about("Put the person's browser (User-Agent) into this custom field."),
    )
    status_cache = Duration(
        load_default=30.0,
        metadata=_about("How long a ticket's status, read through the list API, is reused."),
    )
    receipt_max_age = Duration(
        load_default=90 * 86400.0,
        metadata=_about("How long a receipt lets the person see their request's status."),
    )


FORM_AND_WIDGET = ("form", "widget")


class AttachmentsSchema(_Strict):
    max_size = Size(
        load_default=Limits.max_size,
        metadata=_about("The largest file accepted (over it: 413 naming the file)."),
    )
    max_files = fields.Integer(
        load_default=Limits.max_files,
        validate=validate.Range(min=1, max=50),
        metadata=_about("How many files one submission may carry."),
    )
    max_total = Size(
        load_default=Limits.max_total,
        metadata=_about("The most all of one submission's files may add up to."),
    )
    types = fields.List(
        fields.String(validate=validate.OneOf(list(KNOWN_TYPES))),
        validate=validate.Length(min=1),
        load_default=lambda: list(DEFAULT_TYPES),
        metadata=_about(
            "The types accepted, read from each file's content (never its name): "
            f"{', '.join(KNOWN_TYPES)}. HTML and SVG are only ever served as downloads."
        ),
    )

    @validates_schema
    def consistent(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("max_total", 0) < data.get("max_size", 0):
            raise ValidationError("max_total cannot be less than max_size", "max_total")
        if data.get("max_total", 0) > 200_000_000:
            raise ValidationError("at most 200MB of files per submission", "max_total")


class HeartbeatSchema(_Strict):
    match = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        load_default=lambda: {"alertname": "Watchdog"},
        validate=validate.Length(min=1),
        metadata=_about(
            "Labels a notification must carry to be the heartbeat (default "
            "`{alertname: Watchdog}`); it never becomes a ticket."
        ),
    )
    every = Duration(
        required=True, metadata=_about("How often the sender repeats it (its repeat interval).")
    )
    grace = Duration(
        load_default=300.0, metadata=_about("How long past `every` before it counts as silent.")
    )
    email = fields.Email(
        metadata=_about("The requester of the silence ticket (default: the ProProfs account).")
    )
    inbox = fields.String(metadata=_about("The inbox of the silence ticket."))


class StormSchema(_Strict):
    max_new = fields.Integer(
        required=True,
        validate=validate.Range(min=1, max=10000),
        metadata=_about("New alert groups per window that each get their own ticket."),
    )
    window = Duration(
        load_default=300.0, metadata=_about("The window (fixed, aligned to the clock).")
    )


class RetentionSchema(_Strict):
    scrub_after = Duration(
        metadata=_about(
            "Remove the personal content (the ticket draft: names, emails, phone numbers, "
            "messages) of delivered submissions this long after delivery, keeping what "
            "exactly-once needs (reference, ticket id, dedup key, state, times)."
        )
    )
    dead_after = Duration(
        metadata=_about(
            "The same for dead submissions, this long after they died (a scrubbed dead "
            "submission can no longer be replayed)."
        )
    )


class RouteSchema(_Strict):
    kind = fields.String(
        required=True,
        validate=validate.OneOf(KINDS),
        metadata=_about(
            "`form` is served at `/forms/NAME`, `hook` at `/hooks/NAME`, `widget` at "
            "`/widget/NAME`."
        ),
    )
    widget = fields.Nested(
        WidgetSchema,
        metadata=_about(
            "The widget's look and its status view.", schema=WidgetSchema, kinds=("widget",)
        ),
    )
    page = fields.Nested(
        PageSchema,
        metadata=_about(
            "The hosted form and thank-you page.", schema=PageSchema, kinds=FORM_AND_WIDGET
        ),
    )
    redirect = fields.Nested(
        RedirectSchema,
        metadata=_about(
            "Where browsers go after a post.", schema=RedirectSchema, kinds=FORM_AND_WIDGET
        ),
    )
    origins = fields.List(
        fields.String(
            validate=validate.Regexp(
                r"^https?://[^/\s]+$", error="an origin is scheme://host[:port], without a path"
            )
        ),
        metadata=_about(
            "Sites allowed to post (`Origin`, else `Referer`); they get CORS answers. Others "
            "are 403.",
            kinds=FORM_AND_WIDGET,
        ),
    )
    spam = fields.Nested(
        SpamSchema,
        metadata=_about("Spam defences.", schema=SpamSchema, kinds=FORM_AND_WIDGET),
    )
    limits = fields.Nested(
        LimitsSchema,
        metadata=_about("Rate limits.", schema=LimitsSchema, kinds=FORM_AND_WIDGET),
    )
    attachments = fields.Nested(
        AttachmentsSchema,
        metadata=_about(
            "Limits on the files of `file` fields.",
            schema=AttachmentsSchema,
            kinds=FORM_AND_WIDGET,
        ),
    )
    retention = fields.Nested(
        RetentionSchema,
        metadata=_about(
            "How long personal data is kept after delivery (default: until `bridge outbox "
            "purge` or `bridge erase`).",
            schema=RetentionSchema,
        ),
    )
    double_submit_window = Duration(
        load_default=300.0,
        metadata=_about(
            "The same email and words on the route within this time make one ticket.",
            kinds=FORM_AND_WIDGET,
        ),
    )
    declared = fields.Dict(
        data_key="fields",
        keys=fields.String(
            validate=validate.Regexp(
                r"^[A-Za-z_][A-Za-z0-9_]{0,63}$", error="field names are letters, digits and _"
            )
        ),
        values=fields.Raw(),
        metadata=_about(
            "The fields the route takes, in order; they build its marshmallow schema.",
            schema=FieldSpecSchema,
            each="field",
        ),
    )
    source = fields.String(
        metadata=_about(f"A sender preset: {', '.join(source_names())}.", kinds=("hook",)),
    )
    schema = fields.String(
        validate=_module_class,
        metadata=_about("Your own marshmallow `Schema` instead of `fields:`, as `module:Class`."),
    )
    # A key named like Schema.unknown: marshmallow takes declared fields off the class.
    unknown = fields.String(  # type: ignore[assignment]
        load_default="reject",
        validate=validate.OneOf(UNKNOWN_POLICIES),
        metadata=_about(
            "Undeclared fields: `reject` them (422), `drop` them, or `append` them to the "
            "description."
        ),
    )
    ticket = fields.Dict(
        keys=fields.String(),
        values=fields.Raw(),
        metadata=_about("How a submission becomes a ticket.", schema=TicketSpecSchema),
    )
    dedup_key = fields.String(
        metadata=_about(
            "A template; submissions with the same key (within the route) make one ticket."
        )
    )
    auth = fields.Dict(
        keys=fields.String(),
        values=fields.Raw(),
        metadata=_about(
            "How senders prove who they are; every check given must pass.",
            schema=HookAuthSchema,
            kinds=("hook",),
        ),
    )
    max_body = fields.Integer(
        load_default=DEFAULT_MAX_BODY,
        validate=validate.Range(min=1024, max=10 * 1024 * 1024),
        metadata=_about(
            "The largest JSON or urlencoded body accepted, in bytes; larger is 413. "
            "Multipart bodies may carry the files' total on top."
        ),
    )
    resolved = fields.String(
        load_default="ignore",
        validate=validate.OneOf(["ignore", "ticket"]),
        metadata=_about("What a resolved notification does.", kinds=("hook",)),
    )
    alert_mode = fields.String(
        load_default="group",
        validate=validate.OneOf(["group", "alert"]),
        metadata=_about(
            "One ticket per alert group, or per alert (Alertmanager and Grafana).",
            kinds=("hook",),
        ),
    )
    max_alerts = fields.Integer(
        load_default=20,
        validate=validate.Range(min=1, max=1000),
        metadata=_about(
            'Alerts listed in a description before an "… and N more" line.', kinds=("hook",)
        ),
    )
    ticket_check_ttl = Duration(
        load_default=60.0,
        metadata=_about(
            "How long the list API's \"this incident's ticket is still open\" is trusted.",
            kinds=("hook",),
        ),
    )
    heartbeat = fields.Nested(
        HeartbeatSchema,
        metadata=_about(
            "Expect a heartbeat notification (Alertmanager's Watchdog) this often; when it "
            "goes silent, one ticket says the alert pipeline is silent.",
            schema=HeartbeatSchema,
            kinds=("hook",),
        ),
    )
    storm = fields.Nested(
        StormSchema,
        metadata=_about(
            "Above `max_new` new alert groups in a `window`, the rest go into one summary "
            "ticket per window instead of a ticket each.",
            schema=StormSchema,
            kinds=("hook",),
        ),
    )
    capture = fields.Integer(
        load_default=0,
        validate=validate.Range(min=0, max=200),
        metadata=_about(
            "Keep the last N raw payloads (secrets and auth headers removed) for the "
            "console's test bench (0: keep none).",
            kinds=("hook",),
        ),
    )


class DeadLettersSchema(_Strict):
    url = fields.String(
        required=True,
        validate=validate.Regexp(r"^https?://[^\s]+$", error="must be an http(s) URL"),
        metadata=_about("Where to post a notification when a submission goes dead."),
    )
    secret = fields.String(
        required=True,
        validate=validate.Length(min=16),
        metadata=_about(
            "Signs each notification (Standard Webhooks; a `whsec_…` secret is base64)."
        ),
    )


class DeliverySchema(_Strict):
    concurrency = fields.Integer(
        load_default=4,
        validate=validate.Range(min=1, max=256),
        metadata=_about("Creates in flight per worker process."),
    )
    rate_limit = fields.Float(
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=0.01),
        metadata=_about("Creates per second toward ProProfs, per worker process (none: no cap)."),
    )
    lease = Duration(
        load_default=120.0,
        metadata=_about(
            "How long a worker holds a claimed submission; never shorter than the client's "
            "timeouts."
        ),
    )
    poll_interval = Duration(
        load_default=0.5, metadata=_about("How often an idle worker looks for due work.")
    )
    reconcile_lag = Duration(
        load_default=30.0,
        metadata=_about("How long a new ticket may take to show in the list API."),
    )
    retry_schedule = fields.List(
        Duration(),
        validate=validate.Length(min=1, max=50),
        metadata=_about(
            "Waits before each retry of a transient failure; after the last, the submission "
            "is dead (default `[0, 5s, 5m, 30m, 2h, 5h, 10h, 10h]`)."
        ),
    )
    retry_jitter = fields.Float(
        load_default=0.2,
        validate=validate.Range(min=0, max=1),
        metadata=_about("Each wait is varied by up to this fraction."),
    )
    min_retry_after_timeout = Duration(
        load_default=60.0,
        metadata=_about("The shortest wait after a timeout or a 429."),
    )
    dead_letters = fields.Nested(
        DeadLettersSchema,
        metadata=_about(
            "Post a signed notification (Standard Webhooks) when a submission goes dead.",
            schema=DeadLettersSchema,
        ),
    )


class ServerSchema(_Strict):
    trusted_proxies = Proxies(
        load_default=0,
        metadata=_about(
            "The proxies in front: a number (believe `X-Forwarded-For` from that many), or "
            "their addresses or networks (one proxy, believed only from those peers; "
            "needed for `admin.trusted_header`)."
        ),
    )
    rate_limit_storage = fields.String(
        load_default="memory://",
        validate=validate.Regexp(r"^(memory|redis|rediss)://"),
        metadata=_about(
            "Where rate limits are counted: `memory://` (per process) or `redis://…` (shared)."
        ),
    )
    secret_key = fields.String(
        validate=validate.Length(min=16),
        metadata=_about(
            "Signs form time tokens, widget receipts and console sessions (default: derived "
            "from the ProProfs token)."
        ),
    )
    log_level = fields.String(
        load_default="INFO",
        validate=validate.OneOf(["DEBUG", "INFO", "WARNING", "ERROR"]),
        metadata=_about("The lowest level logged."),
    )
    log_json = fields.Boolean(
        load_default=True, metadata=_about("JSON log lines (`false`: plain text).")
    )
    metrics = fields.Boolean(load_default=True, metadata=_about("Serve `/metrics`."))
    body_timeout = Duration(
        load_default=30.0,
        metadata=_about("A request body still arriving after this is cut off with 408."),
    )
    public_url = fields.String(
        validate=validate.Regexp(r"^https?://[^\s]+$", error="must be an http(s) URL"),
        metadata=_about(
            "The bridge's address as agents reach it, for the links in tickets (files, "
            "incident pages); without it they carry paths only."
        ),
    )
    link_lifetime = Duration(
        load_default=30 * 86400.0,
        metadata=_about(
            "Incident pages and the widget's status view stop opening this long after "
            "their last change."
        ),
    )
    pin_cpus = fields.Boolean(
        load_default=False,
        metadata=_about(
            "Keep each `bridge serve` worker on a CPU of its own, its threads scheduled as "
            "batch work: for a host the bridge has to itself (docs/production.md)."
        ),
    )


class MetricsSchema(_Strict):
    token = fields.String(
        validate=validate.Length(min=16),
        metadata=_about(
            "`/metrics` answers only with `Authorization: Bearer <token>` (Prometheus: "
            "`authorization: {credentials: …}`); without it, keep /metrics off the public side."
        ),
    )


class AdminSchema(_Strict):
    password_hash = fields.String(
        validate=validate.Regexp(
            r"^(pbkdf2|scrypt):", error="make one with `bridge admin hash-password`"
        ),
        metadata=_about("Enables `/admin`: the hash of its password."),
    )
    trusted_header = fields.String(
        validate=validate.Regexp(r"^[A-Za-z0-9-]+$"),
        metadata=_about(
            "Enables `/admin` for whoever an authenticating proxy names in this header."
        ),
    )
    secure_cookies = fields.Boolean(
        load_default=True, metadata=_about("Mark the console's cookie `Secure` (HTTPS only).")
    )
    ticket_url = fields.String(
        metadata=_about("Link tickets in the console: `https://…/{ticket_id}`.")
    )


class S3Schema(_Strict):
    bucket = fields.String(required=True, metadata=_about("The bucket files are kept in."))
    endpoint_url = fields.String(
        metadata=_about("An S3-compatible service's URL (default: AWS for the region).")
    )
    region = fields.String(metadata=_about("The bucket's region."))
    prefix = fields.String(load_default="", metadata=_about("Put before every key (`bridge/`)."))
    access_key_id = fields.String(metadata=_about("Default: the usual AWS credential chain."))
    secret_access_key = fields.String(metadata=_about("Goes with `access_key_id`."))


class FilesSchema(_Strict):
    directory = fields.String(
        metadata=_about(
            "Where files are kept (default: `files` beside the SQLite database, else "
            "`./bridge-files`)."
        )
    )
    s3 = fields.Nested(
        S3Schema,
        metadata=_about(
            "Keep files in an S3-compatible bucket instead (several instances; needs "
            "`proprofs-bridge[s3]`).",
            schema=S3Schema,
        ),
    )
    link_lifetime = Duration(
        load_default=30 * 86400.0,
        metadata=_about("How long a ticket's link to a file works (the console can extend one)."),
    )


class TopSchema(_Strict):
    proprofs = fields.Dict(
        required=True,
        metadata=_about("The ProProfs account.", schema=ProProfsSchema),
    )
    admin = fields.Dict(
        load_default=dict,
        metadata=_about(
            "The operator console (off unless one of its logins is set).", schema=AdminSchema
        ),
    )
    store = fields.String(
        load_default=DEFAULT_STORE,
        metadata=_about(
            "The outbox: `sqlite:///PATH` or `postgresql+psycopg://user@host/db` (several "
            "instances)."
        ),
    )
    server = fields.Dict(load_default=dict, metadata=_about("The HTTP side.", schema=ServerSchema))
    metrics = fields.Dict(
        load_default=dict,
        metadata=_about("Who may read `/metrics`.", schema=MetricsSchema),
    )
    files = fields.Dict(
        load_default=dict,
        metadata=_about("Where attached files are kept, and their links.", schema=FilesSchema),
    )
    delivery = fields.Dict(
        load_default=dict,
        metadata=_about("How submissions are sent to ProProfs.", schema=DeliverySchema),
    )
    defaults = fields.Dict(
        load_default=dict,
        metadata=_about(
            "Settings every route inherits: any key of `routes.<route>` but `kind`, each "
            "for the routes whose kind takes it; mappings merge key by key."
        ),
    )
    routes = fields.Dict(
        required=True,
        metadata=_about("The routes by name.", schema=RouteSchema, each="route"),
    )


# --- typed settings ---------------------------------------------------------------------


@dataclass(frozen=True)
class ProProfsSettings:
    account_email: str
    token: str = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    timezone: str = "America/Chicago"
    connect_timeout: float = 5.0
    read_timeout: float = 30.0


@dataclass(frozen=True)
class Captcha:
    provider: str
    site_key: str
    secret: str = field(repr=False)
    verify_url: str | None = None
    min_score: float | None = None
    timeout: float = 5.0
    script_url: str | None = None


@dataclass(frozen=True)
class ContentRules:
    keywords: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    max_links: int | None = None
    blocked_domains: tuple[str, ...] = ()
    disposable_domains: bool = False
    min_length: int | None = None
    threshold: float = 5.0
    scores: Mapping[str, float] = field(default_factory=lambda: dict(RULE_SCORES))


@dataclass(frozen=True)
class Guards:
    """What stands between a browser-facing route and the outbox (forms and the widget)."""

    origins: tuple[str, ...] = ()
    honeypot: str | None = None
    min_seconds: float | None = None
    max_age: float = 86400.0
    captcha: Captcha | None = None
    content: ContentRules | None = None
    keep: bool = False
    quarantine_for: float = 30 * 86400.0
    per_ip: tuple[str, ...] = ()
    per_route: tuple[str, ...] = ()
    double_submit_window: float = 300.0


@dataclass(frozen=True)
class Page:
    title: str | None = None
    intro: str | None = None
    submit: str | None = None
    lang: str = "en"
    thanks: str | None = None
    messages: Mapping[str, str] = field(default_factory=dict)
    success_url: str | None = None
    error_url: str | None = None
    allow_next: tuple[str, ...] = ()


@dataclass(frozen=True)
class WidgetSettings:
    """The embeddable widget's look and its backend's settings."""

    title: str = "Contact support"
    launcher: str = "Help"
    color: str = "#2455c3"
    position: str = "right"
    identity_secret: str | None = field(default=None, repr=False)
    page_url_field: str | None = None
    user_agent_field: str | None = None
    status_cache: float = 30.0
    receipt_max_age: float = 90 * 86400.0


@dataclass(frozen=True)
class AlertSettings:
    """How a hook route treats an alert's lifecycle."""

    resolved: str = "ignore"  # ignore | ticket
    alert_mode: str = "group"  # group | alert (one ticket per alert)
    max_alerts: int = 20  # alerts listed in a description before "N more"
    ticket_check_ttl: float = 60.0  # how long the list API's "still open" answer is trusted
    status: Template | None = None  # the preset's firing/resolved template
    alert_dedup_key: Template | None = None
    heartbeat: Heartbeat | None = None
    storm: Storm | None = None
    capture: int = 0  # raw payloads kept for the console's test bench


@dataclass(frozen=True)
class Heartbeat:
    """The notification a hook route expects every ``every`` seconds (a dead man's switch)."""

    match: Mapping[str, str]
    every: float
    grace: float = 300.0
    email: str | None = None
    inbox: str | None = None

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.match.items())


@dataclass(frozen=True)
class Storm:
    """At most ``max_new`` new alert groups per ``window`` get a ticket each."""

    max_new: int
    window: float = 300.0


@dataclass(frozen=True)
class Route:
    """A configured route: how input is checked and how it becomes a ticket."""

    name: str
    kind: str
    mapping: RouteMapping
    fields: Mapping[str, FieldSpec]
    source: Source | None
    auth: Mapping[str, Any] = field(default_factory=dict, repr=False)
    max_body: int = DEFAULT_MAX_BODY
    settings: Mapping[str, Any] = field(default_factory=dict, repr=False)
    guards: Guards = field(default_factory=Guards)
    page: Page = field(default_factory=Page)
    alerts: AlertSettings = field(default_factory=lambda: AlertSettings())
    widget: WidgetSettings = field(default_factory=lambda: WidgetSettings())
    retention: Retention = field(default_factory=lambda: Retention())
    attachments: Limits = field(default_factory=Limits)

    @property
    def path(self) -> str:
        return PATH_PREFIX[self.kind] + self.name

    @functools.cached_property
    def file_fields(self) -> tuple[str, ...]:
        return tuple(name for name, spec in self.fields.items() if spec.type == "file")

    @functools.cached_property
    def body_limit(self) -> int:
        """The largest body read: ``max_body``, plus the files' total on a route with files."""
        if self.file_fields:
            return self.max_body + self.attachments.max_total
        return self.max_body

    def limit_for(self, mimetype: str) -> int:
        """The largest body read for this content type: only multipart carries files, so
        JSON and urlencoded bodies are held to ``max_body`` whatever the files may total."""
        return self.body_limit if mimetype == "multipart/form-data" else self.max_body

    def read_json(self, body: bytes) -> Any:
        """A JSON body as intake reads it on this route: through its sender preset (which
        may unwrap it, as SNS's does), else as plain JSON; ``ValueError`` if it is not."""
        if self.source is not None:
            return self.source.parse(body, "application/json", {})
        return jsonbody.loads(body)


@dataclass(frozen=True)
class Retention:
    """Seconds after delivery (or death) before a submission's personal content goes."""

    scrub_after: float | None = None
    dead_after: float | None = None


@dataclass(frozen=True)
class S3Settings:
    bucket: str
    endpoint_url: str | None = None
    region: str | None = None
    prefix: str = ""
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class FileSettings:
    directory: str = "bridge-files"
    s3: S3Settings | None = None
    link_lifetime: float = 30 * 86400.0


@dataclass(frozen=True)
class ServerSettings:
    trusted_proxies: int = 0
    proxy_networks: tuple[str, ...] = ()  # the proxies' addresses, when the config names them
    rate_limit_storage: str = "memory://"
    secret_key: str | None = field(default=None, repr=False)
    log_level: str = "INFO"
    log_json: bool = True
    metrics: bool = True
    body_timeout: float = 30.0
    public_url: str | None = None
    pin_cpus: bool = False
    link_lifetime: float = 30 * 86400.0


@dataclass(frozen=True)
class AdminSettings:
    password_hash: str | None = field(default=None, repr=False)
    trusted_header: str | None = None
    secure_cookies: bool = True
    ticket_url: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.password_hash or self.trusted_header)


@dataclass(frozen=True)
class Settings:
    proprofs: ProProfsSettings
    routes: Mapping[str, Route]
    metrics_token: str | None = field(default=None, repr=False)
    store: str = DEFAULT_STORE
    source_path: str = "<dict>"
    warnings: tuple[str, ...] = ()
    server: ServerSettings = field(default_factory=ServerSettings)
    admin: AdminSettings = field(default_factory=AdminSettings)
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    files: FileSettings = field(default_factory=FileSettings)
    dead_letters: DeadLetterHook | None = None


def config_path(explicit: str | None = None) -> Path:
    """``--config``, else ``$BRIDGE_CONFIG``, else ``./bridge.yaml``."""
    return Path(explicit or os.environ.get("BRIDGE_CONFIG") or "bridge.yaml")


def load_settings(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Read, interpolate and validate a config file; raise :class:`ConfigError` listing all."""
    file = config_path(str(path) if path else None)
    try:
        text = file.read_text()
    except OSError as exc:
        raise ConfigError([f"{file}: cannot read the config: {exc.strerror}"]) from None
    doc = _Document(text, str(file), os.environ if env is None else env)
    return _build(doc)


def settings_from_text(
    text: str, filename: str = "bridge.yaml", env: Mapping[str, str] | None = None
) -> Settings:
    """Like :func:`load_settings` for config text (tests, ``bridge try``)."""
    return _build(_Document(text, filename, os.environ if env is None else env))


def settings_from_dict(data: Mapping[str, Any]) -> Settings:
    """Settings from an in-memory dict, validated the same way (tests build apps from dicts)."""
    text = yaml.safe_dump(dict(data), sort_keys=False)
    return _build(_Document(text, "<dict>", {}))


def _build(doc: _Document) -> Settings:
    problems = list(doc.problems)

    warnings: list[str] = []

    def report(path: tuple[Any, ...], messages: Any) -> None:
        for sub, message in _flatten(messages):
            full = path + sub
            if _dotted(full) in doc.failed:
                continue  # already reported: its variable or file is missing
            problems.append(f"{doc.filename}:{doc.line(full)} {_dotted(full)}: {message}")

    def warn(path: tuple[Any, ...], message: str) -> None:
        warnings.append(f"{doc.filename}:{doc.line(path)} {_dotted(path)}: {message}")

    if not isinstance(doc.data, dict):
        raise ConfigError([f"{doc.filename}:1 (top): the config must be a mapping"])
    top, _ = _load_partly(TopSchema(), doc.data, (), report)
    proprofs = _load(ProProfsSchema(), top.get("proprofs") or {}, ("proprofs",), report)
    delivery = _load(DeliverySchema(), top.get("delivery") or {}, ("delivery",), report)
    defaults = top.get("defaults") or {}
    if defaults:
        partial = {k: v for k, v in defaults.items() if k != "kind"}
        if "kind" in defaults:
            report(("defaults", "kind"), ["a route's kind cannot have a default"])
        _load(RouteSchema(partial=True), partial, ("defaults",), report)
    routes: dict[str, Route] = {}
    raw_routes = top.get("routes") or {}
    if not isinstance(raw_routes, dict) or not raw_routes:
        report(("routes",), ["define at least one route"])
        raw_routes = {}
    for name, raw in raw_routes.items():
        path = ("routes", name)
        if not ROUTE_NAME.match(str(name)):
            report(path, ["route names are lower-case letters, digits, - and _"])
            continue
        if not isinstance(raw, dict):
            report(path, ["a route must be a mapping"])
            continue
        merged = _merge(_inherited(defaults, raw.get("kind")), raw)
        route = _build_route(str(name), merged, path, doc, report, own=raw, warn=warn)
        if route is not None:
            routes[route.name] = route
    if problems:
        raise ConfigError(problems)
    server = _load(ServerSchema(), top.get("server") or {}, ("server",), report)
    admin = _load(AdminSchema(), top.get("admin") or {}, ("admin",), report)
    files = _load(FilesSchema(), top.get("files") or {}, ("files",), report)
    metrics = _load(MetricsSchema(), top.get("metrics") or {}, ("metrics",), report)
    if problems:
        raise ConfigError(problems)
    assert proprofs is not None and delivery is not None and server is not None
    assert admin is not None and files is not None and metrics is not None
    if not server.get("public_url"):
        for route in routes.values():
            if route.file_fields:
                warn(
                    ("routes", route.name, "fields", route.file_fields[0]),
                    "its files are linked from tickets by server.public_url, which is not set: "
                    "the tickets will carry paths, not links (a request's Host header is "
                    "never used: anyone can set it)",
                )
            if route.alerts.heartbeat or route.alerts.storm:
                warn(
                    ("routes", route.name, "heartbeat" if route.alerts.heartbeat else "storm"),
                    "its tickets are raised by the delivery process, which cannot link the "
                    "incident pages without server.public_url",
                )
    store = str(top.get("store") or DEFAULT_STORE)
    if files.get("s3"):
        try:
            import boto3  # noqa: F401
        except ImportError:
            report(("files", "s3"), ["needs boto3: pip install 'proprofs-bridge[s3]'"])
            raise ConfigError(problems) from None
    proxies = server.pop("trusted_proxies", 0)
    if isinstance(proxies, tuple):
        server.update(trusted_proxies=1, proxy_networks=proxies)
    else:
        server["trusted_proxies"] = proxies
    if admin.get("trusted_header") and not server.get("proxy_networks"):
        report(
            ("admin", "trusted_header"),
            [
                "an identity header is believed only from the proxy that sets it: list "
                "its addresses in server.trusted_proxies (e.g. [10.0.0.5] or [10.0.0.0/24])"
            ],
        )
        raise ConfigError(problems)
    return Settings(
        admin=AdminSettings(**admin),
        metrics_token=metrics.get("token"),
        server=ServerSettings(
            **{**server, "public_url": (server.get("public_url") or "").rstrip("/") or None}
        ),
        proprofs=ProProfsSettings(**proprofs),
        routes=routes,
        store=store,
        source_path=doc.filename,
        delivery=_delivery(delivery),
        warnings=tuple(warnings),
        files=_files(files, store),
        dead_letters=DeadLetterHook(**delivery["dead_letters"])
        if delivery.get("dead_letters")
        else None,
    )


def _files(values: dict[str, Any], store: str) -> FileSettings:
    directory = values.get("directory")
    if not directory:
        database = store.split(":///", 1)[1] if store.startswith("sqlite:///") else ""
        directory = (
            str(Path(database).parent / "files")
            if database and database != ":memory:"
            else "bridge-files"
        )
    s3 = values.get("s3")
    return FileSettings(
        directory=directory,
        s3=S3Settings(**s3) if s3 else None,
        link_lifetime=values["link_lifetime"],
    )


def _delivery(values: dict[str, Any]) -> DeliverySettings:
    schedule = values.get("retry_schedule")
    retry = RetryPolicy(
        schedule=tuple(schedule) if schedule else DEFAULT_SCHEDULE,
        jitter=values["retry_jitter"],
        min_after_timeout=values["min_retry_after_timeout"],
    )
    return DeliverySettings(
        concurrency=values["concurrency"],
        rate_limit=values["rate_limit"],
        lease_seconds=values["lease"],
        poll_interval=values["poll_interval"],
        reconcile_lag=values["reconcile_lag"],
        retry=retry,
    )


# The route keys that only some kinds take, from the schema (they are documented there too).
_KIND_KEYS: dict[str, tuple[str, ...]] = {
    schema_field.data_key or name: schema_field.metadata["kinds"]
    for name, schema_field in RouteSchema().fields.items()
    if "kinds" in schema_field.metadata
}


def _inherited(defaults: Mapping[str, Any], kind: Any) -> dict[str, Any]:
    """The defaults a route of ``kind`` inherits: those its kind takes."""
    return {k: v for k, v in defaults.items() if kind in _KIND_KEYS.get(k, KINDS)}


def _build_route(
    name: str,
    data: dict[str, Any],
    path: tuple[Any, ...],
    doc: _Document,
    report: Any,
    own: Mapping[str, Any],
    warn: Any = None,
) -> Route | None:
    loaded, ok = _load_partly(RouteSchema(), data, path, report)
    kind = loaded.get("kind", "")
    if kind in KINDS:
        for key, kinds in _KIND_KEYS.items():
            if key in data and kind not in kinds:
                report((*path, key), [f"only {' and '.join(kinds)} routes take {key}"])
                ok = False
    specs: dict[str, FieldSpec] = {}
    for field_name, raw_spec in (loaded.get("declared") or {}).items():
        spec_path = (*path, "fields", field_name)
        if not isinstance(raw_spec, dict):
            report(spec_path, ["a field is a mapping like {type: string, required: true}"])
            ok = False
            continue
        spec = _load(FieldSpecSchema(), raw_spec, spec_path, report)
        if spec is None:
            ok = False
            continue
        spec["choices"] = tuple(spec.get("choices") or ())
        specs[field_name] = FieldSpec(name=field_name, **spec)
    if kind in KINDS and kind not in FORM_AND_WIDGET:
        for field_name, spec_obj in specs.items():
            if spec_obj.type == "file":
                report((*path, "fields", field_name, "type"), ["only forms and widgets take files"])
                ok = False
    ticket_raw = loaded.get("ticket") or {}
    ticket = _load(TicketSpecSchema(), ticket_raw, (*path, "ticket"), report)
    if ticket is None or not ok or kind not in KINDS:
        return None

    ways = [k for k in ("declared", "source", "schema") if loaded.get(k)]
    source: Source | None = None
    if kind == "hook" and not ways:
        ways = ["source"]
        loaded["source"] = "generic"
    if len(ways) != 1:
        report(
            path,
            ["give exactly one of fields, source or schema"]
            if ways
            else ["declare fields (or a schema 'module:Class')"],
        )
        return None
    if "source" in ways:
        if loaded["source"] not in source_names():
            report((*path, "source"), [f"must be one of: {', '.join(source_names())}"])
            return None
        source = get_source(loaded["source"])
        schema: Schema = source.schema()
    elif "schema" in ways:
        schema_or_error = _import_schema(loaded["schema"])
        if isinstance(schema_or_error, str):
            report((*path, "schema"), [schema_or_error])
            return None
        schema = schema_or_error
    else:
        schema = build_schema(name, specs)()

    if kind in ("form", "widget"):
        ticket = _form_ticket_defaults(name, ticket, specs)
    if kind == "widget":
        context_fields = {
            (loaded.get("widget") or {}).get("page_url_field"): "{{ meta.page_url }}",
            (loaded.get("widget") or {}).get("user_agent_field"): "{{ meta.user_agent }}",
        }
        custom = dict(ticket.get("custom_fields") or {})
        for field_id, value in context_fields.items():
            if field_id:
                custom.setdefault(field_id, value)
        ticket = {**ticket, **({"custom_fields": custom} if custom else {})}
    ticket_spec = _ticket_spec(ticket, source, own_ticket=own.get("ticket") or {})
    try:
        mapping = RouteMapping(
            name,
            schema,
            ticket_spec,
            unknown=loaded["unknown"],
            dedup_key=loaded.get("dedup_key") or (source.dedup_key if source else None),
        )
    except MappingError as exc:
        where, _, message = str(exc).partition(": ")
        report(tuple(where.split(".")), [message])
        return None
    for problem_path, message in _requirements(mapping, kind):
        report(path + problem_path, [message])
    auth = loaded.get("auth") or {}
    if auth:
        auth = _load(HookAuthSchema(), auth, (*path, "auth"), report) or {}
        if auth.get("sns") and (source is None or source.name != "aws_sns"):
            report((*path, "auth", "sns"), ["SNS signatures go with source: aws_sns"])
    if source is not None and source.name == "aws_sns":
        # SNS messages are verified whether or not the route says so; only an explicit
        # ``verify: false`` turns that off, and it is worth a warning.
        auth = {
            **auth,
            "sns": {"topics": [], "verify": True, "max_age": 3600.0, **(auth.get("sns") or {})},
        }
        if auth["sns"]["verify"] and not auth["sns"]["topics"]:
            report(
                (*path, "auth", "sns", "topics"),
                [
                    "list the topic ARNs this route takes messages from, e.g. "
                    "topics: [arn:aws:sns:eu-west-1:123456789012:alerts]: a signature "
                    "only proves AWS sent a message, not that it is from your topic"
                ],
            )
        if not auth["sns"]["verify"] and warn is not None:
            warn(
                (*path, "auth", "sns", "verify"),
                "SNS signatures are not checked on this route: anyone who knows its URL "
                "can make tickets",
            )
    alerts = AlertSettings()
    if kind == "hook":
        alerts = AlertSettings(
            resolved=loaded["resolved"],
            alert_mode=loaded["alert_mode"],
            max_alerts=loaded["max_alerts"],
            ticket_check_ttl=loaded["ticket_check_ttl"],
            status=Template(source.status, f"sources.{source.name}.status") if source else None,
            alert_dedup_key=(
                Template(source.alert_dedup_key, f"sources.{source.name}.dedup")
                if source and source.alert_dedup_key
                else None
            ),
            heartbeat=Heartbeat(**loaded["heartbeat"]) if loaded.get("heartbeat") else None,
            storm=Storm(**loaded["storm"]) if loaded.get("storm") else None,
            capture=loaded["capture"],
        )
        if (alerts.heartbeat or alerts.storm) and source is None:
            report(path, ["heartbeat and storm need an alert sender (source:)"])
        if alerts.alert_mode == "alert" and (source is None or source.split is None):
            report((*path, "alert_mode"), ["per-alert mode needs source: alertmanager or grafana"])
    widget = WidgetSettings(**(loaded.get("widget") or {}))
    guards, page = _browser_settings(loaded)
    return Route(
        name=name,
        kind=kind,
        mapping=mapping,
        fields=specs,
        source=source,
        auth=auth,
        max_body=loaded["max_body"],
        settings=data,
        guards=guards,
        page=page,
        alerts=alerts,
        widget=widget,
        retention=Retention(**(loaded.get("retention") or {})),
        attachments=_limits(loaded.get("attachments")),
    )


def _limits(loaded: Mapping[str, Any] | None) -> Limits:
    if not loaded:
        return Limits()
    return Limits(
        max_size=loaded["max_size"],
        max_files=loaded["max_files"],
        max_total=loaded["max_total"],
        types=tuple(dict.fromkeys(loaded["types"])),
    )


def _content_rules(loaded: Mapping[str, Any] | None) -> ContentRules | None:
    if not loaded:
        return None
    return ContentRules(
        keywords=tuple(k.lower() for k in loaded.get("keywords") or ()),
        patterns=tuple(loaded.get("patterns") or ()),
        max_links=loaded.get("max_links"),
        blocked_domains=tuple(d.lower().lstrip("@.") for d in loaded.get("blocked_domains") or ()),
        disposable_domains=loaded.get("disposable_domains", False),
        min_length=loaded.get("min_length"),
        threshold=loaded.get("threshold", 5.0),
        scores={**RULE_SCORES, **(loaded.get("scores") or {})},
    )


def _browser_settings(loaded: Mapping[str, Any]) -> tuple[Guards, Page]:
    spam = loaded.get("spam") or {}
    captcha = spam.get("captcha")
    limits = loaded.get("limits") or {}
    guards = Guards(
        origins=tuple(o.rstrip("/") for o in loaded.get("origins") or ()),
        honeypot=spam.get("honeypot"),
        min_seconds=spam.get("min_seconds"),
        max_age=spam.get("max_age", 86400.0),
        captcha=Captcha(**captcha) if captcha else None,
        content=_content_rules(spam.get("content")),
        keep=spam.get("keep", False),
        quarantine_for=spam.get("quarantine_for", 30 * 86400.0),
        per_ip=tuple(limits.get("per_ip") or ()),
        per_route=tuple(limits.get("per_route") or ()),
        double_submit_window=loaded["double_submit_window"],
    )
    page_raw = dict(loaded.get("page") or {})
    redirect = loaded.get("redirect") or {}
    page = Page(
        title=page_raw.get("title"),
        intro=page_raw.get("intro"),
        submit=page_raw.get("submit"),
        lang=page_raw.get("lang", "en"),
        thanks=page_raw.get("thanks"),
        messages=page_raw.get("messages") or {},
        success_url=redirect.get("success"),
        error_url=redirect.get("error"),
        allow_next=tuple(redirect.get("allow_next") or ()),
    )
    return guards, page


def _form_ticket_defaults(
    name: str, ticket: dict[str, Any], specs: Mapping[str, FieldSpec]
) -> dict[str, Any]:
    """The person's name, email and phone become the requester; fields fill custom fields."""
    values = dict(ticket)
    for key in ("email", "name", "phone"):
        if key in specs:
            values.setdefault(key, f"{{{{ {key} }}}}")
    body_field = next((n for n, s in specs.items() if s.type == "text"), None)
    if body_field:
        values.setdefault("subject", f"[{name}] {{{{ {body_field}|oneline|truncate(70) }}}}")
    else:
        values.setdefault("subject", f"New submission on {name}")
    if body_field:
        # The person's words first, then every other field as ``key: value`` lines.
        shown_apart = ", ".join(
            repr(k) for k in (body_field, "email", "name", "phone") if k == body_field or k in specs
        )
        values.setdefault(
            "description", f"{{{{ {body_field} }}}}\n\n{{{{ data|without({shown_apart})|kv }}}}"
        )
    else:
        values.setdefault("description", "{{ data|kv }}")
    custom = dict(values.get("custom_fields") or {})
    for field_name, spec in specs.items():
        if spec.custom_field:
            custom.setdefault(spec.custom_field, f"{{{{ {field_name} }}}}")
    if custom:
        values["custom_fields"] = custom
    return values


def _ticket_spec(
    ticket: dict[str, Any], source: Source | None, own_ticket: Mapping[str, Any]
) -> TicketSpec:
    values = dict(ticket)
    if source is not None:
        values.setdefault("subject", source.subject)
        values.setdefault("description", source.description)
        if source.priority and "priority" not in own_ticket:
            # A priority inherited from defaults is the fallback; the sender's severity leads.
            inherited = values.get("priority")
            if inherited in PRIORITIES and "priority_default" not in values:
                values["priority_default"] = inherited
            values["priority"] = source.priority
        values["priority_map"] = {**source.priority_map, **(ticket.get("priority_map") or {})}
    return TicketSpec(**values)


def _requirements(mapping: RouteMapping, kind: str) -> list[tuple[tuple[str, ...], str]]:
    """ProProfs needs a requester email and a subject on every ticket: does this route give both?"""
    problems: list[tuple[tuple[str, ...], str]] = []
    specs = {} if mapping.passthrough else mapping.schema.fields
    required = {name for name, f in specs.items() if f.required or f.load_default is not missing}
    for key in ("email", "subject"):
        template = mapping.templates.get(key)
        if template is None or not template.source.strip():
            hint = (
                "a hook route needs a fixed requester, e.g. email: alerts@example.com"
                if key == "email" and kind == "hook"
                else f"set ticket.{key}"
            )
            problems.append((("ticket", key), f"ProProfs requires {key} on every ticket; {hint}"))
            continue
        if template.is_literal or template.has_default:
            continue
        always = {"route", "ref", "received_at"}
        if specs:
            absent = sorted(template.variables - required - always)
            if key == "subject" and (template.literal_text or template.variables & required):
                continue  # some text always shows, whatever the optional fields hold
            if absent:
                problems.append(
                    (
                        ("ticket", key),
                        f"uses {', '.join(absent)}, which may be "
                        "absent; make it required or add |default('…')",
                    )
                )
        elif key == "email":
            problems.append(
                (
                    ("ticket", key),
                    "a hook route needs a fixed requester, e.g. "
                    "email: alerts@example.com (or a template with |default('…'))",
                )
            )
    return problems


def _import_schema(dotted: str) -> Schema | str:
    module_name, _, class_name = dotted.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        return f"cannot import {module_name}: {exc}"
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Schema)):
        return f"{dotted} is not a marshmallow Schema class"
    return cls()


def _load(schema: Schema, data: Any, path: tuple[Any, ...], report: Any) -> dict[str, Any] | None:
    """The loaded data, or ``None`` after reporting every problem under ``path``."""
    try:
        return dict(schema.load(data))
    except ValidationError as exc:
        report(path, exc.messages)
        return None


def _load_partly(
    schema: Schema, data: Any, path: tuple[Any, ...], report: Any
) -> tuple[dict[str, Any], bool]:
    """Like :func:`_load`, but keeps what was valid so later checks can still report."""
    try:
        return dict(schema.load(data)), True
    except ValidationError as exc:
        report(path, exc.messages)
        valid = exc.valid_data if isinstance(exc.valid_data, dict) else {}
        return dict(valid), False


def _flatten(messages: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], str]]:
    """marshmallow's nested messages as (sub-path, text); Dict's 'key'/'value' levels folded."""
    out: list[tuple[tuple[Any, ...], str]] = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            if (key in ("value", "key") and prefix) or key == "_schema":
                out += _flatten(value, prefix)
            else:
                out += _flatten(value, (*prefix, key))
    elif isinstance(messages, list):
        for item in messages:
            out += _flatten(item, prefix)
    else:
        text = str(messages)
        if text == "Unknown field.":
            text = "unknown key (check its spelling)"
        if text.split(" ", 1)[0] in _MARSHMALLOW_OPENERS:
            text = text[:1].lower() + text[1:]  # "Must be one of" → "must be one of"
        out.append((prefix, text))
    return out


_MARSHMALLOW_OPENERS = frozenset(
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


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults under a route, dicts merged key by key (custom field maps too), lists replaced."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
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
