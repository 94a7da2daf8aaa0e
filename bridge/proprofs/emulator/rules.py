"""The vendor's rules (PROPROFS_API.md) as functions over a request body and the state:
what a create stores, what a list returns, what is refused."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from ..models import PRIORITIES, STATUSES
from ..times import ACCOUNT_FORMAT, WINDOW_MONTHS, add_months, parse_local
from .state import EmulatorState, StoredTicket

log = logging.getLogger(__name__)


API_PREFIX = "/app/api/v1/"
PER_PAGE = 25  # PROPROFS_API L6

CREATE_FIELDS = {
    "account_email",
    "token",
    "email",
    "subject",
    "name",
    "phone",
    "description",
    "staff",
    "priority",
    "inbox",
    "custom_fields",
}
#: PROPROFS_API U1–U3: update takes create's fields, all optional, and the ticket's id;
#: there is no status (U2), so ``status`` is an unknown parameter.
UPDATE_FIELDS = CREATE_FIELDS | {"ticket_id"}
LIST_FIELDS = {
    "account_email",
    "token",
    "start_ticket_id",
    "end_ticket_id",
    "inbox",
    "status",
    "start_created_date",
    "end_created_date",
    "start_last_modified_date",
    "end_last_modified_date",
    # PROPROFS_API A1: the table's name for the modified upper bound, and a stray key.
    "last_modified_date",
    "created_date",
}
EMAIL_RE = re.compile(r"^[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;]+$")
STAFF_RE = re.compile(r"^S[TF]\d+-\d+$")
INBOX_RE = re.compile(r"^IB\d+-\d+$")
CUSTOM_FIELD_RE = re.compile(r"^CF\d+-\d+$")
MAX_SUBJECT = 255  # our reading: the documents give no limit; we hold clients to a sane one


class Refused(Exception):
    """An API error answered with the documented error body (C4)."""

    def __init__(self, description: str, status: int | None = None) -> None:
        super().__init__(description)
        self.description = description
        self.status = status


def page_link(base: str, page: int) -> str:
    """The link to ``page`` of a listing."""
    return base if page <= 1 else f"{base}?page={page}"


def page_number(raw: str | None) -> int:
    """The page asked for, as the vendor reads it."""
    if raw is None:
        return 1
    if not raw.isdigit() or int(raw) < 1:
        raise Refused("page must be a positive whole number")
    return int(raw)


def _string(body: dict[str, Any], key: str, *, required: bool = False) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise Refused(f"{key} is required")
        return None
    if not isinstance(value, str):
        raise Refused(f"{key} must be a string")
    if required and not value.strip():
        raise Refused(f"{key} is required")
    return value


def _checked(body: dict[str, Any]) -> dict[str, Any]:
    """The ticket fields ``body`` sends, each checked as the vendor checks it."""
    found: dict[str, Any] = {}
    for key in ("email", "subject", "name", "phone", "description", "staff", "priority", "inbox"):
        value = _string(body, key)
        if value is not None:
            found[key] = value
    email, subject = found.get("email"), found.get("subject")
    if email is not None and not EMAIL_RE.match(email):
        raise Refused("email is not a valid email address")
    if subject is not None and (len(subject) > MAX_SUBJECT or "\n" in subject or "\r" in subject):
        raise Refused(f"subject must be one line of at most {MAX_SUBJECT} characters")
    if subject is not None and not subject.strip():
        raise Refused("subject is required")
    priority = found.get("priority")
    if priority is not None and priority not in PRIORITIES:
        raise Refused("priority must be one of high, normal, low")
    staff = found.get("staff")
    if staff is not None and not STAFF_RE.match(staff):
        raise Refused(f"staff {staff!r} is not a staff id")
    inbox = found.get("inbox")
    if inbox is not None and not INBOX_RE.match(inbox):
        raise Refused(f"inbox {inbox!r} is not an inbox id")
    custom = body.get("custom_fields")
    if custom is not None:
        if not isinstance(custom, list):
            raise Refused("custom_fields must be an array of {id, value} objects")
        custom_fields: list[dict[str, str]] = []
        for item in custom:
            if (
                not isinstance(item, dict)
                or set(item) != {"id", "value"}
                or not isinstance(item["id"], str)
                or not isinstance(item["value"], str)
            ):
                raise Refused("custom_fields must be an array of {id, value} objects")
            if not CUSTOM_FIELD_RE.match(item["id"]):
                raise Refused(f"custom field {item['id']!r} is not a custom field id")
            custom_fields.append(
                {"id": item["id"], "name": f"Field {item['id']}", "value": item["value"]}
            )
        found["custom_fields"] = custom_fields
    return found


def validate_create(body: dict[str, Any], state: EmulatorState) -> StoredTicket:
    """A create's problems, in the vendor's words."""
    unknown = sorted(set(body) - CREATE_FIELDS)
    if unknown:
        raise Refused(f"Unknown parameter: {', '.join(unknown)}")
    _string(body, "email", required=True)
    _string(body, "subject", required=True)
    found = _checked(body)
    return StoredTicket(
        ticket_id="",
        email=found["email"],
        subject=found["subject"],
        name=found.get("name") or "",
        phone=found.get("phone") or "",
        description=found.get("description"),
        staff=found.get("staff") or "",
        priority=found.get("priority") or "normal",
        inbox=found.get("inbox") or "",
        custom_fields=found.get("custom_fields") or [],
    )


def update_number(body: dict[str, Any]) -> int:
    """The ticket an update names: a JSON number (PROPROFS_API A6), or leniently a string
    of digits; a float, ``true``, a negative or an empty string is an error. None: U1."""
    value = body.get("ticket_id")
    if value is None:
        raise Refused("ticket_id is required")
    if isinstance(value, str) and re.fullmatch(r"[0-9]+", value):
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Refused("ticket_id must be a ticket number")
    return value


def validate_update(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """An update's ticket number and the fields it changes, or its problems (U1–U3)."""
    unknown = sorted(set(body) - UPDATE_FIELDS)
    if unknown:
        raise Refused(f"Unknown parameter: {', '.join(unknown)}")
    number = update_number(body)
    return number, _checked(body)


