"""A ticket as ProProfs shows it, for the parts of intake that read tickets: from the
mirror when the config keeps one and it is up to date, else with one list call."""

from __future__ import annotations

from ..outbox.mirror import is_fresh
from ..proprofs.models import Ticket
from .state import bridge


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
