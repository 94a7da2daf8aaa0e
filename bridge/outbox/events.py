"""Signed outbound events: what happens in the help desk, told to subscribers.

The mirror's polls see each change of a ticket the bridge made; each change becomes an
event (``ticket.created``, ``ticket.status_changed``, ``ticket.replied`` for public
replies, ``ticket.assigned``, ``ticket.updated``) for every subscriber that asked for
it, stored in the outbox in the same transaction as the mirror's rows (a submission of
kind ``event`` on the route ``events:<subscriber>``): retried with the same schedule,
dead-lettered, replayable, paused per subscriber (``bridge routes pause
events:<name>``), counted in the delivery metrics.

Each is posted as JSON ``{"type", "timestamp", "data"}`` (or the subscriber's own
``body`` template, for Slack, Teams or Alertmanager), signed by the Standard Webhooks
scheme: ``webhook-id`` (the submission id, the same on every retry),
``webhook-timestamp`` and ``webhook-signature`` (``v1,`` + base64 HMAC-SHA256).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests
from sqlalchemy.engine import Connection

from ..mapping import MappingError, Template
from ..proprofs.models import Ticket, TicketDraft
from ..signing import signed_headers
from .records import new_submission_id
from .tables import submissions

EVENT_TYPES = (
    "ticket.created",
    "ticket.status_changed",
    "ticket.replied",
    "ticket.assigned",
    "ticket.updated",
)
#: The outbox route of a subscriber's events.
PREFIX = "events:"
#: The requester on an event's row (an event has none; the row's draft needs one).
NOBODY = "events@invalid"


@dataclass(frozen=True)
class Subscriber:
    """Where events go (``events.<name>`` in the config)."""

    name: str
    url: str = field(repr=False)  # a Slack or Teams URL is a secret itself
    secret: str = field(repr=False)
    events: tuple[str, ...] = EVENT_TYPES
    routes: tuple[str, ...] | None = None  # the routes whose tickets it hears of; None: all
    body: Template | None = field(default=None, repr=False)  # the body, when not the JSON

    @property
    def route(self) -> str:
        """The outbox route its events travel on."""
        return PREFIX + self.name

    def wants(self, kind: str, route: str) -> bool:
        """Whether it asked for events of ``kind`` about tickets of ``route``."""
        return kind in self.events and (self.routes is None or route in self.routes)


@dataclass(frozen=True)
class Event:
    """One change of a ticket."""

    kind: str
    ticket: Ticket
    route: str
    submission_id: str
    extra: Mapping[str, Any] = field(default_factory=dict)

    def payload(self, now: float) -> dict[str, Any]:
        """The event as subscribers get it."""
        t = self.ticket
        data = {
            "ticket_id": t.ticket_id,
            "reference": self.submission_id,
            "route": self.route,
            "subject": t.subject,
            "status": t.status,
            "priority": t.priority,
            "requester": t.customer_email,
            "staff": {"id": t.staff.id, "name": t.staff.name} if t.staff else None,
            "labels": [label.name for label in t.labels],
            "modified": t.modified.isoformat(),
            **self.extra,
        }
        stamp = datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z")
        return {"type": self.kind, "timestamp": stamp, "data": data}


def changes(
    before: Ticket | None,
    after: Ticket,
    route: str,
    sid: str,
    alert_labels: Mapping[str, str] | None = None,
) -> list[Event]:
    """What changed between the mirror's row (``before``; None: a new ticket) and what the
    list API shows now; an alert group's ticket carries the group's labels."""
    found = _changes(before, after, route, sid)
    if alert_labels:
        for n, event in enumerate(found):
            extra = {**event.extra, "alert_labels": dict(alert_labels)}
            found[n] = Event(event.kind, event.ticket, event.route, event.submission_id, extra)
    return found


def _changes(before: Ticket | None, after: Ticket, route: str, sid: str) -> list[Event]:
    found: list[Event] = []
    if before is None:
        # First seen: made, and whatever staff did before the poll saw it (as the bridge
        # made it, it was new, unassigned, with its first message only).
        found.append(Event("ticket.created", after, route, sid))
        before = dataclasses.replace(after, status="new", staff=None, messages=after.messages[:1])
    if before.status.lower() != after.status.lower():
        extra = {"previous_status": before.status}
        found.append(Event("ticket.status_changed", after, route, sid, extra))
    old = {(m.created, m.text) for m in before.messages}
    for message in after.public_replies():
        if (message.created, message.text) in old:
            continue
        reply = {
            "text": message.text,
            "at": message.created.isoformat(),
            "by": message.reply_by.name if message.reply_by else "",
        }
        found.append(Event("ticket.replied", after, route, sid, {"reply": reply}))
    if _staff(before) != _staff(after):
        previous = {"previous_staff": before.staff.name if before.staff else None}
        found.append(Event("ticket.assigned", after, route, sid, previous))
    if found and found[0].kind == "ticket.created":
        return found
    fields = [
        name
        for name, old_value, new_value in (
            ("priority", before.priority, after.priority),
            ("subject", before.subject, after.subject),
            ("labels", _labels(before), _labels(after)),
            ("custom_fields", _custom(before), _custom(after)),
            ("inbox", _inbox(before), _inbox(after)),
        )
        if old_value != new_value
    ]
    if fields:
        found.append(Event("ticket.updated", after, route, sid, {"changed": fields}))
    return found


def enqueue(
    conn: Connection, subscribers: Sequence[Subscriber], events: Sequence[Event], now: float
) -> int:
    """Store each event for each subscriber that wants it, in the caller's transaction."""
    rows = []
    for event in events:
        for subscriber in subscribers:
            if not subscriber.wants(event.kind, event.route):
                continue
            body = json.dumps(event.payload(now), separators=(",", ":"))
            draft = TicketDraft(email=NOBODY, subject=event.kind, description=body)
            rows.append(
                {
                    "id": new_submission_id(now),
                    "route": subscriber.route,
                    "kind": "event",
                    "draft": json.dumps(draft.to_dict()),
                    "dedup_key": None,
                    "state": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "lease_token": 0,
                    "ticket_id": event.ticket.ticket_id,
                    "meta": json.dumps({"event": event.kind, "reference": event.submission_id}),
                    "created_at": now,
                    "updated_at": now,
                }
            )
    if rows:
        conn.execute(submissions.insert(), rows)
    return len(rows)


