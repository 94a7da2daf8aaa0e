"""``create_app(settings)``: the only place that wires the bridge together."""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from . import admin, health
from .attachments import open_store
from .config import Settings, load_settings
from .guards.ratelimit import RateLimits
from .intake import files, forms, hooks, incidents, widget
from .intake.answers import error
from .intake.deadline import BodyDeadlines
from .intake.state import Bridge
from .jsonbody import BoundedJSONProvider
from .observability import (
    REQUEST_ID,
    Metrics,
    configure_logging,
    new_request_id,
    settings_secrets,
)
from .outbox.store import StoreUnavailable, SubmissionStore
from .proprofs.client import ProProfsClient
from .proxies import ProxiesInFront
from .resources import templates_dir

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
    app.register_blueprint(files.blueprint)
    app.register_blueprint(incidents.blueprint)
    admin.init_app(app, settings)
    app.extensions["bridge_widget_script"] = widget.Script(templates_dir() / "widget.js")
    app.extensions["bridge_status_cache"] = widget.StatusCache()

    state: Bridge = app.extensions["bridge"]
    if state.store.files is None:
        state.store.files = open_store(settings.files)

    @app.before_request
    def request_id() -> None:
        g.request_id = new_request_id(request.headers.get("X-Request-ID"))
        REQUEST_ID.set(g.request_id)

    @app.after_request
    def echo_request_id(response: Response) -> Response:
        response.headers["X-Request-ID"] = g.get("request_id", "")
        return response

    health.init_app(app, state, metrics)

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

    return app


def batch_scheduling() -> bool:
    """Have the kernel schedule this thread, and every thread it starts from now on, as
    throughput work (Linux ``SCHED_BATCH``); whether it could.

    A batch thread gets the same share of the CPU as any other at the same nice level;
    what changes is that, when it wakes, it does not preempt the thread that is running.
    In a threaded worker that is what a woken thread should do: it needs the worker's GIL
    before it can run a line, and preempting the thread that holds it only parks the
    holder, GIL in hand, and costs both a context switch. Gunicorn loads the app in each
    worker before it starts the worker's threads, so they all inherit it. Where the call
    is refused (another OS, a sandbox that forbids it), nothing changes."""
    try:
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    except (AttributeError, OSError):
        return False
    return True


@dataclass(frozen=True)
class CpuClaim:
    """A worker's slot (held by a lock on its file, let go when the process ends) and the
    CPU it stands for."""

    slot: int
    cpu: int
    fd: int

    def release(self) -> None:
        os.close(self.fd)


def usable_cpus() -> list[int]:
    """The CPUs this process may run on, in order; none where the system cannot say."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return []


def claim_a_cpu(slots: Path) -> CpuClaim | None:
    """Take the first free slot under ``slots`` (``bridge serve`` makes one file per
    gunicorn worker) and keep this thread, and the threads it starts from now on, on the
    CPU that slot stands for: the slot's number among the CPUs this process may use,
    round the list again if there are more slots than CPUs. ``None``, and nothing
    changed, when no slot is free or the system refuses.

    A worker's threads take turns at its GIL, so a worker runs Python on one CPU at a
    time anyway; on a CPU of its own, a thread that takes the GIL over finds the caches
    warm and needs no other CPU woken. A worker that exits lets its slot go with its
    lock, and the worker gunicorn starts in its place takes it."""
    cpus = usable_cpus()
    try:
        names = sorted(slots.iterdir(), key=lambda path: int(path.name.rpartition("-")[2]))
    except (OSError, ValueError):
        return None
    if not cpus:
        return None
    for slot, name in enumerate(names):
        try:
            fd = os.open(name, os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            cpu = cpus[slot % len(cpus)]
            os.sched_setaffinity(0, {cpu})
        except OSError:  # taken by another worker, or pinning refused
            os.close(fd)
            continue
        return CpuClaim(slot, cpu, fd)
    return None


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
    return app


def cut_bodies_on_stop(deadlines: BodyDeadlines) -> None:
    """When gunicorn tells this worker to stop (SIGTERM, or SIGINT from Ctrl-C), bodies
    still arriving are cut off at once, then gunicorn's own handler runs: the worker
    finishes its requests and exits instead of waiting out a slow sender."""
    if threading.current_thread() is not threading.main_thread():
        return  # not a gunicorn worker (signals are the main thread's)
    for number in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(number)
        if not callable(previous):
            continue

        def handler(
            signum: int, frame: FrameType | None, previous: Callable[..., Any] = previous
        ) -> None:
            deadlines.cut_all()
            previous(signum, frame)

        signal.signal(number, handler)
