"""One ticket per incident: an alert group's lifecycle across notifications.

While the group's ticket is open, repeats create nothing. A resolved
notification creates nothing (unless the route asks for a ticket). When the
group fires again, the list API says whether the linked ticket is still open
(cached for ``ticket_check_ttl``); once ProProfs has resolved or closed it, the
next generation of the incident gets a new ticket, which names the one before.
Two replicas posting at the same instant meet the store's unique keys: one
ticket, never two.

Staff steer by labels on the ticket, read with the same list call: ``bridge-wontfix``
means no new ticket for the group, ever (until the label is taken off);
``bridge-snooze-<N>d`` means none for N days after the bridge first saw the label.

Every notification is noted for the group's incident page (``/incidents/<token>``),
which each of its tickets links.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import url_for

from ..config.settings import Route
from ..mapping import MappingError, footer, without_footer
from ..outbox.records import Incident, Tracked
from ..outbox.updates import Noted
from ..proprofs.errors import ProProfsError
from ..proprofs.models import Ticket
from ..watches import heartbeat_key
from .accept import Prepared, request_meta, stored
from .state import bridge, public_link
from .tickets import current_ticket
from .updates import status_block, ticket_now

log = logging.getLogger(__name__)


#: Labels staff put on a ticket to steer the bridge (matched without regard to case).
WONTFIX_LABEL = "bridge-wontfix"
SNOOZE_LABEL = re.compile(r"^bridge-snooze-(\d{1,4})d$", re.IGNORECASE)


@dataclass(frozen=True)
class Outcome:
    """What intake did with one alert group."""

    status: str  # accepted | duplicate | updated | ignored | held
    id: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class Steering:
    """What the incident's ticket and staff's labels on it say about a new firing."""

    closed: bool
    muted: bool = False
    snoozed_until: float | None = None


def alert_status(route: Route, ready: Prepared) -> str:
    """``firing`` or ``resolved``, as the sender's preset reads it."""
    template = route.alerts.status
    if template is None:
        return "firing"
    try:
        value = template.render(route.mapping.context(ready.data)).strip().lower()
    except MappingError:
        return "firing"
    return "resolved" if value == "resolved" else "firing"


def notifications(route: Route, payload: Any) -> tuple[list[Any], dict[str, Any]]:
    """What one post holds for ``route`` — itself, or one notification per alert in
    per-alert mode — and the render meta each is mapped with."""
    source = route.source
    found = [payload]
    if (
        source is not None
        and route.alerts.alert_mode == "alert"
        and source.split
        and isinstance(payload, dict)
    ):
        found = source.split(payload)
    return found, {"max_alerts": route.alerts.max_alerts}


def group_labels(data: Mapping[str, Any]) -> dict[str, str]:
    """The alert group's labels, where the sender gives them (Alertmanager and Grafana:
    ``commonLabels``; else ``groupLabels`` or ``labels``), for the incident page."""
    for key in ("commonLabels", "groupLabels", "labels"):
        value = data.get(key)
        if isinstance(value, dict) and value:
            return {str(k)[:100]: str(v)[:300] for k, v in list(value.items())[:50]}
    return {}


def receive_alert(route: Route, ready: Prepared) -> Outcome:
    """Store the notification as a new ticket, a duplicate, or nothing at all."""
    status = alert_status(route, ready)
    key = ready.dedup_key
    if status == "resolved":
        if key is not None:
            resolved = _resolve(route, ready, key) if route.alerts.update else None
            if resolved is not None:
                return resolved
            _note(route, key, "resolved", "resolved", ready)
        if route.alerts.resolved == "ignore":
            return Outcome("ignored")
        key = f"{key}:resolved" if key else None
    if key is None:
        store = bridge().store
        result = stored(
            lambda: store.enqueue(
                route.name,
                route.kind,
                ready.draft,
                meta=request_meta(),
                submission_id=ready.submission_id,
            ),
            route,
        )
        return Outcome("duplicate" if result.duplicate else "accepted", result.id)
    return _incident(route, ready, key)


def _note(
    route: Route,
    key: str,
    status: str,
    outcome: str,
    ready: Prepared,
    *,
    generation: int | None = None,
    submission_id: str | None = None,
) -> None:
    """One line of the incident's history; its page is worth less than the answer, so a
    store that cannot take it is logged, not fatal."""
    store = bridge().store
    try:
        if generation is None:
            current = store.incidents.get(route.name, key)
            generation = current.generation if current is not None else 0
        store.incidents.record(
            route.name,
            key,
            generation,
            status,
            outcome,
            submission_id=submission_id,
            labels=group_labels(ready.data),
            now=bridge().clock(),
        )
    except Exception as exc:
        log.warning("cannot note a notification for %s: %s", key, type(exc).__name__)


