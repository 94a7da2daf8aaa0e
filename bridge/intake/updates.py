"""Alert tickets that stay current (a hook route's ``update:``).

A repeat, a resolve or a new firing of an alert group whose ticket is open changes what
the bridge keeps that ticket saying; the outbox carries it there (outbox/updates.py).
What an update sends is rebuilt whole from what the bridge itself made (PROPROFS_API
A7): the subject and description mapped from the latest notification, the group's
status block, the reference footer of the ticket's create, the priority as the route's
rule sets it, and the custom fields named in ``update.fields``.
"""

from __future__ import annotations

import dataclasses

from ..config.settings import Route, UpdateSettings
from ..mapping import footer, without_footer
from ..outbox.records import Submission, Tracked
from ..proprofs.models import TicketDraft
from .incidents import when


def status_block(tracked: Tracked, link: str, previous: str | None = None) -> list[str]:
    """The group's status, as the last lines of its ticket's description."""
    lines = [
        f"Status: {tracked.state}",
        f"First seen: {when(tracked.first_seen)}",
        f"Last seen: {when(tracked.last_seen)}",
        f"Firing notifications: {tracked.occurrences}",
        f"Incident page: {link}",
    ]
    if previous:
        lines.append(f"Previous ticket: #{previous} (closed; this alert group fired again)")
    return lines


def field_values(update: UpdateSettings, tracked: Tracked) -> dict[str, str]:
    """The custom fields ``update.fields`` names, with the group's values."""
    values = {
        "state": tracked.state,
        "occurrences": str(tracked.occurrences),
        "first_seen": when(tracked.first_seen),
        "last_seen": when(tracked.last_seen),
    }
    return {field_id: values[name] for name, field_id in update.fields.items()}


def ticket_now(
    route: Route,
    latest: TicketDraft,
    tracked: Tracked,
    create: Submission,
    link: str,
) -> TicketDraft:
    """The ticket as it must read now: the latest notification's mapping, the group's
    status, the create's reference (reconcile finds the ticket by it) and requester."""
    update = route.alerts.update
    assert update is not None
    subject = latest.subject
    if tracked.state == "resolved":
        subject = f"{update.resolved_prefix}{subject}{update.resolved_suffix}"
    body = without_footer(latest.description or "").rstrip()
    if update.status_block:
        previous = create.meta.get("previous_ticket")
        block = "\n".join(status_block(tracked, link, str(previous) if previous else None))
        body = f"{body}\n\n{block}" if body else block
    return dataclasses.replace(
        create.draft,
        subject=subject[:255],
        description=body + footer(create.id),
        priority=tracked.priority,  # type: ignore[arg-type]
        custom_fields={**latest.custom_fields, **field_values(update, tracked)},
    )
