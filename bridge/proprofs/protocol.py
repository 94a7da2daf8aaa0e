"""The ProProfs protocol without I/O: build request bodies, decode responses.

Every function here is pure. The transport (:mod:`bridge.proprofs.client`) only
moves bytes; everything the API's documents say lives here and names its rule.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from zoneinfo import ZoneInfo

from .errors import (
    AmbiguousError,
    AuthenticationError,
    InvalidRequestError,
    ProProfsError,
    RateLimitedError,
    TransientError,
)
from .models import (
    PRIORITIES,
    STATUSES,
    CustomFieldValue,
    Label,
    Message,
    Person,
    Ticket,
    TicketDraft,
    TicketFilters,
    TicketPage,
    TicketUpdate,
)
from .times import WINDOW_MONTHS, add_months, from_account, to_account

CREATE_PATH = "create/ticket/"  # PROPROFS_API C1: case-sensitive, trailing slash
LIST_PATH = "list/ticket/"
UPDATE_PATH = "update/ticket/"
JSON_HEADERS = {"Accept": "application/json", "Content-Type": "application/json"}  # C2
AUTH_FAILED_TEXT = "Unable to authenticate request using account email and token"  # C4

# A3: an error body is permanent unless its text says the failure is passing.
_TRANSIENT_TEXT = re.compile(
    r"try again|temporar|unavailable|too many requests|rate limit|timed? ?out|overload",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Credentials:
    """The account email and API token sent in every body (C3). The token never prints."""

    account_email: str
    token: str = field(repr=False)

    def __str__(self) -> str:
        return f"{self.account_email} (token hidden)"


def endpoint_url(base_url: str, path: str, page: int = 1) -> str:
    """The absolute URL of an endpoint; page N of a list is the same URL with ``?page=N`` (L6)."""
    url = base_url.rstrip("/") + "/" + path
    return url if page <= 1 else f"{url}?page={page}"


def build_create_payload(credentials: Credentials, draft: TicketDraft) -> dict[str, Any]:
    """The create-ticket body: credentials plus every field the draft sets."""
    if not draft.email:
        raise InvalidRequestError("a ticket needs the requester's email")
    if not draft.subject:
        raise InvalidRequestError("a ticket needs a subject")
    body: dict[str, Any] = {
        "account_email": credentials.account_email,
        "token": credentials.token,
    }
    return body | _as_sent(draft.to_dict())


def ticket_number(ticket_id: str) -> int:
    """Update's ``ticket_id``: a JSON number, ``"00700"`` → ``700`` (PROPROFS_API A6); ids
    stay strings everywhere else."""
    if not isinstance(ticket_id, str) or not re.fullmatch(r"[0-9]+", ticket_id.strip()):
        raise InvalidRequestError(f"a ticket id is a string of digits, not {ticket_id!r} (A6)")
    return int(ticket_id)


def build_update_payload(
    credentials: Credentials, ticket_id: str, update: TicketUpdate
) -> dict[str, Any]:
    """The update-ticket body: credentials, the ticket's number (U1, A6) and only the
    fields ``update`` sets (U3); refuses an update that changes nothing."""
    fields = update.to_dict()
    if not fields:
        raise InvalidRequestError("an update must change at least one field (U3)")
    if "email" in fields and not fields["email"].strip():
        raise InvalidRequestError("a ticket's requester email cannot be emptied")
    if "subject" in fields and not fields["subject"].strip():
        raise InvalidRequestError("a ticket's subject cannot be emptied")
    body: dict[str, Any] = {
        "account_email": credentials.account_email,
        "token": credentials.token,
        "ticket_id": ticket_number(ticket_id),
    }
    return body | _as_sent(fields)


def _as_sent(fields: dict[str, Any]) -> dict[str, Any]:
    """A ticket's fields as create and update send them: custom fields as the API's list of
    ``{"id", "value"}`` objects; a priority the API does not know is refused."""
    priority = fields.get("priority")
    if priority is not None and priority not in PRIORITIES:
        raise InvalidRequestError(f"priority must be high, normal or low, not {priority!r}")
    sent = dict(fields)
    if "custom_fields" in sent:
        sent["custom_fields"] = [{"id": k, "value": v} for k, v in sent["custom_fields"].items()]
    return sent


def build_list_payload(
    credentials: Credentials, filters: TicketFilters, tz: ZoneInfo
) -> dict[str, Any]:
    """The list-tickets body; refuses what the API would refuse (L1, L5, A1, A2)."""
    body: dict[str, Any] = {
        "account_email": credentials.account_email,
        "token": credentials.token,
    }
    if filters.start_ticket_id is not None:
        body["start_ticket_id"] = int(filters.start_ticket_id)
    if filters.end_ticket_id is not None:
        body["end_ticket_id"] = int(filters.end_ticket_id)
    if (
        filters.start_ticket_id is not None
        and filters.end_ticket_id is not None
        and not filters.start_ticket_id < filters.end_ticket_id
    ):
        # PROPROFS_API L5: start_ticket_id must be strictly smaller than end_ticket_id.
        raise InvalidRequestError("start_ticket_id must be smaller than end_ticket_id (L5)")
    if filters.inbox:
        body["inbox"] = filters.inbox
    if filters.status:
        if filters.status.capitalize() not in STATUSES:
            raise InvalidRequestError(
                f"status must be one of {', '.join(STATUSES)}, not {filters.status!r}"
            )
        body["status"] = filters.status.lower()
    _add_window(
        body,
        "created",
        filters.created_from,
        filters.created_to,
        tz,
        "start_created_date",
        "end_created_date",
    )
    # PROPROFS_API A1: the modified upper bound is sent as end_last_modified_date.
    _add_window(
        body,
        "modified",
        filters.modified_from,
        filters.modified_to,
        tz,
        "start_last_modified_date",
        "end_last_modified_date",
    )
    return body


def _add_window(
    body: dict[str, Any],
    label: str,
    start: datetime | None,
    end: datetime | None,
    tz: ZoneInfo,
    start_key: str,
    end_key: str,
) -> None:
    local_start = _local(start, tz) if start is not None else None
    local_end = _local(end, tz) if end is not None else None
    if local_start is not None and local_end is not None:
        if not local_start < local_end:
            # PROPROFS_API L5 / A2: a window that ends before it starts is refused.
            raise InvalidRequestError(f"the {label} window must start before it ends (L5)")
        if local_end > add_months(local_start, WINDOW_MONTHS):
            raise InvalidRequestError(
                f"the {label} window spans more than {WINDOW_MONTHS} months (L1); "
                "use iter_tickets to split it"
            )
    if start is not None:
        body[start_key] = to_account(start, tz)
    if end is not None:
        body[end_key] = to_account(end, tz)


def _local(moment: datetime, tz: ZoneInfo) -> datetime:
    return moment.astimezone(tz).replace(tzinfo=None, microsecond=0)


# --- decoding -------------------------------------------------------------------------------


def decode_create(status: int, headers: dict[str, str], body: bytes) -> str:
    """The ticket id of a create response, exactly as returned (leading zeros kept)."""
    data = _decode(status, headers, body, garbled=AmbiguousError)
    ticket_id = data.get("ticket_id")
    if isinstance(ticket_id, int) and not isinstance(ticket_id, bool):
        ticket_id = str(ticket_id)
    if not isinstance(ticket_id, str) or not ticket_id:
        raise AmbiguousError(
            "ProProfs reported success without a ticket id; the ticket may exist",
            status=status,
        )
    return ticket_id


def decode_update(status: int, headers: dict[str, str], body: bytes) -> None:
    """An update's answer: ``{"status": "success"}`` or the error it means (C4, C5). An
    update sets fields to values, so sending it again is safe: an answer that is not the
    API's is a passing failure, not an ambiguous one."""
    _decode(status, headers, body, garbled=TransientError)


