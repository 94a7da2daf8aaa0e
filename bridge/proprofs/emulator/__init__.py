"""A strict ProProfs Help Desk emulator: a Flask app that plays the API by PROPROFS_API.md.

Where the vendor would refuse a request, the emulator refuses it too, so a client
bug fails here before it fails in production. Faults (latency, 5xx, 429, auth
failure, lost create responses, list lag) are set by flags or at run time through
``POST /_emulator/faults``; ``/_emulator/...`` endpoints also do what a help desk
agent would do in the ProProfs UI (change a status, reply).
"""

from .app import create_emulator
from .rules import API_PREFIX, PER_PAGE
from .server import EmulatorServer
from .state import EmulatorState, Faults, StoredTicket

__all__ = [
    "API_PREFIX",
    "PER_PAGE",
    "EmulatorServer",
    "EmulatorState",
    "Faults",
    "StoredTicket",
    "create_emulator",
]
