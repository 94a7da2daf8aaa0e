"""The answers intake gives: the one JSON shape, refusals with their status, outcomes counted."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import Response

from ..config.settings import Route
from .state import bridge

log = logging.getLogger(__name__)


#: ``json.dumps(…, ensure_ascii=False)`` without making an encoder for every answer.
_encode = json.JSONEncoder(ensure_ascii=False).encode


def json_response(
    body: Mapping[str, Any], status: int, headers: Mapping[str, str] | None = None
) -> Response:
    """A JSON answer with the status and headers given."""
    response = Response(_encode(body), status=status, mimetype="application/json")
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def error(
    status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None, **extra: Any
) -> Response:
    """The one error shape: ``{"status": "error", "code": …, "message": …}``."""
    return json_response(
        {"status": "error", "code": code, "message": message, **extra}, status, headers
    )


class Rejected(Exception):
    """Stop here: the documented status, a code, and a message a person can act on."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        errors: Mapping[str, list[str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = dict(errors or {})
        self.headers = dict(headers or {})

    def response(self) -> Response:
        """The JSON answer (machines and fetch clients)."""
        extra: dict[str, Any] = {"errors": self.errors} if self.errors else {}
        return error(self.status, self.code, self.message, headers=self.headers, **extra)


@dataclass(frozen=True)
class Accepted:
    """What a sender hears back after its submission was stored."""

    id: str
    duplicate: bool
    state: str

    @property
    def outcome(self) -> str:
        """What the metrics and the log call it: accepted, duplicate or quarantined."""
        if self.state == "quarantined":
            return "quarantined"
        return "duplicate" if self.duplicate else "accepted"


def accepted_response(result: Accepted) -> Response:
    """202 for a new submission, 200 for a repeat."""
    if result.duplicate:
        return json_response({"status": "duplicate", "id": result.id}, 200)
    return json_response({"status": "accepted", "id": result.id}, 202)


def observe(route: Route | None, outcome: str, reason: str = "") -> None:
    """Count one submission's outcome (accepted, duplicate, ignored, spam, rejected)."""
    name = route.name if route else "-"
    metrics = bridge().metrics
    if metrics is not None:
        metrics.submission(name, route.kind if route else "-", outcome, reason)
    # One line per submission, with its request id and no personal data.
    log.info("submission %s on route %s%s", outcome, name, f" ({reason})" if reason else "")


def observed(route: Route | None, response: Response, outcome: str | None = None) -> Response:
    """Count the answer's outcome and hand the answer back."""
    if outcome is None:
        if response.status_code == 202 or response.status_code == 303:
            outcome = "accepted"
        elif response.status_code < 300:
            body = response.get_json(silent=True) if response.is_json else None
            outcome = str((body or {}).get("status") or "ok")
        else:
            body = response.get_json(silent=True) if response.is_json else None
            observe(route, "rejected", str((body or {}).get("code") or response.status_code))
            return response
    observe(route, outcome)
    return response
