"""What every intake shares: the answer shapes, body limits, and the accept path."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import Response, current_app, g, request, url_for
from itsdangerous import URLSafeSerializer
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from .. import attachments, jsonbody
from ..attachments import Attachment, Upload
from ..config import Route, Settings
from ..guards import content
from ..guards.ratelimit import RateLimits
from ..mapping import MappingError, footer, validation_messages, without_footer
from ..observability import Metrics, RedactFilter, settings_secrets
from ..outbox.store import StoreUnavailable, SubmissionStore, new_submission_id
from ..outbox.worker import CrashPoint
from ..proprofs.client import ProProfsClient
from ..proprofs.models import TicketDraft
from ..signing import INCIDENT_SALT, STORM_SALT
from .deadline import BodyDeadlines

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Bridge:
    """What the app's views need, kept on ``app.extensions["bridge"]``."""

    settings: Settings
    store: SubmissionStore
    rate_limits: RateLimits
    signing_key_source: Callable[[], str]
    client_factory: Callable[[], ProProfsClient] | None = None
    certificate_fetcher: Callable[[str], bytes] | None = None
    url_opener: Callable[[str], int] | None = None
    metrics: Metrics | None = None
    deadlines: BodyDeadlines = field(default_factory=BodyDeadlines)
    crash: CrashPoint = field(default_factory=CrashPoint)
    clock: Callable[[], float] = time.time  # alert steering's clock (tests move it)
    _client: ProProfsClient | None = None

    @functools.cached_property
    def signing_key(self) -> str:
        """Signs every link and token the bridge hands out (read once per process)."""
        return self.signing_key_source()

    @property
    def incident_links(self) -> URLSafeSerializer:
        """Signs incident page links; rotating the secret key revokes them all."""
        return URLSafeSerializer(self.signing_key, salt=INCIDENT_SALT)

    @property
    def storm_links(self) -> URLSafeSerializer:
        """Signs the links to a storm window's full list of held-back groups."""
        return URLSafeSerializer(self.signing_key, salt=STORM_SALT)

    @functools.cached_property
    def redact(self) -> RedactFilter:
        """Replaces every configured secret in a text (captured payloads)."""
        return RedactFilter(settings_secrets(self.settings))

    @property
    def links(self) -> attachments.Links:
        return attachments.Links(self.signing_key)

    @property
    def client(self) -> ProProfsClient:
        """The ProProfs client for reads made at intake (made lazily, once per process)."""
        if self._client is None:
            assert self.client_factory is not None
            self._client = self.client_factory()
        return self._client


def public_link(path: str) -> str:
    """``path`` on the bridge's configured address (``server.public_url``); the path alone
    without one: never the address a request named in its Host header, which anyone sets."""
    base = bridge().settings.server.public_url
    return base + path if base else path


def bridge() -> Bridge:
    state: Bridge = current_app.extensions["bridge"]
    return state


#: ``json.dumps(…, ensure_ascii=False)`` without making an encoder for every answer.
_encode = json.JSONEncoder(ensure_ascii=False).encode


def json_response(
    body: Mapping[str, Any], status: int, headers: Mapping[str, str] | None = None
) -> Response:
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


def too_large(route: Route) -> Rejected:
    limit = route.limit_for(request.mimetype)
    return Rejected(
        413, "too_large", f"The body is larger than this route accepts ({limit} bytes)."
    )


def check_declared_size(route: Route) -> int:
    """413 for a declared length past the route's limit for this content type; the limit."""
    current = request._get_current_object()  # type: ignore[attr-defined]  # one proxy lookup
    limit = route.limit_for(current.mimetype)
    declared = current.content_length
    if declared is not None and declared > limit:
        raise too_large(route)
    # One byte past the limit is read, so that a streamed (chunked) body over it is told
    # from one that ends exactly there: werkzeug stops quietly at a maximum.
    current.max_content_length = limit + 1
    return limit


def receive_body(route: Route) -> bytes:
    """The raw body, read once (later reads, forms included, use it): 413 past the route's
    limit, declared or streamed; 408 when it is still arriving at ``server.body_timeout``."""
    limit = check_declared_size(route)
    state = bridge()
    current = request._get_current_object()  # type: ignore[attr-defined]  # one proxy lookup
    timeout = state.settings.server.body_timeout
    with state.deadlines.reading(current.environ, timeout) as clock:
        try:
            data: bytes = current.get_data(cache=True)
        except RequestEntityTooLarge:
            raise too_large(route) from None
        except (HTTPException, OSError, ValueError):
            if clock is None or not clock.cut:
                raise
            data = b""
    if clock is not None and clock.cut and len(data) != current.content_length:
        raise Rejected(
            408,
            "body_timeout",
            f"The body was still arriving after {timeout:g} seconds; please send it again.",
            headers={"Connection": "close"},
        )
    if len(data) > limit:
        raise too_large(route)
    return data


