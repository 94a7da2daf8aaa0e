"""A strict ProProfs Help Desk emulator: a Flask app that plays the API by PROPROFS_API.md.

Where the vendor would refuse a request, the emulator refuses it too, so a client
bug fails here before it fails in production. Faults (latency, 5xx, 429, auth
failure, lost create responses, list lag) are set by flags or at run time through
``POST /_emulator/faults``; ``/_emulator/...`` endpoints also do what a help desk
agent would do in the ProProfs UI (change a status, reply).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import random
import re
import socket
import tempfile
import threading
import time
import zlib
from collections import deque
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask, Response, abort, request
from werkzeug.exceptions import InternalServerError
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from ..jsonbody import BoundedJSONProvider
from .models import PRIORITIES, STATUSES
from .protocol import AUTH_FAILED_TEXT
from .times import ACCOUNT_FORMAT, WINDOW_MONTHS, add_months, parse_local

log = logging.getLogger(__name__)

API_PREFIX = "/app/api/v1/"
PER_PAGE = 25  # PROPROFS_API L6
FIRST_TICKET_NUMBER = 700
TICKET_ID_WIDTH = 5  # ids are strings with leading zeros, like the vendor's "00700"

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


@dataclass
class Faults:
    """What the emulator does wrong on purpose. Rates are fractions in [0, 1]."""

    latency_ms: float = 0.0
    error_rate: float = 0.0
    error_status: int = 503
    rate_limit_rate: float = 0.0
    retry_after: int = 1
    auth_failure: bool = False
    lose_create_rate: float = 0.0
    lose_mode: str = "hang"  # "hang": answer after hang_seconds; "drop": close the connection
    hang_seconds: float = 10.0
    list_lag_seconds: float = 0.0

    def update(self, values: dict[str, Any]) -> None:
        known = {f.name: f for f in fields(self)}
        for key, value in values.items():
            if key not in known:
                raise ValueError(f"unknown fault {key!r}; known: {', '.join(sorted(known))}")
            current = getattr(self, key)
            if isinstance(current, bool):
                if not isinstance(value, bool):
                    raise ValueError(f"{key} must be true or false")
            elif isinstance(current, (int, float)):
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ValueError(f"{key} must be a number")
                if key.endswith("_rate") and not 0 <= value <= 1:
                    raise ValueError(f"{key} must be between 0 and 1")
                if value < 0:
                    raise ValueError(f"{key} must not be negative")
                value = type(current)(value)
            elif key == "lose_mode" and value not in ("hang", "drop"):
                raise ValueError("lose_mode must be 'hang' or 'drop'")
            setattr(self, key, value)


@dataclass
class StoredTicket:
    ticket_id: str
    email: str
    subject: str
    name: str = ""
    phone: str = ""
    description: str | None = None
    staff: str = ""
    priority: str = "normal"
    inbox: str = ""
    custom_fields: list[dict[str, str]] = field(default_factory=list)
    status: str = "new"
    created: str = ""  # ISO UTC
    modified: str = ""
    visible_at: str = ""  # ISO UTC; list lag: not listed before this
    messages: list[dict[str, Any]] = field(default_factory=list)
    labels: list[dict[str, str]] = field(default_factory=list)
    deleted: bool = False


class EmulatorState:
    """Tickets, faults and counters behind one lock; optionally persisted to a JSON file."""

    def __init__(
        self,
        account_email: str,
        token: str,
        *,
        timezone: str = "America/Chicago",
        data_path: str | None = None,
        seed: int | None = None,
        error_status: int = 200,
    ) -> None:
        self.account_email = account_email
        self.token = token
        self.tz = ZoneInfo(timezone)
        self.data_path = data_path
        self.error_status = error_status  # HTTP status sent with error bodies (C4: unspecified)
        self.lock = threading.Lock()
        self.faults = Faults()
        self.random = random.Random(seed)
        self.tickets: dict[str, StoredTicket] = {}
        self.next_number = FIRST_TICKET_NUMBER
        #: Bumped by reset; a request begun before a reset stores nothing after it.
        self.generation = 0
        self.counters: dict[str, int] = {}
        #: The last API calls' filters and page, credentials removed, for tests to inspect.
        self.calls: deque[dict[str, Any]] = deque(maxlen=2000)
        if data_path and os.path.exists(data_path):
            self._load()

    def __repr__(self) -> str:
        return f"EmulatorState(account_email={self.account_email!r}, tickets={len(self.tickets)})"

    def count(self, name: str) -> None:
        with self.lock:
            self.counters[name] = self.counters.get(name, 0) + 1

    def roll(self, rate: float) -> bool:
        if rate <= 0:
            return False
        with self.lock:
            return self.random.random() < rate

    def add_ticket(self, ticket: StoredTicket, generation: int | None = None) -> StoredTicket:
        with self.lock:
            if generation is not None and generation != self.generation:
                return ticket  # the emulator was reset while this request was under way
            ticket.ticket_id = f"{self.next_number:0{TICKET_ID_WIDTH}d}"
            self.next_number += 1
            self.tickets[ticket.ticket_id] = ticket
            self._save()
        return ticket

    def reset(self) -> None:
        with self.lock:
            self.tickets.clear()
            self.counters.clear()
            self.calls.clear()
            self.faults = Faults()
            self.next_number = FIRST_TICKET_NUMBER
            self.generation += 1
            self._save()

    def _save(self) -> None:
        if not self.data_path:
            return
        data = {
            "next_number": self.next_number,
            "tickets": [asdict(t) for t in self.tickets.values()],
        }
        directory = os.path.dirname(os.path.abspath(self.data_path))
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".emulator-")
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh)
        os.replace(tmp, self.data_path)

    def _load(self) -> None:
        assert self.data_path
        with open(self.data_path) as fh:
            data = json.load(fh)
        self.next_number = int(data.get("next_number", FIRST_TICKET_NUMBER))
        for raw in data.get("tickets", []):
            ticket = StoredTicket(**raw)
            self.tickets[ticket.ticket_id] = ticket


class _Refused(Exception):
    """An API error answered with the documented error body (C4)."""

    def __init__(self, description: str, status: int | None = None) -> None:
        super().__init__(description)
        self.description = description
        self.status = status


class _Abort(Exception):
    """Answer with this response at once (fault injection)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def create_emulator(state: EmulatorState) -> Flask:
    """The emulator's Flask app over ``state``."""
    app = Flask("bridge.proprofs.emulator")
    app.config["EMULATOR_STATE"] = state
    app.json = BoundedJSONProvider(app)  # a deep body is a malformed one, not a crash
    app.json.sort_keys = False

    def error(description: str, status: int | None = None) -> Response:
        return _json({"status": "error", "description": description}, status or state.error_status)

    @app.errorhandler(_Refused)
    def refused(exc: _Refused) -> Response:
        return error(exc.description, exc.status)

    def api_call(name: str) -> dict[str, Any]:
        """The checks every API call goes through, in the order a server would make them."""
        # PROPROFS_API C1: case-sensitive paths that end with "/".
        if not request.path.endswith("/"):
            abort(404)
        state.count(f"{name}.requests")
        faults = state.faults
        if faults.latency_ms:
            time.sleep(faults.latency_ms / 1000)
        if state.roll(faults.rate_limit_rate):
            state.count(f"{name}.rate_limited")
            response = error("Too many requests; try again later", 429)
            response.headers["Retry-After"] = str(faults.retry_after)
            raise _Abort(response)
        if state.roll(faults.error_rate):
            state.count(f"{name}.server_error")
            raise _Abort(
                _json(
                    {"status": "error", "description": "Service temporarily unavailable"},
                    faults.error_status,
                )
            )
        # PROPROFS_API C2: a JSON body.
        if request.mimetype != "application/json":
            raise _Refused("Request body must be JSON (Content-Type: application/json)")
        accept = request.headers.get("Accept", "*/*")
        if "json" not in accept and "*/*" not in accept:
            raise _Refused("Only application/json responses are available (Accept)")
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise _Refused("Request body must be a JSON object")
        with state.lock:
            state.calls.append(
                {
                    "endpoint": name,
                    "page": request.args.get("page"),
                    "body": {k: v for k, v in body.items() if k not in ("account_email", "token")},
                }
            )
        # PROPROFS_API C3: account_email and token in the body, checked before anything else.
        if (
            faults.auth_failure
            or body.get("account_email") != state.account_email
            or body.get("token") != state.token
        ):
            state.count(f"{name}.auth_failed")
            raise _Refused(AUTH_FAILED_TEXT)
        return body

    @app.errorhandler(_Abort)
    def aborted(exc: _Abort) -> Response:
        return exc.response

    @app.post(API_PREFIX + "create/ticket/", strict_slashes=False)
    def create_ticket() -> Response:
        generation = state.generation
        body = api_call("create")
        ticket = _validate_create(body, state)
        now = datetime.now(UTC)
        ticket.created = ticket.modified = now.isoformat()
        ticket.visible_at = (now + timedelta(seconds=state.faults.list_lag_seconds)).isoformat()
        if ticket.description is not None:
            # The description is the ticket's first message.
            ticket.messages.append(
                {
                    "message_plain_text": ticket.description,
                    "created": now.isoformat(),
                    "from": f"{ticket.name} <{ticket.email}>" if ticket.name else ticket.email,
                    "to": f"ProProfs <support_{state.account_email}>",
                }
            )
        state.add_ticket(ticket, generation)
        state.count("create.created")
        if state.roll(state.faults.lose_create_rate):
            state.count("create.lost")
            _lose_response(state.faults)
        return _json({"status": "success", "ticket_id": ticket.ticket_id}, 200)

    @app.post(API_PREFIX + "list/ticket/", strict_slashes=False)
    def list_tickets() -> Response:
        body = api_call("list")
        page = _page_number(request.args.get("page"))
        matches = _select(body, state)
        total = len(matches)
        last = max(1, math.ceil(total / PER_PAGE))
        chunk = matches[(page - 1) * PER_PAGE : page * PER_PAGE]
        base = request.base_url
        state.count("list.ok")
        return _json(
            {
                "status": "success",
                "ticket_data": {
                    "first_page_link": base,
                    "previous_page_link": "" if page <= 1 else _page_link(base, page - 1),
                    "next_page_link": _page_link(base, page + 1) if page < last else "",
                    "last_page_link": _page_link(base, last),
                    "total_tickets": str(total),  # a string, as the vendor sends it
                    "page": page,
                    "total_tickets_on_page": len(chunk),
                    "ticket_per_page": PER_PAGE,
                    "tickets": [_render(t, state.tz) for t in chunk],
                },
            },
            200,
        )

    # --- test and agent endpoints -----------------------------------------------------------

    @app.get("/_emulator/tickets")
    def all_tickets() -> Response:
        with state.lock:
            tickets = [asdict(t) for t in state.tickets.values()]
        return _json({"count": len(tickets), "tickets": tickets}, 200)

    @app.post("/_emulator/tickets")
    def seed_tickets() -> Response:
        """Store tickets with given creation times (history for export and window tests)."""
        payload = request.get_json(silent=True) or {}
        created_ids = []
        for raw in payload.get("tickets", []):
            ticket = _validate_create(
                {k: v for k, v in raw.items() if k not in ("created", "status")}, state
            )
            created = datetime.fromisoformat(raw.get("created") or datetime.now(UTC).isoformat())
            if created.tzinfo is None:
                return _json({"error": "created must carry a UTC offset"}, 400)
            ticket.created = ticket.modified = ticket.visible_at = created.isoformat()
            ticket.status = str(raw.get("status") or "new").lower()
            if ticket.description is not None:
                ticket.messages.append(
                    {
                        "message_plain_text": ticket.description,
                        "created": ticket.created,
                        "from": ticket.email,
                        "to": f"ProProfs <support_{state.account_email}>",
                    }
                )
            created_ids.append(state.add_ticket(ticket).ticket_id)
        return _json({"ticket_ids": created_ids}, 201)

    @app.post("/_emulator/tickets/<ticket_id>/status")
    def set_status(ticket_id: str) -> Response:
        status = str((request.get_json(silent=True) or {}).get("status", "")).capitalize()
        if status not in STATUSES:
            return _json({"error": f"status must be one of {', '.join(STATUSES)}"}, 400)
        with state.lock:
            ticket = state.tickets.get(ticket_id)
            if ticket is None:
                abort(404)
            ticket.status = status.lower()
            ticket.modified = datetime.now(UTC).isoformat()
            state._save()
        return _json({"ticket_id": ticket_id, "status": ticket.status}, 200)

    @app.post("/_emulator/tickets/<ticket_id>/labels")
    def set_labels(ticket_id: str) -> Response:
        """What an agent does in the help desk's UI: put labels on a ticket (the list
        replaces the ticket's labels; each becomes ``{id, name}`` in the list API)."""
        names = (request.get_json(silent=True) or {}).get("labels")
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            return _json({"error": "labels must be a list of names"}, 400)
        with state.lock:
            ticket = state.tickets.get(ticket_id)
            if ticket is None:
                abort(404)
            ticket.labels = [
                {"id": f"LB{zlib.crc32(name.encode()) % 100000:05d}", "name": name}
                for name in names
            ]
            ticket.modified = datetime.now(UTC).isoformat()
            state._save()
        return _json({"ticket_id": ticket_id, "labels": ticket.labels}, 200)

    @app.post("/_emulator/tickets/<ticket_id>/reply")
    def reply(ticket_id: str) -> Response:
        """An agent's reply to the requester."""
        return _agent_message(ticket_id, note=False)

    @app.post("/_emulator/tickets/<ticket_id>/note")
    def note(ticket_id: str) -> Response:
        """An internal note between staff: it reaches no requester, yet the list API may
        still carry it among the ticket's messages (nothing marks a message internal)."""
        return _agent_message(ticket_id, note=True)

    def _agent_message(ticket_id: str, *, note: bool) -> Response:
        payload = request.get_json(silent=True) or {}
        text = payload.get("text")
        if not isinstance(text, str) or not text:
            return _json({"error": "text is required"}, 400)
        staff = payload.get("staff") or {
            "id": "SF008-10650",
            "name": "Support Agent",
            "email": "agent@helpdesk.example",
        }
        now = datetime.now(UTC).isoformat()
        with state.lock:
            ticket = state.tickets.get(ticket_id)
            if ticket is None:
                abort(404)
            requester = f"{ticket.name} <{ticket.email}>" if ticket.name else ticket.email
            ticket.messages.append(
                {
                    "message_plain_text": text,
                    "created": now,
                    "from": staff["email"] if note else f"support_{state.account_email}",
                    "to": str(payload.get("to") or "team@helpdesk.example") if note else requester,
                    "reply_by": staff,
                }
            )
            if ticket.status == "new" and not note:
                ticket.status = "open"
            ticket.modified = now
            state._save()
        return _json({"ticket_id": ticket_id, "messages": len(ticket.messages)}, 200)

    @app.get("/_emulator/faults")
    def get_faults() -> Response:
        return _json(asdict(state.faults), 200)

    @app.post("/_emulator/faults")
    def set_faults() -> Response:
        payload = request.get_json(silent=True)
        if not isinstance(payload, dict):
            return _json({"error": "send a JSON object of faults"}, 400)
        with state.lock:
            candidate = Faults(**asdict(state.faults))
            try:
                candidate.update(payload)
            except ValueError as exc:
                return _json({"error": str(exc)}, 400)
            state.faults = candidate
        return _json(asdict(candidate), 200)

    @app.delete("/_emulator/faults")
    def clear_faults() -> Response:
        with state.lock:
            state.faults = Faults()
        return _json(asdict(state.faults), 200)

    @app.get("/_emulator/stats")
    def stats() -> Response:
        with state.lock:
            return _json(dict(state.counters), 200)

    @app.get("/_emulator/calls")
    def calls() -> Response:
        with state.lock:
            return _json(list(state.calls), 200)

    @app.post("/_emulator/reset")
    def reset() -> Response:
        state.reset()
        return _json({"status": "reset"}, 200)

    return app


