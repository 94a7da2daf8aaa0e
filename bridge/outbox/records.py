"""What the outbox hands out: submissions, attempts, quarantined ones, incidents."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .. import randomness
from ..proprofs.models import TicketDraft

#: Where a submission can be: pending → in_flight → delivered; in_flight → unknown →
#: delivered | pending; → dead; suppressed.
STATES = ("pending", "in_flight", "unknown", "delivered", "dead", "suppressed")


class StoreUnavailable(Exception):
    """The store cannot take or change a submission right now (intake answers 503)."""


@dataclass(frozen=True)
class EnqueueResult:
    """What storing a submission came to: new, or the one it repeats."""

    id: str
    duplicate: bool
    state: str
    ticket_id: str | None = None


@dataclass(frozen=True)
class Submission:
    """A row of the outbox, as operators and the worker see it."""

    id: str
    route: str
    kind: str
    draft: TicketDraft
    dedup_key: str | None
    state: str
    attempts: int
    next_attempt_at: float
    lease_owner: str | None
    lease_token: int
    lease_expires_at: float | None
    claimed_from: str | None
    sent_at: float | None
    ticket_id: str | None
    last_error: str | None
    meta: Mapping[str, Any]
    created_at: float
    updated_at: float
    delivered_at: float | None
    target: str | None = None  # an update: the submission whose create made the ticket

    @property
    def is_update(self) -> bool:
        """An update of a ticket another submission created (not a create)."""
        return self.target is not None

    @property
    def ref(self) -> str:
        """The reference written into the ticket's description footer."""
        return self.id

    @classmethod
    def from_row(cls, row: Any) -> Submission:
        """A submission from its database row."""
        return cls(
            id=row["id"],
            route=row["route"],
            kind=row["kind"],
            draft=TicketDraft.from_dict(json.loads(row["draft"])),
            dedup_key=row["dedup_key"],
            state=row["state"],
            attempts=row["attempts"],
            next_attempt_at=row["next_attempt_at"],
            lease_owner=row["lease_owner"],
            lease_token=row["lease_token"],
            lease_expires_at=row["lease_expires_at"],
            claimed_from=row["claimed_from"],
            sent_at=row["sent_at"],
            ticket_id=row["ticket_id"],
            last_error=row["last_error"],
            meta=json.loads(row["meta"] or "{}"),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            delivered_at=row["delivered_at"],
            target=row.get("target"),
        )


@dataclass(frozen=True)
class DeadFilter:
    """Which dead submissions a bulk replay takes: of a route, with text in their last
    error (any case), dead since or before a time (UNIX seconds). Empty: all of them."""

    route: str | None = None
    error: str | None = None
    since: float | None = None
    until: float | None = None

    @classmethod
    def from_fields(cls, values: Mapping[str, Any]) -> DeadFilter:
        """The filter from the console's fields or the CLI's options; ``since`` and
        ``until`` are UTC times (``YYYY-MM-DD HH:MM``, or the form's ``T``). Raises
        ValueError, with a message to act on, for a time that is not one."""

        def moment(name: str) -> float | None:
            text = (values.get(name) or "").strip()
            if not text:
                return None
            try:
                parsed = datetime.fromisoformat(text)
            except ValueError:
                raise ValueError(
                    f"{name}: {text!r} is not a time; use YYYY-MM-DD HH:MM (UTC)"
                ) from None
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            return parsed.timestamp()

        return cls(
            route=(values.get("route") or "").strip() or None,
            error=(values.get("error") or "").strip()[:200] or None,
            since=moment("since"),
            until=moment("until"),
        )

    def describe(self) -> str:
        """The filter in words, for the console and the CLI."""

        def when(ts: float) -> str:
            return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))

        parts = []
        if self.route:
            parts.append(f"of route {self.route}")
        if self.error:
            parts.append(f"whose last error has {self.error!r}")
        if self.since is not None:
            parts.append(f"dead since {when(self.since)}")
        if self.until is not None:
            parts.append(f"dead before {when(self.until)}")
        return ", ".join(parts) or "all"


@dataclass(frozen=True)
class Attempt:
    """One attempt to deliver (or reconcile) a submission."""

    number: int
    kind: str
    outcome: str
    worker: str | None
    started_at: float
    finished_at: float
    http_status: int | None
    ticket_id: str | None
    error: str | None


@dataclass(frozen=True)
class Quarantined:
    """A submission held back as likely spam."""

    id: str
    route: str
    kind: str
    draft: TicketDraft
    score: float
    reasons: list[str]
    meta: dict[str, Any]
    created_at: float
    expires_at: float

    @classmethod
    def from_row(cls, row: Any) -> Quarantined:
        """A quarantined submission from its database row."""
        return cls(
            id=row["id"],
            route=row["route"],
            kind=row["kind"],
            draft=TicketDraft.from_dict(json.loads(row["draft"])),
            score=float(row["score"]),
            reasons=list(json.loads(row["reasons"])),
            meta=json.loads(row["meta"] or "{}"),
            created_at=row["created_at"],
            expires_at=row["expires_at"],
        )


