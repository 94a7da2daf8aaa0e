"""Config text → Settings: every problem found, each named by file, line and key path."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from ..mapping import MappingError, Template
from ..outbox.events import Subscriber
from ..outbox.notify import DeadLetterHook
from ..outbox.retry import DEFAULT_SCHEDULE, RetryPolicy
from ..outbox.worker import DeliverySettings
from .document import ConfigError, Document, Report, load, load_partly, merge
from .route_schema import RouteSchema
from .routes import build_route, inherited
from .schema import (
    AdminSchema,
    DeliverySchema,
    EventsSchema,
    FilesSchema,
    MetricsSchema,
    MirrorSchema,
    ProProfsSchema,
    ServerSchema,
    TopSchema,
)
from .settings import (
    DEFAULT_STORE,
    AdminSettings,
    FileSettings,
    MirrorSettings,
    ProProfsSettings,
    Route,
    S3Settings,
    ServerSettings,
    Settings,
)

ROUTE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def config_path(explicit: str | None = None) -> Path:
    """``--config``, else ``$BRIDGE_CONFIG``, else ``./bridge.yaml``."""
    return Path(explicit or os.environ.get("BRIDGE_CONFIG") or "bridge.yaml")


def load_settings(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Read, interpolate and validate a config file; raise :class:`ConfigError` listing all."""
    file = config_path(str(path) if path else None)
    try:
        text = file.read_text()
    except OSError as exc:
        raise ConfigError([f"{file}: cannot read the config: {exc.strerror}"]) from None
    doc = Document(text, str(file), os.environ if env is None else env)
    return _build(doc)


def settings_from_text(
    text: str, filename: str = "bridge.yaml", env: Mapping[str, str] | None = None
) -> Settings:
    """Like :func:`load_settings` for config text (tests, ``bridge try``)."""
    return _build(Document(text, filename, os.environ if env is None else env))


def settings_from_dict(data: Mapping[str, Any]) -> Settings:
    """Settings from an in-memory dict, validated the same way (tests build apps from dicts)."""
    text = yaml.safe_dump(dict(data), sort_keys=False)
    return _build(Document(text, "<dict>", {}))


def _build(doc: Document) -> Settings:
    report = Report(doc)
    if not isinstance(doc.data, dict):
        raise ConfigError([f"{doc.filename}:1 (top): the config must be a mapping"])
    top, _ = load_partly(TopSchema(), doc.data, (), report)
    proprofs = load(ProProfsSchema(), top.get("proprofs") or {}, ("proprofs",), report)
    delivery = load(DeliverySchema(), top.get("delivery") or {}, ("delivery",), report)
    routes = _routes(top, report)
    server = load(ServerSchema(), top.get("server") or {}, ("server",), report)
    admin = load(AdminSchema(), top.get("admin") or {}, ("admin",), report)
    files = load(FilesSchema(), top.get("files") or {}, ("files",), report)
    metrics = load(MetricsSchema(), top.get("metrics") or {}, ("metrics",), report)
    mirror = load(MirrorSchema(), top["mirror"], ("mirror",), report) if "mirror" in top else None
    events = _events(top.get("events") or {}, routes, mirror is not None, report)
    if server is not None and admin is not None:
        _proxies(server, admin, report)
    if files is not None and files.get("s3"):
        _need_boto3(report)
    report.stop_if_any()  # every problem of the file at once
    assert proprofs is not None and delivery is not None and server is not None
    assert admin is not None and files is not None and metrics is not None
    if not server.get("public_url"):
        _warn_unlinked(routes.values(), report)
    store = str(top.get("store") or DEFAULT_STORE)
    return Settings(
        admin=AdminSettings(**admin),
        metrics_token=metrics.get("token"),
        server=ServerSettings(
            **{**server, "public_url": (server.get("public_url") or "").rstrip("/") or None}
        ),
        proprofs=ProProfsSettings(**proprofs),
        routes=routes,
        store=store,
        source_path=doc.filename,
        delivery=_delivery(delivery),
        warnings=tuple(report.warnings),
        files=_files(files, store),
        dead_letters=DeadLetterHook(**delivery["dead_letters"])
        if delivery.get("dead_letters")
        else None,
        mirror=MirrorSettings(**mirror) if mirror is not None else None,
        events=events,
    )


