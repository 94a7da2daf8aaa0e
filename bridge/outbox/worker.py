"""The delivery worker: claim due submissions, create their tickets, record what happened.

Every create is sent outside any database transaction, under a fenced lease. An
outcome that cannot be known (a timeout after sending, a lost lease) is never
retried blindly: the submission goes to ``unknown`` and is reconciled through
the list API, which finds the ticket by the reference in its description.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import requests

from .. import faults
from ..observability import REQUEST_ID, Metrics
from ..proprofs.client import ProProfsClient
from ..proprofs.errors import (
    AmbiguousError,
    AuthenticationError,
    InvalidRequestError,
    ProProfsError,
)
from ..proprofs.models import TicketFilters
from ..shutdown import StopSignals
from .events import Subscriber, attempt
from .mirror import Mirror
from .pacing import Breaker, RateLimiter, unreachable
from .records import Outcome, StoreUnavailable, Submission
from .references import find_references
from .retry import RetryPolicy
from .store import SubmissionStore
from .updates import as_update

log = logging.getLogger(__name__)

#: How often the worker deletes quarantined submissions past their time.
HOUSEKEEPING_INTERVAL = 60.0
#: How long an alert group's notifications are kept for its incident page.
INCIDENT_HISTORY = 90 * 86400.0
#: How long the worker's writes (claims, outcomes) wait to share a commit, on SQLite: a
#: commit a few tens of milliseconds later costs delivery nothing (recording holds no
#: upstream slot, and claims wait in hand), and it leaves intake the write turn.
DELIVERY_GATHER = 0.03


@dataclass(frozen=True)
class DeliverySettings:
    """How the worker delivers: concurrency, rate, lease, reconcile, retries."""

    concurrency: int = 4
    rate_limit: float | None = None  # creates per second toward ProProfs, per worker process
    lease_seconds: float = 120.0
    poll_interval: float = 0.5
    reconcile_lag: float = 30.0  # how long a new ticket may take to show in the list
    reconcile_first_check: float = 2.0
    reconcile_margin: float = 300.0  # padding around the send time (clock skew)
    retry: RetryPolicy = field(default_factory=RetryPolicy)


class Watches(Protocol):
    """What the delivery process checks besides the outbox (watches.AlertWatches)."""

    def __bool__(self) -> bool: ...

    def check(self, store: SubmissionStore, now: float | None = None) -> list[str]:
        """Raise the tickets due now (silences, storm summaries); their ids."""


class RetentionPolicy(Protocol):
    """A route's retention (config.Retention): seconds before personal content goes."""

    @property
    def scrub_after(self) -> float | None:
        """Seconds after delivery before personal content goes."""

    @property
    def dead_after(self) -> float | None:
        """Seconds after death before personal content goes."""