def _json(data: Any, status: int) -> Response:
    return Response(json.dumps(data), status=status, mimetype="application/json")


def _page_link(base: str, page: int) -> str:
    return base if page <= 1 else f"{base}?page={page}"


def _page_number(raw: str | None) -> int:
    if raw is None:
        return 1
    if not raw.isdigit() or int(raw) < 1:
        raise _Refused("page must be a positive whole number")
    return int(raw)


def _lose_response(faults: Faults) -> None:
    """The ticket is stored; now make sure its response never arrives."""
    if faults.lose_mode == "drop":
        sock = request.environ.get("werkzeug.socket")
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            abort(Response(status=500))  # never reaches the client: the socket is shut
    time.sleep(faults.hang_seconds)


def _string(body: dict[str, Any], key: str, *, required: bool = False) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise _Refused(f"{key} is required")
        return None
    if not isinstance(value, str):
        raise _Refused(f"{key} must be a string")
    if required and not value.strip():
        raise _Refused(f"{key} is required")
    return value


def _validate_create(body: dict[str, Any], state: EmulatorState) -> StoredTicket:
    unknown = sorted(set(body) - CREATE_FIELDS)
    if unknown:
        raise _Refused(f"Unknown parameter: {', '.join(unknown)}")
    email = _string(body, "email", required=True)
    subject = _string(body, "subject", required=True)
    assert email is not None and subject is not None
    if not EMAIL_RE.match(email):
        raise _Refused("email is not a valid email address")
    if len(subject) > MAX_SUBJECT or "\n" in subject or "\r" in subject:
        raise _Refused(f"subject must be one line of at most {MAX_SUBJECT} characters")
    priority = _string(body, "priority")
    if priority is not None and priority not in PRIORITIES:
        raise _Refused("priority must be one of high, normal, low")
    staff = _string(body, "staff")
    if staff is not None and not STAFF_RE.match(staff):
        raise _Refused(f"staff {staff!r} is not a staff id")
    inbox = _string(body, "inbox")
    if inbox is not None and not INBOX_RE.match(inbox):
        raise _Refused(f"inbox {inbox!r} is not an inbox id")
    custom = body.get("custom_fields")
    custom_fields: list[dict[str, str]] = []
    if custom is not None:
        if not isinstance(custom, list):
            raise _Refused("custom_fields must be an array of {id, value} objects")
        for item in custom:
            if (
                not isinstance(item, dict)
                or set(item) != {"id", "value"}
                or not isinstance(item["id"], str)
                or not isinstance(item["value"], str)
            ):
                raise _Refused("custom_fields must be an array of {id, value} objects")
            if not CUSTOM_FIELD_RE.match(item["id"]):
                raise _Refused(f"custom field {item['id']!r} is not a custom field id")
            custom_fields.append(
                {"id": item["id"], "name": f"Field {item['id']}", "value": item["value"]}
            )
    return StoredTicket(
        ticket_id="",
        email=email,
        subject=subject,
        name=_string(body, "name") or "",
        phone=_string(body, "phone") or "",
        description=_string(body, "description"),
        staff=staff or "",
        priority=priority or "normal",
        inbox=inbox or "",
        custom_fields=custom_fields,
    )


