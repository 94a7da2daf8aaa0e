"""``/files/<token>``: the files people attached, for the agents a ticket links them to.

A link is a signed token naming the route, the submission and the file's place in it;
when it stops working is the outbox's record of the file (the console can extend it). A
file is only ever served as a download, under headers that keep it from running in the
bridge's origin whatever it holds: ``Content-Disposition: attachment``, ``nosniff``, and
a CSP that allows nothing and sandboxes the response.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, request, url_for
from werkzeug.http import quote_header_value

from ..attachments import ACTIVE_TYPES, Attachment
from .answers import json_response
from .state import bridge, public_link

blueprint = Blueprint("files", __name__)
GONE = "This file link is not valid, or it has expired. Ask the person to send the file again."
#: What every answer of this endpoint carries, a file or not.
GUARD_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "private, no-store",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def find(token: str) -> Attachment | None:
    """The attachment a token opens, if the token is sound, the route still exists and
    the link has not expired."""
    state = bridge()
    claims = state.links.read(token)
    if claims is None:
        return None
    route_name, submission_id, position = claims
    route = state.settings.routes.get(route_name)
    if route is None or not route.file_fields:
        return None
    found = state.store.attachments.get(submission_id, position)
    if found is None or found.route != route_name or found.expires_at <= time.time():
        return None
    return found


@blueprint.get("/files/<token>")
def download(token: str) -> Response:
    """GET /files/<token>: a file someone attached, as a download."""
    found = find(token)
    data = None
    kept = bridge().store.files
    if found is not None and kept is not None:
        data = kept.read(found.digest)
    if found is None or data is None:
        return json_response(
            {"status": "error", "code": "not_found", "message": GONE}, 404, GUARD_HEADERS
        )
    # Markup goes out as opaque bytes: no browser renders it, whatever it is told.
    kind = "application/octet-stream" if found.type in ACTIVE_TYPES else found.type
    response = Response(data, mimetype=kind)
    response.headers["Content-Disposition"] = disposition(found.name)
    for key, value in GUARD_HEADERS.items():
        response.headers[key] = value
    if request.method == "HEAD":
        response.set_data(b"")
    return response


def disposition(name: str) -> str:
    """``attachment`` with the name twice: plain ASCII for old agents, ``filename*`` UTF-8."""
    from urllib.parse import quote

    plain = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name)
    return f"attachment; filename={quote_header_value(plain)}; filename*=UTF-8''{quote(name)}"


def link(attachment: Attachment) -> str:
    """The absolute link to one attachment (for the console and the widget's status)."""
    state = bridge()
    token = state.links.token(attachment.route, attachment.submission_id, attachment.position)
    return public_link(url_for("files.download", token=token))


def own_files(submission_id: str) -> list[dict[str, Any]]:
    """A submission's files as the person who sent them sees them in the widget."""
    return [
        {"name": a.name, "size": a.size, "type": a.type, "url": link(a)}
        for a in bridge().store.attachments.of(submission_id)
    ]
