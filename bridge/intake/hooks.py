"""``POST /hooks/<route>``: webhooks from monitors and other machines."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import requests
from flask import Blueprint, Response, request
from werkzeug.exceptions import RequestEntityTooLarge

from ..config.settings import Route
from ..guards import GuardRefusal, signatures
from ..outbox.records import StoreUnavailable
from ..sources import GENERIC
from . import captures
from .accept import accept, prepare, stored
from .alerts import Outcome, group_labels, heartbeat, notifications, receive_alert
from .answers import Rejected, accepted_response, json_response, observed
from .body import receive_body, too_large
from .state import bridge

log = logging.getLogger(__name__)
blueprint = Blueprint("hooks", __name__)
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _route(name: str) -> Route:
    route = bridge().settings.routes.get(name)
    if route is None or route.kind != "hook":
        raise Rejected(404, "unknown_route", f"There is no hook route named {name!r}.")
    return route


def read_body(route: Route) -> tuple[bytes, dict[str, str]]:
    """The raw body (signatures need it) or, for senders that post forms, the form fields."""
    source = route.source or GENERIC
    body = receive_body(route)
    if source.accepts_form and request.mimetype in FORM_TYPES:
        try:
            return b"", request.form.to_dict()
        except RequestEntityTooLarge:
            raise too_large(route) from None
    return body, {}


def authenticate(route: Route, body: bytes | None = None) -> None:
    """Credentials in the headers or URL (``body`` is ``None``: before the body is read),
    then the body's signature."""
    current = request._get_current_object()  # type: ignore[attr-defined]  # one proxy lookup
    try:
        if body is None:
            signatures.verify_credentials(route.auth, headers=current.headers, args=current.args)
        else:
            signatures.verify_signature(route.auth, headers=current.headers, body=body)
    except GuardRefusal as refusal:
        raise Rejected(
            refusal.status,
            refusal.code,
            refusal.message,
            headers={"WWW-Authenticate": 'Bearer realm="bridge"'},
        ) from None


def parse(route: Route, body: bytes, form: dict[str, str]) -> Any:
    """The payload, through the route's sender preset; 400/415 when it is not one."""
    source = route.source or GENERIC
    mimetype = request.mimetype
    if source is GENERIC and mimetype != "application/json" and not mimetype.endswith("+json"):
        raise Rejected(
            415, "unsupported_media_type", "Send the body as JSON (Content-Type: application/json)."
        )
    if not form and not body.strip():
        raise Rejected(400, "malformed_json", "The body is empty; send the sender's JSON.")
    try:
        return source.parse(body, mimetype, form)
    except UnicodeDecodeError:
        raise Rejected(400, "malformed_json", "The body is not UTF-8 text.") from None
    except ValueError as exc:
        raise Rejected(
            400, "malformed_json", f"The body is not valid JSON for {source.name}: {exc}"
        ) from None


def sns_message(route: Route, payload: Any) -> Response | None:
    """Verify an SNS message; answer subscription handshakes here. ``None``: go on."""
    settings = route.auth.get("sns")
    if settings is None:
        return None
    if not isinstance(payload, dict):
        raise Rejected(400, "malformed_json", "An SNS message is a JSON object.")
    state = bridge()
    if settings.get("verify", True):
        try:
            signatures.sns(payload, state.certificate_fetcher or fetch_certificate)
            # Signed, so its Timestamp is AWS's: an old one is a replay.
            signatures.sns_fresh(payload, float(settings.get("max_age", 3600.0)))
        except GuardRefusal as refusal:
            raise Rejected(401, refusal.code, refusal.message) from None
    kind = payload.get("Type")
    topic = payload.get("TopicArn")
    topics = settings.get("topics") or []
    if (topics or kind == "SubscriptionConfirmation") and topic not in topics:
        raise Rejected(
            403,
            "topic_not_allowed",
            "This route does not take messages from that SNS topic; add its ARN to "
            "auth.sns.topics.",
        )
    if kind == "SubscriptionConfirmation":
        url = payload.get("SubscribeURL")
        if not signatures.sns_url_allowed(url):
            raise Rejected(400, "bad_subscribe_url", "The SubscribeURL is not an AWS SNS URL.")
        try:
            status = (state.url_opener or open_url)(str(url))
        except requests.RequestException as exc:
            log.warning(
                "SNS subscription confirmation for %s failed: %s", topic, type(exc).__name__
            )
            raise Rejected(
                502,
                "subscription_failed",
                "AWS could not be reached to confirm the subscription; SNS sends the "
                "confirmation again, or confirm it in the AWS console.",
            ) from None
        if status != 200:
            raise Rejected(
                502,
                "subscription_failed",
                f"AWS answered {status} to the subscription confirmation.",
            )
        return json_response({"status": "subscribed", "topic": topic}, 200)
    if kind == "UnsubscribeConfirmation":
        return json_response({"status": "ignored"}, 200)
    return None


_session = requests.Session()