def incident_link(route: Route, key: str) -> str:
    """The incident page of an alert group: a signed link, no login needed."""
    state = bridge()
    token = state.incident_links.dumps([route.name, key])
    return public_link(url_for("incidents.page", token=token))


def heartbeat(route: Route) -> None:
    """The route's heartbeat was heard: noted, never a ticket; if it ends a silence, the
    heartbeat's incident page says when it came back."""
    store = bridge().store
    now = bridge().clock()
    back = stored(lambda: store.heartbeats.seen(route.name, now=now), route)
    if back is not None:
        log.info("route %s: the heartbeat is back (silent since %s)", route.name, back)
        try:
            store.incidents.record(
                route.name, heartbeat_key(route.name), 1, "firing", "back", now=now
            )
        except Exception as exc:
            log.warning("cannot note the heartbeat's return: %s", type(exc).__name__)


def _storm_guard(route: Route, ready: Prepared, key: str) -> Outcome | None:
    """A new group in a storm: held back for its window's summary ticket (``held``), or
    ``None`` when it may have a ticket of its own."""
    storm = route.alerts.storm
    if storm is None:
        return None
    store = bridge().store
    now = bridge().clock()
    window = int(now // storm.window * storm.window)
    if stored(lambda: store.storms.held(route.name, window, key), route):
        _note(route, key, "firing", "storm", ready, generation=0)
        return Outcome("held", None, STORM_MESSAGE)
    count = stored(lambda: store.storms.count(route.name, window), route)
    if count <= storm.max_new:
        return None
    held = stored(
        lambda: store.storms.hold(route.name, window, key, ready.draft.subject, now=now), route
    )
    if held == "late":
        return None  # the window's summary was raised meanwhile: a ticket of its own
    _note(route, key, "firing", "storm", ready, generation=0)
    metrics = bridge().metrics
    if metrics is not None:
        metrics.storm_guarded(route.name)
    return Outcome("held", None, STORM_MESSAGE)


STORM_MESSAGE = (
    "Alert storm: more new groups than the route's storm.max_new in this window; this one "
    "is held back for the window's summary ticket, which links the full list."
)


def _incident(route: Route, ready: Prepared, key: str) -> Outcome:
    store = bridge().store
    current = stored(lambda: store.incidents.get(route.name, key), route)
    generation = 1
    lines = [f"Incident page: {incident_link(route, key)}"]
    if current is None:
        guarded = _storm_guard(route, ready, key)
        if guarded is not None:
            return guarded
    if current is not None:
        steering = _steering(route, key, current)
        if not steering.closed:
            if _keep_current(route, ready, key, current, "firing", "repeat") is None:
                _note(route, key, "firing", "repeat", ready, generation=current.generation)
            return Outcome("duplicate", current.submission.id)
        if steering.muted:
            _note(route, key, "firing", "muted", ready, generation=current.generation)
            return Outcome(
                "held",
                current.submission.id,
                f"Staff marked this alert group's ticket {WONTFIX_LABEL}: no new ticket.",
            )
        if steering.snoozed_until is not None and bridge().clock() < steering.snoozed_until:
            _note(route, key, "firing", "snoozed", ready, generation=current.generation)
            return Outcome(
                "held",
                current.submission.id,
                "Staff snoozed this alert group: no new ticket until the snooze ends.",
            )
        generation = current.generation + 1
        previous = current.submission.ticket_id
        if previous:
            lines.insert(0, f"Previous ticket: #{previous} (closed; this alert group fired again)")
    else:
        previous = None
    if route.alerts.update is not None and route.alerts.update.status_block:
        now = bridge().clock()
        first = Tracked(1, now, now, "firing", ready.draft.priority)
        lines = status_block(first, incident_link(route, key), previous)
    made = _with_lines(ready, lines)
    meta = request_meta({"previous_ticket": previous} if previous else None)
    result = stored(
        lambda: store.incidents.open(
            route.name,
            route.kind,
            key,
            generation,
            made.draft,
            submission_id=made.submission_id,
            meta=meta,
        ),
        route,
    )
    if result.duplicate:
        _raced(route, ready, key, generation)
        return Outcome("duplicate", result.id)
    _note(route, key, "firing", "ticket", made, generation=generation, submission_id=result.id)
    return Outcome("accepted", result.id)


def _raced(route: Route, ready: Prepared, key: str, generation: int) -> None:
    """Another request opened this generation first: this one is a repeat of it, counted
    on its ticket where the route keeps tickets current."""
    if route.alerts.update is not None:
        latest = stored(lambda: bridge().store.incidents.get(route.name, key), route)
        if (
            latest is not None
            and latest.generation == generation
            and _keep_current(route, ready, key, latest, "firing", "repeat") is not None
        ):
            return
    _note(route, key, "firing", "repeat", ready, generation=generation)


def _resolve(route: Route, ready: Prepared, key: str) -> Outcome | None:
    """A resolved group whose ticket the bridge keeps current: the ticket says so (an
    ``updated`` answer); ``None`` when the group has no ticket to update."""
    current = stored(lambda: bridge().store.incidents.get(route.name, key), route)
    if current is None or current.submission.state in ("dead", "suppressed"):
        return None
    noted = _keep_current(route, ready, key, current, "resolved", "resolved")
    if noted is None:
        return None
    return Outcome("updated", current.submission.id)


def _keep_current(
    route: Route, ready: Prepared, key: str, current: Incident, status: str, outcome: str
) -> Noted | None:
    """Track one more notification of an open ticket's group and have the ticket say so,
    noting it (as ``outcome``) for the incident page in the same write; ``None`` on a
    route without ``update:``, or when the group's incident has moved on."""
    update = route.alerts.update
    if update is None:
        return None
    link = incident_link(route, key)
    store = bridge().store
    noted = stored(
        lambda: store.updates.note(
            route.name,
            key,
            current.generation,
            status=status,
            priority=ready.draft.priority,
            rule=update.priority,
            every=update.every,
            build=lambda tracked, create: ticket_now(route, ready.draft, tracked, create, link),
            meta=request_meta(),
            history=(outcome, group_labels(ready.data)),
            now=bridge().clock(),
        ),
        route,
    )
    return noted


def _with_lines(ready: Prepared, lines: list[str]) -> Prepared:
    """The ticket with ``lines`` at the end of its description, above the reference."""
    body = without_footer(ready.draft.description or "").rstrip()
    text = "\n".join(lines)
    described = (f"{body}\n\n{text}" if body else text) + footer(ready.submission_id)
    return dataclasses.replace(ready, draft=dataclasses.replace(ready.draft, description=described))


def _steering(route: Route, key: str, current: Incident) -> Steering:
    """Has the incident's ticket been resolved or closed in ProProfs (so a new one is due),
    and what do staff's labels on it say?"""
    submission = current.submission
    if submission.state == "dead":
        return Steering(True)  # no ticket was ever made: the next firing deserves one
    if submission.state != "delivered" or submission.ticket_id is None:
        return Steering(False)  # still on its way: a repeat
    now = bridge().clock()
    if (
        current.ticket_open is not None
        and current.checked_at is not None
        and (now - current.checked_at < route.alerts.ticket_check_ttl)
    ):
        return Steering(not current.ticket_open, current.muted, current.snoozed_until)
    try:
        ticket = current_ticket(submission.ticket_id)
    except ProProfsError as exc:
        # Cannot ask: treat it as open (a repeat) rather than risk a duplicate ticket.
        log.warning("cannot check ticket %s for %s: %s", submission.ticket_id, key, exc)
        return Steering(False)
    is_open = ticket is not None and ticket.is_open
    if ticket is None:
        log.info(
            "ticket %s for %s is not listed any more; treating it as closed",
            submission.ticket_id,
            key,
        )
    muted, snooze = _labels(ticket, current, now)
    try:
        bridge().store.incidents.record_check(
            route.name, key, current.generation, is_open, muted=muted, snooze=snooze, now=now
        )
    except Exception:  # the cache is an optimisation; the answer stands without it
        log.warning("cannot cache the ticket check for %s", key)
    return Steering(not is_open, muted, snooze[1] if snooze else None)


def _labels(
    ticket: Ticket | None, current: Incident, now: float
) -> tuple[bool, tuple[str, float] | None]:
    """(wontfix?, (snooze label, its end)) from the ticket's labels. A snooze counts from
    when the bridge first saw its label, not from each look."""
    names = [label.name.strip().lower() for label in (ticket.labels if ticket else ())]
    muted = WONTFIX_LABEL in names
    for name in names:
        match = SNOOZE_LABEL.match(name)
        if match:
            if current.snooze_label == name and current.snoozed_until is not None:
                return muted, (name, current.snoozed_until)
            return muted, (name, now + int(match.group(1)) * 86400.0)
    return muted, None
