"""``create_app(settings)``: the only place that wires the bridge together."""

from __future__ import annotations

import hashlib
import hmac
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from flask import Flask, Response
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from .config import Settings, load_settings
from .guards.ratelimit import RateLimits
from .intake import forms, hooks, widget
from .intake.common import Bridge, error, json_response
from .outbox.store import SubmissionStore
from .proprofs.client import ProProfsClient

log = logging.getLogger(__name__)


def templates_dir() -> Path:
    """``templates/`` beside the package (a checkout), or where the wheel installed it."""
    here = Path(__file__).resolve().parent
    for candidate in (
        here.parent / "templates",
        Path(sys.prefix) / "share" / "proprofs-bridge" / "templates",
    ):
        if (candidate / "form.html").is_file():
            return candidate
    raise RuntimeError("the bridge's templates are missing; reinstall proprofs-bridge")


def signing_key(settings: Settings) -> str:
    """``server.secret_key``, or a key derived from the ProProfs token (same on every worker)."""
    if settings.server.secret_key:
        return settings.server.secret_key
    return hmac.new(
        settings.proprofs.token.encode(), b"proprofs-bridge signing key", hashlib.sha256
    ).hexdigest()


def proprofs_client(settings: Settings, pool_size: int = 4) -> ProProfsClient:
    """A ProProfs client from the config's ``proprofs:`` section."""
    p = settings.proprofs
    return ProProfsClient(
        p.base_url,
        p.account_email,
        p.token,
        timezone=p.timezone,
        connect_timeout=p.connect_timeout,
        read_timeout=p.read_timeout,
        pool_size=pool_size,
    )


def create_app(
    settings: Settings,
    *,
    store: SubmissionStore | None = None,
    rate_limits: RateLimits | None = None,
    certificate_fetcher: Callable[[str], bytes] | None = None,
    url_opener: Callable[[str], int] | None = None,
) -> Flask:
    """The bridge's Flask app for ``settings`` (the store opens lazily, per process)."""
    app = Flask("bridge", template_folder=str(templates_dir()))
    app.config["MAX_CONTENT_LENGTH"] = max(
        [route.max_body for route in settings.routes.values()] or [256 * 1024]
    )
    if settings.server.trusted_proxies:
        # X-Forwarded-For is believed only as far as the configured proxies reach.
        app.wsgi_app = ProxyFix(
            app.wsgi_app,
            x_for=settings.server.trusted_proxies,  # type: ignore[method-assign]
            x_proto=settings.server.trusted_proxies,
            x_host=settings.server.trusted_proxies,
        )
    limits = rate_limits or RateLimits(settings.server.rate_limit_storage)
    limits.init_app(app)
    app.extensions["bridge"] = Bridge(
        settings=settings,
        store=store or SubmissionStore(settings.store),
        rate_limits=limits,
        signing_key=signing_key(settings),
        client_factory=lambda: proprofs_client(settings),
        certificate_fetcher=certificate_fetcher,
        url_opener=url_opener,
    )
    app.register_blueprint(hooks.blueprint)
    app.register_blueprint(forms.blueprint)
    app.register_blueprint(widget.blueprint)
    app.extensions["bridge_widget_script"] = widget.Script(templates_dir() / "widget.js")
    app.extensions["bridge_status_cache"] = widget.StatusCache()

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