def apply_update(
    state: EmulatorState, number: int, changes: dict[str, Any], generation: int
) -> StoredTicket:
    """Make an update on the ticket it names (U1, A9), as PROPROFS_API reads it: fields
    sent replace the stored ones, the rest stay (U3); custom fields change by id (A8);
    the description is the first message's text, replies untouched (A7); the ticket's
    modified time moves (U4). The update joins the ticket's history."""
    now = datetime.now(UTC).isoformat()
    with state.lock:
        ticket = state.by_number(number)
        if ticket is None or generation != state.generation:
            raise Refused(f"Ticket {number} not found")  # U1
        if ticket.deleted:
            raise Refused(f"Ticket {number} has been deleted")  # A9
        for key, value in changes.items():
            if key == "custom_fields":
                kept = {f["id"]: f for f in ticket.custom_fields}
                kept.update({f["id"]: f for f in value})
                ticket.custom_fields = list(kept.values())
            elif key == "description":
                ticket.description = value
                if ticket.messages:
                    ticket.messages[0]["message_plain_text"] = value
                else:
                    ticket.messages.append(first_message(ticket, value, now, state))
            else:
                setattr(ticket, key, value)
        ticket.modified = now
        sent = {k: v if k != "custom_fields" else [f["id"] for f in v] for k, v in changes.items()}
        ticket.updates.append({"at": now, "fields": sent})
        state._save()
        return ticket


def first_message(
    ticket: StoredTicket, text: str, created: str, state: EmulatorState
) -> dict[str, Any]:
    """A ticket's first message: its description, from the requester."""
    return {
        "message_plain_text": text,
        "created": created,
        "from": f"{ticket.name} <{ticket.email}>" if ticket.name else ticket.email,
        "to": f"ProProfs <support_{state.account_email}>",
    }


def _date(body: dict[str, Any], key: str) -> datetime | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise Refused(f"{key} must be a string formatted YYYY-MM-DD HH:MM:SS")
    try:
        return parse_local(value)
    except ValueError:
        raise Refused(f"{key} must be formatted YYYY-MM-DD HH:MM:SS") from None


def _window(
    label: str, start: datetime | None, end: datetime | None, now: datetime, explicit: bool
) -> tuple[datetime, datetime] | None:
    """The effective window of one date pair (L1, L2, L3, L5); naive account-local times."""
    if start is not None and end is not None:
        if not start < end:
            raise Refused(f"The start {label} date must be earlier than the end date")  # L5
        if end > add_months(start, WINDOW_MONTHS):
            raise Refused(f"The {label} date range must be within 3 months")  # L1
        return start, end
    if start is not None:
        return start, min(add_months(start, WINDOW_MONTHS), now)  # L2
    if end is not None:
        return add_months(end, -WINDOW_MONTHS), end  # L3
    return None if explicit else (add_months(now, -WINDOW_MONTHS), now)  # L4


