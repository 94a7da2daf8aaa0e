"""The vendor's endpoints: ``create/ticket/``, ``update/ticket/`` and ``list/ticket/``, with
the checks every call goes through and the faults a test sets."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import socket
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, Response, abort, current_app, request

from ..protocol import AUTH_FAILED_TEXT
from .rules import (
    API_PREFIX,
    PER_PAGE,
    Refused,
    apply_update,
    first_message,
    page_link,
    page_number,
    render,
    select,
    validate_create,
    validate_update,
)
from .state import EmulatorState, Faults

log = logging.getLogger(__name__)


class Abort(Exception):
    """Answer with this response at once (fault injection)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def json_answer(data: Any, status: int) -> Response:
    """A JSON answer, as ProProfs sends one."""
    return Response(json.dumps(data), status=status, mimetype="application/json")


def lose_response(faults: Faults) -> None:
    """The ticket is stored; now make sure its response never arrives."""
    if faults.lose_mode == "drop":
        sock = request.environ.get("werkzeug.socket")
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            abort(Response(status=500))  # never reaches the client: the socket is shut
    time.sleep(faults.hang_seconds)


blueprint = Blueprint("proprofs_api", __name__)


def current_state() -> EmulatorState:
    """The state of the emulator serving this request."""
    state: EmulatorState = current_app.config["EMULATOR_STATE"]
    return state


def error(description: str, status: int | None = None) -> Response:
    """The vendor's error shape, with the status the emulator is set to answer."""
    status = status or current_state().error_status
    return json_answer({"status": "error", "description": description}, status)


def api_call(name: str) -> dict[str, Any]:
    """The checks every API call goes through, in the order a server would make them."""
    state = current_state()
    # PROPROFS_API C1: case-sensitive paths that end with "/".
    if not request.path.endswith("/"):
        abort(404)
    state.count(f"{name}.requests")
    state.answered(request.path.split(API_PREFIX, 1)[-1])
    faults = state.faults
    if faults.latency_ms:
        time.sleep(faults.latency_ms / 1000)
    if state.roll(faults.rate_limit_rate):
        state.count(f"{name}.rate_limited")
        response = error("Too many requests; try again later", 429)
        response.headers["Retry-After"] = str(faults.retry_after)
        raise Abort(response)
    if state.roll(faults.error_rate):
        state.count(f"{name}.server_error")
        raise Abort(
            json_answer(
                {"status": "error", "description": "Service temporarily unavailable"},
                faults.error_status,
            )
        )
    # PROPROFS_API C2: a JSON body.
    if request.mimetype != "application/json":
        raise Refused("Request body must be JSON (Content-Type: application/json)")
    accept = request.headers.get("Accept", "*/*")
    if "json" not in accept and "*/*" not in accept:
        raise Refused("Only application/json responses are available (Accept)")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Refused("Request body must be a JSON object")
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
        raise Refused(AUTH_FAILED_TEXT)
    return body


@blueprint.post(API_PREFIX + "create/ticket/", strict_slashes=False)
def create_ticket() -> Response:
    """POST create-ticket, by the vendor's rules."""
    state = current_state()
    generation = state.generation
    body = api_call("create")
    ticket = validate_create(body, state)
    now = datetime.now(UTC)
    ticket.created = ticket.modified = now.isoformat()
    ticket.visible_at = (now + timedelta(seconds=state.faults.list_lag_seconds)).isoformat()
    if ticket.description is not None:  # the description is the ticket's first message
        ticket.messages.append(first_message(ticket, ticket.description, now.isoformat(), state))
    state.add_ticket(ticket, generation)
    state.count("create.created")
    if state.roll(state.faults.lose_create_rate):
        state.count("create.lost")
        lose_response(state.faults)
    return json_answer({"status": "success", "ticket_id": ticket.ticket_id}, 200)


@blueprint.post(API_PREFIX + "update/ticket/", strict_slashes=False)
def update_ticket() -> Response:
    """POST update-ticket, by the vendor's rules as PROPROFS_API reads them."""
    state = current_state()
    generation = state.generation
    body = api_call("update")
    number, changes = validate_update(body)
    ticket = apply_update(state, number, changes, generation)
    state.count("update.updated")
    if state.roll(state.faults.lose_update_rate):
        state.count("update.lost")
        lose_response(state.faults)
    return json_answer({"status": "success", "ticket_id": ticket.ticket_id}, 200)


@blueprint.post(API_PREFIX + "list/ticket/", strict_slashes=False)
def list_tickets() -> Response:
    """POST list-tickets, by the vendor's rules."""
    state = current_state()
    body = api_call("list")
    page = page_number(request.args.get("page"))
    matches = select(body, state)
    total = len(matches)
    last = max(1, math.ceil(total / PER_PAGE))
    chunk = matches[(page - 1) * PER_PAGE : page * PER_PAGE]
    base = request.base_url
    state.count("list.ok")
    return json_answer(
        {
            "status": "success",
            "ticket_data": {
                "first_page_link": base,
                "previous_page_link": "" if page <= 1 else page_link(base, page - 1),
                "next_page_link": page_link(base, page + 1) if page < last else "",
                "last_page_link": page_link(base, last),
                "total_tickets": str(total),  # a string, as the vendor sends it
                "page": page,
                "total_tickets_on_page": len(chunk),
                "ticket_per_page": PER_PAGE,
                "tickets": [render(t, state.tz) for t in chunk],
            },
        },
        200,
    )
