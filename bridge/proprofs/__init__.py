"""The ProProfs Help Desk API: pure protocol, a requests client, and a strict emulator."""

from .client import DEFAULT_BASE_URL, ProProfsClient
from .errors import (
    AmbiguousError,
    AuthenticationError,
    InvalidRequestError,
    ProProfsError,
    RateLimitedError,
    TransientError,
)
from .models import Message, Person, Ticket, TicketDraft, TicketFilters, TicketPage
from .protocol import Credentials

__all__ = [
    "DEFAULT_BASE_URL",
    "AmbiguousError",
    "AuthenticationError",
    "Credentials",
    "InvalidRequestError",
    "Message",
    "Person",
    "ProProfsClient",
    "ProProfsError",
    "RateLimitedError",
    "Ticket",
    "TicketDraft",
    "TicketFilters",
    "TicketPage",
    "TransientError",
]
