"""Metrics (Prometheus, multiprocess-safe under gunicorn), JSON logs, request ids, redaction.

Under ``bridge serve`` every process writes its metrics to ``$PROMETHEUS_MULTIPROC_DIR``
and ``/metrics`` adds them up; a lone process keeps them in memory. Log lines are JSON
with the request id that came in with (or was given to) the submission, carried into
the delivery worker's lines; one filter removes every configured secret from them.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric

from . import randomness

REQUEST_ID = contextvars.ContextVar("bridge_request_id", default="")
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200, 36000)
API_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


def multiprocess_dir() -> str | None:
    """Where gunicorn's workers share their metrics, if they do."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class Metrics:
    """The bridge's metrics, in their own registry (one per app or worker)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._extra: set[int] = set()
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.submissions = Counter(
            "bridge_submissions",
            "Submissions received, by outcome",
            ["route", "kind", "outcome", "reason"],
            registry=r,
        )
        #: The counter of each set of labels counted so far (as many as the registry holds).
        self._submission_counters: dict[tuple[str, str, str, str], Any] = {}
        self.deliveries = Counter(
            "bridge_deliveries", "Delivery outcomes", ["route", "outcome"], registry=r
        )
        self.delivery_latency = Histogram(
            "bridge_delivery_latency_seconds",
            "From accepted to ticket created",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.api_calls = Counter(
            "bridge_proprofs_requests", "ProProfs API calls", ["endpoint", "result"], registry=r
        )
        self.api_latency = Histogram(
            "bridge_proprofs_request_duration_seconds",
            "ProProfs API call duration",
            ["endpoint"],
            buckets=API_BUCKETS,
            registry=r,
        )
        self.reconciles = Counter("bridge_reconcile", "Reconcile results", ["result"], registry=r)
        self.rate_limit_degraded = Gauge(
            "bridge_rate_limit_storage_degraded",
            "1 while the shared rate-limit storage is unreachable and limits count per process",
            registry=r,
            multiprocess_mode="max",
        )
        self.rate_limit_fallbacks = Counter(
            "bridge_rate_limit_storage_fallbacks",
            "Times a process lost its rate-limit storage and began counting in memory",
            registry=r,
        )

        self.storm_groups = Counter(
            "bridge_storm_guarded_groups",
            "New alert groups a storm guard listed in a summary instead of a ticket each",
            ["route"],
            registry=r,
        )
        self.quarantined = Counter(
            "bridge_quarantine",
            "Quarantined submissions by what became of them "
            "(quarantined, released, discarded, expired)",
            ["route", "action"],
            registry=r,
        )
        self.upstream_paused = Gauge(
            "bridge_delivery_paused",
            "1 while delivery waits because ProProfs could not be reached (circuit open)",
            registry=r,
            multiprocess_mode="max",
        )
        self.upstream_pauses = Counter(
            "bridge_delivery_pauses",
            "Times delivery paused because ProProfs could not be reached",
            registry=r,
        )

    def submission(self, route: str, kind: str, outcome: str, reason: str = "") -> None:
        """Count one submission at intake, by outcome."""
        if self.enabled:
            key = (route, kind, outcome, reason)
            counter = self._submission_counters.get(key)
            if counter is None:  # its labels checked and its child made once, not per count
                counter = self._submission_counters[key] = self.submissions.labels(*key)
            counter.inc()

    def delivery(self, route: str, outcome: str, latency: float | None = None) -> None:
        """Count one delivery outcome (and, when delivered, how long it took)."""
        if not self.enabled:
            return
        self.deliveries.labels(route, outcome).inc()
        if latency is not None:
            self.delivery_latency.labels(route).observe(max(0.0, latency))

    def api_call(self, endpoint: str, result: str, seconds: float) -> None:
        """Count and time one call to ProProfs."""
        if self.enabled:
            self.api_calls.labels(endpoint, result).inc()
            self.api_latency.labels(endpoint).observe(seconds)

    def rate_limit_storage(self, degraded: bool) -> None:
        """The shared rate-limit storage was lost (``True``) or answers again."""
        if self.enabled:
            self.rate_limit_degraded.set(1 if degraded else 0)
            if degraded:
                self.rate_limit_fallbacks.inc()

    def storm_guarded(self, route: str) -> None:
        """Count one alert group the storm guard held back."""
        if self.enabled:
            self.storm_groups.labels(route).inc()

    def quarantine(self, route: str, action: str, count: int = 1) -> None:
        """Count quarantine actions."""
        if self.enabled and count:
            self.quarantined.labels(route, action).inc(count)

    def delivery_paused(self, paused: bool) -> None:
        """Delivery stopped claiming because ProProfs is unreachable (``True``), or resumed."""
        if self.enabled:
            self.upstream_paused.set(1 if paused else 0)
            if paused:
                self.upstream_pauses.inc()

    def reconcile(self, result: str) -> None:
        """Count one reconcile's result."""
        if self.enabled:
            self.reconciles.labels(result).inc()

    def exposition(self, extra: Iterable[object] = ()) -> bytes:
        """The text format: every process's figures (multiprocess mode) or this one's."""
        directory = multiprocess_dir()
        if directory:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
            for collector in extra:
                registry.register(collector)  # type: ignore[arg-type]
            return generate_latest(registry)
        for collector in extra:
            if id(collector) not in self._extra:
                self._extra.add(id(collector))
                self.registry.register(collector)  # type: ignore[arg-type]
        return generate_latest(self.registry)


