"""One route's settings, built from its checked config in a few named steps."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from marshmallow import Schema, missing

from ..attachments import Limits
from ..declared import FieldSpec, build_schema
from ..mapping import MappingError, RouteMapping, Template, TicketSpec
from ..proprofs.models import PRIORITIES
from ..sources import RESOLVED_PREFIX, Source, get_source, source_names
from .auth import HookAuthSchema
from .document import Report, load, load_partly
from .route_schema import FORM_AND_WIDGET, FieldSpecSchema, RouteSchema, TicketSpecSchema
from .settings import (
    KINDS,
    RULE_SCORES,
    AlertSettings,
    Captcha,
    ContentRules,
    Guards,
    Heartbeat,
    Page,
    Retention,
    Route,
    Storm,
    UpdateSettings,
    WidgetSettings,
)

KIND_KEYS: dict[str, tuple[str, ...]] = {
    schema_field.data_key or name: schema_field.metadata["kinds"]
    for name, schema_field in RouteSchema().fields.items()
    if "kinds" in schema_field.metadata
}


def inherited(defaults: Mapping[str, Any], kind: Any) -> dict[str, Any]:
    """The defaults a route of ``kind`` inherits: those its kind takes."""
    return {k: v for k, v in defaults.items() if kind in KIND_KEYS.get(k, KINDS)}


def build_route(
    name: str, data: dict[str, Any], path: tuple[Any, ...], report: Report, own: Mapping[str, Any]
) -> Route | None:
    """One route from ``data`` (its keys over the defaults its kind takes; ``own``: its keys
    alone), or ``None`` once every reason it cannot be built is reported."""
    loaded, ok = load_partly(RouteSchema(), data, path, report)
    kind = loaded.get("kind", "")
    ok = _kind_takes(kind, data, path, report) and ok
    specs, specs_ok = _field_specs(loaded, kind, path, report)
    ticket = load(TicketSpecSchema(), loaded.get("ticket") or {}, (*path, "ticket"), report)
    if ticket is None or not (ok and specs_ok) or kind not in KINDS:
        return None
    payload = _payload_schema(name, kind, loaded, specs, path, report)
    if payload is None:
        return None
    schema, source = payload
    ticket_spec = _route_ticket(name, kind, loaded, ticket, specs, source, own)
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
    auth = _auth(loaded, source, path, report)
    alerts = _alerts(kind, loaded, source, path, report)
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
        widget=WidgetSettings(**(loaded.get("widget") or {})),
        retention=Retention(**(loaded.get("retention") or {})),
        attachments=_limits(loaded.get("attachments")),
    )


def _kind_takes(kind: str, data: Mapping[str, Any], path: tuple[Any, ...], report: Report) -> bool:
    """Whether the route gives only keys its kind takes (each other one is reported)."""
    ok = True
    if kind in KINDS:
        for key, kinds in KIND_KEYS.items():
            if key in data and kind not in kinds:
                report((*path, key), [f"only {' and '.join(kinds)} routes take {key}"])
                ok = False
    return ok


def _field_specs(
    loaded: Mapping[str, Any], kind: str, path: tuple[Any, ...], report: Report
) -> tuple[dict[str, FieldSpec], bool]:
    """The declared fields, and whether every one of them is sound."""
    ok = True
    specs: dict[str, FieldSpec] = {}
    for field_name, raw_spec in (loaded.get("declared") or {}).items():
        spec_path = (*path, "fields", field_name)
        if not isinstance(raw_spec, dict):
            report(spec_path, ["a field is a mapping like {type: string, required: true}"])
            ok = False
            continue
        spec = load(FieldSpecSchema(), raw_spec, spec_path, report)
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
    return specs, ok


def _payload_schema(
    name: str,
    kind: str,
    loaded: dict[str, Any],
    specs: Mapping[str, FieldSpec],
    path: tuple[Any, ...],
    report: Report,
) -> tuple[Schema, Source | None] | None:
    """The schema a submission is loaded with: declared fields, a sender preset's (a hook
    route without either takes the generic one) or the user's own class."""
    ways = [k for k in ("declared", "source", "schema") if loaded.get(k)]
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
        return source.schema(), source
    if "schema" in ways:
        schema_or_error = _import_schema(loaded["schema"])
        if isinstance(schema_or_error, str):
            report((*path, "schema"), [schema_or_error])
            return None
        return schema_or_error, None
    return build_schema(name, specs)(), None


