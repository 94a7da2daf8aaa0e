"""The embeddable support widget: its script, its config, submissions, receipts and status.

A submission answers with a receipt — a signed, unguessable token bound to the route and
the submission — that the person's browser keeps. The status view reads the ticket's
state and thread through the list API, cached so that a busy page cannot hammer ProProfs.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import threading
import time
from collections.abc import Set
from email.utils import getaddresses
from typing import Any

from flask import Blueprint, Response, current_app, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.exceptions import RequestEntityTooLarge

from ..attachments import without_files
from ..config.settings import Route
from ..guards import GuardRefusal, captcha
from ..mapping import without_footer
from ..outbox.records import Submission
from ..proprofs.errors import ProProfsError
from ..proprofs.models import Message, Ticket
from .accept import accept
from .answers import Rejected, json_response, observe, observed
from .body import parse_json, receive_body, too_large
from .files import own_files
from .forms import (
    _cors_for,
    _file_limits,
    check_origin,
    check_rate,
    cors_preflight,
    read_uploads,
    refuse_undeclared_files,
    run_guards,
    texts,
    time_tokens,
)
from .scripts import Script
from .state import bridge
from .tickets import current_ticket, reply_time

log = logging.getLogger(__name__)
blueprint = Blueprint("widget", __name__)
RECEIPT_SALT = "bridge-widget-receipt"


# --- the script ------------------------------------------------------------------------------


@blueprint.get("/widget.js")
def script() -> Response:
    """GET /widget.js: the widget itself."""
    state: Script = current_app.extensions["bridge_widget_script"]
    return state.response()


# --- config ----------------------------------------------------------------------------------


def widget_route(name: str) -> Route:
    """The widget route called ``name``; 404 otherwise."""
    route = bridge().settings.routes.get(name)
    if route is None or route.kind != "widget":
        raise Rejected(404, "unknown_route", f"There is no widget named {name!r}.")
    return route


@blueprint.get("/widget/<name>/config")
def config(name: str) -> Response:
    """GET /widget/<route>/config: what the widget shows and asks."""
    try:
        route = widget_route(name)
        check_origin(route)
    except GuardRefusal as refusal:
        return Rejected(refusal.status, refusal.code, refusal.message).response()
    except Rejected as rejected:
        return rejected.response()
    text = texts(route)
    widget = route.widget
    body = {
        "route": route.name,
        "title": route.page.title or widget.title,
        "intro": route.page.intro,
        "launcher": widget.launcher,
        "submit": route.page.submit or text["submit"],
        "color": widget.color,
        "position": widget.position,
        "lang": route.page.lang,
        "strings": {
            "thanks": route.page.thanks or text["thanks_body"],
            "errors": text["errors_summary"],
            "close": route.page.messages.get("close", "Close"),
            "sending": route.page.messages.get("sending", "Sending…"),
            "status_title": route.page.messages.get("status_title", "Your requests"),
            "received": route.page.messages.get("received", "Received"),
            "delivered": route.page.messages.get("delivered", "Ticket"),
            "failed": route.page.messages.get("failed", "Could not be delivered"),
            "new": route.page.messages.get("new", "New message"),
            "required": text["required"],
            "captcha": route.page.messages.get("captcha", "Please complete the CAPTCHA."),
            "remove": route.page.messages.get("remove", "Remove"),
            "pasted": route.page.messages.get("pasted", "pasted"),
            "captcha_unavailable": route.page.messages.get(
                "captcha_unavailable",
                "The CAPTCHA could not be loaded; please try again later.",
            ),
        },
        "fields": [
            {
                "name": spec.name,
                "type": spec.type,
                "label": spec.title,
                "help": spec.help,
                "required": spec.required,
                "choices": [{"value": c, "label": text["choices"].get(c, c)} for c in spec.choices],
                "max_length": spec.max_length,
                "placeholder": spec.placeholder,
            }
            for spec in route.fields.values()
        ],
        "honeypot": route.guards.honeypot,
        "time_token": time_tokens().issue(route.name) if route.guards.min_seconds else None,
        "captcha": captcha.widget_view(route.guards.captcha) if route.guards.captcha else None,
        "identity": bool(widget.identity_secret),
        "files": _file_view(route),
        "reply_time": reply_time(route),
    }
    headers = {**_cors_for(route), "Cache-Control": "no-store"}
    return json_response(body, 200, headers)


def _file_view(route: Route) -> dict[str, Any] | None:
    """What the widget's file pickers need: the limits, and the hint they show."""
    limits = _file_limits(route)
    if limits is None:
        return None
    return {**limits, "max_size": route.attachments.max_size}