def decode_list(status: int, headers: dict[str, str], body: bytes, tz: ZoneInfo) -> TicketPage:
    """One page of tickets from a list response, times converted to UTC (L6, L7)."""
    data = _decode(status, headers, body, garbled=TransientError)
    page = data.get("ticket_data")
    if not isinstance(page, dict):
        raise TransientError("ProProfs list response has no ticket_data", status=status)
    try:
        tickets = tuple(decode_ticket(t, tz) for t in page.get("tickets") or [])
        return TicketPage(
            page=int(page.get("page") or 1),
            total_tickets=int(page.get("total_tickets") or 0),  # a string in the API
            total_on_page=int(page.get("total_tickets_on_page") or len(tickets)),
            per_page=int(page.get("ticket_per_page") or 25),
            tickets=tickets,
            first_page_link=str(page.get("first_page_link") or ""),
            previous_page_link=str(page.get("previous_page_link") or ""),
            next_page_link=str(page.get("next_page_link") or ""),
            last_page_link=str(page.get("last_page_link") or ""),
        )
    except (TypeError, ValueError, KeyError) as exc:
        raise TransientError(f"ProProfs list response is malformed: {exc}", status=status) from None


def decode_ticket(raw: dict[str, Any], tz: ZoneInfo) -> Ticket:
    """One listed ticket as a typed :class:`Ticket`."""
    return Ticket(
        ticket_id=str(raw["ticket_id"]),
        customer_email=str(raw.get("customer_email") or ""),
        customer_name=str(raw.get("customer_name") or ""),
        customer_phone=str(raw.get("customer_phone") or ""),
        subject=str(raw.get("ticket_subject") or ""),
        messages=tuple(_message(m, tz) for m in raw.get("messages") or []),
        staff=_person(raw.get("staff")),
        priority=str(raw.get("priority") or ""),
        due_date=str(raw.get("ticket_due_date") or ""),
        inbox=_person(raw.get("inbox")),
        custom_fields=tuple(
            CustomFieldValue(str(c["id"]), str(c.get("name") or ""), str(c.get("value") or ""))
            for c in raw.get("custom_fields") or []
        ),
        labels=tuple(
            Label(str(lb["id"]), str(lb.get("name") or "")) for lb in raw.get("labels") or []
        ),
        status=str(raw.get("ticket_status") or "").lower(),
        deleted=str(raw.get("deleted") or "0") == "1",
        created=from_account(str(raw["created_date_time"]), tz),
        modified=from_account(str(raw.get("modified_date_time") or raw["created_date_time"]), tz),
    )


