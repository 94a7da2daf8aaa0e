"""The accept path: validate, map, keep the files, and store a submission (or quarantine it)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import g, url_for
from marshmallow import ValidationError

from .. import attachments, faults
from ..attachments import Attachment, Upload
from ..config.settings import Route
from ..guards import content
from ..mapping import MappingError, footer, validation_messages, without_footer
from ..outbox.records import StoreUnavailable, new_submission_id
from ..proprofs.models import TicketDraft
from .answers import Accepted, Rejected
from .state import bridge, public_link

log = logging.getLogger(__name__)


T = TypeVar("T")


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
    """What intake keeps about the request: its id and the route's extras."""
    return {"request_id": g.get("request_id", ""), **(meta or {})}


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
            lambda: store.quarantine.hold(
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
    faults.reached("files-kept")
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
