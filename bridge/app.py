"""``create_app(settings)``: the only place that wires the bridge together."""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Callable
from pathlib import Path

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from . import admin, health
from .attachments import open_store
from .config import Settings, load_settings
from .guards.ratelimit import RateLimits
from .intake import files, forms, hooks, incidents, people, widget
from .intake.answers import error
from .intake.scripts import Script
from .intake.state import Bridge
from .jsonbody import BoundedJSONProvider
from .observability import (
    REQUEST_ID,
    Metrics,
    configure_logging,
    new_request_id,
    settings_secrets,
)
from .outbox.mirror import Mirror
from .outbox.records import StoreUnavailable
from .outbox.store import SubmissionStore
from .proprofs.client import ProProfsClient
from .proxies import ProxiesInFront
from .resources import templates_dir
from .serving import CpuClaim, batch_scheduling, claim_a_cpu, cut_bodies_on_stop

log = logging.getLogger(__name__)


def signing_key(settings: Settings, store: SubmissionStore) -> str:
    """``server.secret_key``, or a random key the store made once and keeps (the same for
    every worker and instance on that store; nothing anyone else knows derives it)."""
    return settings.server.secret_key or store.access.key("signing")


def proprofs_client(
    settings: Settings,
    pool_size: int = 4,
    observer: Callable[[str, str, float], None] | None = None,
) -> ProProfsClient:
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
        observer=observer,
    )


def mirror_of(settings: Settings, store: SubmissionStore, client: ProProfsClient) -> Mirror | None:
    """The mirror's sync loop for a delivery process, when the config has ``mirror:``."""
    if settings.mirror is None:
        return None
    import os
    import socket

    return Mirror(
        store,
        client,
        every=settings.mirror.every,
        max_calls_per_minute=settings.mirror.max_calls_per_minute,
        owner=f"{socket.gethostname()}:{os.getpid()}",
        subscribers=tuple(settings.events.values()),
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
    app.json = BoundedJSONProvider(app)  # request.get_json anywhere refuses deep nesting
    app.config["MAX_CONTENT_LENGTH"] = max(
        [route.body_limit for route in settings.routes.values()] or [256 * 1024]
    )
    if settings.server.trusted_proxies:
        # X-Forwarded-For is believed only as far as the configured proxies reach.
        app.wsgi_app = ProxiesInFront(  # type: ignore[method-assign]
            app.wsgi_app, settings.server.trusted_proxies, settings.server.proxy_networks
        )
    metrics = Metrics(enabled=settings.server.metrics)
    limits = rate_limits or RateLimits(
        settings.server.rate_limit_storage, observer=metrics.rate_limit_storage
    )
    limits.init_app(app)
    store = store or SubmissionStore(settings.store)
    app.extensions["bridge"] = Bridge(
        settings=settings,
        store=store,
        rate_limits=limits,
        signing_key_source=lambda: signing_key(settings, store),
        client_factory=lambda: proprofs_client(settings, observer=metrics.api_call),
        metrics=metrics,
        certificate_fetcher=certificate_fetcher,
        url_opener=url_opener,
    )
    app.register_blueprint(hooks.blueprint)
    app.register_blueprint(forms.blueprint)
    app.register_blueprint(widget.blueprint)
    app.register_blueprint(people.blueprint)
    app.register_blueprint(files.blueprint)
    app.register_blueprint(incidents.blueprint)
    admin.init_app(app, settings)
    app.extensions["bridge_widget_script"] = Script(templates_dir() / "widget.js")
    app.extensions["bridge_forms_script"] = Script(templates_dir() / "forms.js")
    app.extensions["bridge_status_cache"] = widget.StatusCache()

    if store.files is None:
        store.files = open_store(settings.files)
    _request_ids(app)
    health.init_app(app, app.extensions["bridge"], metrics)
    _error_answers(app)
    return app


def _request_ids(app: Flask) -> None:
    """Every request gets an id (the caller's, if sane), echoed and logged."""

    @app.before_request
    def request_id() -> None:
        g.request_id = new_request_id(request.headers.get("X-Request-ID"))
        REQUEST_ID.set(g.request_id)

    @app.after_request
    def echo_request_id(response: Response) -> Response:
        response.headers["X-Request-ID"] = g.get("request_id", "")
        return response


def _error_answers(app: Flask) -> None:
    """Errors answer in JSON with a code and a message a person can act on; never a traceback."""

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        code = (exc.name or "error").lower().replace(" ", "_")
        return error(exc.code or 500, code, exc.description or exc.name or "error")

    @app.errorhandler(StoreUnavailable)
    def store_unavailable(exc: StoreUnavailable) -> Response:
        log.error("store unavailable: %s", exc)
        return error(
            503,
            "store_unavailable",
            "The store cannot be reached; nothing was stored. Please try again shortly.",
            headers={"Retry-After": "30"},
        )

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        return error(
            500,
            "internal_error",
            "Something went wrong on our side; nothing was stored. Please try again.",
        )


#: This worker's CPU slot, held for as long as the process runs (see :func:`claim_a_cpu`).
_cpu_claim: CpuClaim | None = None


def from_environment() -> Flask:
    """The app for ``$BRIDGE_CONFIG`` (gunicorn: ``bridge.app:from_environment()``); with
    ``server.pin_cpus``, in a worker whose threads are scheduled as batch work
    (:func:`batch_scheduling`) and, under ``bridge serve`` (``$BRIDGE_CPU_SLOTS``), kept on
    a CPU of its own (:func:`claim_a_cpu`)."""
    global _cpu_claim
    settings = load_settings()
    if settings.server.pin_cpus:
        batch_scheduling()
        slots = os.environ.get("BRIDGE_CPU_SLOTS")
        if slots and _cpu_claim is None:
            _cpu_claim = claim_a_cpu(Path(slots))
    configure_logging(
        level=settings.server.log_level,
        json_lines=settings.server.log_json,
        secrets=settings_secrets(settings),
    )
    app = create_app(settings)
    cut_bodies_on_stop(app.extensions["bridge"].deadlines)
    settle(app.extensions["bridge"].store)
    return app


def settle(store: SubmissionStore) -> None:
    """Before a worker's first request, what would otherwise stall one: the store opened
    and its schema checked (which imports Alembic), and everything made so far set aside
    from the garbage collector (``gc.freeze``). Without it, each full collection walked the
    hundred thousand objects of the imports, 45-60 ms holding the GIL, often while another
    thread held the SQLite writers' turn (docs/benchmarks.md, "Stalls")."""
    try:
        store.engine  # noqa: B018
    except StoreUnavailable as exc:  # the first request that needs it tries again
        log.warning("the store could not be opened yet: %s", exc)
    gc.freeze()