def parse_json(body: bytes) -> Any:
    if not body.strip():
        raise Rejected(400, "malformed_json", "The body is empty; send a JSON object.")
    try:
        return jsonbody.loads(body)
    except UnicodeDecodeError:
        raise Rejected(400, "malformed_json", "The body is not UTF-8 text.") from None
    except jsonbody.Unacceptable as exc:
        raise Rejected(400, "malformed_json", f"The body is not acceptable JSON: {exc}.") from None
    except json.JSONDecodeError as exc:
        raise Rejected(
            400,
            "malformed_json",
            f"The body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}.",
        ) from None


@dataclass(frozen=True)
class Accepted:
    id: str
    duplicate: bool
    state: str

    @property
    def outcome(self) -> str:
        """What the metrics and the log call it: accepted, duplicate or quarantined."""
        if self.state == "quarantined":
            return "quarantined"
        return "duplicate" if self.duplicate else "accepted"


@dataclass(frozen=True)
class Prepared:
    """A validated submission, mapped to its ticket, not yet stored."""

    data: dict[str, Any]
    draft: TicketDraft
    dedup_key: str | None
    submission_id: str


def prepare(route: Route, payload: Any, meta: Mapping[str, Any] | None = None) -> Prepared:
    """Load through the route's schema and render its ticket; :class:`Rejected` if not."""
    try:
        data, extra = route.mapping.load(payload)
    except ValidationError as exc:
        raise Rejected(
            422, "validation_failed", "Some fields need attention.", errors=validation_messages(exc)
        ) from None
    submission_id = new_submission_id()
    try:
        draft = route.mapping.render(data, ref=submission_id, meta=meta, extra=extra)
        dedup_key = route.mapping.dedup_key(data, meta=meta)
    except MappingError as exc:
        log.error("route %s cannot map a valid submission: %s", route.name, exc)
        raise Rejected(
            422, "mapping_failed", f"This route could not turn the submission into a ticket: {exc}"
        ) from None
    return Prepared(data, draft, dedup_key, submission_id)


def stored(action: Callable[[], T], route: Route) -> T:
    """Run a store write; a store that cannot commit means 503 — never a 2xx."""
    try:
        return action()
    except StoreUnavailable as exc:
        log.error("store unavailable, refusing submission on %s: %s", route.name, exc)
        raise Rejected(
            503,
            "store_unavailable",
            "The submission could not be stored; please try again shortly.",
            headers={"Retry-After": "30"},
        ) from None


