"""A ticket as ProProfs shows it, for the parts of intake that read tickets: from the
mirror when the config keeps one and it is up to date, else with one list call."""

from __future__ import annotations

from typing import Any

from ..config.settings import Route
from ..outbox.mirror import is_fresh
from ..proprofs.models import Ticket
from .state import bridge

#: Replies a reply-time estimate needs (fewer: the widget says nothing).
MIN_REPLIES = 5


def current_ticket(ticket_id: str) -> Ticket | None:
    """The ticket ``ticket_id``; a ticket the mirror has not seen yet (made since its last
    poll), or a mirror that is behind, is asked of ProProfs."""
    mirrored = mirrored_ticket(ticket_id)
    if mirrored is not None:
        return mirrored
    return bridge().client.get_ticket(ticket_id)


def mirrored_ticket(ticket_id: str) -> Ticket | None:
    """The ticket as the mirror holds it, when there is an up-to-date mirror; else
    ``None`` (never a list call)."""
    state = bridge()
    mirror = state.settings.mirror
    if mirror is None or not is_fresh(state.store.mirror.state(), mirror.every, state.clock()):
        return None
    found = state.store.mirror.get(ticket_id)
    return found.ticket if found is not None else None


def reply_time(route: Route) -> dict[str, Any] | None:
    """How soon staff usually reply in the route's inbox: the median first public reply
    of the tickets created in the last 30 days, as the mirror worked it out at its last
    poll; ``None`` without a mirror, or with fewer than ``MIN_REPLIES`` replies."""
    state = bridge()
    if state.settings.mirror is None:
        return None
    template = route.mapping.templates.get("inbox")
    # An inbox chosen per submission (a template): every inbox counts.
    inbox = template.source if template is not None and template.is_literal else "*"
    found = state.store.mirror.state().reply_times.get(inbox)
    if found is None or found[1] < MIN_REPLIES:
        return None
    median, replies = found
    return {"median_seconds": round(median), "replies": int(replies), "text": _within(median)}


def _within(seconds: float) -> str:
    """A median wait in words, rounded up: "within 2 hours"."""
    minutes = max(1, -(-int(seconds) // 60))
    if minutes < 60:
        return f"Usually replies within {minutes} minute{'s' if minutes != 1 else ''}"
    hours = -(-minutes // 60)
    if hours < 48:
        return f"Usually replies within {hours} hour{'s' if hours != 1 else ''}"
    days = -(-hours // 24)
    return f"Usually replies within {days} days"
