"""The ProProfs transport: a thin ``requests`` shell around :mod:`bridge.proprofs.protocol`."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError
from urllib3.util.retry import Retry

from . import protocol
from .errors import AmbiguousError, ProProfsError, RateLimitedError, TransientError
from .models import Ticket, TicketDraft, TicketFilters, TicketPage, TicketUpdate
from .protocol import Credentials
from .times import DEFAULT_TIMEZONE, split_windows, utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_BASE_URL = "https://www.proprofsdesk.com/app/api/v1/"


class ProProfsClient:
    """Creates, updates and lists ProProfs tickets over one pooled HTTP session.

    Creates are never retried here: a create whose outcome is unknown raises
    :class:`AmbiguousError` and the caller reconciles. Updates are not retried
    here either (the caller's retries are safe). Lists are read-only and are
    retried a few times on transient failures.
    """

    def __init__(
        self,
        base_url: str,
        account_email: str,
        token: str,
        *,
        timezone: str = DEFAULT_TIMEZONE,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        list_retries: int = 2,
        list_backoff: float = 0.5,
        max_retry_after: float = 10.0,
        pool_size: int = 10,
        sleep: Callable[[float], None] = time.sleep,
        observer: Callable[[str, str, float], None] | None = None,
    ) -> None:
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.credentials = Credentials(account_email, token)
        self.tz = ZoneInfo(timezone)
        self.timeout = (connect_timeout, read_timeout)
        self.list_retries = list_retries
        self.list_backoff = list_backoff
        self.max_retry_after = max_retry_after
        self._sleep = sleep
        #: Called with (endpoint, result, seconds) after every API call, for metrics.
        self.observer = observer
        self.session = requests.Session()
        # No transport-level retries: a POST must never be sent twice behind our back.
        adapter = HTTPAdapter(
            pool_connections=1, pool_maxsize=pool_size, max_retries=Retry(total=0, read=False)
        )
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update(protocol.JSON_HEADERS)
        # Every call goes to one host: what the environment says about proxies and CA bundles
        # for it is read here once, not from os.environ on every call, as requests would.
        found = self.session.merge_environment_settings(self.base_url, {}, None, None, None)
        self.session.proxies.update(found["proxies"])
        self.session.verify = found["verify"]
        self.session.trust_env = False

    def __repr__(self) -> str:
        return (
            f"ProProfsClient(base_url={self.base_url!r}, "
            f"account_email={self.credentials.account_email!r}, timezone={self.tz.key!r})"
        )

    def close(self) -> None:
        """Close the client's connections."""
        self.session.close()

    def __enter__(self) -> ProProfsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- create -----------------------------------------------------------------------------

    def create_ticket(self, draft: TicketDraft) -> str:
        """Create one ticket and return its id exactly as ProProfs returned it."""
        payload = protocol.build_create_payload(self.credentials, draft)
        return self._observed(
            "create",
            lambda: protocol.decode_create(
                *self._post(protocol.CREATE_PATH, payload, page=1, create=True)
            ),
        )

    # --- update -----------------------------------------------------------------------------

    def update_ticket(self, ticket_id: str, update: TicketUpdate) -> None:
        """Change the fields ``update`` sets on ticket ``ticket_id`` (PROPROFS_API U1–U4,
        A5–A9); the ticket keeps the others. Not retried here: the caller retries, which
        is safe, since an update sets values rather than adding to them."""
        payload = protocol.build_update_payload(self.credentials, ticket_id, update)
        self._observed(
            "update",
            lambda: protocol.decode_update(
                *self._post(protocol.UPDATE_PATH, payload, page=1, create=False)
            ),
        )

    # --- list -------------------------------------------------------------------------------

    def list_tickets(self, filters: TicketFilters | None = None, page: int = 1) -> TicketPage:
        """One page (25 at most, L6) of tickets matching ``filters``."""
        payload = protocol.build_list_payload(self.credentials, filters or TicketFilters(), self.tz)

        def once() -> TicketPage:
            return self._observed(
                "list",
                lambda: protocol.decode_list(
                    *self._post(protocol.LIST_PATH, payload, page=page, create=False), self.tz
                ),
            )

        return self._with_list_retries(once)

    def iter_tickets(self, filters: TicketFilters | None = None) -> Iterator[Ticket]:
        """Every ticket matching ``filters``, following pages and 3-month windows (L1–L4, L6).

        A created or modified range longer than three months is split into
        consecutive windows; a range with only a start runs to now, as asked.
        """
        filters = filters or TicketFilters()
        seen: set[str] = set()
        for window in self._windows(filters):
            page = 1
            while True:
                result = self.list_tickets(window, page=page)
                for ticket in result.tickets:
                    if ticket.ticket_id not in seen:
                        seen.add(ticket.ticket_id)
                        yield ticket
                if not result.has_next or not result.tickets:
                    break
                page += 1

    def get_ticket(self, ticket_id: str) -> Ticket | None:
        """One ticket by id, or ``None``; asks for a range around it (L5: start < end)."""
        number = int(ticket_id)
        filters = TicketFilters(start_ticket_id=number, end_ticket_id=number + 1)
        for ticket in self.list_tickets(filters).tickets:
            if int(ticket.ticket_id) == number:
                return ticket
        return None

    def _windows(self, filters: TicketFilters) -> list[TicketFilters]:
        created = self._split(filters.created_from, filters.created_to)
        modified = self._split(filters.modified_from, filters.modified_to)
        return [
            replace(filters, created_from=cf, created_to=ct, modified_from=mf, modified_to=mt)
            for cf, ct in created
            for mf, mt in modified
        ]

    def _split(
        self, start: datetime | None, end: datetime | None
    ) -> list[tuple[datetime | None, datetime | None]]:
        if start is None:
            return [(start, end)]
        # PROPROFS_API L2 would silently stop a start-only window after 3 months: ask for
        # everything up to now instead, in windows the API accepts (L1).
        end = end or utcnow()
        if start >= end:
            return [(start, end)]  # refused by build_list_payload with a clear message (L5)
        return list(split_windows(start, end, self.tz))

    def _with_list_retries(self, call: Callable[[], T]) -> T:
        for attempt in range(self.list_retries + 1):
            try:
                return call()
            except TransientError as exc:
                if attempt >= self.list_retries:
                    raise
                delay = self.list_backoff * (2**attempt)
                if isinstance(exc, RateLimitedError) and exc.retry_after is not None:
                    delay = max(delay, exc.retry_after)
                if delay > self.max_retry_after:
                    raise
                log.info("retrying list after %s (attempt %d)", type(exc).__name__, attempt + 1)
                self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    # --- transport --------------------------------------------------------------------------

    def _observed(self, endpoint: str, call: Callable[[], T]) -> T:
        started = time.perf_counter()
        result = "ok"
        try:
            return call()
        except ProProfsError as exc:
            result = type(exc).__name__
            raise
        finally:
            if self.observer is not None:
                self.observer(endpoint, result, time.perf_counter() - started)

    def _post(
        self, path: str, payload: dict[str, Any], *, page: int, create: bool
    ) -> tuple[int, dict[str, str], bytes]:
        url = protocol.endpoint_url(self.base_url, path, page)
        started = time.perf_counter()
        try:
            response = self.session.post(url, json=payload, timeout=self.timeout)
        except requests.ConnectTimeout:
            raise TransientError(
                f"connect to ProProfs timed out ({path})", timed_out=True
            ) from None
        except requests.ReadTimeout:
            if create:
                raise AmbiguousError(
                    f"ProProfs did not answer the create in {self.timeout[1]}s; "
                    "the ticket may exist"
                ) from None
            raise TransientError(
                f"ProProfs did not answer in {self.timeout[1]}s ({path})"
            ) from None
        except requests.ConnectionError as exc:
            if _never_sent(exc) or not create:
                raise TransientError(f"cannot reach ProProfs ({path}): {_reason(exc)}") from None
            raise AmbiguousError(
                f"connection lost after the create was sent ({_reason(exc)}); the ticket may exist"
            ) from None
        except requests.RequestException as exc:
            if create:
                raise AmbiguousError(f"create failed in transport: {_reason(exc)}") from None
            raise TransientError(f"{path} failed in transport: {_reason(exc)}") from None
        elapsed_ms = (time.perf_counter() - started) * 1000
        log.debug("POST %s -> HTTP %d in %.1f ms", path, response.status_code, elapsed_ms)
        return response.status_code, dict(response.headers), response.content


def _never_sent(exc: requests.ConnectionError) -> bool:
    """True when the connection was never established, so the request cannot have arrived."""
    reason = exc.args[0] if exc.args else None
    inner = getattr(reason, "reason", reason)
    return isinstance(inner, ConnectTimeoutError)  # includes NewConnectionError (refused, DNS)


def _reason(exc: BaseException) -> str:
    """A short cause without URLs' query strings or bodies (the token is only ever in bodies)."""
    reason = exc.args[0] if exc.args else exc
    inner = getattr(reason, "reason", reason)
    return type(inner).__name__