def request_meta(meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {"request_id": g.get("request_id", ""), **(meta or {})}


def observe(route: Route | None, outcome: str, reason: str = "") -> None:
    """Count one submission's outcome (accepted, duplicate, ignored, spam, rejected)."""
    name = route.name if route else "-"
    metrics = bridge().metrics
    if metrics is not None:
        metrics.submission(name, route.kind if route else "-", outcome, reason)
    # One line per submission, with its request id and no personal data.
    log.info("submission %s on route %s%s", outcome, name, f" ({reason})" if reason else "")


def accept(
    route: Route,
    payload: Any,
    meta: Mapping[str, Any] | None = None,
    *,
    double_submit: bool = False,
    submitter: str = "",
    caught: str | None = None,
    uploads: Sequence[Upload] = (),
) -> Accepted:
    """Validate, map and store one submission; raise :class:`Rejected` if it cannot be.

    A submission a guard ``caught`` (with ``spam.keep``), or one the route's content rules
    score at their threshold, is quarantined: stored without a ticket, for an operator.
    Its files (``uploads``, already checked) are kept before the submission is committed,
    and their rows are committed with it: an answer of success means the files are safe.
    With ``double_submit``, the same words posted again within the route's window answer
    with the earlier submission, but only to the same ``submitter`` (a browser's session,
    a verified identity): anyone else's post is their own.
    """
    ready = prepare(route, payload, meta)
    store = bridge().store
    now = time.time()
    files: list[Attachment] = []
    if uploads:
        ready, files = keep_files(route, ready, uploads, now)
    reasons = quarantine_reasons(route, ready, caught)
    if reasons is not None:
        score, matched = reasons
        log.info("submission on route %s quarantined (score %g)", route.name, score)
        stored(
            lambda: store.quarantine(
                route.name,
                route.kind,
                ready.draft,
                dedup_key=ready.dedup_key,
                meta=request_meta(meta),
                score=score,
                reasons=matched,
                expires_at=now + route.guards.quarantine_for,
                submission_id=ready.submission_id,
                now=now,
                attachments=files,
            ),
            route,
        )
        metrics = bridge().metrics
        if metrics is not None:
            metrics.quarantine(route.name, "quarantined")
        return Accepted(ready.submission_id, False, "quarantined")

    def write() -> Accepted:
        key = ready.dedup_key
        if key is None and double_submit:
            content = _content_hash(
                route,
                ready.draft.email,
                {**ready.data, "_files": [f.digest for f in files]},
                submitter,
            )
            earlier = _double_submit(route, content, now)
            if earlier is not None:
                return earlier
            key = _double_submit_key(route, content, now)
        result = store.enqueue(
            route.name,
            route.kind,
            ready.draft,
            dedup_key=key,
            meta=request_meta(meta),
            submission_id=ready.submission_id,
            now=now,
            attachments=files,
        )
        return Accepted(result.id, result.duplicate, result.state)

    return stored(write, route)


def keep_files(
    route: Route, ready: Prepared, uploads: Sequence[Upload], now: float
) -> tuple[Prepared, list[Attachment]]:
    """Write ``uploads`` to the file store (durably) and list them, with their links, in
    the ticket's description above its reference footer; the rows to commit with it."""
    state = bridge()
    kept = state.store.files
    if kept is None:
        raise Rejected(503, "files_unavailable", "Files cannot be kept here.")
    lifetime = state.settings.files.link_lifetime
    rows: list[Attachment] = []
    listed: list[tuple[Upload, str]] = []
    for position, upload in enumerate(uploads):
        try:
            stored_file = kept.put(upload.data)
        except Exception as exc:  # a full disk, an unreachable bucket: nothing was promised
            log.error("route %s: could not keep a file: %s", route.name, type(exc).__name__)
            raise Rejected(
                503,
                "files_unavailable",
                "The attached files could not be stored; please try again shortly.",
                headers={"Retry-After": "30"},
            ) from None
        rows.append(
            Attachment(
                submission_id=ready.submission_id,
                position=position,
                route=route.name,
                field=upload.field,
                name=upload.name,
                type=upload.type,
                size=upload.size,
                digest=stored_file.digest,
                created_at=now,
                expires_at=now + lifetime,
            )
        )
        token = state.links.token(route.name, ready.submission_id, position)
        listed.append((upload, public_link(url_for("files.download", token=token))))
    state.crash.at("files-kept")
    body = without_footer(ready.draft.description or "").rstrip()
    block = attachments.description_block(listed)
    # The links never get cut: the person's words make room for them if need be.
    room = route.mapping.max_lengths.get("description", 60_000) - len(block) - 100
    if len(body) > room:
        body = body[: max(0, room)].rstrip() + f"\n[… {len(body) - room} more characters cut]"
    description = f"{body}\n\n{block}" if body else block
    draft = dataclasses.replace(ready.draft, description=description + footer(ready.submission_id))
    return dataclasses.replace(ready, draft=draft), rows


def quarantine_reasons(
    route: Route, ready: Prepared, caught: str | None
) -> tuple[float, list[str]] | None:
    """(score, what matched) when the submission belongs in quarantine, else ``None``."""
    rules = route.guards.content
    verdict = None
    if rules is not None:
        texts = [name for name, spec in route.fields.items() if spec.type == "text"]
        verdict = content.judge(rules, ready.data, email=ready.draft.email, message_fields=texts)
    if caught:
        matched = [caught, *(verdict.matched if verdict else ())]
        return (verdict.score if verdict else 0.0), matched
    if verdict is not None and rules is not None and verdict.over(rules.threshold):
        return verdict.score, list(verdict.matched)
    return None


def _content_hash(route: Route, email: str, data: Mapping[str, Any], submitter: str) -> str:
    """The person (email, any case), their words (every other field), and who sent them."""
    words = json.dumps({k: v for k, v in data.items() if k != "email"}, sort_keys=True, default=str)
    who = f"{route.name}\0{email.lower()}\0{submitter}\0{words}"
    return hashlib.sha256(who.encode()).hexdigest()[:32]


def _double_submit_key(route: Route, content: str, now: float) -> str:
    window = max(1.0, route.guards.double_submit_window)
    return f"{route.name}:same:{content}:{int(now // window)}"


def _double_submit(route: Route, content: str, now: float) -> Accepted | None:
    """The same route, email and words within the window: the earlier submission."""
    window = max(1.0, route.guards.double_submit_window)
    previous = f"{route.name}:same:{content}:{int(now // window) - 1}"
    earlier = bridge().store.find_by_dedup(route.name, previous)
    if earlier is not None and now - earlier.created_at <= window:
        return Accepted(earlier.id, True, earlier.state)
    return None


def accepted_response(result: Accepted) -> Response:
    if result.duplicate:
        return json_response({"status": "duplicate", "id": result.id}, 200)
    return json_response({"status": "accepted", "id": result.id}, 202)


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