@dataclass(frozen=True)
class Incident:
    """An alert group's current ticket: its generation and the submission that makes it."""

    route: str
    key: str
    generation: int
    submission: Submission
    ticket_open: bool | None
    checked_at: float | None
    created_at: float = 0.0
    muted: bool = False  # staff's wontfix label
    snoozed_until: float | None = None  # staff's snooze label
    snooze_label: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)  # the group's, last seen
    resolved_at: float | None = None


@dataclass(frozen=True)
class Tracked:
    """What the bridge keeps an incident's ticket saying, this generation."""

    occurrences: int  # firing notifications
    first_seen: float
    last_seen: float
    state: str  # firing | resolved | firing again (after a resolve, on the same ticket)
    priority: str | None  # as the bridge last set it

    @classmethod
    def stored(cls, row: Any) -> Tracked:
        """From an incident's row; one from before updates counts one firing, at its
        creation."""
        created = row["created_at"]
        return cls(
            row["occurrences"] or 1,
            row["first_seen"] or created,
            row["last_seen"] or created,
            row["state"] or "firing",
            row["priority"],
        )


@dataclass(frozen=True)
class IncidentEvent:
    """One notification of an alert group, and what the bridge did with it."""

    generation: int
    status: str  # firing | resolved
    outcome: str  # ticket | repeat | resolved | muted | snoozed
    submission_id: str | None
    received_at: float
    ticket_id: str | None = None  # for a ticket: the one it became, once delivered
    state: str | None = None


#: The requester of a scrubbed draft (a ticket draft must have one; this one is no one's).
SCRUBBED_EMAIL = "removed@invalid"


def footer_of(ref: str) -> str:
    """The reference footer of a ticket description (the same text as mapping.footer)."""
    from ..mapping import footer

    return footer(ref)


def describe_erasure(email: str, report: Mapping[str, int]) -> str:
    """What an erasure removed, in words (the CLI and the console say the same)."""
    if not any(report.values()):
        return f"nothing held for {email}"
    return (
        f"erased {email}: {report['scrubbed']} submission(s) scrubbed "
        f"({report['cancelled']} not yet delivered, cancelled), "
        f"{report['quarantine_deleted']} quarantined submission(s) deleted, "
        f"{report.get('files', 0)} attached file(s) removed; "
        "tickets in ProProfs were not touched"
    )


def new_submission_id(now: float | None = None) -> str:
    """The id that doubles as the ticket reference: ``pb-`` + 20 hex digits, the first 10
    the millisecond it was made (its last 40 bits), the other 10 random (40 bits). Ids in
    time order keep the rows of a commit together in the id's index: wholly random ones
    put each row on an index page of its own, and every such page went into the
    write-ahead log whole (docs/benchmarks.md)."""
    millisecond = int((time.time() if now is None else now) * 1000) & 0xFF_FFFF_FFFF
    return f"pb-{millisecond:010x}{randomness.token_hex(5)}"


@dataclass(frozen=True)
class MessageSighting:
    """What ``store.messages.begin`` found: ``new``, ``in_progress`` or ``answered`` (with
    the answer given then)."""

    state: str
    answer: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to. ``state``: ``delivered`` (with ``ticket_id``), ``pending``
    (a retry at ``next_at``), ``unknown`` (re-checked at ``next_at``) or ``dead``."""

    state: str
    ticket_id: str | None = None
    error: str | None = None
    next_at: float | None = None
    http_status: int | None = None

    @classmethod
    def delivered(cls, ticket_id: str, http_status: int | None = None) -> Outcome:
        """The ticket was made."""
        return cls("delivered", ticket_id=ticket_id, http_status=http_status)

    @classmethod
    def retry(cls, at: float, error: str, http_status: int | None = None) -> Outcome:
        """Try again at ``at``."""
        return cls("pending", error=error, next_at=at, http_status=http_status)

    @classmethod
    def unknown(cls, recheck_at: float, error: str) -> Outcome:
        """Whether a ticket was made is unknown: reconcile at ``recheck_at``."""
        return cls("unknown", error=error, next_at=recheck_at)

    @classmethod
    def dead(cls, error: str, http_status: int | None = None) -> Outcome:
        """Give up: ProProfs refused it, or the schedule ran out."""
        return cls("dead", error=error, http_status=http_status)

    @property
    def name(self) -> str:
        """The attempt's outcome as its row records it: delivered, retry, unknown or dead."""
        return "retry" if self.state == "pending" else self.state