@functools.lru_cache(maxsize=16)  # AWS signs with a few certificates at a time
def fetch_certificate(url: str) -> bytes:
    """The SNS signing certificate (checked URL), cached per process."""
    response = _session.get(url, timeout=5)
    response.raise_for_status()
    if len(response.content) > 64 * 1024:
        raise ValueError("an SNS signing certificate is a few kilobytes")
    return response.content


def open_url(url: str) -> int:
    """Fetch a URL (an SNS subscription's confirmation); its status."""
    return _session.get(url, timeout=10).status_code


@blueprint.post("/hooks/<name>")
def receive(name: str) -> Response:
    """POST /hooks/<route>: an alert or event webhook."""
    route: Route | None = None
    try:
        route = _route(name)
        authenticate(route)  # nothing is read for a sender without its credentials
        body, form = read_body(route)
        authenticate(route, body)
        captures.keep(route, body, form)
        message_id = idempotency_key(route)
        if message_id is None:
            return observed(route, process(route, body, form))
        return observed(route, once(route, message_id, lambda: process(route, body, form)))
    except Rejected as rejected:
        return observed(route, rejected.response())


def process(route: Route, body: bytes, form: dict[str, str]) -> Response:
    """An authenticated notification: parsed, checked, and stored (or answered as nothing to do)."""
    payload = parse(route, body, form)
    if route.source is not None and route.source.name == "aws_sns":
        answered = sns_message(route, payload)
        if answered is not None:
            return answered
    if route.source is None:  # a route's own schema: no alert lifecycle
        return accepted_response(accept(route, payload))
    return _alerts(route, payload)


def idempotency_key(route: Route) -> str | None:
    """The sender's message id where its scheme makes it an idempotency key (Standard
    Webhooks' ``webhook-id``, checked by the signature already)."""
    spec = route.auth.get("hmac") or {}
    if spec.get("scheme") == "standard":
        return request.headers.get("webhook-id", "").strip() or None
    return None


def once(route: Route, message_id: str, work: Callable[[], Response]) -> Response:
    """Process a message id once: a repeat of an answered one gets ``200 duplicate``.

    The id is recorded as answered only after a 2xx; a failed attempt is forgotten, so
    the sender's retry is processed rather than told "duplicate" for nothing stored.
    """
    store = bridge().store
    sighting = stored(lambda: store.messages.begin(route.name, message_id), route)
    if sighting.state == "answered":
        earlier = sighting.answer or {}
        return json_response(
            {"status": "duplicate", **({"id": earlier["id"]} if "id" in earlier else {})}, 200
        )
    if sighting.state == "in_progress":
        raise Rejected(
            409,
            "in_progress",
            "A delivery with this webhook-id is being processed; try again in a few seconds.",
            headers={"Retry-After": "5"},
        )
    answer: dict[str, Any] | None = None
    try:
        response = work()
        if 200 <= response.status_code < 300:
            answer = response.get_json(silent=True) or {}
        return response
    finally:
        try:
            store.messages.finish(route.name, message_id, answer)
        except StoreUnavailable:
            log.warning("cannot record the answer to webhook-id on route %s", route.name)


def _alerts(route: Route, payload: Any) -> Response:
    posted, meta = notifications(route, payload)
    outcomes: list[Outcome] = []
    beat = route.alerts.heartbeat
    heard = False
    for notification in posted:
        ready = prepare(route, notification, meta)
        if beat is not None and beat.matches(group_labels(ready.data)):
            heartbeat(route)  # the dead man's switch: noted, never a ticket
            heard = True
            continue
        if route.alerts.alert_mode == "alert" and route.alerts.alert_dedup_key is not None:
            key = route.alerts.alert_dedup_key.render(route.mapping.context(ready.data)).strip()
            ready = type(ready)(ready.data, ready.draft, f"{route.name}:{key}", ready.submission_id)
        outcomes.append(receive_alert(route, ready))
    if not outcomes and heard:
        return json_response({"status": "heartbeat"}, 200)
    if not outcomes:  # per-alert mode on a notification that lists no alert
        raise Rejected(
            422,
            "validation_failed",
            "The notification holds no alerts.",
            errors={"alerts": ["Shorter than minimum length 1."]},
        )
    accepted = [o.id for o in outcomes if o.status == "accepted"]
    if accepted:
        return json_response({"status": "accepted", "id": accepted[0], "ids": accepted}, 202)
    updated = [o.id for o in outcomes if o.status == "updated"]
    if updated:
        return json_response({"status": "updated", "id": updated[0]}, 200)
    duplicates = [o.id for o in outcomes if o.status == "duplicate"]
    if duplicates:
        return json_response({"status": "duplicate", "id": duplicates[0]}, 200)
    held = [o for o in outcomes if o.status == "held"]
    if held:
        answer = {"status": "held", "message": held[0].message}
        return json_response({**answer, **({"id": held[0].id} if held[0].id else {})}, 200)
    return json_response(
        {"status": "ignored", "message": "Resolved notifications create no ticket on this route."},
        200,
    )
