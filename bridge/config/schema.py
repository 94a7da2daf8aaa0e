"""The schema of the whole file: ProProfs, delivery, server, console, files and the routes."""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate

from ..outbox.events import EVENT_TYPES
from ..proprofs.client import DEFAULT_BASE_URL
from .fields import Duration, Proxies, Strict, about, timezone_name
from .route_schema import RouteSchema
from .settings import DEFAULT_STORE


class ProProfsSchema(Strict):
    """The ProProfs account and how to reach it."""

    base_url = fields.URL(
        load_default=DEFAULT_BASE_URL,
        require_tld=False,
        schemes={"http", "https"},
        metadata=about("The ProProfs API's base URL (the emulator's, for tests and the demo)."),
    )
    account_email = fields.Email(
        required=True, metadata=about("The ProProfs account's email (its API user).")
    )
    token = fields.String(
        required=True,
        validate=validate.Length(min=1),
        metadata=about("The account's API token; keep it in `${VAR}` or `${file:PATH}`."),
    )
    timezone = fields.String(
        load_default="America/Chicago",
        validate=timezone_name,
        metadata=about(
            "The account's time zone: ProProfs reads and writes dates in it (list filters, "
            "ticket times)."
        ),
    )
    connect_timeout = fields.Float(
        load_default=5.0,
        validate=validate.Range(min=0.1, max=120),
        metadata=about("Seconds to wait for a connection to ProProfs."),
    )
    read_timeout = fields.Float(
        load_default=30.0,
        validate=validate.Range(min=0.1, max=600),
        metadata=about(
            "Seconds to wait for ProProfs' answer; a create whose answer does not come in "
            "time is reconciled through the list API."
        ),
    )


class DeadLettersSchema(Strict):
    """Where a dead submission is reported."""

    url = fields.String(
        required=True,
        validate=validate.Regexp(r"^https?://[^\s]+$", error="must be an http(s) URL"),
        metadata=about("Where to post a notification when a submission goes dead."),
    )
    secret = fields.String(
        required=True,
        validate=validate.Length(min=16),
        metadata=about(
            "Signs each notification (Standard Webhooks; a `whsec_…` secret is base64)."
        ),
    )


class DeliverySchema(Strict):
    """How the worker delivers: concurrency, rate, retries, reconcile."""

    concurrency = fields.Integer(
        load_default=4,
        validate=validate.Range(min=1, max=256),
        metadata=about("Creates in flight per worker process."),
    )
    rate_limit = fields.Float(
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=0.01),
        metadata=about("Creates per second toward ProProfs, per worker process (none: no cap)."),
    )
    lease = Duration(
        load_default=120.0,
        metadata=about(
            "How long a worker holds a claimed submission; never shorter than the client's "
            "timeouts."
        ),
    )
    poll_interval = Duration(
        load_default=0.5, metadata=about("How often an idle worker looks for due work.")
    )
    reconcile_lag = Duration(
        load_default=30.0,
        metadata=about("How long a new ticket may take to show in the list API."),
    )
    retry_schedule = fields.List(
        Duration(),
        validate=validate.Length(min=1, max=50),
        metadata=about(
            "Waits before each retry of a transient failure; after the last, the submission "
            "is dead (default `[0, 5s, 5m, 30m, 2h, 5h, 10h, 10h]`)."
        ),
    )
    retry_jitter = fields.Float(
        load_default=0.2,
        validate=validate.Range(min=0, max=1),
        metadata=about("Each wait is varied by up to this fraction."),
    )
    min_retry_after_timeout = Duration(
        load_default=60.0,
        metadata=about("The shortest wait after a timeout or a 429."),
    )
    dead_letters = fields.Nested(
        DeadLettersSchema,
        metadata=about(
            "Post a signed notification (Standard Webhooks) when a submission goes dead.",
            schema=DeadLettersSchema,
        ),
    )


