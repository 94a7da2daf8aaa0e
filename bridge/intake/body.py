"""Reading a request's body within the route's limit for its content type, and its JSON."""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from .. import jsonbody
from ..config.settings import Route
from .answers import Rejected
from .state import bridge

log = logging.getLogger(__name__)


def too_large(route: Route) -> Rejected:
    """The 413 for a body over the route's limit."""
    limit = route.limit_for(request.mimetype)
    return Rejected(
        413, "too_large", f"The body is larger than this route accepts ({limit} bytes)."
    )


def check_declared_size(route: Route) -> int:
    """413 for a declared length past the route's limit for this content type; the limit."""
    current = request._get_current_object()  # type: ignore[attr-defined]  # one proxy lookup
    limit = route.limit_for(current.mimetype)
    declared = current.content_length
    if declared is not None and declared > limit:
        raise too_large(route)
    # One byte past the limit is read, so that a streamed (chunked) body over it is told
    # from one that ends exactly there: werkzeug stops quietly at a maximum.
    current.max_content_length = limit + 1
    return limit


def receive_body(route: Route) -> bytes:
    """The raw body, read once (later reads, forms included, use it): 413 past the route's
    limit, declared or streamed; 408 when it is still arriving at ``server.body_timeout``."""
    limit = check_declared_size(route)
    state = bridge()
    current = request._get_current_object()  # type: ignore[attr-defined]  # one proxy lookup
    timeout = state.settings.server.body_timeout
    with state.deadlines.reading(current.environ, timeout) as clock:
        try:
            data: bytes = current.get_data(cache=True)
        except RequestEntityTooLarge:
            raise too_large(route) from None
        except (HTTPException, OSError, ValueError):
            if clock is None or not clock.cut:
                raise
            data = b""
    if clock is not None and clock.cut and len(data) != current.content_length:
        raise Rejected(
            408,
            "body_timeout",
            f"The body was still arriving after {timeout:g} seconds; please send it again.",
            headers={"Connection": "close"},
        )
    if len(data) > limit:
        raise too_large(route)
    return data


def parse_json(body: bytes) -> Any:
    """A JSON body, bounded as intake reads any; 400 with a message when it is not."""
    if not body.strip():
        raise Rejected(400, "malformed_json", "The body is empty; send a JSON object.")
    try:
        return jsonbody.loads(body)
    except UnicodeDecodeError:
        raise Rejected(400, "malformed_json", "The body is not UTF-8 text.") from None
    except jsonbody.Unacceptable as exc:
        raise Rejected(400, "malformed_json", f"The body is not acceptable JSON: {exc}.") from None
    except json.JSONDecodeError as exc:
        raise Rejected(
            400,
            "malformed_json",
            f"The body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}.",
        ) from None