@blueprint.route("/widget/<name>", methods=["OPTIONS"])
@blueprint.route("/widget/<name>/config", methods=["OPTIONS"])
@blueprint.route("/widget/<name>/status/<receipt>", methods=["OPTIONS"])
def preflight(name: str, receipt: str | None = None) -> Response:
    """OPTIONS: CORS for a site allowed to embed the widget."""
    return cors_preflight(name, ("widget",))


# --- identity --------------------------------------------------------------------------------


def identity_signature(secret: str, email: str) -> str:
    """What the host site computes server-side: hex HMAC-SHA256 of the email."""
    return hmac.new(secret.encode(), email.strip().lower().encode(), hashlib.sha256).hexdigest()


def verified_identity(route: Route, payload: dict[str, Any]) -> dict[str, str] | None:
    """The signed identity (email, name) if its HMAC checks out; else ``None`` (plain input)."""
    secret = route.widget.identity_secret
    identity = payload.get("identity")
    if not secret or not isinstance(identity, dict):
        return None
    email, signature = identity.get("email"), identity.get("hmac")
    if not isinstance(email, str) or not isinstance(signature, str):
        return None
    if not hmac.compare_digest(
        signature.strip().lower().encode(), identity_signature(secret, email).encode()
    ):
        log.info(
            "widget %s: an identity signature did not verify; treating it as input", route.name
        )
        return None
    name = identity.get("name")
    return {"email": email.strip(), **({"name": name} if isinstance(name, str) else {})}


# --- submissions -----------------------------------------------------------------------------


def receipts(route: Route) -> URLSafeTimedSerializer:
    """The signer of this route's status receipts."""
    return URLSafeTimedSerializer(bridge().signing_key, salt=f"{RECEIPT_SALT}:{route.name}")


@blueprint.post("/widget/<name>")
def submit(name: str) -> Response:
    """POST /widget/<route>: a message from the widget."""
    route: Route | None = None
    try:
        route = widget_route(name)
        check_origin(route)
        check_rate(route)
        payload = read_payload(route)
        fields = widget_fields(payload)  # spam tokens (_ts, honeypot, CAPTCHA) included
        caught = run_guards(route, fields)
        if caught and not route.guards.keep:
            return _spam_answer(route)
        uploads = read_uploads(route) if route.file_fields else []
        identity = verified_identity(route, payload)
        data = {k: v for k, v in fields.items() if k in route.fields}
        if identity:
            data.update({k: v for k, v in identity.items() if k in route.fields})
        extra = _context_fields(route, payload)
        # Page URL and user agent reach their custom fields through the ticket templates.
        try:
            submitter = _submitter(payload, identity)
            result = accept(
                route,
                data,
                meta={"identity_verified": bool(identity), **extra},
                double_submit=submitter is not None,
                submitter=submitter or "",
                caught=caught,
                uploads=uploads,
            )
        except Rejected:
            if caught:  # a bot's post that is not even valid: dropped, as without keep
                return _spam_answer(route)
            raise
        receipt = receipts(route).dumps({"s": result.id})
        observe(route, result.outcome)
        return json_response(
            {"status": "accepted", "id": result.id, "receipt": receipt}, 202, _cors_for(route)
        )
    except GuardRefusal as refusal:
        errors = {refusal.field: [refusal.message]} if refusal.field else {}
        headers = {"Retry-After": str(refusal.retry_after)} if refusal.retry_after else {}
        response = Rejected(
            refusal.status, refusal.code, refusal.message, errors=errors, headers=headers
        ).response()
    except Rejected as rejected:
        response = rejected.response()
    if route is not None:
        for key, value in _cors_for(route).items():
            response.headers[key] = value
    return observed(route, response)


SESSION = re.compile(r"[A-Za-z0-9_-]{16,128}")


def _submitter(payload: dict[str, Any], identity: dict[str, str] | None) -> str | None:
    """Who may be answered with their own earlier receipt: a verified identity, else the
    browser session widget.js sends; ``None`` (no double-submit answer) for neither."""
    if identity:
        return "identity:" + identity["email"].lower()
    session = payload.get("session")
    if isinstance(session, str) and SESSION.fullmatch(session):
        return "session:" + session
    return None


