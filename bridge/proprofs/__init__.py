"""The ProProfs Help Desk API: pure protocol, a requests client, and a strict emulator."""

from typing import TYPE_CHECKING

from ..lazy import exports

if TYPE_CHECKING:
    from .client import DEFAULT_BASE_URL, ProProfsClient
    from .errors import (
        AmbiguousError,
        AuthenticationError,
        InvalidRequestError,
        ProProfsError,
        RateLimitedError,
        TransientError,
    )
    from .models import (
        Message,
        Person,
        Ticket,
        TicketDraft,
        TicketFilters,
        TicketPage,
        TicketUpdate,
    )
    from .protocol import Credentials

__getattr__ = exports(
    __name__,
    {
        "DEFAULT_BASE_URL": ".client",
        "ProProfsClient": ".client",
        "AmbiguousError": ".errors",
        "AuthenticationError": ".errors",
        "InvalidRequestError": ".errors",
        "ProProfsError": ".errors",
        "RateLimitedError": ".errors",
        "TransientError": ".errors",
        "Message": ".models",
        "Person": ".models",
        "Ticket": ".models",
        "TicketDraft": ".models",
        "TicketFilters": ".models",
        "TicketPage": ".models",
        "TicketUpdate": ".models",
        "Credentials": ".protocol",
    },
)

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
    "TicketUpdate",
    "TransientError",
]
