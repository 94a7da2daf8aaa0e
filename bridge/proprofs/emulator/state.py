"""What the emulator holds: its tickets, counters, faults, and the file they are kept in."""

from __future__ import annotations

import json
import logging
import os
import random
import tempfile
import threading
from collections import deque
from dataclasses import asdict, dataclass, field, fields
from typing import Any
from zoneinfo import ZoneInfo

log = logging.getLogger(__name__)
FIRST_TICKET_NUMBER = 700
TICKET_ID_WIDTH = 5  # ids are strings with leading zeros, like the vendor's "00700"


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
    lose_update_rate: float = 0.0  # the update is made, its answer lost (like lose_create_rate)
    lose_mode: str = "hang"  # "hang": answer after hang_seconds; "drop": close the connection
    hang_seconds: float = 10.0
    list_lag_seconds: float = 0.0

    def update(self, values: dict[str, Any]) -> None:
        """Change the faults named in ``values``."""
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
    """A ticket as the emulator keeps it."""

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
    #: Every update made, oldest first: when, and the fields it sent (the ticket view's).
    updates: list[dict[str, Any]] = field(default_factory=list)


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
        #: API calls answered per endpoint (``list/ticket/``), whatever their outcome.
        self.endpoint_calls: dict[str, int] = {}
        #: The last API calls' filters and page, credentials removed, for tests to inspect.
        self.calls: deque[dict[str, Any]] = deque(maxlen=2000)
        if data_path and os.path.exists(data_path):
            self._load()

    def __repr__(self) -> str:
        return f"EmulatorState(account_email={self.account_email!r}, tickets={len(self.tickets)})"

    def count(self, name: str) -> None:
        """Count one call of kind ``name``."""
        with self.lock:
            self.counters[name] = self.counters.get(name, 0) + 1

    def answered(self, endpoint: str) -> None:
        """Count one call of ``endpoint`` (``list/ticket/``)."""
        with self.lock:
            self.endpoint_calls[endpoint] = self.endpoint_calls.get(endpoint, 0) + 1

    def roll(self, rate: float) -> bool:
        """True with probability ``rate`` (a fault's turn)."""
        if rate <= 0:
            return False
        with self.lock:
            return self.random.random() < rate

    def add_ticket(self, ticket: StoredTicket, generation: int | None = None) -> StoredTicket:
        """Store a ticket under the next id."""
        with self.lock:
            if generation is not None and generation != self.generation:
                return ticket  # the emulator was reset while this request was under way
            ticket.ticket_id = f"{self.next_number:0{TICKET_ID_WIDTH}d}"
            self.next_number += 1
            self.tickets[ticket.ticket_id] = ticket
            self._save()
        return ticket

    def by_number(self, number: int) -> StoredTicket | None:
        """The ticket whose id has this numeric value (``700`` is ``"00700"``); hold the
        lock."""
        return self.tickets.get(f"{number:0{TICKET_ID_WIDTH}d}") or next(
            (t for t in self.tickets.values() if int(t.ticket_id) == number), None
        )

    def reset(self) -> None:
        """Forget every ticket, call and fault."""
        with self.lock:
            self.tickets.clear()
            self.counters.clear()
            self.endpoint_calls.clear()
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
