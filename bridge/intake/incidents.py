"""``/incidents/<token>``: what happened to an alert group, for whoever holds its ticket.

The token is a signed (route, group key); no login is needed to read it, and rotating
the server's secret key revokes every link at once.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any

from flask import Blueprint, Response, render_template, url_for
from itsdangerous import BadSignature

from ..outbox.records import Incident, IncidentEvent
from .state import bridge
from .tickets import mirrored_ticket

#: A sender's state at the head of a subject: "[FIRING:2] ", "[RESOLVED] ".
STATUS_TAG = re.compile(r"^\[(?:FIRING|RESOLVED)(?::\d+)?\]\s*", re.IGNORECASE)
blueprint = Blueprint("incidents", __name__)
SHOWN = 500  # the newest notifications shown on a page
TEXT = {
    "ticket": "fired: a new ticket",
    "repeat": "fired again: no new ticket (its ticket is open)",
    "resolved": "resolved",
    "muted": "fired: held back (staff: bridge-wontfix)",
    "snoozed": "fired: held back (staff snoozed it)",
    "storm": "fired during an alert storm: held back; the window's summary ticket links "
    "the full list of held groups",
    "silent": "the heartbeat stopped: a ticket says the alert pipeline is silent",
    "back": "the heartbeat is back",
}
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def when(ts: float | None) -> str:
    """A time as the incident page and the tickets' status block give it (UTC)."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts)) if ts else ""


@blueprint.get("/incidents/<token>")
def page(token: str) -> Response:
    """GET /incidents/<token>: an alert group's history."""
    state = bridge()
    try:
        route_name, key = state.incident_links.loads(token)
        if not isinstance(route_name, str) or not isinstance(key, str):
            raise BadSignature("not an incident")
    except (BadSignature, TypeError, ValueError):
        return _missing()
    route = state.settings.routes.get(route_name)
    incident = state.store.incidents.get(route_name, key)
    events = state.store.incidents.events(route_name, key, limit=SHOWN + 1)
    if route is None or (incident is None and not events):
        return _missing()
    changes = [e.received_at for e in events]
    if incident is not None:
        changes += [incident.created_at, incident.resolved_at or 0.0]
    changed = max(changes)
    if state.clock() - changed > state.settings.server.link_lifetime:
        return _missing(expired=True)
    hidden = max(0, len(events) - SHOWN)
    events = events[-SHOWN:]
    counts = {"total": len(events) + hidden, "ticket": 0, "repeat": 0, "resolved": 0}
    for event in events:
        if event.outcome in counts:
            counts[event.outcome] += 1
    tickets = _tickets(events, incident)
    labels: dict[str, Any] = dict(incident.labels) if incident is not None else {}
    resolved_at = incident.resolved_at if incident is not None else None
    firing = resolved_at is None
    muted = bool(incident and incident.muted)
    snoozed_until = incident.snoozed_until if incident is not None else None
    held = muted or bool(snoozed_until and snoozed_until > state.clock())
    # The subject's own "[FIRING:2]" was true when the ticket was made; the badge says now.
    subject = incident.submission.draft.subject if incident is not None else ""
    title = STATUS_TAG.sub("", subject or "").strip() or key
    storm_list = None
    storm = route.alerts.storm
    held_in = [e.received_at for e in events if e.outcome == "storm"]
    if storm is not None and held_in:
        window = int(held_in[0] // storm.window * storm.window)
        storm_list = url_for("incidents.storm", token=state.storm_links.dumps([route_name, window]))
    html = render_template(
        "incident.html",
        storm_list=storm_list,
        title=title,
        route=route_name,
        state="held by staff" if held else ("firing" if firing else "resolved"),
        state_class="held" if held else ("firing" if firing else "resolved"),
        labels=labels,
        first_seen=when(incident.created_at if incident else events[0].received_at),
        first_seen_iso=time.strftime(
            "%Y-%m-%dT%H:%M:%SZ",
            time.gmtime(incident.created_at if incident else events[0].received_at),
        ),
        counts=counts,
        resolved_at=when(resolved_at),
        muted=muted,
        snoozed_until=when(snoozed_until) if held and not muted else "",
        tickets=tickets,
        hidden=hidden,
        events=[
            {
                "outcome": e.outcome,
                "at": when(e.received_at),
                "text": TEXT.get(e.outcome, e.outcome)
                + (f" #{e.ticket_id}" if e.outcome == "ticket" and e.ticket_id else ""),
            }
            for e in events
        ],
    )
    return Response(html, mimetype="text/html", headers=HEADERS)


def _tickets(events: Sequence[IncidentEvent], incident: Incident | None) -> list[dict[str, Any]]:
    """The tickets the group made, oldest first, the current one among them."""
    tickets = [
        {
            "generation": e.generation,
            "ticket_id": e.ticket_id,
            "at": when(e.received_at),
            "state": e.state or "",
        }
        for e in events
        if e.outcome in ("ticket", "silent")
    ]
    if incident is not None and not any(t["generation"] == incident.generation for t in tickets):
        # The current ticket's own notification is older than the page shows.
        tickets.append(
            {
                "generation": incident.generation,
                "ticket_id": incident.submission.ticket_id,
                "at": when(incident.submission.created_at),
                "state": incident.submission.state,
            }
        )
    for ticket in tickets:  # what the help desk says of it, where the mirror knows
        mirrored = mirrored_ticket(str(ticket["ticket_id"])) if ticket["ticket_id"] else None
        if mirrored is not None:
            ticket["state"] = f"{mirrored.status} in the help desk"
    return tickets


def _missing(expired: bool = False) -> Response:
    html = render_template(
        "message.html",
        title="No such incident",
        message="This incident link has expired: nothing happened in the incident for "
        f"{bridge().settings.server.link_lifetime / 86400:g} days."
        if expired
        else "This incident link is not valid (or its key was rotated).",
    )
    return Response(html, status=404, mimetype="text/html", headers=HEADERS)


@blueprint.get("/storms/<token>")
def storm(token: str) -> Response:
    """Every group a storm window held back, each with its incident page."""
    state = bridge()
    try:
        route_name, window = state.storm_links.loads(token)
        if not isinstance(route_name, str) or not isinstance(window, int):
            raise BadSignature("not a storm window")
    except (BadSignature, TypeError, ValueError):
        return _missing()
    route = state.settings.routes.get(route_name)
    held = state.store.storms.groups(route_name, window)
    if route is None or route.alerts.storm is None or not held:
        return _missing()
    length = route.alerts.storm.window
    if state.clock() - (window + length) > state.settings.server.link_lifetime:
        return _missing(expired=True)
    summary_id = state.store.storms.summary_of(route_name, window)
    summary = state.store.get(summary_id) if summary_id else None
    groups = [
        {
            "subject": subject,
            "at": when(seen),
            "page": url_for("incidents.page", token=state.incident_links.dumps([route_name, key])),
        }
        for key, subject, seen in held
    ]
    html = render_template(
        "storm.html",
        title=f"Alert storm on {route_name}: {len(groups)} groups held back",
        route=route_name,
        start=when(window),
        end=when(window + length),
        max_new=route.alerts.storm.max_new,
        groups=groups,
        summary=summary,
    )
    return Response(html, mimetype="text/html", headers=HEADERS)
