"""Captured payloads: a hook route's last raw notifications (``capture: N``), kept for the
console's test bench.

A capture is taken after the request is authenticated (nobody else fills it), whatever
becomes of the notification afterwards — a payload the route refuses is the one most worth
looking at. Headers that carry credentials are left out and every configured secret is
replaced in what is kept; bodies are cut at :data:`LIMIT`. The console re-renders a capture
through the route's current templates (nothing stored) and can send it through again as a
test ticket.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from flask import request
from marshmallow import ValidationError

from ..config.settings import Route
from ..mapping import MappingError, validation_messages
from ..outbox.records import StoreUnavailable
from ..proprofs.models import TicketDraft
from ..sources import GENERIC
from .alerts import group_labels, notifications
from .state import bridge

log = logging.getLogger(__name__)

#: The most of a body kept; a longer one is cut, marked, and cannot be sent again.
LIMIT = 64 * 1024

FORM = "application/x-www-form-urlencoded"
#: Header names that carry credentials or signatures, never kept.
SECRET_HEADER = re.compile(
    r"authori[sz]ation|cookie|signature|token|secret|api-?key|password|auth|session", re.I
)
#: Headers of the connection rather than of the sender, not worth keeping.
HOP_HEADERS = {"host", "content-length", "connection", "accept-encoding", "x-forwarded-for"}


def keep(route: Route, body: bytes, form: dict[str, str]) -> None:
    """Keep this (authenticated) request's payload if the route captures; never fails it."""
    if not route.alerts.capture:
        return
    state = bridge()
    clean = state.redact.clean
    named = {str((route.auth.get("hmac") or {}).get("header") or "").lower()}
    headers = {
        name: clean(value)
        for name, value in request.headers.items()
        if not SECRET_HEADER.search(name)
        and name.lower() not in HOP_HEADERS
        and name.lower() not in named
    }
    # A sender that posts a form is kept as its fields, urlencoded (a multipart post too).
    raw = urlencode(form).encode() if form else body
    content_type = FORM if form else request.content_type or ""
    text = clean(raw[:LIMIT].decode("utf-8", "replace"))
    try:
        state.store.captures.keep(
            route.name,
            content_type,
            headers,
            text,
            truncated=len(raw) > LIMIT,
            keep=route.alerts.capture,
        )
    except StoreUnavailable as exc:
        # A capture is a convenience for the console; the notification itself goes on and
        # gets the answer the store gives it.
        log.warning("route %s: payload not captured: %s", route.name, exc)


@dataclass(frozen=True)
class Rendering:
    """What a captured payload becomes on its route now: tickets, or why none."""

    drafts: list[TicketDraft]
    problem: str = ""
    errors: dict[str, Any] | None = None
    heartbeat: bool = False


def payload_of(route: Route, capture: dict[str, Any]) -> Any:
    """The captured body read as intake reads it on ``route``; ``ValueError`` if it cannot be."""
    source = route.source or GENERIC
    content_type = str(capture["content_type"]).split(";")[0].strip().lower()
    body = str(capture["body"])
    form: dict[str, str] = {}
    if source.accepts_form and content_type == FORM:
        form = dict(parse_qsl(body, keep_blank_values=True))
    return source.parse(body.encode(), content_type or "application/json", form)


def render(route: Route, capture: dict[str, Any]) -> Rendering:
    """The ticket(s) the capture would make on ``route`` through its current schema and
    templates (one per alert in per-alert mode). Nothing is stored and nothing is sent."""
    if capture["truncated"]:
        return Rendering([], f"The payload was longer than {LIMIT // 1024} KiB and was cut.")
    try:
        payload = payload_of(route, capture)
    except ValueError as exc:
        return Rendering([], f"The body is not JSON the route reads: {exc}")
    posted, meta = notifications(route, payload)
    drafts: list[TicketDraft] = []
    beat = route.alerts.heartbeat
    try:
        for number, notification in enumerate(posted):
            data, extra = route.mapping.load(notification)
            if beat is not None and beat.matches(group_labels(data)):
                return Rendering([], "This is the route's heartbeat: it never makes a ticket.")
            ref = f"pb-bench{number:012d}"
            drafts.append(route.mapping.render(data, ref=ref, meta=meta, extra=extra))
    except ValidationError as exc:
        return Rendering([], "The route's schema refuses it.", validation_messages(exc))
    except MappingError as exc:
        return Rendering([], f"The route's templates fail on this payload: {exc}")
    if not drafts:
        return Rendering([], "The notification holds no alerts.")
    return Rendering(drafts)


def send_test(route: Route, capture: dict[str, Any], by: str) -> list[str]:
    """Store the capture's ticket(s) again as test tickets ("[test]" before the subject),
    outside the alert's incident and deduplication; the submission ids."""
    rendering = render(route, capture)
    ids = []
    for draft in rendering.drafts:
        test = dataclasses.replace(draft, subject=f"[test] {draft.subject}"[:255])
        meta = {"made_by": "console", "test_of_capture": capture["id"], "by": by}
        result = bridge().store.enqueue(route.name, route.kind, test, meta=meta)
        ids.append(result.id)
    return ids


def pretty(capture: dict[str, Any]) -> str:
    """The body as a person reads it: indented if it is JSON."""
    try:
        return json.dumps(json.loads(capture["body"]), indent=2, ensure_ascii=False)
    except ValueError:
        return str(capture["body"])
