"""The widget knows its people (with a mirror, ``mirror:``): a requester whose identity
the host site signed sees every ticket the bridge made for them, on any device, newest
first, each with its public thread; and the widget tells how soon replies come, from the
mirror's first replies of the last 30 days.

``POST /widget/<route>/mine`` takes ``{"identity": {"email", "hmac"}}`` (a POST, so the
signature stays out of URLs and logs).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from ..guards import GuardRefusal
from .answers import Rejected, json_response
from .body import parse_json, receive_body
from .forms import _cors_for, check_origin, cors_preflight
from .state import bridge
from .widget import iso, public_thread, verified_identity, widget_route

blueprint = Blueprint("widget_people", __name__)

#: The most tickets one requester is shown.
MOST = 50


@blueprint.route("/widget/<name>/mine", methods=["POST"], provide_automatic_options=False)
def mine(name: str) -> Response:
    """POST /widget/<route>/mine: the verified requester's tickets, newest first."""
    try:
        route = widget_route(name)
        check_origin(route)
        if bridge().settings.mirror is None:
            raise Rejected(
                404,
                "no_history",
                "This widget shows no history: the bridge keeps no mirror of its tickets.",
            )
        payload = parse_json(receive_body(route))
        identity = verified_identity(route, payload if isinstance(payload, dict) else {})
        if identity is None:
            raise Rejected(
                403,
                "identity_not_verified",
                "Sign the requester's email on your server (identity_secret) to show "
                "their tickets.",
            )
    except GuardRefusal as refusal:
        return Rejected(refusal.status, refusal.code, refusal.message).response()
    except Rejected as rejected:
        return rejected.response()
    email = identity["email"]
    state = bridge()
    held = state.store.mirror.of_requester(email, limit=MOST)
    tickets = [
        {
            "ticket_id": item.ticket.ticket_id,
            "subject": item.ticket.subject,
            "status": item.ticket.status,
            "created": item.ticket.created.isoformat(),
            "last_update": item.ticket.modified.isoformat(),
            "messages": public_thread(item.ticket, {email, item.ticket.customer_email}),
        }
        for item in held
    ]
    sync = state.store.mirror.state()
    body: dict[str, Any] = {
        "tickets": tickets,
        "as_of": iso(sync.last_poll_at) if sync.last_poll_at else None,
    }
    headers = {**_cors_for(route), "Cache-Control": "no-store"}
    return json_response(body, 200, headers)


@blueprint.route("/widget/<name>/mine", methods=["OPTIONS"])
def preflight(name: str) -> Response:
    """OPTIONS: CORS for a site allowed to embed the widget."""
    return cors_preflight(name, ("widget",))
