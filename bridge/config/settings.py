"""The frozen settings every other part of the bridge reads: the config, loaded and checked."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import jsonbody
from ..attachments import Limits
from ..declared import FieldSpec
from ..mapping import RouteMapping, Template
from ..outbox.events import Subscriber
from ..outbox.notify import DeadLetterHook
from ..outbox.worker import DeliverySettings
from ..proprofs.client import DEFAULT_BASE_URL
from ..sources import Source

KINDS = ("form", "hook", "widget")
PATH_PREFIX = {"form": "/forms/", "hook": "/hooks/", "widget": "/widget/"}


DEFAULT_STORE = "sqlite:///bridge.db"
#: The largest JSON or urlencoded body: a contact form, or an Alertmanager group of 1,000 alerts.
DEFAULT_MAX_BODY = 1024 * 1024


RULE_SCORES = {
    "keyword": 3.0,
    "pattern": 3.0,
    "links": 5.0,
    "blocked_domain": 10.0,
    "disposable_domain": 5.0,
    "too_short": 3.0,
}


@dataclass(frozen=True)
class ProProfsSettings:
    """The ProProfs account and how to reach it."""

    account_email: str
    token: str = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    timezone: str = "America/Chicago"
    connect_timeout: float = 5.0
    read_timeout: float = 30.0


@dataclass(frozen=True)
class Captcha:
    """A CAPTCHA provider and its keys."""

    provider: str
    site_key: str
    secret: str = field(repr=False)
    verify_url: str | None = None
    min_score: float | None = None
    timeout: float = 5.0
    script_url: str | None = None


@dataclass(frozen=True)
class ContentRules:
    """Scored rules on what a submission says."""

    keywords: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    max_links: int | None = None
    blocked_domains: tuple[str, ...] = ()
    disposable_domains: bool = False
    min_length: int | None = None
    threshold: float = 5.0
    scores: Mapping[str, float] = field(default_factory=lambda: dict(RULE_SCORES))


@dataclass(frozen=True)
class Guards:
    """What stands between a browser-facing route and the outbox (forms and the widget)."""

    origins: tuple[str, ...] = ()
    honeypot: str | None = None
    min_seconds: float | None = None
    max_age: float = 86400.0
    captcha: Captcha | None = None
    content: ContentRules | None = None
    keep: bool = False
    quarantine_for: float = 30 * 86400.0
    per_ip: tuple[str, ...] = ()
    per_route: tuple[str, ...] = ()
    double_submit_window: float = 300.0


@dataclass(frozen=True)
class Page:
    """The hosted form page's texts and where a browser goes after posting."""

    title: str | None = None
    intro: str | None = None
    submit: str | None = None
    lang: str = "en"
    thanks: str | None = None
    messages: Mapping[str, str] = field(default_factory=dict)
    success_url: str | None = None
    error_url: str | None = None
    allow_next: tuple[str, ...] = ()


@dataclass(frozen=True)
class WidgetSettings:
    """The embeddable widget's look and its backend's settings."""

    title: str = "Contact support"
    launcher: str = "Help"
    color: str = "#2455c3"
    position: str = "right"
    identity_secret: str | None = field(default=None, repr=False)
    page_url_field: str | None = None
    user_agent_field: str | None = None
    status_cache: float = 30.0
    receipt_max_age: float = 90 * 86400.0


@dataclass(frozen=True)
class AlertSettings:
    """How a hook route treats an alert's lifecycle."""

    resolved: str = "ignore"  # ignore | ticket
    alert_mode: str = "group"  # group | alert (one ticket per alert)
    max_alerts: int = 20  # alerts listed in a description before "N more"
    ticket_check_ttl: float = 60.0  # how long the list API's "still open" answer is trusted
    status: Template | None = None  # the preset's firing/resolved template
    alert_dedup_key: Template | None = None
    heartbeat: Heartbeat | None = None
    storm: Storm | None = None
    capture: int = 0  # raw payloads kept for the console's test bench
    update: UpdateSettings | None = None  # keep the group's ticket current (``update:``)


@dataclass(frozen=True)
class UpdateSettings:
    """How a hook route keeps an alert group's open ticket current (outbox/updates.py)."""

    every: float = 60.0  # at most one update per ticket this often, carrying the latest
    priority: str = "raise"  # raise | follow (up and down) | keep
    resolved_prefix: str = ""
    resolved_suffix: str = ""
    status_block: bool = True  # the ticket's status block at the end of its description
    fields: Mapping[str, str] = field(default_factory=dict)  # state, occurrences, ... → id