def _message(raw: dict[str, Any], tz: ZoneInfo) -> Message:
    return Message(
        text=str(raw.get("message_plain_text") or ""),
        created=from_account(str(raw["created"]), tz),
        sender=str(raw.get("from") or ""),
        to=str(raw.get("to") or ""),
        reply_by=_person(raw.get("reply_by")),
    )


def _person(raw: Any) -> Person | None:
    if not isinstance(raw, dict) or not raw.get("id"):
        return None
    return Person(str(raw["id"]), str(raw.get("name") or ""), str(raw.get("email") or ""))


def _decode(
    status: int, headers: dict[str, str], body: bytes, *, garbled: type[ProProfsError]
) -> dict[str, Any]:
    """Turn a response into its JSON body, or raise the error it means (C4, C5, A3)."""
    data = _json_object(body)
    description = str(data.get("description") or "") if data else ""
    if status == 429:
        raise RateLimitedError(
            _message_for(status, description or "rate limited"),
            description=description,
            retry_after=parse_retry_after(headers.get("Retry-After")),
        )
    if status >= 500:
        raise TransientError(
            _message_for(status, description or "server error"),
            status=status,
            description=description,
        )
    if data is None or "status" not in data:
        if 200 <= status < 300:
            raise garbled(
                f"ProProfs answered HTTP {status} with a body that is not the API's", status=status
            )
        raise InvalidRequestError(
            f"ProProfs answered HTTP {status}; check the base URL and path (C1)", status=status
        )
    if data.get("status") == "success" and 200 <= status < 300:  # C5
        return data
    if data.get("status") == "success":
        raise garbled(f"ProProfs answered HTTP {status} with a success body", status=status)
    # C4: an error body, whatever the HTTP status.
    if status in (401, 403) or description.startswith("Unable to authenticate"):
        raise AuthenticationError(
            _message_for(status, description), status=status, description=description
        )
    if _TRANSIENT_TEXT.search(description):
        raise TransientError(
            _message_for(status, description), status=status, description=description
        )
    raise InvalidRequestError(
        _message_for(status, description or "request refused"),
        status=status,
        description=description,
    )


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # a hostile body is no answer
        return None
    return data if isinstance(data, dict) else None


def _message_for(status: int, description: str) -> str:
    return f"ProProfs error (HTTP {status}): {description}"


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
