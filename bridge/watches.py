"""What the delivery process watches besides the outbox: silent heartbeats and the end of
alert-storm windows. Each raises its ticket through the store atomically, so several
delivery processes (or instances) still make one ticket each time."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence

from itsdangerous import URLSafeSerializer

from .config.settings import Route, Settings
from .mapping import footer
from .outbox.store import SubmissionStore
from .proprofs.models import TicketDraft
from .signing import INCIDENT_SALT, STORM_SALT

log = logging.getLogger(__name__)
#: How often the delivery process looks (seconds); a heartbeat's own times are coarser.
CHECK_INTERVAL = 5.0
#: The most held-back groups a storm summary lists one by one, and the characters the
#: list may take (a description holds 60,000); the rest are on the linked full list.
SUMMARY_LISTED = 200
SUMMARY_ROOM = 40_000


def heartbeat_key(route: str) -> str:
    """The incident a route's heartbeat is noted under (its silences and returns)."""
    return f"{route}:heartbeat"


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


class AlertWatches:
    """Raises the tickets no sender sends: heartbeat silences, storm summaries."""

    def __init__(self, settings: Settings, signing_key: str | Callable[[], str]) -> None:
        self.settings = settings
        self._key = signing_key
        self.routes = [
            r
            for r in settings.routes.values()
            if r.kind == "hook" and (r.alerts.heartbeat or r.alerts.storm)
        ]
        self._expecting: set[str] = set()

    def __bool__(self) -> bool:
        return bool(self.routes)

    @functools.cached_property
    def key(self) -> str:
        """The signing key (read when the first link is made)."""
        return self._key if isinstance(self._key, str) else self._key()

    @functools.cached_property
    def links(self) -> URLSafeSerializer:
        """The signer of incident page links."""
        return URLSafeSerializer(self.key, salt=INCIDENT_SALT)

    def storm_list(self, route: str, window: int) -> str:
        """The page listing every group a storm window held back (a path without
        server.public_url)."""
        token = URLSafeSerializer(self.key, salt=STORM_SALT).dumps([route, window])
        return f"{self.settings.server.public_url or ''}/storms/{token}"

    def page(self, route: str, key: str) -> str | None:
        """The incident page's address, where the bridge knows its own (server.public_url)."""
        base = self.settings.server.public_url
        if not base:
            return None
        return f"{base}/incidents/{self.links.dumps([route, key])}"

    def check(self, store: SubmissionStore, now: float | None = None) -> list[str]:
        """Raise what is due; the submissions made."""
        now = time.time() if now is None else now
        if self.routes:
            # The tickets' links are made inside the store's transaction: read (or make)
            # the key before, never from within it.
            self.key  # noqa: B018
        made: list[str] = []
        for route in self.routes:
            if route.alerts.heartbeat is not None:
                made += self._heartbeat(store, route, now)
            if route.alerts.storm is not None:
                made += self._storm(store, route, now)
        return made

    def _heartbeat(self, store: SubmissionStore, route: Route, now: float) -> list[str]:
        beat = route.alerts.heartbeat
        assert beat is not None
        if route.name not in self._expecting:
            store.heartbeats.expect(route.name, now=now)
            self._expecting.add(route.name)
        matcher = ", ".join(f"{k}={v}" for k, v in beat.match.items())

        def draft(last_seen: float, sid: str) -> TicketDraft:
            page = self.page(route.name, heartbeat_key(route.name))
            lines = [
                f"The heartbeat of route {route.name} ({matcher}) was last received "
                f"{_when(last_seen)}; it is expected every {beat.every:g} s.",
                "Alerts may not be reaching the help desk: check the monitoring system, its "
                "notification settings and the path from it to the bridge.",
                "When the heartbeat comes back, its incident page says so.",
            ]
            if page:
                lines.append(f"Incident page: {page}")
            return TicketDraft(
                email=beat.email or self.settings.proprofs.account_email,
                subject=f"[bridge] The alert pipeline of {route.name} is silent",
                description="\n\n".join(lines) + footer(sid),
                priority="high",
                inbox=beat.inbox,
            )

        raised = store.heartbeats.silence(
            route.name, cutoff=now - beat.every - beat.grace, draft=draft, now=now
        )
        if raised is None:
            return []
        sid, last_seen = raised
        log.warning(
            "route %s: no heartbeat since %s; ticket %s raised", route.name, _when(last_seen), sid
        )
        store.incidents.record(
            route.name, heartbeat_key(route.name), 1, "silent", "silent", submission_id=sid, now=now
        )
        return [sid]

    def _storm(self, store: SubmissionStore, route: Route, now: float) -> list[str]:
        storm = route.alerts.storm
        assert storm is not None
        current = int(now // storm.window * storm.window)
        made = []
        for window in store.storms.summaries_due(route.name, current):

            def draft(
                groups: Sequence[tuple[str, str]], sid: str, start: int = window
            ) -> TicketDraft:
                full_list = self.storm_list(route.name, start)
                lines = [
                    f"More than {storm.max_new} new alert groups started on route {route.name} "
                    f"between {_when(start)} and {_when(start + storm.window)}. The first "
                    f"{storm.max_new} got a ticket each; these {len(groups)} were held back "
                    "instead, each with its incident page.",
                    f"The full list: {full_list}",
                    "",
                ]
                room = SUMMARY_ROOM
                listed = 0
                for key, subject in groups[:SUMMARY_LISTED]:
                    page = self.page(route.name, key)
                    line = f"- {subject}" + (f"\n  {page}" if page else "")
                    room -= len(line) + 1
                    if room < 0:
                        break
                    lines.append(line)
                    listed += 1
                if listed < len(groups):
                    lines.append(f"… and {len(groups) - listed} more on the full list: {full_list}")
                return TicketDraft(
                    email=self.settings.proprofs.account_email,
                    subject=(
                        f"[bridge] Alert storm on {route.name}: {len(groups)} more new groups"
                    ),
                    description="\n".join(lines) + footer(sid),
                    priority="high",
                )

            sid = store.storms.summary(route.name, window, draft=draft, now=now)
            if sid is not None:
                log.warning("route %s: storm summary %s for window %s", route.name, sid, window)
                made.append(sid)
        return made