class ServerSchema(Strict):
    """The HTTP side: proxies, rate-limit storage, logs, links."""

    trusted_proxies = Proxies(
        load_default=0,
        metadata=about(
            "The proxies in front: a number (believe `X-Forwarded-For` from that many), or "
            "their addresses or networks (one proxy, believed only from those peers; "
            "needed for `admin.trusted_header`)."
        ),
    )
    rate_limit_storage = fields.String(
        load_default="memory://",
        validate=validate.Regexp(r"^(memory|redis|rediss)://"),
        metadata=about(
            "Where rate limits are counted: `memory://` (per process) or `redis://…` (shared)."
        ),
    )
    secret_key = fields.String(
        validate=validate.Length(min=16),
        metadata=about(
            "Signs form time tokens, widget receipts and console sessions (default: derived "
            "from the ProProfs token)."
        ),
    )
    log_level = fields.String(
        load_default="INFO",
        validate=validate.OneOf(["DEBUG", "INFO", "WARNING", "ERROR"]),
        metadata=about("The lowest level logged."),
    )
    log_json = fields.Boolean(
        load_default=True, metadata=about("JSON log lines (`false`: plain text).")
    )
    metrics = fields.Boolean(load_default=True, metadata=about("Serve `/metrics`."))
    body_timeout = Duration(
        load_default=30.0,
        metadata=about("A request body still arriving after this is cut off with 408."),
    )
    public_url = fields.String(
        validate=validate.Regexp(r"^https?://[^\s]+$", error="must be an http(s) URL"),
        metadata=about(
            "The bridge's address as agents reach it, for the links in tickets (files, "
            "incident pages); without it they carry paths only."
        ),
    )
    link_lifetime = Duration(
        load_default=30 * 86400.0,
        metadata=about(
            "Incident pages and the widget's status view stop opening this long after "
            "their last change."
        ),
    )
    pin_cpus = fields.Boolean(
        load_default=False,
        metadata=about(
            "Keep each `bridge serve` worker on a CPU of its own, its threads scheduled as "
            "batch work: for a host the bridge has to itself (docs/production.md)."
        ),
    )


class MetricsSchema(Strict):
    """Who may read /metrics."""

    token = fields.String(
        validate=validate.Length(min=16),
        metadata=about(
            "`/metrics` answers only with `Authorization: Bearer <token>` (Prometheus: "
            "`authorization: {credentials: …}`); without it, keep /metrics off the public side."
        ),
    )


class AdminSchema(Strict):
    """The operator console's sign-in."""

    password_hash = fields.String(
        validate=validate.Regexp(
            r"^(pbkdf2|scrypt):", error="make one with `bridge admin hash-password`"
        ),
        metadata=about("Enables `/admin`: the hash of its password."),
    )
    trusted_header = fields.String(
        validate=validate.Regexp(r"^[A-Za-z0-9-]+$"),
        metadata=about(
            "Enables `/admin` for whoever an authenticating proxy names in this header."
        ),
    )
    secure_cookies = fields.Boolean(
        load_default=True, metadata=about("Mark the console's cookie `Secure` (HTTPS only).")
    )
    ticket_url = fields.String(
        metadata=about("Link tickets in the console: `https://…/{ticket_id}`.")
    )


class S3Schema(Strict):
    """An S3 bucket for attachments."""

    bucket = fields.String(required=True, metadata=about("The bucket files are kept in."))
    endpoint_url = fields.String(
        metadata=about("An S3-compatible service's URL (default: AWS for the region).")
    )
    region = fields.String(metadata=about("The bucket's region."))
    prefix = fields.String(load_default="", metadata=about("Put before every key (`bridge/`)."))
    access_key_id = fields.String(metadata=about("Default: the usual AWS credential chain."))
    secret_access_key = fields.String(metadata=about("Goes with `access_key_id`."))


class FilesSchema(Strict):
    """Where attachments are kept, and for how long links work."""

    directory = fields.String(
        metadata=about(
            "Where files are kept (default: `files` beside the SQLite database, else "
            "`./bridge-files`)."
        )
    )
    s3 = fields.Nested(
        S3Schema,
        metadata=about(
            "Keep files in an S3-compatible bucket instead (several instances; needs "
            "`proprofs-bridge[s3]`).",
            schema=S3Schema,
        ),
    )
    link_lifetime = Duration(
        load_default=30 * 86400.0,
        metadata=about("How long a ticket's link to a file works (the console can extend one)."),
    )