def read_payload(route: Route) -> dict[str, Any]:
    """The widget's post: its JSON, or with files a ``multipart/form-data`` body whose
    ``payload`` part is that JSON and whose other parts are the files, by field."""
    if request.mimetype == "multipart/form-data" and route.file_fields:
        receive_body(route)
        try:
            refuse_undeclared_files(route)
            raw = request.form.get("payload")
        except RequestEntityTooLarge:
            raise too_large(route) from None
        if raw is None:
            raise Rejected(400, "malformed_json", "Send the widget's JSON in a part named payload.")
        payload = parse_json(raw.encode())
    elif request.mimetype == "application/json":
        payload = parse_json(receive_body(route))
    else:
        raise Rejected(
            415,
            "unsupported_media_type",
            "Send the widget's JSON"
            + (" (multipart/form-data with files)." if route.file_fields else "."),
        )
    if not isinstance(payload, dict):
        raise Rejected(400, "malformed_json", "Send a JSON object.")
    return payload


def _spam_answer(route: Route) -> Response:
    """What a caught bot is told: accepted, with a receipt that leads nowhere."""
    observe(route, "spam")
    fake = receipts(route).dumps({"s": "pb-" + "0" * 20})
    return json_response(
        {"status": "accepted", "id": "pb-" + "0" * 20, "receipt": fake}, 202, _cors_for(route)
    )


#: Top-level keys of a widget post that are not the person's fields.
ENVELOPE = ("fields", "page_url", "identity", "session")


def widget_fields(payload: dict[str, Any]) -> dict[str, Any]:
    """The person's fields: the ``fields`` object (the shipped script's shape), or the
    top-level keys (a team's own UI posting flat, as to a form); where both name a field,
    the ``fields`` object wins."""
    nested = payload.get("fields", {})
    if not isinstance(nested, dict):
        raise Rejected(
            422,
            "validation_failed",
            "Some fields need attention.",
            errors={"fields": ["Send the fields as a JSON object, or put them at the top level."]},
        )
    flat = {k: v for k, v in payload.items() if k not in ENVELOPE}
    return {**flat, **nested}


def _context_fields(route: Route, payload: dict[str, Any]) -> dict[str, str]:
    context: dict[str, str] = {}
    page = payload.get("page_url")
    if route.widget.page_url_field and isinstance(page, str):
        context["page_url"] = page[:1000]
    if route.widget.user_agent_field:
        context["user_agent"] = request.headers.get("User-Agent", "")[:500]
    return context


# --- status ----------------------------------------------------------------------------------


class StatusCache:
    """Tickets read through the list API, kept for a few seconds per ticket id."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[float, Ticket | None]] = {}
        self.lock = threading.Lock()
        self.locks: dict[str, threading.Lock] = {}

    def get(self, ticket_id: str, ttl: float) -> Ticket | None:
        """A ticket's cached status while younger than ``ttl`` seconds."""
        now = time.monotonic()
        with self.lock:
            hit = self.entries.get(ticket_id)
            if hit and now - hit[0] < ttl:
                return hit[1]
            ticket_lock = self.locks.setdefault(ticket_id, threading.Lock())
        with ticket_lock:  # one list call per ticket at a time, however many ask
            with self.lock:
                hit = self.entries.get(ticket_id)
                if hit and time.monotonic() - hit[0] < ttl:
                    return hit[1]
            ticket = current_ticket(ticket_id)
            with self.lock:
                self.entries[ticket_id] = (time.monotonic(), ticket)
                if len(self.entries) > 10_000:
                    self.entries.pop(next(iter(self.entries)))
            return ticket


NOT_FOUND = "There is no such request."
EXPIRED = "This request's status link has expired; write to us again if you need more."


def expired(route: Route, submission: Submission) -> bool:
    """Whether the status link is past ``server.link_lifetime`` since the last change: of
    the submission, or of its ticket in the help desk (a reply counts)."""
    lifetime = bridge().settings.server.link_lifetime
    now = time.time()
    if now - max(submission.created_at, submission.updated_at) <= lifetime:
        return False
    if not submission.ticket_id:
        return True
    cache: StatusCache = current_app.extensions["bridge_status_cache"]
    try:
        ticket = cache.get(submission.ticket_id, route.widget.status_cache)
    except ProProfsError:
        return False  # cannot tell now: the view says the status is unavailable
    return ticket is None or now - ticket.modified.timestamp() > lifetime


