"""What every intake shares: the answer shapes, body limits, and the accept path."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import Response, current_app, request
from marshmallow import ValidationError

from ..config import Route, Settings
from ..mapping import MappingError, validation_messages
from ..outbox.store import StoreUnavailable, SubmissionStore, new_submission_id

log = logging.getLogger(__name__)


@dataclass
class Bridge:
    """What the app's views need, kept on ``app.extensions["bridge"]``."""

    settings: Settings
    store: SubmissionStore


def bridge() -> Bridge:
    state: Bridge = current_app.extensions["bridge"]
    return state


def json_response(
    body: Mapping[str, Any], status: int, headers: Mapping[str, str] | None = None
) -> Response:
    response = Response(
        json.dumps(body, ensure_ascii=False), status=status, mimetype="application/json"
    )
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def error(status: int, code: str, message: str, **extra: Any) -> Response:
    """The one error shape: ``{"status": "error", "code": …, "message": …}``."""
    headers = extra.pop("headers", None)
    return json_response(
        {"status": "error", "code": code, "message": message, **extra}, status, headers
    )


class Rejected(Exception):
    """Stop handling this request and answer ``response``."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def limit_body(route: Route) -> bytes:
    """The raw body, refused with 413 past the route's limit (declared or streamed)."""
    declared = request.content_length
    if declared is not None and declared > route.max_body:
        raise Rejected(too_large(route))
    request.max_content_length = route.max_body
    data = request.stream.read(route.max_body + 1)
    if len(data) > route.max_body:
        raise Rejected(too_large(route))
    return data


def too_large(route: Route) -> Response:
    return error(
        413, "too_large", f"The body is larger than this route accepts ({route.max_body} bytes)."
    )


def parse_json(body: bytes) -> Any:
    if not body.strip():
        raise Rejected(error(400, "malformed_json", "The body is empty; send a JSON object."))
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise Rejected(error(400, "malformed_json", "The body is not UTF-8 text.")) from None
    except ValueError as exc:
        raise Rejected(
            error(
                400,
                "malformed_json",
                f"The body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}.",
            )
        ) from None


@dataclass(frozen=True)
class Accepted:
    id: str
    duplicate: bool
    state: str


def accept(route: Route, payload: Any, meta: Mapping[str, Any] | None = None) -> Accepted:
    """Validate, map and store one submission; raise :class:`Rejected` with the answer if not."""
    try:
        data, extra = route.mapping.load(payload)
    except ValidationError as exc:
        raise Rejected(
            error(
                422,
                "validation_failed",
                "Some fields need attention.",
                errors=validation_messages(exc),
            )
        ) from None
    submission_id = new_submission_id()
    try:
        draft = route.mapping.render(data, ref=submission_id, meta=meta, extra=extra)
        dedup_key = route.mapping.dedup_key(data, meta=meta)
    except MappingError as exc:
        log.error("route %s cannot map a valid submission: %s", route.name, exc)
        raise Rejected(
            error(
                422,
                "mapping_failed",
                f"This route could not turn the submission into a ticket: {exc}",
            )
        ) from None
    meta = {"request_id": request.headers.get("X-Request-ID", ""), **(meta or {})}
    try:
        result = bridge().store.enqueue(
            route.name,
            route.kind,
            draft,
            dedup_key=dedup_key,
            meta=meta,
            submission_id=submission_id,
            now=time.time(),
        )
    except StoreUnavailable as exc:
        log.error("store unavailable, refusing submission on %s: %s", route.name, exc)
        raise Rejected(
            error(
                503,
                "store_unavailable",
                "The submission could not be stored; please try again shortly.",
                headers={"Retry-After": "30"},
            )
        ) from None
    return Accepted(result.id, result.duplicate, result.state)


def accepted_response(result: Accepted) -> Response:
    if result.duplicate:
        return json_response({"status": "duplicate", "id": result.id}, 200)
    return json_response({"status": "accepted", "id": result.id}, 202)
