"""One ticket per incident: an alert group's lifecycle across notifications.

While the group's ticket is open, repeats create nothing. A resolved
notification creates nothing (unless the route asks for a ticket). When the
group fires again, the list API says whether the linked ticket is still open
(cached for ``ticket_check_ttl``); once ProProfs has resolved or closed it, the
next generation of the incident gets a new ticket. Two replicas posting at the
same instant meet the store's unique keys: one ticket, never two.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from ..config import Route
from ..mapping import MappingError
from ..proprofs.errors import ProProfsError
from .common import Prepared, bridge, request_meta, stored

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    status: str  # accepted | duplicate | ignored
    id: str | None = None


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


def receive_alert(route: Route, ready: Prepared) -> Outcome:
    """Store the notification as a new ticket, a duplicate, or nothing at all."""
    status = alert_status(route, ready)
    key = ready.dedup_key
    if status == "resolved":
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


def _incident(route: Route, ready: Prepared, key: str) -> Outcome:
    store = bridge().store
    current = stored(lambda: store.incident(route.name, key), route)
    generation = 1
    if current is not None:
        if not _closed(
            route,
            key,
            current.generation,
            current.submission.state,
            current.submission.ticket_id,
            current.ticket_open,
            current.checked_at,
        ):
            return Outcome("duplicate", current.submission.id)
        generation = current.generation + 1
    result = stored(
        lambda: store.open_incident(
            route.name,
            route.kind,
            key,
            generation,
            ready.draft,
            submission_id=ready.submission_id,
            meta=request_meta(),
        ),
        route,
    )
    return Outcome("duplicate" if result.duplicate else "accepted", result.id)


def _closed(
    route: Route,
    key: str,
    generation: int,
    state: str,
    ticket_id: str | None,
    cached_open: bool | None,
    checked_at: float | None,
) -> bool:
    """Has the incident's ticket been resolved or closed in ProProfs (so a new one is due)?"""
    if state == "dead":
        return True  # no ticket was ever made: the next firing deserves one
    if state != "delivered" or ticket_id is None:
        return False  # still on its way: a repeat
    now = time.time()
    if (
        cached_open is not None
        and checked_at is not None
        and (now - checked_at < route.alerts.ticket_check_ttl)
    ):
        return not cached_open
    try:
        ticket = bridge().client.get_ticket(ticket_id)
    except ProProfsError as exc:
        # Cannot ask: treat it as open (a repeat) rather than risk a duplicate ticket.
        log.warning("cannot check ticket %s for %s: %s", ticket_id, key, exc)
        return False
    is_open = ticket is not None and ticket.is_open
    if ticket is None:
        log.info("ticket %s for %s is not listed any more; treating it as closed", ticket_id, key)
    try:
        bridge().store.record_ticket_check(route.name, key, generation, is_open)
    except Exception:  # the cache is an optimisation; the answer stands without it
        log.warning("cannot cache the ticket check for %s", key)
    return not is_open