@dataclass(frozen=True)
class Heartbeat:
    """The notification a hook route expects every ``every`` seconds (a dead man's switch)."""

    match: Mapping[str, str]
    every: float
    grace: float = 300.0
    email: str | None = None
    inbox: str | None = None

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether an alert with ``labels`` is this heartbeat."""
        return all(labels.get(k) == v for k, v in self.match.items())


@dataclass(frozen=True)
class Storm:
    """At most ``max_new`` new alert groups per ``window`` get a ticket each."""

    max_new: int
    window: float = 300.0


@dataclass(frozen=True)
class Route:
    """A configured route: how input is checked and how it becomes a ticket."""

    name: str
    kind: str
    mapping: RouteMapping
    fields: Mapping[str, FieldSpec]
    source: Source | None
    auth: Mapping[str, Any] = field(default_factory=dict, repr=False)
    max_body: int = DEFAULT_MAX_BODY
    settings: Mapping[str, Any] = field(default_factory=dict, repr=False)
    guards: Guards = field(default_factory=Guards)
    page: Page = field(default_factory=Page)
    alerts: AlertSettings = field(default_factory=lambda: AlertSettings())
    widget: WidgetSettings = field(default_factory=lambda: WidgetSettings())
    retention: Retention = field(default_factory=lambda: Retention())
    attachments: Limits = field(default_factory=Limits)

    @property
    def path(self) -> str:
        """Where the route takes posts: ``/forms/contact``."""
        return PATH_PREFIX[self.kind] + self.name

    @functools.cached_property
    def file_fields(self) -> tuple[str, ...]:
        """The route's file fields, in declared order."""
        return tuple(name for name, spec in self.fields.items() if spec.type == "file")

    @functools.cached_property
    def body_limit(self) -> int:
        """The largest body read: ``max_body``, plus the files' total on a route with files."""
        if self.file_fields:
            return self.max_body + self.attachments.max_total
        return self.max_body

    def limit_for(self, mimetype: str) -> int:
        """The largest body read for this content type: only multipart carries files, so
        JSON and urlencoded bodies are held to ``max_body`` whatever the files may total."""
        return self.body_limit if mimetype == "multipart/form-data" else self.max_body

    def read_json(self, body: bytes) -> Any:
        """A JSON body as intake reads it on this route: through its sender preset (which
        may unwrap it, as SNS's does), else as plain JSON; ``ValueError`` if it is not."""
        if self.source is not None:
            return self.source.parse(body, "application/json", {})
        return jsonbody.loads(body)


@dataclass(frozen=True)
class Retention:
    """Seconds after delivery (or death) before a submission's personal content goes."""

    scrub_after: float | None = None
    dead_after: float | None = None


@dataclass(frozen=True)
class S3Settings:
    """An S3 bucket for attachments."""

    bucket: str
    endpoint_url: str | None = None
    region: str | None = None
    prefix: str = ""
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class FileSettings:
    """Where attachments are kept, and for how long links work."""

    directory: str = "bridge-files"
    s3: S3Settings | None = None
    link_lifetime: float = 30 * 86400.0


@dataclass(frozen=True)
class ServerSettings:
    """The HTTP side: proxies, rate-limit storage, logs, links."""

    trusted_proxies: int = 0
    proxy_networks: tuple[str, ...] = ()  # the proxies' addresses, when the config names them
    rate_limit_storage: str = "memory://"
    secret_key: str | None = field(default=None, repr=False)
    log_level: str = "INFO"
    log_json: bool = True
    metrics: bool = True
    body_timeout: float = 30.0
    public_url: str | None = None
    pin_cpus: bool = False
    link_lifetime: float = 30 * 86400.0


@dataclass(frozen=True)
class AdminSettings:
    """The operator console's sign-in."""

    password_hash: str | None = field(default=None, repr=False)
    trusted_header: str | None = None
    secure_cookies: bool = True
    ticket_url: str | None = None

    @property
    def enabled(self) -> bool:
        """Whether the console is mounted at all."""
        return bool(self.password_hash or self.trusted_header)


@dataclass(frozen=True)
class MirrorSettings:
    """How the account's tickets are followed through the list API (outbox/mirror.py)."""

    every: float = 30.0  # one poll this often
    max_calls_per_minute: int = 20  # list calls, across every process of the bridge


@dataclass(frozen=True)
class Settings:
    """The whole config, checked and frozen."""

    proprofs: ProProfsSettings
    routes: Mapping[str, Route]
    metrics_token: str | None = field(default=None, repr=False)
    store: str = DEFAULT_STORE
    source_path: str = "<dict>"
    warnings: tuple[str, ...] = ()
    server: ServerSettings = field(default_factory=ServerSettings)
    admin: AdminSettings = field(default_factory=AdminSettings)
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    files: FileSettings = field(default_factory=FileSettings)
    dead_letters: DeadLetterHook | None = None
    mirror: MirrorSettings | None = None  # a local mirror of the bridge's tickets
    events: Mapping[str, Subscriber] = field(default_factory=dict)  # told of its changes
