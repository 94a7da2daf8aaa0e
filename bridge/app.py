"""``create_app(settings)``: the only place that wires the bridge together."""

from __future__ import annotations

import logging

from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from .config import Settings, load_settings
from .intake import hooks
from .intake.common import Bridge, error, json_response
from .outbox.store import SubmissionStore

log = logging.getLogger(__name__)


def create_app(settings: Settings, *, store: SubmissionStore | None = None) -> Flask:
    """The bridge's Flask app for ``settings`` (the store opens lazily, per process)."""
    app = Flask("bridge")
    app.config["MAX_CONTENT_LENGTH"] = max(
        [route.max_body for route in settings.routes.values()] or [256 * 1024]
    )
    app.extensions["bridge"] = Bridge(
        settings=settings, store=store or SubmissionStore(settings.store)
    )
    app.register_blueprint(hooks.blueprint)

    @app.get("/healthz")
    def healthz() -> Response:
        return json_response({"status": "ok"}, 200)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        code = (exc.name or "error").lower().replace(" ", "_")
        return error(exc.code or 500, code, exc.description or exc.name or "error")

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        return error(
            500,
            "internal_error",
            "Something went wrong on our side; nothing was stored. Please try again.",
        )

    return app


def from_environment() -> Flask:
    """The app for ``$BRIDGE_CONFIG`` (gunicorn: ``bridge.app:from_environment()``)."""
    return create_app(load_settings())