class Worker:
    """Delivers submissions from one store through one ProProfs client."""

    def __init__(
        self,
        store: SubmissionStore,
        client: ProProfsClient,
        settings: DeliverySettings | None = None,
        *,
        owner: str | None = None,
        clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
        retention: Mapping[str, RetentionPolicy] | None = None,
        on_dead: Callable[[Submission, str], None] | None = None,
        watches: Watches | None = None,
        watch_interval: float = 5.0,
        captures: Mapping[str, int] | None = None,
        mirror: Mirror | None = None,
        subscribers: Mapping[str, Subscriber] | None = None,
    ) -> None:
        self.store = store
        # Who hears of the help desk's changes (events.py), by outbox route.
        self.subscribers = {s.route: s for s in (subscribers or {}).values()}
        self.events = requests.Session()
        self.mirror = mirror  # the sync loop of the mirror of tickets, in its own thread
        self.watches = watches  # heartbeats and storm windows (watches.py)
        self.watch_interval = watch_interval
        self.on_dead = on_dead  # told of each submission that goes dead (notify.py)
        self.client = client
        self.settings = settings or DeliverySettings()
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
        self.clock = clock
        self.stop_event = threading.Event()
        self.limiter = RateLimiter(self.settings.rate_limit)
        # ProProfs sees at most ``concurrency`` calls from this worker at once; recording an
        # outcome happens outside the slot (see _send).
        self.upstream_slots = threading.BoundedSemaphore(self.settings.concurrency)
        # The lease must outlive the longest create, or another worker would reconcile early.
        self.call_budget = sum(client.timeout) + 1.0
        self.store.lease_seconds = max(self.settings.lease_seconds, self.call_budget + 2)
        self.delivered = 0
        self.metrics = metrics or Metrics(enabled=False)
        self.breaker = Breaker()
        self.retention = dict(retention or {})
        # How many captured payloads each route keeps (a route not named keeps none);
        # None: captures are left as they are.
        self.captures = None if captures is None else dict(captures)

    def __repr__(self) -> str:
        return f"Worker(owner={self.owner!r}, concurrency={self.settings.concurrency})"

    # --- loop ---------------------------------------------------------------------------------

    def run(self, *, until_idle: bool = False, max_seconds: float | None = None) -> None:
        """Deliver until stopped (SIGTERM/SIGINT via :meth:`stop`), or until nothing is due."""
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        # Claims wait ready behind the busy upstream slots, so a freed slot never idles:
        # three times the concurrency in hand, that is twice as many waiting as there are
        # slots, enough to keep them all busy through a store that stalls for two calls'
        # time (a slow commit holds the next claim up behind it).
        capacity = 3 * self.settings.concurrency
        refill = max(1, self.settings.concurrency // 2)
        wake = threading.Event()
        active: set[Future[None]] = set()
        next_housekeeping = 0.0
        next_watch = 0.0
        # One thread per claim in hand: those waiting for an upstream slot have their
        # create ready to go the moment one frees, and recording never holds a slot.
        syncing = None
        if self.mirror is not None and not until_idle:
            syncing = threading.Thread(
                target=self.mirror.run, args=(self.stop_event,), name="mirror", daemon=True
            )
            syncing.start()
        with ThreadPoolExecutor(capacity, thread_name_prefix="deliver") as pool:
            while not self.stop_event.is_set():
                if deadline is not None and time.monotonic() > deadline:
                    break
                active = {f for f in active if not f.done()}
                if self.watches and time.monotonic() >= next_watch:
                    next_watch = time.monotonic() + self.watch_interval
                    self.watch()  # what it raises is claimed just below
                if time.monotonic() >= next_housekeeping:
                    next_housekeeping = time.monotonic() + HOUSEKEEPING_INTERVAL
                    self.housekeeping()
                if not active:
                    self.breaker.abandon_probe()  # a probe that ended without reaching out
                # Claims are topped up several at a time (one write for several), while
                # enough wait ready that a freed slot never waits for the claim.
                room = capacity - len(active)
                free = self.breaker.allowance(room) if room >= refill else 0
                claimed: list[Submission] = []
                if free > 0:
                    try:
                        claimed = self.store.claim(self.owner, free)
                    except StoreUnavailable as exc:
                        log.warning("cannot claim: %s", exc)
                        self.stop_event.wait(min(5.0, self.settings.poll_interval * 4))
                        continue
                for task in self._tasks(claimed):
                    future = pool.submit(task)
                    future.add_done_callback(lambda _: wake.set())
                    active.add(future)
                if claimed and len(claimed) == free:
                    continue  # there may be more due right now
                if until_idle and not claimed and not active and not self._anything_due_soon():
                    break
                # Sleep until a task finishes (a slot frees), the next poll, or the probe.
                wake.wait(max(self.settings.poll_interval, self.breaker.wait()))
                wake.clear()
            for future in active:
                future.result()
        if syncing is not None:
            self.stop_event.set()
            syncing.join(timeout=30)

    def stop(self) -> None:
        """Ask the worker to stop after the attempts in flight."""
        self.stop_event.set()

    def watch(self) -> None:
        """Raise the tickets heartbeats and storm windows call for (one each, whatever the
        number of delivery processes: the store decides)."""
        if not self.watches:
            return
        try:
            made = self.watches.check(self.store, now=self.clock())
        except StoreUnavailable as exc:
            log.warning("cannot check heartbeats and storm windows: %s", exc)
            return
        for sid in made:
            log.info("raised %s", sid)

    def housekeeping(self) -> None:
        """Retention, beside delivery: scrub the personal content of submissions past their
        route's time, and delete quarantined ones past theirs — in small batches, each one
        short write, so intake is never held up by more than one of them; then remove kept
        files nothing refers to, captured payloads past what their route keeps."""
        try:
            for route, policy in self.retention.items():
                for state, after in (
                    ("delivered", policy.scrub_after),
                    ("dead", policy.dead_after),
                ):
                    if after is None:
                        continue
                    for _ in range(20):
                        done = self.store.privacy.scrub_due(route, state, after, now=self.clock())
                        if done:
                            log.info("scrubbed %d %s submissions on route %s", done, state, route)
                        if done < 200:
                            break
            for _ in range(20):
                expired = self.store.quarantine.expire(now=self.clock(), limit=200)
                for route, count in expired.items():
                    self.metrics.quarantine(route, "expired", count)
                    log.info("%d quarantined submissions on route %s expired", count, route)
                if sum(expired.values()) < 200:
                    break
            self.store.incidents.trim_events(older_than=INCIDENT_HISTORY, now=self.clock())
            if self.captures is not None:
                # A route that now keeps fewer (or none, or is gone) loses the rest.
                for route, count in self.store.captures.routes().items():
                    if count > self.captures.get(route, 0):
                        self.store.captures.trim(route, self.captures.get(route, 0))
            swept = self.store.attachments.sweep(now=self.clock())
            if swept:
                log.info("removed %d kept files no submission refers to", swept)
        except StoreUnavailable as exc:
            log.warning("cannot do the outbox's housekeeping: %s", exc)
        except OSError as exc:
            log.warning("cannot sweep kept files: %s", exc)

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT stop the loop (set by a watcher thread, never in the handler)."""
        StopSignals(self.stop_event).install()

    def _anything_due_soon(self) -> bool:
        counts = self.store.counts(deliverable=True)  # a paused route's wait for its resume
        return bool(counts["pending"] or counts["unknown"] or counts["in_flight"])

    def _tasks(self, claimed: Iterable[Submission]) -> list[Callable[[], None]]:
        # An update is sent again whatever became of its last attempt: sending one twice
        # changes nothing, so there is nothing to reconcile.
        creates = [c for c in claimed if c.claimed_from == "pending" or _resent(c)]
        checks = [c for c in claimed if c.claimed_from != "pending" and not _resent(c)]
        tasks: list[Callable[[], None]] = [
            functools.partial(self._guard, self.deliver, c) for c in creates
        ]
        if checks:
            tasks.append(lambda: self._guard_batch(self.reconcile, checks))
        for _ in claimed:
            faults.reached("claimed")
        return tasks

    def _guard(self, fn: Callable[[Submission], None], claim: Submission) -> None:
        try:
            fn(claim)
        except StoreUnavailable as exc:
            # The outcome is lost with the store; the lease expires and reconcile decides.
            log.error("store unavailable while recording %s: %s", claim.id, exc)
        except Exception:  # a bug must not kill the worker; the lease expiry recovers it
            log.exception("delivery of %s failed unexpectedly", claim.id)

    def _guard_batch(
        self, fn: Callable[[list[Submission]], None], claims: list[Submission]
    ) -> None:
        try:
            fn(claims)
        except StoreUnavailable as exc:
            log.error("store unavailable while reconciling: %s", exc)
        except Exception:
            log.exception("reconcile failed unexpectedly")

    # --- one create ---------------------------------------------------------------------------

    def deliver(self, claim: Submission) -> None:
        """Send one claimed submission's create and record the outcome (fenced)."""
        # The request id that came in with the submission follows it into these log lines.
        token = REQUEST_ID.set(str(claim.meta.get("request_id") or ""))
        try:
            self._deliver(claim)
        finally:
            REQUEST_ID.reset(token)

    def _deliver(self, claim: Submission) -> None:
        if claim.is_update:
            self._update(claim)
            return
        if claim.kind == "event":
            self._event(claim)
            return
        sent = self._send(claim, lambda: self.client.create_ticket(claim.draft))
        if sent is None:
            self.store.release(claim)
            return
        started, ticket_id, failure = sent
        if isinstance(failure, AuthenticationError | InvalidRequestError):
            self._upstream(None)
            outcome = Outcome.dead(str(failure), failure.status)
            if self.store.finish(claim, outcome, kind="create", started_at=started):
                self._dead(claim, str(failure))
            self.metrics.delivery(claim.route, "dead")
            log.warning("submission %s is dead: %s", claim.id, failure)
            return
        if isinstance(failure, AmbiguousError):
            self._upstream(None)  # a server took the connection, whatever became of it
            recheck = self.clock() + self.settings.reconcile_first_check
            outcome = Outcome.unknown(recheck, str(failure))
            self.store.finish(claim, outcome, kind="create", started_at=started)
            self.metrics.delivery(claim.route, "unknown")
            log.info("submission %s: outcome unknown, will reconcile (%s)", claim.id, failure)
            return
        if failure is not None:
            self._upstream(failure)
            self._retry_or_dead(claim, failure, str(failure), started, failure.status)
            return
        self._upstream(None)
        faults.reached("sent")
        recorded = self._record(
            claim,
            lambda: self.store.finish(
                claim, Outcome.delivered(ticket_id), kind="create", started_at=started
            ),
        )
        if recorded:
            self.delivered += 1
            self.metrics.delivery(claim.route, "delivered", self.clock() - claim.created_at)
            log.info("submission %s delivered as ticket %s", claim.id, ticket_id)
        else:
            log.warning(
                "submission %s: lease lost before recording ticket %s; reconcile will find it",
                claim.id,
                ticket_id,
            )
        faults.reached("stored")

    def _send(
        self, claim: Submission, call: Callable[[], str]
    ) -> tuple[float, str, ProProfsError | None] | None:
        """Make the claim's call (a create: the new ticket's id; an update: the ticket's) in
        one of the ``concurrency`` upstream slots: when it was
        started, the ticket id, or what went wrong; None when it must not be sent now (the
        breaker is open, or waiting for the rate limit ate the lease). The slot is free again
        the moment the answer is in, so the next claim's create goes out while this one's
        outcome is being recorded."""
        with self.upstream_slots:
            if not self.breaker.may_send() or not self.limiter.acquire(self.stop_event):
                return None
            started = self.clock()
            if (
                claim.lease_expires_at is not None
                and started + self.call_budget > claim.lease_expires_at
            ):
                return None  # sending now could race a reconcile
            try:
                return started, call(), None
            except ProProfsError as exc:
                return started, "", exc

    # --- one update -------------------------------------------------------------------------

    def _update(self, claim: Submission) -> None:
        """Send one claimed update to its ticket, in order (outbox/updates.py): after its
        create, never after a newer update, never beside an older one in flight."""
        now = self.clock()
        hold = self.store.updates.hold(claim, now)
        if hold.dead is not None:
            if self.store.finish(claim, Outcome.dead(hold.dead), kind="update", started_at=now):
                self._dead(claim, hold.dead)
            self.metrics.delivery(claim.route, "update_dead")
            return
        if hold.superseded_by is not None:
            self._supersede(claim, hold.superseded_by, now)
            return
        if hold.until is not None:
            self.store.updates.postpone(claim, hold.until, hold.why)
            return
        ticket_id = hold.ticket_id
        assert ticket_id is not None
        sent = self._send(claim, lambda: self._update_call(ticket_id, claim))
        if sent is None:
            self.store.release(claim)
            return
        started, _, failure = sent
        if failure is None:
            self._upstream(None)
            faults.reached("update_sent")
            if self._record(
                claim,
                lambda: self.store.finish(
                    claim, Outcome.delivered(ticket_id), kind="update", started_at=started
                ),
            ):
                self.metrics.delivery(claim.route, "updated")
                log.info("update %s sent to ticket %s", claim.id, ticket_id)
            return
        if isinstance(failure, AuthenticationError | InvalidRequestError):
            self._upstream(None)
            reason = f"ticket {ticket_id} refused the update: {failure}"
            if self.store.finish(
                claim, Outcome.dead(reason, failure.status), kind="update", started_at=started
            ):
                self._dead(claim, reason)
            self.metrics.delivery(claim.route, "update_dead")
            log.warning("update %s is dead: %s", claim.id, reason)
            return
        self._upstream(failure)
        newer = self.store.updates.superseded(claim)
        if newer is not None:  # the newer one carries this one's state: no retry
            self._supersede(claim, newer, started)
            return
        self._retry_or_dead(claim, failure, str(failure), started, failure.status, kind="update")

    def _event(self, claim: Submission) -> None:
        """Post one event to its subscriber, signed (events.py)."""
        started = self.clock()
        sent = attempt(self.subscribers.get(claim.route), self.events, claim, self.call_budget)
        if sent.dead is not None:
            if self.store.finish(claim, Outcome.dead(sent.dead), kind="event", started_at=started):
                self._dead(claim, sent.dead)
        elif sent.error is not None:
            self._retry_or_dead(claim, None, sent.error, started, sent.status, kind="event")
        else:
            done = Outcome.delivered(claim.ticket_id or "", sent.status)
            if self._record(
                claim, lambda: self.store.finish(claim, done, kind="event", started_at=started)
            ):
                self.metrics.delivery(claim.route, "delivered", self.clock() - claim.created_at)

    def _update_call(self, ticket_id: str, claim: Submission) -> str:
        self.client.update_ticket(ticket_id, as_update(claim.draft))
        return ticket_id

    def _supersede(self, claim: Submission, newer: str, started: float) -> None:
        outcome = Outcome("suppressed", error=f"superseded by the newer update {newer}")
        self.store.finish(claim, outcome, kind="update", started_at=started)
        self.metrics.delivery(claim.route, "update_superseded")

    def _dead(self, claim: Submission, reason: str) -> None:
        if self.on_dead is not None:
            try:
                self.on_dead(claim, reason)
            except Exception:  # a notification is never worth a delivery
                log.exception("could not start the dead-letter notification for %s", claim.id)

    def _upstream(self, error: ProProfsError | None) -> None:
        """Tell the breaker whether this call reached ProProfs."""
        if error is not None and unreachable(error):
            cooldown = self.breaker.unreachable()
            if cooldown is not None:
                self.metrics.delivery_paused(True)
                log.warning(
                    "ProProfs cannot be reached (%s); delivery pauses for %.0f s, then tries one",
                    error,
                    cooldown,
                )
        elif self.breaker.reached():
            self.metrics.delivery_paused(False)
            log.info("ProProfs answers again; delivery resumes")

    def _record(self, claim: Submission, record: Callable[[], bool]) -> bool:
        """Record a ticket that now exists, waiting out a short store outage (a restart, a
        failover) while the claim's lease lasts; the lease fences a late record. Past the
        lease, or when stopping, the lease expiry and reconcile settle it instead."""
        while True:
            try:
                return record()
            except StoreUnavailable as exc:
                expires = claim.lease_expires_at
                if self.stop_event.is_set() or expires is None or self.clock() + 1.0 >= expires:
                    raise
                log.warning("cannot record %s yet, trying again: %s", claim.id, exc)
                self.stop_event.wait(1.0)

    def _retry_or_dead(
        self,
        claim: Submission,
        error: ProProfsError | None,
        text: str,
        started: float,
        status: int | None,
        kind: str = "create",
    ) -> None:
        delay = self.settings.retry.next_delay(claim.attempts, error)
        if delay is None:
            reason = f"gave up after {claim.attempts} attempts: {text}"
            if self.store.finish(
                claim, Outcome.dead(reason, status), kind=kind, started_at=started
            ):
                self._dead(claim, reason)
            self.metrics.delivery(claim.route, "dead")
            log.warning("submission %s is dead after %d attempts", claim.id, claim.attempts)
        else:
            outcome = Outcome.retry(self.clock() + delay, text, status)
            self.store.finish(claim, outcome, kind=kind, started_at=started)
            self.metrics.delivery(claim.route, "retry")

    # --- reconcile ----------------------------------------------------------------------------

    def reconcile(self, claims: list[Submission]) -> None:
        """Find tickets the claims may have created (PROPROFS_API A4); settle each claim."""
        started = self.clock()
        margin = self.settings.reconcile_margin
        sent = [c.sent_at or c.created_at for c in claims]
        inboxes = {c.draft.inbox for c in claims}
        filters = TicketFilters(
            inbox=inboxes.pop() if len(inboxes) == 1 else None,
            created_from=datetime.fromtimestamp(min(sent) - margin, UTC),
            created_to=datetime.fromtimestamp(self.clock() + margin, UTC),
        )
        try:
            with self.upstream_slots:
                found = find_references(self.client.iter_tickets(filters), {c.id for c in claims})
        except ProProfsError as exc:
            self._upstream(exc)
            for claim in claims:
                self.store.finish(
                    claim,
                    Outcome.unknown(
                        self.clock() + max(5.0, self.settings.poll_interval),
                        f"reconcile failed: {exc}",
                    ),
                    kind="reconcile",
                    started_at=started,
                )
            self.metrics.reconcile("error")
            return
        self._upstream(None)
        now = self.clock()
        for claim in claims:
            ticket_id = found.get(claim.id)
            if ticket_id is not None:
                if self.store.finish(
                    claim, Outcome.delivered(ticket_id), kind="reconcile", started_at=started
                ):
                    self.delivered += 1
                    self.metrics.delivery(claim.route, "delivered", self.clock() - claim.created_at)
                    log.info("submission %s reconciled to ticket %s", claim.id, ticket_id)
                self.metrics.reconcile("found")
                continue
            settled_at = (claim.sent_at or claim.created_at) + self.settings.reconcile_lag
            if now < settled_at:
                # Not listed yet may mean "not yet": look again once the list has caught up.
                self.store.finish(
                    claim,
                    Outcome.unknown(settled_at, "not found yet; re-checking"),
                    kind="reconcile",
                    started_at=started,
                )
                self.metrics.reconcile("not_yet")
            else:
                self.metrics.reconcile("not_created")
                self._retry_or_dead(
                    claim,
                    None,
                    "no ticket was created; sending again",
                    started,
                    None,
                    kind="reconcile",
                )


def _resent(claim: Submission) -> bool:
    """An update or an event: sent again whatever became of the last attempt (sending
    either twice changes nothing a reconcile could find)."""
    return claim.is_update or claim.kind == "event"
