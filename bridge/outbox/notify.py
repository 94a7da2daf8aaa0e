"""Tell an operator's endpoint when a submission goes dead: a Standard-Webhooks-signed
POST (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``), sent beside delivery
so that a slow endpoint never holds a ticket up.

The notification carries what an operator needs to act (route, reference, attempts, the
last error), never the person's data. It is tried a few times, then logged and dropped:
the dead letter itself stays in the outbox, in the console and in the metrics.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import requests

from ..signing import signed_headers
from .records import Submission

log = logging.getLogger(__name__)
#: Waits before each try (the first at once); then the notification is dropped.
TRIES = (0.0, 2.0, 10.0)


@dataclass(frozen=True)
class DeadLetterHook:
    """``delivery.dead_letters``: where to post, and the secret that signs each post."""

    url: str
    secret: str = field(repr=False)
    timeout: float = 5.0


class DeadLetterNotifier:
    """Posts a notice for each submission that goes dead."""

    def __init__(
        self,
        hook: DeadLetterHook,
        *,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
        tries: tuple[float, ...] = TRIES,
    ) -> None:
        self.hook = hook
        self.session = session or requests.Session()
        self.clock = clock
        self.tries = tries
        self.threads: list[threading.Thread] = []

    def __repr__(self) -> str:
        return f"DeadLetterNotifier({self.hook.url!r})"

    def message(self, claim: Submission, error: str) -> tuple[dict[str, str], bytes]:
        """The headers and body of the notification for ``claim``."""
        stamp = int(self.clock())
        body = json.dumps(
            {
                "type": "submission.dead",
                "timestamp": datetime.fromtimestamp(stamp, UTC).isoformat(),
                "data": {
                    "id": claim.id,
                    "route": claim.route,
                    "kind": claim.kind,
                    "attempts": claim.attempts,
                    "error": error[:1000],
                    "received_at": datetime.fromtimestamp(claim.created_at, UTC).isoformat(),
                },
            },
            separators=(",", ":"),
        ).encode()
        message_id = f"msg_dead_{claim.id}"
        return signed_headers(self.hook.secret, message_id, stamp, body), body

    def __call__(self, claim: Submission, error: str) -> None:
        """Send the notification in the background."""
        headers, body = self.message(claim, error)
        thread = threading.Thread(
            target=self._send, args=(headers, body), name=f"dead-letter-{claim.id}", daemon=True
        )
        self.threads = [t for t in self.threads if t.is_alive()] + [thread]
        thread.start()

    def _send(self, headers: dict[str, str], body: bytes) -> None:
        for attempt, wait in enumerate(self.tries, 1):
            time.sleep(wait)
            try:
                answer = self.session.post(
                    self.hook.url, data=body, headers=headers, timeout=self.hook.timeout
                )
            except requests.RequestException as exc:
                outcome = type(exc).__name__
            else:
                if answer.status_code < 300:
                    return
                outcome = f"HTTP {answer.status_code}"
            log.warning(
                "dead-letter notification %s, try %d of %d: %s",
                headers["webhook-id"],
                attempt,
                len(self.tries),
                outcome,
            )
        log.error("dead-letter notification %s dropped", headers["webhook-id"])

    def drain(self, timeout: float = 30.0) -> None:
        """Wait for notifications under way (at shutdown, and in tests)."""
        deadline = time.monotonic() + timeout
        for thread in list(self.threads):
            thread.join(max(0.0, deadline - time.monotonic()))
