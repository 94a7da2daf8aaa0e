"""Typed values that cross the ProProfs boundary."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import getaddresses
from typing import Any, Literal

Priority = Literal["high", "normal", "low"]
PRIORITIES: tuple[str, ...] = ("high", "normal", "low")

#: Ticket statuses the list filter accepts (the vendor's spelling); responses use lower case.
STATUSES: tuple[str, ...] = ("New", "Open", "Pending", "Hold", "Resolved", "Closed")


@dataclass(frozen=True)
class TicketDraft:
    """Every field of a create-ticket request except the credentials."""

    email: str
    subject: str
    name: str | None = None
    phone: str | None = None
    description: str | None = None
    staff: str | None = None
    priority: Priority | None = None
    inbox: str | None = None
    custom_fields: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (custom fields as id → value), for storage and display."""
        return _fields_set(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TicketDraft:
        """The inverse of :meth:`to_dict`."""
        return cls(
            email=str(data["email"]),
            subject=str(data["subject"]),
            name=data.get("name"),
            phone=data.get("phone"),
            description=data.get("description"),
            staff=data.get("staff"),
            priority=data.get("priority"),
            inbox=data.get("inbox"),
            custom_fields={str(k): str(v) for k, v in (data.get("custom_fields") or {}).items()},
        )


@dataclass(frozen=True)
class TicketUpdate:
    """The fields an update-ticket request changes (PROPROFS_API U3): only those set are
    sent, and the ticket keeps the rest. There is no status: the API has none (U2, A5)."""

    email: str | None = None
    subject: str | None = None
    name: str | None = None
    phone: str | None = None
    description: str | None = None
    staff: str | None = None
    priority: Priority | None = None
    inbox: str | None = None
    custom_fields: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The fields set, JSON-ready (custom fields as id → value)."""
        return _fields_set(self)


#: A ticket's fields besides custom fields, as create and update name them.
TICKET_FIELDS = ("email", "subject", "name", "phone", "description", "staff", "priority", "inbox")


def _fields_set(ticket: TicketDraft | TicketUpdate) -> dict[str, Any]:
    """The fields ``ticket`` sets, JSON-ready (custom fields as id → value)."""
    out: dict[str, Any] = {}
    for key in TICKET_FIELDS:
        value = getattr(ticket, key)
        if value is not None:
            out[key] = value
    if ticket.custom_fields:
        out["custom_fields"] = dict(ticket.custom_fields)
    return out


@dataclass(frozen=True)
class Person:
    """A staff member, inbox or message author as the list API returns them."""

    id: str
    name: str
    email: str


@dataclass(frozen=True)
class Message:
    """One message of a ticket's thread; the first one is the ticket's description."""

    text: str
    created: datetime
    sender: str
    to: str
    reply_by: Person | None = None


@dataclass(frozen=True)
class CustomFieldValue:
    """One custom field's value on a ticket."""

    id: str
    name: str
    value: str


@dataclass(frozen=True)
class Label:
    """A label staff put on a ticket."""

    id: str
    name: str


@dataclass(frozen=True)
class Ticket:
    """A ticket as the list API describes it, with aware (UTC) datetimes."""

    ticket_id: str
    customer_email: str
    customer_name: str
    customer_phone: str
    subject: str
    messages: tuple[Message, ...]
    staff: Person | None
    priority: str
    due_date: str
    inbox: Person | None
    custom_fields: tuple[CustomFieldValue, ...]
    labels: tuple[Label, ...]
    status: str
    deleted: bool
    created: datetime
    modified: datetime

    @property
    def is_open(self) -> bool:
        """True unless the help desk marked it resolved or closed (or deleted it)."""
        return not self.deleted and self.status.lower() not in ("resolved", "closed")

    def custom_field(self, field_id: str) -> str | None:
        """The value of custom field ``field_id``, or ``None``."""
        for cf in self.custom_fields:
            if cf.id == field_id:
                return cf.value
        return None

    def public_replies(self) -> list[Message]:
        """Staff's replies to the requester, oldest first: staff messages addressed to the
        requester's address (nothing marks a note; a note goes to staff)."""
        requester = self.customer_email.strip().lower()
        return [
            m
            for m in self.messages
            if m.reply_by is not None
            and requester
            and requester in (a.strip().lower() for _, a in getaddresses([m.to or ""]))
        ]

    def to_dict(self) -> dict[str, Any]:
        """The ticket as JSON-ready data (times as ISO 8601), for the mirror to keep."""

        def plain(value: Any) -> Any:
            if isinstance(value, datetime):
                return value.isoformat()
            if isinstance(value, tuple | list):
                return [plain(v) for v in value]
            if hasattr(value, "__dataclass_fields__"):
                return {k: plain(getattr(value, k)) for k in value.__dataclass_fields__}
            return value

        return dict(plain(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Ticket:
        """A ticket from :meth:`to_dict`'s data."""

        def person(raw: Any) -> Person | None:
            return Person(**raw) if raw else None

        def message(raw: Mapping[str, Any]) -> Message:
            return Message(
                raw["text"],
                datetime.fromisoformat(raw["created"]),
                raw["sender"],
                raw["to"],
                person(raw.get("reply_by")),
            )

        return cls(
            **{
                **data,
                "messages": tuple(message(m) for m in data["messages"]),
                "staff": person(data["staff"]),
                "inbox": person(data["inbox"]),
                "custom_fields": tuple(CustomFieldValue(**c) for c in data["custom_fields"]),
                "labels": tuple(Label(**label) for label in data["labels"]),
                "created": datetime.fromisoformat(data["created"]),
                "modified": datetime.fromisoformat(data["modified"]),
            }
        )


@dataclass(frozen=True)
class TicketPage:
    """One page of a list response (PROPROFS_API L6)."""

    page: int
    total_tickets: int
    total_on_page: int
    per_page: int
    tickets: tuple[Ticket, ...]
    first_page_link: str
    previous_page_link: str
    next_page_link: str
    last_page_link: str

    @property
    def has_next(self) -> bool:
        """Whether another page follows."""
        return bool(self.next_page_link)


@dataclass(frozen=True)
class TicketFilters:
    """List filters; datetimes must be aware and are sent in the account's zone (L7)."""

    start_ticket_id: int | None = None
    end_ticket_id: int | None = None
    inbox: str | None = None
    status: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    modified_from: datetime | None = None
    modified_to: datetime | None = None