def _date(body: dict[str, Any], key: str) -> datetime | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Refused(f"{key} must be a string formatted YYYY-MM-DD HH:MM:SS")
    try:
        return parse_local(value)
    except ValueError:
        raise _Refused(f"{key} must be formatted YYYY-MM-DD HH:MM:SS") from None


def _window(
    label: str, start: datetime | None, end: datetime | None, now: datetime, explicit: bool
) -> tuple[datetime, datetime] | None:
    """The effective window of one date pair (L1, L2, L3, L5); naive account-local times."""
    if start is not None and end is not None:
        if not start < end:
            raise _Refused(f"The start {label} date must be earlier than the end date")  # L5
        if end > add_months(start, WINDOW_MONTHS):
            raise _Refused(f"The {label} date range must be within 3 months")  # L1
        return start, end
    if start is not None:
        return start, min(add_months(start, WINDOW_MONTHS), now)  # L2
    if end is not None:
        return add_months(end, -WINDOW_MONTHS), end  # L3
    return None if explicit else (add_months(now, -WINDOW_MONTHS), now)  # L4


def _select(body: dict[str, Any], state: EmulatorState) -> list[StoredTicket]:
    unknown = sorted(set(body) - LIST_FIELDS)
    if unknown:
        raise _Refused(f"Unknown parameter: {', '.join(unknown)}")
    ids: list[int | None] = []
    for key in ("start_ticket_id", "end_ticket_id"):
        value = body.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise _Refused(f"{key} must be an integer")
        ids.append(value)
    start_id, end_id = ids
    if start_id is not None and end_id is not None and not start_id < end_id:
        raise _Refused("start_ticket_id must be smaller than end_ticket_id")  # L5
    status = body.get("status")
    if status is not None and (not isinstance(status, str) or status.capitalize() not in STATUSES):
        raise _Refused(f"status must be one of {', '.join(STATUSES)}")
    inbox = body.get("inbox")
    if inbox is not None and not isinstance(inbox, str):
        raise _Refused("inbox must be a string")
    # PROPROFS_API A1: last_modified_date is a synonym of end_last_modified_date.
    modified_end = _date(body, "end_last_modified_date")
    synonym = _date(body, "last_modified_date")
    if modified_end and synonym and modified_end != synonym:
        raise _Refused("last_modified_date and end_last_modified_date disagree")
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