class OutboxCollector:
    """Outbox depth by state, the age of the oldest pending submission and the paused
    routes, read at scrape."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        """The outbox's gauges, read at scrape time."""
        depth = GaugeMetricFamily(
            "bridge_outbox_submissions", "Submissions by state", labels=["state"]
        )
        oldest = GaugeMetricFamily(
            "bridge_outbox_oldest_pending_age_seconds",
            "Age of the oldest submission not yet delivered",
        )
        paused = GaugeMetricFamily(
            "bridge_route_paused",
            "1 for each route whose delivery an operator paused",
            labels=["route"],
        )
        try:
            counts = self.store.counts()
            age = self.store.oldest_waiting_age()
            paused_routes = self.store.pauses.paused()
        except Exception:  # a scrape must not fail because the store is down
            return
        for state, count in counts.items():
            depth.add_metric([state], count)
        oldest.add_metric([], age)
        for route in sorted(paused_routes):
            paused.add_metric([route], 1)
        yield depth
        yield oldest
        yield paused


# --- logging ---------------------------------------------------------------------------------


def new_request_id(incoming: str | None) -> str:
    """The caller's X-Request-ID when it is sane, else a fresh one."""
    if incoming and REQUEST_ID_RE.match(incoming):
        return incoming
    return randomness.token_hex(16)