@blueprint.get("/widget/<name>/status/<receipt>")
def status(name: str, receipt: str) -> Response:
    """GET /widget/<route>/status/<receipt>: where a submission stands."""
    route = bridge().settings.routes.get(name)
    if route is None or route.kind != "widget":
        return json_response({"status": "error", "code": "not_found", "message": NOT_FOUND}, 404)
    headers = {**_cors_for(route), "Cache-Control": "no-store"}
    try:
        claims = receipts(route).loads(receipt, max_age=int(route.widget.receipt_max_age))
        submission_id = claims["s"]
    except (BadSignature, KeyError, TypeError):
        return json_response(
            {"status": "error", "code": "not_found", "message": NOT_FOUND}, 404, headers
        )
    submission = bridge().store.get(str(submission_id))
    if submission is None:
        held = bridge().store.quarantine.get(str(submission_id))
        if held is not None and held.route == route.name:
            # Quarantined: the person sees it received, as with any other.
            received = {
                "state": "received",
                "subject": held.draft.subject,
                "received_at": iso(held.created_at),
                "files": own_files(held.id),
            }
            return json_response(received, 200, headers)
    if submission is None or submission.route != route.name:
        return json_response(
            {"status": "error", "code": "not_found", "message": NOT_FOUND}, 404, headers
        )
    if expired(route, submission):
        return json_response(
            {"status": "error", "code": "expired", "message": EXPIRED}, 404, headers
        )
    state = {
        "pending": "received",
        "in_flight": "received",
        "unknown": "received",
        "delivered": "delivered",
        "dead": "failed",
        "suppressed": "received",
    }[submission.state]
    body: dict[str, Any] = {
        "state": state,
        "subject": submission.draft.subject,
        "received_at": iso(submission.created_at),
        "files": own_files(submission.id),
    }
    if submission.ticket_id:
        body["ticket_id"] = submission.ticket_id
        cache: StatusCache = current_app.extensions["bridge_status_cache"]
        try:
            ticket = cache.get(submission.ticket_id, route.widget.status_cache)
        except ProProfsError as exc:
            log.warning("status of ticket %s unavailable: %s", submission.ticket_id, exc)
            ticket = None
            body["ticket_status_unavailable"] = True
        if ticket is not None:
            body.update(
                {
                    "ticket_status": ticket.status,
                    "last_update": ticket.modified.isoformat(),
                    "messages": thread(submission, ticket),
                }
            )
    return json_response(body, 200, headers)


def thread(submission: Submission, ticket: Ticket) -> list[dict[str, str]]:
    """The messages the person may see, oldest first: their own as they wrote them (the
    files are listed apart), and the staff's replies to them."""
    return public_thread(ticket, {submission.draft.email, ticket.customer_email})


def public_thread(ticket: Ticket, requester: set[str]) -> list[dict[str, str]]:
    """The messages of ``ticket`` the person at the ``requester`` addresses may see."""
    staff = staff_addresses(ticket)
    return [
        {
            "from": "support" if m.reply_by else "you",
            "name": m.reply_by.name if m.reply_by else "",
            "at": m.created.isoformat(),
            "text": without_footer(m.text) if m.reply_by else without_files(without_footer(m.text)),
        }
        for m in ticket.messages
        if for_requester(m, requester, staff)
    ]


def for_requester(message: Message, requester: set[str], staff: Set[str] = frozenset()) -> bool:
    """Whether the person may see ``message``: written by them, or a staff reply sent to
    their address.

    The list API marks no message internal, and agents write notes to each other: a
    staff message shows only when it is addressed to the requester, and none does when
    the requester's address is one of the ticket's staff addresses (``staff``): typing an
    agent's address as one's own opens no one's notes.
    """
    people = {address.lower() for address in requester if address}
    if message.reply_by is not None:
        if people & staff:
            return False
        return _names(message.to, people)
    return _names(message.sender, people) or _names(message.to, people)


def staff_addresses(ticket: Ticket) -> set[str]:
    """Every address the ticket shows for staff: authors of staff messages, the assignee,
    the inbox."""
    found = {ticket.staff.email if ticket.staff else "", ticket.inbox.email if ticket.inbox else ""}
    for message in ticket.messages:
        if message.reply_by is not None:
            found.add(message.reply_by.email)
            found.update(address for _, address in getaddresses([message.sender or ""]))
    return {address.strip().lower() for address in found if address.strip()}


def _names(header: str, people: set[str]) -> bool:
    return any(address.strip().lower() in people for _, address in getaddresses([header or ""]))


def iso(ts: float) -> str:
    """A UNIX time as the widget's answers give it (ISO 8601, UTC)."""
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat()