class MirrorSchema(Strict):
    """A local mirror of the tickets the bridge made, followed through the list API."""

    every = Duration(
        load_default=30.0,
        validate=validate.Range(min=1.0, max=3600.0),
        metadata=about(
            "How often the mirror asks for the tickets modified since it last looked; when "
            "nothing changed, that costs one list call."
        ),
    )
    max_calls_per_minute = fields.Integer(
        load_default=20,
        validate=validate.Range(min=1, max=1000),
        metadata=about(
            "The most list calls the mirror makes in a minute (the first sync of a large "
            "account takes as many minutes as it needs)."
        ),
    )


def _whsec(value: str) -> None:
    """A Standard Webhooks secret: ``whsec_`` and the base64 of at least 16 bytes."""
    import base64
    import binascii

    key = value.removeprefix("whsec_")
    try:
        ok = value.startswith("whsec_") and len(base64.b64decode(key, validate=True)) >= 16
    except (binascii.Error, ValueError):
        ok = False
    if not ok:
        raise ValidationError(
            "a Standard Webhooks secret: whsec_ and the base64 of at least 16 random bytes "
            "(python -c \"import base64,os; print('whsec_'+base64.b64encode(os.urandom(24))"
            '.decode())")'
        )


class EventsSchema(Strict):
    """One subscriber to what happens in the help desk (needs `mirror:`)."""

    url = fields.String(
        required=True,
        validate=validate.Regexp(r"^https?://[^\s]+$", error="must be an http(s) URL"),
        metadata=about("Where each event is posted (kept out of logs: it may be a secret)."),
    )
    secret = fields.String(
        required=True,
        validate=_whsec,
        metadata=about(
            "Signs each event by the Standard Webhooks scheme (`webhook-id`, "
            "`webhook-timestamp`, `webhook-signature`)."
        ),
    )
    events = fields.List(
        fields.String(validate=validate.OneOf(EVENT_TYPES)),
        required=True,
        validate=validate.Length(min=1),
        metadata=about(
            "Which events: `ticket.created`, `ticket.status_changed`, `ticket.replied` "
            "(public replies), `ticket.assigned`, `ticket.updated`."
        ),
    )
    routes = fields.List(
        fields.String(),
        metadata=about("Only events about tickets of these routes (default: every route)."),
    )
    body = fields.String(
        metadata=about(
            "A template for the body instead of the event's JSON (`event` is the event): "
            "for a Slack or Teams incoming webhook, or Alertmanager's silences API."
        ),
    )


class TopSchema(Strict):
    """The whole file."""

    proprofs = fields.Dict(
        required=True,
        metadata=about("The ProProfs account.", schema=ProProfsSchema),
    )
    admin = fields.Dict(
        load_default=dict,
        metadata=about(
            "The operator console (off unless one of its logins is set).", schema=AdminSchema
        ),
    )
    store = fields.String(
        load_default=DEFAULT_STORE,
        metadata=about(
            "The outbox: `sqlite:///PATH` or `postgresql+psycopg://user@host/db` (several "
            "instances)."
        ),
    )
    server = fields.Dict(load_default=dict, metadata=about("The HTTP side.", schema=ServerSchema))
    metrics = fields.Dict(
        load_default=dict,
        metadata=about("Who may read `/metrics`.", schema=MetricsSchema),
    )
    files = fields.Dict(
        load_default=dict,
        metadata=about("Where attached files are kept, and their links.", schema=FilesSchema),
    )
    delivery = fields.Dict(
        load_default=dict,
        metadata=about("How submissions are sent to ProProfs.", schema=DeliverySchema),
    )
    mirror = fields.Dict(
        metadata=about(
            "Mirror the tickets the bridge made (status, staff, priority, labels, replies): "
            "the widget's status view, the alert routes' checks and the incident pages "
            "read it instead of listing on their own.",
            schema=MirrorSchema,
        ),
    )
    events = fields.Dict(
        keys=fields.String(),
        values=fields.Raw(),
        load_default=dict,
        metadata=about(
            "Subscribers told what happens to the bridge's tickets in the help desk, by "
            "name; signed, retried and dead-lettered like tickets.",
            schema=EventsSchema,
            each="subscriber",
        ),
    )
    defaults = fields.Dict(
        load_default=dict,
        metadata=about(
            "Settings every route inherits: any key of `routes.<route>` but `kind`, each "
            "for the routes whose kind takes it; mappings merge key by key."
        ),
    )
    routes = fields.Dict(
        required=True,
        metadata=about("The routes by name.", schema=RouteSchema, each="route"),
    )