class JsonLines(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id (and the
    traceback, if any). A general-purpose JSON formatter walked every attribute of every
    record, which cost intake about a tenth of its time; this one writes the five fields
    every line has as text, each escaped as ``json.dumps`` escapes it, and hands only a
    line with more (a traceback, a caller's ``extra=``) to the encoder."""

    _stamp: tuple[int, str] = (-1, "")  # the last second formatted, and its text

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """As :class:`logging.Formatter` does, with the text of a second made once."""
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second, text = self._stamp
        if second != int(record.created):
            second = int(record.created)
            text = time.strftime("%Y-%m-%d %H:%M:%S", self.converter(record.created))
            self._stamp = (second, text)
        return f"{text},{int(record.msecs):03d}"

    def format(self, record: logging.LogRecord) -> str:
        """One log record as one JSON line."""
        stamp = self.formatTime(record)
        message = record.getMessage()
        request_id = getattr(record, "request_id", "")
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if (
            isinstance(request_id, str)
            and not record.exc_text
            and not record.stack_info
            and _plain(record)
        ):
            return (
                f'{{"time": "{stamp}", "level": {_string(record.levelname)}, "logger": '
                f'{_string(record.name)}, "message": {_string(message)}, "request_id": '
                f"{_string(request_id)}}}"
            )
        line: dict[str, Any] = {
            "time": stamp,
            "level": record.levelname,
            "logger": record.name,
            "message": message,
            "request_id": request_id,
        }
        if record.exc_text:
            line["exc_info"] = record.exc_text
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        for key in sorted(vars(record).keys() - _RECORD_ATTRIBUTES):  # a caller's ``extra=``
            line[key] = getattr(record, key)
        return _encode(line)


#: ``json.dumps(…, default=str)``, one encoder for every line.
_encode = json.JSONEncoder(default=str).encode
#: A string as ``json.dumps`` writes it (quoted, escaped, ASCII).
_string = json.encoder.encode_basestring_ascii

#: What every log record carries; anything else on a record was added to it (``extra=``).
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "request_id",
}


def _plain(record: logging.LogRecord) -> bool:
    """Whether ``record`` carries nothing but what every record does (no ``extra=``)."""
    return vars(record).keys() <= _RECORD_ATTRIBUTES


class RedactFilter(logging.Filter):
    """Replaces every configured secret in a log record with ``[redacted]``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def clean(self, text: str) -> str:
        """``text`` with every secret replaced (longest first, so none leaves a tail)."""
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, "[redacted]")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask secrets in the record's message and arguments."""
        if not self.secrets:
            return True
        record.msg = self.clean(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self.clean(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        # The message and the traceback are cleaned above; of the rest, only what a caller
        # added can hold a secret (paths, names and levels come from the code).
        if not _plain(record):
            for key in vars(record).keys() - _RECORD_ATTRIBUTES:
                value = getattr(record, key)
                if isinstance(value, str):
                    setattr(record, key, self.clean(value))
        return True


class BridgeFilter(RedactFilter):
    """The handler's one filter: gives each record the request id it was made under,
    then removes every secret (one filter instead of two: each costs every line a call)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add the request id to the record."""
        if not getattr(record, "request_id", None):
            record.request_id = REQUEST_ID.get()
        return super().filter(record)


class LineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that writes and flushes each line under one take of its lock
    (:class:`logging.StreamHandler` takes it again to flush)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
            stream = self.stream
            stream.write(line)
            if hasattr(stream, "flush"):
                stream.flush()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)


def configure_logging(
    *, level: str = "INFO", json_lines: bool = True, secrets: Iterable[str] = (), stream: Any = None
) -> logging.Handler:
    """One handler on the root logger: JSON lines, request ids, secrets redacted."""
    handler = LineHandler(stream or sys.stderr)
    if json_lines:
        handler.setFormatter(JsonLines())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    handler.addFilter(BridgeFilter(secrets))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_bridge", False)]:
        root.removeHandler(old)
    handler._bridge = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # Neither format shows where in the code a record was made, nor the thread: skip
    # walking the stack and naming the thread for every record (the logging HOWTO's
    # "Optimization" section). The process id stays: gunicorn's own lines show it.
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    return handler


def settings_secrets(settings: Any) -> list[str]:
    """Every secret the config holds: the ProProfs token, webhook and CAPTCHA secrets, keys,
    the file bucket's secret key."""
    found = [settings.proprofs.token, settings.server.secret_key or ""]
    found.append(getattr(settings, "metrics_token", None) or "")
    for route in settings.routes.values():
        auth = route.auth or {}
        found.append(str(auth.get("bearer") or ""))
        for key in ("basic", "query", "hmac"):
            part = auth.get(key) or {}
            found += [
                str(part.get("password") or ""),
                str(part.get("token") or ""),
                str(part.get("secret") or ""),
            ]
        if route.guards.captcha:
            found.append(route.guards.captcha.secret)
        found.append(route.widget.identity_secret or "")
    hook = getattr(settings, "dead_letters", None)
    if hook is not None:
        found.append(hook.secret)
    files = getattr(settings, "files", None)
    if files is not None and files.s3 is not None:
        found.append(files.s3.secret_access_key or "")
    return [s for s in found if s]
