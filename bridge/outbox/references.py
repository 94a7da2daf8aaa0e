"""The references the bridge writes into its tickets (``pb-`` + 20 hex digits), found
again in what the list API returns: the description, or a custom field."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from ..proprofs.models import Ticket

log = logging.getLogger(__name__)
REF_RE = re.compile(r"\b(pb-[0-9a-f]{20})\b")


def references_in(ticket: Ticket) -> list[str]:
    """Every reference in the ticket's first message and its custom fields."""
    texts = [ticket.messages[0].text] if ticket.messages else []
    texts += [cf.value for cf in ticket.custom_fields]
    return [ref for text in texts for ref in REF_RE.findall(text)]


def find_references(tickets: Iterable[Ticket], wanted: set[str] | None = None) -> dict[str, str]:
    """Map each wanted reference (``None``: every one) to the ticket that carries it
    (lowest id if several)."""
    found: dict[str, str] = {}
    for ticket in tickets:
        for ref in references_in(ticket):
            if wanted is None or ref in wanted:
                current = found.get(ref)
                if current is None or int(ticket.ticket_id) < int(current):
                    if current is not None:
                        log.error(
                            "reference %s is on tickets %s and %s",
                            ref,
                            current,
                            ticket.ticket_id,
                        )
                    found[ref] = ticket.ticket_id
    return found