def _route_ticket(
    name: str,
    kind: str,
    loaded: Mapping[str, Any],
    ticket: dict[str, Any],
    specs: Mapping[str, FieldSpec],
    source: Source | None,
    own: Mapping[str, Any],
) -> TicketSpec:
    """The ticket's templates: the route's own, over its kind's and its sender's defaults."""
    if kind in ("form", "widget"):
        ticket = _form_ticket_defaults(name, ticket, specs)
    if kind == "widget":
        widget = loaded.get("widget") or {}
        context_fields = {
            widget.get("page_url_field"): "{{ meta.page_url }}",
            widget.get("user_agent_field"): "{{ meta.user_agent }}",
        }
        custom = dict(ticket.get("custom_fields") or {})
        for field_id, value in context_fields.items():
            if field_id:
                custom.setdefault(field_id, value)
        ticket = {**ticket, **({"custom_fields": custom} if custom else {})}
    return _ticket_spec(ticket, source, own_ticket=own.get("ticket") or {})


def _auth(
    loaded: Mapping[str, Any], source: Source | None, path: tuple[Any, ...], report: Report
) -> dict[str, Any]:
    """The route's credentials; an SNS route's signatures are checked unless it says not."""
    auth = loaded.get("auth") or {}
    if auth:
        auth = load(HookAuthSchema(), auth, (*path, "auth"), report) or {}
        if auth.get("sns") and (source is None or source.name != "aws_sns"):
            report((*path, "auth", "sns"), ["SNS signatures go with source: aws_sns"])
    if source is None or source.name != "aws_sns":
        return dict(auth)
    sns = {"topics": [], "verify": True, "max_age": 3600.0, **(auth.get("sns") or {})}
    if sns["verify"] and not sns["topics"]:
        report(
            (*path, "auth", "sns", "topics"),
            [
                "list the topic ARNs this route takes messages from, e.g. "
                "topics: [arn:aws:sns:eu-west-1:123456789012:alerts]: a signature "
                "only proves AWS sent a message, not that it is from your topic"
            ],
        )
    if not sns["verify"]:
        report.warn(
            (*path, "auth", "sns", "verify"),
            "SNS signatures are not checked on this route: anyone who knows its URL "
            "can make tickets",
        )
    return {**auth, "sns": sns}


def _alerts(
    kind: str,
    loaded: Mapping[str, Any],
    source: Source | None,
    path: tuple[Any, ...],
    report: Report,
) -> AlertSettings:
    """How a hook route treats an alert's lifecycle (other kinds: the defaults)."""
    if kind != "hook":
        return AlertSettings()
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
        update=_update(loaded.get("update"), source),
    )
    if (alerts.heartbeat or alerts.storm) and source is None:
        report(path, ["heartbeat and storm need an alert sender (source:)"])
    if alerts.update is not None and source is None:
        report(
            (*path, "update"),
            ["update needs an alert sender (source:) that says firing or resolved"],
        )
    if alerts.alert_mode == "alert" and (source is None or source.split is None):
        report((*path, "alert_mode"), ["per-alert mode needs source: alertmanager or grafana"])
    return alerts


def _update(loaded: Mapping[str, Any] | None, source: Source | None) -> UpdateSettings | None:
    """The route's ``update:`` block, with its preset's default prefix."""
    if loaded is None:
        return None
    prefix = loaded.get("resolved_prefix")
    if prefix is None:
        prefix = source.resolved_prefix if source is not None else RESOLVED_PREFIX
    return UpdateSettings(
        every=loaded["every"],
        priority=loaded["priority"],
        resolved_prefix=prefix,
        resolved_suffix=loaded["resolved_suffix"],
        status_block=loaded["status_block"],
        fields={k: v for k, v in (loaded.get("fields") or {}).items() if v},
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