def _events(
    raw: Mapping[str, Any], routes: Mapping[str, Route], mirrored: bool, report: Report
) -> dict[str, Subscriber]:
    """The event subscribers: each checked, its routes known, its body template compiled."""
    found: dict[str, Subscriber] = {}
    for name, value in raw.items():
        path = ("events", name)
        if not ROUTE_NAME.match(str(name)):
            report(path, ["subscriber names are lower-case letters, digits, - and _"])
            continue
        loaded = load(EventsSchema(), value if isinstance(value, dict) else {}, path, report)
        if loaded is None:
            continue
        unknown = [r for r in loaded.get("routes") or () if r not in routes]
        if unknown:
            report((*path, "routes"), [f"no such route: {', '.join(unknown)}"])
        body = None
        if loaded.get("body"):
            try:
                body = Template(loaded["body"], f"events.{name}.body")
            except MappingError as exc:
                report((*path, "body"), [str(exc)])
        found[str(name)] = Subscriber(
            name=str(name),
            url=loaded["url"],
            secret=loaded["secret"],
            events=tuple(dict.fromkeys(loaded["events"])),
            routes=tuple(loaded["routes"]) if loaded.get("routes") else None,
            body=body,
        )
    if found and not mirrored:
        report(("events",), ["events come from the mirror's polls: add mirror: {} (or more)"])
    return found


def _routes(top: Mapping[str, Any], report: Report) -> dict[str, Route]:
    """Every route, each with the defaults its kind takes merged under it."""
    defaults = top.get("defaults") or {}
    if defaults:
        partial = {k: v for k, v in defaults.items() if k != "kind"}
        if "kind" in defaults:
            report(("defaults", "kind"), ["a route's kind cannot have a default"])
        load(RouteSchema(partial=True), partial, ("defaults",), report)
    routes: dict[str, Route] = {}
    raw_routes = top.get("routes") or {}
    if not isinstance(raw_routes, dict) or not raw_routes:
        report(("routes",), ["define at least one route"])
        raw_routes = {}
    for name, raw in raw_routes.items():
        path = ("routes", name)
        if not ROUTE_NAME.match(str(name)):
            report(path, ["route names are lower-case letters, digits, - and _"])
            continue
        if not isinstance(raw, dict):
            report(path, ["a route must be a mapping"])
            continue
        merged = merge(inherited(defaults, raw.get("kind")), raw)
        route = build_route(str(name), merged, path, report, own=raw)
        if route is not None:
            routes[route.name] = route
    return routes


def _warn_unlinked(routes: Iterable[Route], report: Report) -> None:
    """Without server.public_url, tickets cannot link files or incident pages."""
    for route in routes:
        if route.file_fields:
            report.warn(
                ("routes", route.name, "fields", route.file_fields[0]),
                "its files are linked from tickets by server.public_url, which is not set: "
                "the tickets will carry paths, not links (a request's Host header is "
                "never used: anyone can set it)",
            )
        if route.alerts.heartbeat or route.alerts.storm:
            report.warn(
                ("routes", route.name, "heartbeat" if route.alerts.heartbeat else "storm"),
                "its tickets are raised by the delivery process, which cannot link the "
                "incident pages without server.public_url",
            )


def _need_boto3(report: Report) -> None:
    try:
        import boto3  # noqa: F401
    except ImportError:
        report(("files", "s3"), ["needs boto3: pip install 'proprofs-bridge[s3]'"])


def _proxies(server: dict[str, Any], admin: Mapping[str, Any], report: Report) -> None:
    """``trusted_proxies`` as a count, and the proxies' networks when it lists them; an
    identity header is believed only from a listed proxy."""
    proxies = server.pop("trusted_proxies", 0)
    if isinstance(proxies, tuple):
        server.update(trusted_proxies=1, proxy_networks=proxies)
    else:
        server["trusted_proxies"] = proxies
    if admin.get("trusted_header") and not server.get("proxy_networks"):
        report(
            ("admin", "trusted_header"),
            [
                "an identity header is believed only from the proxy that sets it: list "
                "its addresses in server.trusted_proxies (e.g. [10.0.0.5] or [10.0.0.0/24])"
            ],
        )


def _files(values: dict[str, Any], store: str) -> FileSettings:
    directory = values.get("directory")
    if not directory:
        database = store.split(":///", 1)[1] if store.startswith("sqlite:///") else ""
        directory = (
            str(Path(database).parent / "files")
            if database and database != ":memory:"
            else "bridge-files"
        )
    s3 = values.get("s3")
    return FileSettings(
        directory=directory,
        s3=S3Settings(**s3) if s3 else None,
        link_lifetime=values["link_lifetime"],
    )


def _delivery(values: dict[str, Any]) -> DeliverySettings:
    schedule = values.get("retry_schedule")
    retry = RetryPolicy(
        schedule=tuple(schedule) if schedule else DEFAULT_SCHEDULE,
        jitter=values["retry_jitter"],
        min_after_timeout=values["min_retry_after_timeout"],
    )
    return DeliverySettings(
        concurrency=values["concurrency"],
        rate_limit=values["rate_limit"],
        lease_seconds=values["lease"],
        poll_interval=values["poll_interval"],
        reconcile_lag=values["reconcile_lag"],
        retry=retry,
    )