def body_of(subscriber: Subscriber, payload_json: str) -> bytes:
    """What is posted: the event's JSON, or the subscriber's template rendered with it
    (``event``: the payload; ``now``, and ``later(hours)``: RFC 3339 times)."""
    if subscriber.body is None:
        return payload_json.encode()
    now = time.time()

    def later(hours: float) -> str:
        """A time ``hours`` from now, as RFC 3339 (a silence's end)."""
        moment = datetime.fromtimestamp(now + float(hours) * 3600, UTC)
        return moment.isoformat().replace("+00:00", "Z")

    try:
        context = {"event": json.loads(payload_json), "now": later(0), "later": later}
        return subscriber.body.render(context).encode()
    except MappingError as exc:
        raise ValueError(f"the body template of events.{subscriber.name} failed: {exc}") from None


def post(
    session: requests.Session,
    subscriber: Subscriber,
    message_id: str,
    payload_json: str,
    *,
    timeout: float,
    now: float | None = None,
) -> int:
    """Post one event, signed; its HTTP status (raises ``requests.RequestException``)."""
    body = body_of(subscriber, payload_json)
    stamp = int(time.time() if now is None else now)
    headers = signed_headers(subscriber.secret, message_id, stamp, body)
    answer = session.post(subscriber.url, data=body, headers=headers, timeout=timeout)
    answer.close()
    return answer.status_code


@dataclass(frozen=True)
class Sent:
    """How posting one event went: ``dead`` (why), ``error`` (retry), else delivered."""

    status: int | None = None
    error: str | None = None
    dead: str | None = None


def attempt(
    subscriber: Subscriber | None, session: requests.Session, claim: Any, budget: float
) -> Sent:
    """Post the event ``claim`` (an outbox row) to ``subscriber`` within ``budget``
    seconds. The subscriber's URL is never in what it says (a Slack URL is a secret)."""
    if subscriber is None:
        return Sent(dead=f"no subscriber {claim.route.removeprefix(PREFIX)!r} in the config")
    try:
        status = post(
            session, subscriber, claim.id, claim.draft.description or "{}", timeout=budget - 1
        )
    except ValueError as exc:  # its body template failed: the same each time
        return Sent(dead=str(exc))
    except requests.RequestException as exc:
        return Sent(error=f"could not post the event: {type(exc).__name__}")
    if 200 <= status < 300:
        return Sent(status)
    return Sent(status, error=f"the subscriber answered HTTP {status}")


def _staff(ticket: Ticket) -> str | None:
    return ticket.staff.id if ticket.staff else None


def _labels(ticket: Ticket) -> list[str]:
    return sorted(label.name for label in ticket.labels)


def _custom(ticket: Ticket) -> dict[str, str]:
    return {cf.id: cf.value for cf in ticket.custom_fields}


def _inbox(ticket: Ticket) -> str | None:
    return ticket.inbox.id if ticket.inbox else None