def _render(ticket: StoredTicket, tz: ZoneInfo) -> dict[str, Any]:
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


#: How long a kept-alive connection may sit idle before the emulator closes it.
IDLE_SECONDS = 60.0
#: The largest request body read ahead on a kept-alive connection; a larger one is served the
#: old way, on a connection closed after it.
READ_AHEAD_LIMIT = 8 * 1024 * 1024


class _KeepAliveHandler(WSGIRequestHandler):
    """werkzeug's request handler, with the connection kept open for the next request
    (HTTP/1.1 keep-alive), as a real API's is: a client's pooled connections are reused, and
    a call does not pay for a new connection and a new server thread. werkzeug's own handler
    closes every connection, because it cannot tell where an unread body ends; this one reads
    the body whole (its Content-Length) before the app runs, so the next request on the
    connection starts where this one ended. Anything else (a chunked body, an ``Expect``, a
    length it will not read ahead) goes to werkzeug's handler, which closes the connection."""

    protocol_version = "HTTP/1.1"
    timeout = IDLE_SECONDS
    server: _EmulatorHTTPServer

    def setup(self) -> None:
        super().setup()
        # The head and the body are two writes; on a connection that stays open, Nagle's
        # algorithm would hold the body back until the client's delayed ACK (~40 ms).
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.opened(self.connection)

    def finish(self) -> None:
        self.server.closed(self.connection)
        super().finish()

    def log_error(self, format: str, *args: Any) -> None:
        if format.startswith("Request timed out"):
            return  # an idle kept-alive connection closing is no error
        super().log_error(format, *args)

    def run_wsgi(self) -> None:
        length = self._length()
        if length is None:
            self.close_connection = True
            super().run_wsgi()
            return
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            self.close_connection = True  # the client went away mid-body
            return
        self.environ = environ = self.make_environ()
        environ["wsgi.input"] = io.BytesIO(body)
        status, headers, payload = self._call(environ)
        code = int(status.split(None, 1)[0])
        try:
            self.send_response(code, status.partition(" ")[2])
            for key, value in headers:
                if key.lower() != "content-length":
                    self.send_header(key, value)
            bodiless = code < 200 or code in (204, 304) or self.command == "HEAD"
            if not bodiless:
                self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if not bodiless:
                self.wfile.write(payload)
            self.wfile.flush()
        except OSError:
            self.close_connection = True  # shut on purpose (a dropped create), or gone

    def _length(self) -> int | None:
        """The body's length when it can be read ahead; None when werkzeug must serve it."""
        if self.headers.get("Transfer-Encoding") or self.headers.get("Expect"):
            return None
        raw = self.headers.get("Content-Length") or "0"
        if not raw.isdigit() or int(raw) > READ_AHEAD_LIMIT:
            return None
        return int(raw)

    def _call(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
        """The app's status, headers and whole body."""
        started: list[Any] = []
        chunks: list[bytes] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            started[:] = [status, headers]
            return chunks.append

        try:
            result = self.server.app(environ, start_response)
            try:
                chunks.extend(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except Exception:
            log.exception("the emulator failed on %s %s", self.command, self.path)
            chunks.clear()
            chunks.extend(InternalServerError()(environ, start_response))
            self.close_connection = True
        return started[0], started[1], b"".join(chunks)


class _EmulatorHTTPServer(ThreadedWSGIServer):
    """A thread per connection, and the open connections known, so that a stopped emulator
    stops answering on them too (a client's pooled connection must not reach a server that
    is down)."""

    def __init__(self, host: str, port: int, app: Flask) -> None:
        super().__init__(host, port, app, handler=_KeepAliveHandler)
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def opened(self, sock: socket.socket) -> None:
        with self._open_lock:
            self._open.add(sock)

    def closed(self, sock: socket.socket) -> None:
        with self._open_lock:
            self._open.discard(sock)

    def close_connections(self) -> None:
        with self._open_lock:
            kept = list(self._open)
        for sock in kept:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class EmulatorServer:
    """The emulator on a threaded loopback server in a background thread."""

    def __init__(self, state: EmulatorState, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = state
        self.app = create_emulator(state)
        self.server = _EmulatorHTTPServer(host, port, self.app)
        self.thread = threading.Thread(
            target=self.server.serve_forever, daemon=True, name="proprofs-emulator"
        )

    @property
    def url(self) -> str:
        return f"http://{self.server.host}:{self.server.port}"

    @property
    def base_url(self) -> str:
        return self.url + API_PREFIX

    def __repr__(self) -> str:
        return f"EmulatorServer(url={self.url!r})"

    def start(self) -> EmulatorServer:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.server.close_connections()
        self.thread.join(timeout=5)

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