def select(body: dict[str, Any], state: EmulatorState) -> list[StoredTicket]:
    """The tickets a list request's filters match."""
    unknown = sorted(set(body) - LIST_FIELDS)
    if unknown:
        raise Refused(f"Unknown parameter: {', '.join(unknown)}")
    ids: list[int | None] = []
    for key in ("start_ticket_id", "end_ticket_id"):
        value = body.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise Refused(f"{key} must be an integer")
        ids.append(value)
    start_id, end_id = ids
    if start_id is not None and end_id is not None and not start_id < end_id:
        raise Refused("start_ticket_id must be smaller than end_ticket_id")  # L5
    status = body.get("status")
    if status is not None and (not isinstance(status, str) or status.capitalize() not in STATUSES):
        raise Refused(f"status must be one of {', '.join(STATUSES)}")
    inbox = body.get("inbox")
    if inbox is not None and not isinstance(inbox, str):
        raise Refused("inbox must be a string")
    # PROPROFS_API A1: last_modified_date is a synonym of end_last_modified_date.
    modified_end = _date(body, "end_last_modified_date")
    synonym = _date(body, "last_modified_date")
    if modified_end and synonym and modified_end != synonym:
        raise Refused("last_modified_date and end_last_modified_date disagree")
    modified_end = modified_end or synonym
    _date(body, "created_date")  # A1: validated as a date, otherwise ignored
    now = datetime.now(state.tz).replace(tzinfo=None, microsecond=0)
    modified_start = _date(body, "start_last_modified_date")
    has_modified = modified_start is not None or modified_end is not None
    has_ids = start_id is not None or end_id is not None
    # Our reading of L4: with no date filter and no id range, the last 3 months of creation.
    created = _window(
        "created",
        _date(body, "start_created_date"),
        _date(body, "end_created_date"),
        now,
        explicit=has_modified or has_ids,
    )
    modified = _window("modified", modified_start, modified_end, now, explicit=True)
    utc_now = datetime.now(UTC)
    with state.lock:
        tickets = list(state.tickets.values())
    selected = []
    for ticket in tickets:
        if datetime.fromisoformat(ticket.visible_at) > utc_now:
            continue  # list lag: created, not yet listed
        number = int(ticket.ticket_id)
        if (start_id is not None and number < start_id) or (end_id is not None and number > end_id):
            continue
        if inbox is not None and ticket.inbox != inbox:
            continue
        if status is not None and ticket.status != status.lower():
            continue
        if created and not _within(ticket.created, created, state.tz):
            continue
        if modified and not _within(ticket.modified, modified, state.tz):
            continue
        selected.append(ticket)
    selected.sort(key=lambda t: int(t.ticket_id))
    return selected


def _within(iso: str, window: tuple[datetime, datetime], tz: ZoneInfo) -> bool:
    local = datetime.fromisoformat(iso).astimezone(tz).replace(tzinfo=None, microsecond=0)
    return window[0] <= local <= window[1]


def _local_text(iso: str, tz: ZoneInfo) -> str:
    return datetime.fromisoformat(iso).astimezone(tz).strftime(ACCOUNT_FORMAT)


def render(ticket: StoredTicket, tz: ZoneInfo) -> dict[str, Any]:
    """A ticket as the list API shows it (times in the account zone, L7)."""
    messages = []
    for message in ticket.messages:
        rendered = dict(message)
        rendered["created"] = _local_text(message["created"], tz)
        messages.append(rendered)
    staff = (
        {"id": ticket.staff, "name": f"Staff {ticket.staff}", "email": ""} if ticket.staff else {}
    )
    inbox = (
        {"id": ticket.inbox, "name": f"Inbox {ticket.inbox}", "email": ""} if ticket.inbox else {}
    )
    return {
        "ticket_id": ticket.ticket_id,
        "customer_email": ticket.email,
        "customer_name": ticket.name,
        "customer_phone": ticket.phone,
        "ticket_subject": ticket.subject,
        "messages": messages,
        "staff": staff,
        "priority": ticket.priority,
        "ticket_due_date": "",
        "inbox": inbox,
        "custom_fields": ticket.custom_fields,
        "labels": ticket.labels,
        "ticket_status": ticket.status,
        "deleted": "1" if ticket.deleted else "0",
        "created_date_time": _local_text(ticket.created, tz),
        "modified_date_time": _local_text(ticket.modified, tz),
    }
