"""``/_emulator/…``: what tests and benchmarks set and read, and what an agent would do in
the help desk (a status, labels, a reply, a note)."""

from __future__ import annotations

import logging
import zlib
from dataclasses import asdict
from datetime import UTC, datetime

from flask import Blueprint, Response, abort, request

from ..models import STATUSES
from .api import current_state, json_answer
from .rules import validate_create
from .state import Faults

log = logging.getLogger(__name__)
blueprint = Blueprint("emulator_control", __name__)


@blueprint.get("/_emulator/tickets")
def all_tickets() -> Response:
    """Every ticket, for tests to inspect."""
    state = current_state()
    with state.lock:
        tickets = [asdict(t) for t in state.tickets.values()]
    return json_answer({"count": len(tickets), "tickets": tickets}, 200)


@blueprint.post("/_emulator/tickets")
def seed_tickets() -> Response:
    """Store tickets with given creation times (history for export and window tests)."""
    state = current_state()
    payload = request.get_json(silent=True) or {}
    created_ids = []
    for raw in payload.get("tickets", []):
        ticket = validate_create(
            {k: v for k, v in raw.items() if k not in ("created", "status")}, state
        )
        created = datetime.fromisoformat(raw.get("created") or datetime.now(UTC).isoformat())
        if created.tzinfo is None:
            return json_answer({"error": "created must carry a UTC offset"}, 400)
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
    return json_answer({"ticket_ids": created_ids}, 201)


@blueprint.post("/_emulator/tickets/<ticket_id>/status")
def set_status(ticket_id: str) -> Response:
    """Change a ticket's status, as staff would."""
    state = current_state()
    status = str((request.get_json(silent=True) or {}).get("status", "")).capitalize()
    if status not in STATUSES:
        return json_answer({"error": f"status must be one of {', '.join(STATUSES)}"}, 400)
    with state.lock:
        ticket = state.tickets.get(ticket_id)
        if ticket is None:
            abort(404)
        ticket.status = status.lower()
        ticket.modified = datetime.now(UTC).isoformat()
        state._save()
    return json_answer({"ticket_id": ticket_id, "status": ticket.status}, 200)


@blueprint.post("/_emulator/tickets/<ticket_id>/delete")
def delete(ticket_id: str) -> Response:
    """Delete a ticket, as staff would: it stays listed with ``deleted: "1"``, and an
    update of it is an error (PROPROFS_API A9)."""
    state = current_state()
    with state.lock:
        ticket = state.tickets.get(ticket_id)
        if ticket is None:
            abort(404)
        ticket.deleted = True
        ticket.modified = datetime.now(UTC).isoformat()
        state._save()
    return json_answer({"ticket_id": ticket_id, "deleted": True}, 200)


@blueprint.post("/_emulator/tickets/<ticket_id>/labels")
def set_labels(ticket_id: str) -> Response:
    """What an agent does in the help desk's UI: put labels on a ticket (the list
    replaces the ticket's labels; each becomes ``{id, name}`` in the list API)."""
    state = current_state()
    names = (request.get_json(silent=True) or {}).get("labels")
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        return json_answer({"error": "labels must be a list of names"}, 400)
    with state.lock:
        ticket = state.tickets.get(ticket_id)
        if ticket is None:
            abort(404)
        ticket.labels = [
            {"id": f"LB{zlib.crc32(name.encode()) % 100000:05d}", "name": name} for name in names
        ]
        ticket.modified = datetime.now(UTC).isoformat()
        state._save()
    return json_answer({"ticket_id": ticket_id, "labels": ticket.labels}, 200)


@blueprint.post("/_emulator/tickets/<ticket_id>/reply")
def reply(ticket_id: str) -> Response:
    """An agent's reply to the requester."""
    return _agent_message(ticket_id, note=False)


@blueprint.post("/_emulator/tickets/<ticket_id>/note")
def note(ticket_id: str) -> Response:
    """An internal note between staff: it reaches no requester, yet the list API may
    still carry it among the ticket's messages (nothing marks a message internal)."""
    return _agent_message(ticket_id, note=True)


def _agent_message(ticket_id: str, *, note: bool) -> Response:
    state = current_state()
    payload = request.get_json(silent=True) or {}
    text = payload.get("text")
    if not isinstance(text, str) or not text:
        return json_answer({"error": "text is required"}, 400)
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
    return json_answer({"ticket_id": ticket_id, "messages": len(ticket.messages)}, 200)


@blueprint.get("/_emulator/faults")
def get_faults() -> Response:
    """The faults in force."""
    state = current_state()
    return json_answer(asdict(state.faults), 200)


@blueprint.post("/_emulator/faults")
def set_faults() -> Response:
    """Set faults: latency, errors, lost answers, list lag."""
    state = current_state()
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        return json_answer({"error": "send a JSON object of faults"}, 400)
    with state.lock:
        candidate = Faults(**asdict(state.faults))
        try:
            candidate.update(payload)
        except ValueError as exc:
            return json_answer({"error": str(exc)}, 400)
        state.faults = candidate
    return json_answer(asdict(candidate), 200)


@blueprint.delete("/_emulator/faults")
def clear_faults() -> Response:
    """No faults."""
    state = current_state()
    with state.lock:
        state.faults = Faults()
    return json_answer(asdict(state.faults), 200)


@blueprint.get("/_emulator/stats")
def stats() -> Response:
    """The calls answered per endpoint (``{"calls": {"list/ticket/": N, ...}}``), and
    counts by kind and outcome (``list.requests``, ``create.created``, ...)."""
    state = current_state()
    with state.lock:
        return json_answer({**state.counters, "calls": dict(state.endpoint_calls)}, 200)


@blueprint.get("/_emulator/calls")
def calls() -> Response:
    """The calls received, newest last."""
    state = current_state()
    with state.lock:
        return json_answer(list(state.calls), 200)


@blueprint.post("/_emulator/reset")
def reset() -> Response:
    """Forget every ticket, call and fault."""
    state = current_state()
    state.reset()
    return json_answer({"status": "reset"}, 200)
