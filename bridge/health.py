"""What operators and orchestrators ask a running bridge: is it up, is it ready, its
figures, and the OpenAPI document of its routes."""

from __future__ import annotations

import hmac
import time

from flask import Flask, Response, request

from .intake.answers import error, json_response
from .intake.state import Bridge
from .observability import Metrics, OutboxCollector
from .openapi import build as build_openapi
from .proprofs.client import ProProfsClient
from .proprofs.errors import AuthenticationError, ProProfsError
from .proprofs.models import TicketFilters


class Reachability:
    """Whether ProProfs answers a tiny list call, asked at most every 30 seconds."""

    def __init__(self, state: Bridge, ttl: float = 30.0) -> None:
        self.state = state
        self.ttl = ttl
        self.checked = 0.0
        self.answer = "unknown"

    def check(self) -> str:
        """Whether ProProfs answered lately (asking again when the answer is old)."""
        now = time.monotonic()
        if now - self.checked < self.ttl:
            return self.answer
        self.checked = now
        self.answer = credentials_check(self.state.client)
        return self.answer

    @property
    def failing(self) -> bool:
        """Whether the last answer says no ticket can be made (refused or unreachable)."""
        return self.answer.startswith(("failing", "unreachable"))


def credentials_check(client: ProProfsClient) -> str:
    """What a tiny list call says about ProProfs and the configured account: ``reachable``,
    ``failing: the credentials are refused (<ProProfs' message>)`` or ``unreachable (…)``."""
    try:
        client.list_tickets(TicketFilters(start_ticket_id=1, end_ticket_id=2))
    except AuthenticationError as exc:
        return f"failing: the credentials are refused ({exc.description or exc})"
    except ProProfsError as exc:
        return f"unreachable ({type(exc).__name__})"
    return "reachable"


def init_app(app: Flask, state: Bridge, metrics: Metrics) -> None:
    """``/healthz``, ``/readyz``, ``/metrics`` and ``/openapi.json`` on ``app``."""
    settings = state.settings
    outbox = OutboxCollector(state.store)
    reachability = Reachability(state)
    api_document = build_openapi(settings)

    @app.get("/healthz")
    def healthz() -> Response:
        """The process is up."""
        return json_response({"status": "ok"}, 200)

    @app.get("/readyz")
    def readyz() -> Response:
        """Ready: the store answers and the config is loaded (503 otherwise). ProProfs is
        reported, never fatal: submissions are taken and kept while it refuses or is down,
        and the status says ``degraded``."""
        store_ok = state.store.ping()
        proprofs = reachability.check()
        status = "degraded" if reachability.failing else "ready"
        body = {
            "status": status if store_ok else "not ready",
            "store": "ok" if store_ok else "unreachable",
            "config": "loaded",
            "routes": len(settings.routes),
            "proprofs": proprofs,
            # Reported, never fatal: without it limits count per process (guards/ratelimit.py).
            "rate_limits": state.rate_limits.state(),
        }
        return json_response(body, 200 if store_ok else 503)

    @app.get("/openapi.json")
    def openapi() -> Response:
        return json_response(api_document, 200, {"Access-Control-Allow-Origin": "*"})

    @app.get("/metrics")
    def metrics_view() -> Response:
        if settings.metrics_token:
            scheme, _, given = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode(), settings.metrics_token.encode()
            ):
                return error(
                    401,
                    "unauthorized",
                    "Send the metrics token: Authorization: Bearer <metrics.token>.",
                    headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
                )
        return Response(
            metrics.exposition([outbox]),
            mimetype="text/plain",
            headers={"Cache-Control": "no-store"},
        )
