"""``GET /openapi.json``: the bridge's API as configured, generated with apispec from the very
marshmallow schemas that validate each route's input."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema, fields

from . import __version__
from .config.settings import Route, Settings


class AcceptedSchema(Schema):
    """The answer to a stored submission."""

    status = fields.String(
        required=True,
        metadata={
            "enum": [
                "accepted",
                "duplicate",
                "updated",
                "ignored",
                "held",
                "heartbeat",
                "subscribed",
            ]
        },
    )
    id = fields.String(metadata={"description": "The submission's reference (pb-…)"})
    ids = fields.List(fields.String())
    receipt = fields.String(metadata={"description": "Widget only: the status receipt"})
    message = fields.String()
    topic = fields.String()


class ErrorSchema(Schema):
    """The answer to a refused request."""

    status = fields.String(required=True, metadata={"enum": ["error"]})
    code = fields.String(required=True)
    message = fields.String(required=True)
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))


class StatusSchema(Schema):
    """The widget's status view of one submission."""

    state = fields.String(required=True, metadata={"enum": ["received", "delivered", "failed"]})
    subject = fields.String()
    received_at = fields.String()
    ticket_id = fields.String()
    ticket_status = fields.String()
    ticket_status_unavailable = fields.Boolean()
    last_update = fields.String()
    messages = fields.List(fields.Dict())
    files = fields.List(
        fields.Dict(),
        metadata={"description": "The person's own files: name, size, type and url"},
    )


ERRORS = {
    "400": "The body is not valid JSON (or not the sender's format).",
    "401": "Missing or wrong credentials or signature.",
    "403": "The origin (or SNS topic) is not allowed.",
    "408": "The body was still arriving at server.body_timeout; send it again.",
    "413": "The body is larger than the route accepts.",
    "409": "This webhook-id is being processed right now; retry (see Retry-After).",
    "415": "Unsupported content type.",
    "422": "Validation failed; errors by field.",
    "429": "Too many submissions; see Retry-After.",
    "502": "AWS could not be reached to confirm an SNS subscription.",
    "503": "The submission could not be stored; try again.",
}


def _error_responses(*codes: str) -> dict[str, Any]:
    return {
        code: {"description": ERRORS[code], "content": {"application/json": {"schema": "Error"}}}
        for code in codes
    }


def _scheme(spec: APISpec, name: str, component: dict[str, Any]) -> str:
    """Register a security scheme once, however many routes use it; the name to refer to it."""
    known = spec.components.security_schemes
    if name in known and known[name] != component:
        name = _unique(name, known)
    if name not in known:
        spec.components.security_scheme(name, component)
    return name


def _unique(name: str, taken: Mapping[str, Any]) -> str:
    """``name``, or ``name_2``, ``name_3``… whichever is free."""
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}_{n}"
    return candidate


def _security(spec: APISpec, route: Route) -> list[dict[str, list[str]]]:
    auth = route.auth or {}
    needed: dict[str, list[str]] = {}
    if auth.get("bearer"):
        needed[_scheme(spec, "bearer", {"type": "http", "scheme": "bearer"})] = []
    if auth.get("basic"):
        needed[_scheme(spec, "basic", {"type": "http", "scheme": "basic"})] = []
    if auth.get("query"):
        param = auth["query"].get("param", "token")
        component = {"type": "apiKey", "in": "query", "name": param}
        needed[_scheme(spec, f"query_{param}", component)] = []
    if auth.get("hmac"):
        header = {
            "grafana": auth["hmac"].get("header") or "X-Grafana-Alerting-Signature",
            "sentry": "Sentry-Hook-Signature",
            "pagerduty": "X-PagerDuty-Signature",
            "standard": "webhook-signature",
        }[auth["hmac"]["scheme"]]
        component = {
            "type": "apiKey",
            "in": "header",
            "name": header,
            "description": f"HMAC signature ({auth['hmac']['scheme']}) over the raw body",
        }
        needed[_scheme(spec, f"hmac_{auth['hmac']['scheme']}", component)] = []
    return [needed] if needed else []


def _file_parts(route: Any) -> dict[str, Any]:
    """The file parts of a multipart post: each file field, one or more files."""
    binary = {"type": "string", "format": "binary"}
    return {
        "type": "object",
        "properties": {
            name: {"type": "array", "items": binary} if route.attachments.max_files > 1 else binary
            for name in route.file_fields
        },
    }


def _widget_parts(route: Any) -> dict[str, Any]:
    """The widget's post with files: its JSON in a ``payload`` part, then the files."""
    parts = _file_parts(route)
    parts["properties"] = {
        "payload": {"type": "string", "description": "The JSON the widget would post"},
        **parts["properties"],
    }
    parts["required"] = ["payload"]
    return parts


ACCEPTED = {
    "description": "Stored: it will become a ticket.",
    "content": {"application/json": {"schema": "Accepted"}},
}


