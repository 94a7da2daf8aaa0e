"""``POST /hooks/<route>``: webhooks from monitors and other machines."""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, request

from ..config import Route
from .common import Rejected, accept, accepted_response, bridge, limit_body, parse_json

blueprint = Blueprint("hooks", __name__)


def _route(name: str) -> Route:
    route = bridge().settings.routes.get(name)
    if route is None or route.kind != "hook":
        raise Rejected(404, "unknown_route", f"There is no hook route named {name!r}.")
    return route


def check_auth(route: Route) -> None:
    """Optional bearer token, compared in constant time."""
    expected = route.auth.get("bearer")
    if not expected:
        return
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), str(expected).encode()
    ):
        raise Rejected(
            401,
            "unauthorized",
            "Missing or wrong bearer token.",
            headers={"WWW-Authenticate": 'Bearer realm="bridge"'},
        )


@blueprint.post("/hooks/<name>")
def receive(name: str) -> Response:
    try:
        route = _route(name)
        body = limit_body(route)
        check_auth(route)
        if request.mimetype != "application/json" and not request.mimetype.endswith("+json"):
            raise Rejected(
                415,
                "unsupported_media_type",
                "Send the body as JSON (Content-Type: application/json).",
            )
        payload = parse_json(body)
        return accepted_response(accept(route, payload))
    except Rejected as rejected:
        return rejected.response()