def build(settings: Settings) -> dict[str, Any]:
    """The OpenAPI document of this configuration's routes and probes."""
    spec = APISpec(
        title="proprofs-bridge",
        version=__version__,
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={
            "description": "Forms, alerts and the support widget in; ProProfs "
            "Help Desk tickets out."
        },
    )
    spec.components.schema("Accepted", schema=AcceptedSchema)
    spec.components.schema("Error", schema=ErrorSchema)
    spec.components.schema("Status", schema=StatusSchema)
    registered: dict[type, str] = {}
    for name, route in sorted(settings.routes.items()):
        schema_name = _input_schema(spec, name, route, registered)
        if route.kind == "hook":
            spec.path(path=route.path, operations={"post": _hook(spec, route, schema_name)})
        elif route.kind == "form":
            spec.path(path=route.path, operations={"post": _form(route, schema_name)})
        else:
            spec.path(path=route.path, operations={"post": _widget(route, schema_name)})
            spec.path(path=f"{route.path}/status/{{receipt}}", operations={"get": _status(name)})
    if any(route.file_fields for route in settings.routes.values()):
        spec.path(path="/files/{token}", operations={"get": FILE_LINK})
    spec.path(path="/healthz", operations={"get": HEALTHZ})
    spec.path(path="/readyz", operations={"get": READYZ})
    document: dict[str, Any] = spec.to_dict()
    return document


def _input_schema(spec: APISpec, name: str, route: Route, registered: dict[type, str]) -> str:
    """The component of a route's input schema; routes sharing a preset share it."""
    schema_class = type(route.mapping.schema)
    schema_name = registered.get(schema_class)
    if schema_name is None:
        schema_name = _unique(
            f"{name.replace('-', '_').title().replace('_', '')}Input", spec.components.schemas
        )
        spec.components.schema(schema_name, schema=schema_class)
        registered[schema_class] = schema_name
    return schema_name


def _hook(spec: APISpec, route: Route, schema_name: str) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": f"Webhook for route {route.name}"
        + (f" ({route.source.name})" if route.source else ""),
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema_name}},
        },
        "responses": {
            "202": ACCEPTED,
            "200": {
                "description": "A repeat, or nothing to do.",
                "content": {"application/json": {"schema": "Accepted"}},
            },
            **_error_responses("400", "401", "403", "408", "409", "413", "415", "422", "503"),
        },
    }
    security = _security(spec, route)
    if security:
        operation["security"] = security
    sns = (route.auth or {}).get("sns")
    if sns is not None:
        operation["description"] = (
            "AWS SNS signs each message; the bridge verifies the signature with "
            "AWS's signing certificate and refuses what it cannot verify (401)."
            if sns.get("verify", True)
            else "SNS signatures are not checked on this route (auth.sns.verify: false)."
        )
        operation["responses"].update(_error_responses("502"))
    return operation


def _form(route: Route, schema_name: str) -> dict[str, Any]:
    body = {"schema": schema_name}
    content: dict[str, Any] = {
        "application/json": body,
        "application/x-www-form-urlencoded": body,
    }
    if route.file_fields:
        files = _file_parts(route)
        ref = {"$ref": f"#/components/schemas/{schema_name}"}
        content["multipart/form-data"] = {"schema": {"allOf": [ref, files]}}
    return {
        "summary": f"Contact form {route.name} (browsers get 303; scripts get JSON)",
        "requestBody": {"required": True, "content": content},
        "responses": {
            "202": ACCEPTED,
            "200": {
                "description": "A double submit, answered as before.",
                "content": {"application/json": {"schema": "Accepted"}},
            },
            **_error_responses("400", "403", "408", "413", "415", "422", "429", "503"),
        },
    }


def _widget(route: Route, schema_name: str) -> dict[str, Any]:
    identity = {
        "type": "object",
        "properties": {name: {"type": "string"} for name in ("email", "name", "hmac")},
    }
    post = {
        "type": "object",
        "properties": {
            "fields": {"$ref": f"#/components/schemas/{schema_name}"},
            "page_url": {"type": "string"},
            "identity": identity,
        },
    }
    content: dict[str, Any] = {"application/json": {"schema": post}}
    if route.file_fields:
        content["multipart/form-data"] = {"schema": _widget_parts(route)}
    return {
        "summary": f"Support widget {route.name}",
        "requestBody": {"required": True, "content": content},
        "responses": {
            "202": ACCEPTED,
            **_error_responses("400", "403", "408", "413", "415", "422", "429", "503"),
        },
    }


def _path_parameter(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _status(name: str) -> dict[str, Any]:
    return {
        "summary": f"Status of a {name} submission, by its receipt",
        "parameters": [_path_parameter("receipt")],
        "responses": {
            "200": {
                "description": "Where it stands",
                "content": {"application/json": {"schema": "Status"}},
            },
            "404": {
                "description": "No such receipt (reveals nothing).",
                "content": {"application/json": {"schema": "Error"}},
            },
        },
    }


FILE_LINK = {
    "summary": "A file someone attached, linked from its ticket (a download)",
    "parameters": [_path_parameter("token")],
    "responses": {
        "200": {
            "description": "The file's bytes, as an attachment",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        },
        "404": {
            "description": "Not a valid link, or it has expired.",
            "content": {"application/json": {"schema": "Error"}},
        },
    },
}
HEALTHZ = {"summary": "The process is up", "responses": {"200": {"description": "up"}}}
READYZ = {
    "summary": "Ready to take submissions",
    "responses": {"200": {"description": "ready"}, "503": {"description": "not ready"}},
}
