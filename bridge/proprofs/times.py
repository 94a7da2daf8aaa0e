"""Account-time conversion and 3-month windows: the one place naive ProProfs times meet ours.

ProProfs speaks naive ``YYYY-MM-DD HH:MM:SS`` strings in the account's time zone
(PROPROFS_API L7); everything inside the bridge is an aware UTC ``datetime``.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

ACCOUNT_FORMAT = "%Y-%m-%d %H:%M:%S"
DEFAULT_TIMEZONE = "America/Chicago"
#: PROPROFS_API L1: a created or modified window spans at most this many months.
WINDOW_MONTHS = 3
ONE_SECOND = timedelta(seconds=1)


def to_account(moment: datetime, tz: ZoneInfo) -> str:
    """Format an aware datetime as the account's naive local string (L7)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime given; the bridge works with aware datetimes only")
    return moment.astimezone(tz).strftime(ACCOUNT_FORMAT)


def from_account(text: str, tz: ZoneInfo) -> datetime:
    """Parse the account's naive local string into an aware UTC datetime (L7)."""
    local = datetime.strptime(text, ACCOUNT_FORMAT)
    return local.replace(tzinfo=tz).astimezone(UTC)


def parse_local(text: str) -> datetime:
    """Parse an account-format string into a naive local datetime (raises ValueError)."""
    return datetime.strptime(text, ACCOUNT_FORMAT)


def add_months(moment: datetime, months: int) -> datetime:
    """The same wall-clock time ``months`` calendar months later (day clamped to month end)."""
    month_index = moment.month - 1 + months
    year = moment.year + month_index // 12
    month = month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def split_windows(
    start: datetime, end: datetime, tz: ZoneInfo, months: int = WINDOW_MONTHS
) -> list[tuple[datetime, datetime]]:
    """Split ``[start, end]`` into consecutive windows no longer than ``months`` (L1).

    Both bounds are inclusive to the second, as ProProfs compares them; each window
    starts one second after the previous one ends, so no ticket falls in two. The
    months are counted on the account's wall clock, as the server counts them.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("window bounds must be aware datetimes")
    local_start = start.astimezone(tz).replace(tzinfo=None, microsecond=0)
    local_end = end.astimezone(tz).replace(tzinfo=None, microsecond=0)
    if local_start >= local_end:
        raise ValueError("a window's start must be earlier than its end (PROPROFS_API L5)")
    windows: list[tuple[datetime, datetime]] = []
    cursor = local_start
    while cursor < local_end:
        stop = min(add_months(cursor, months), local_end)
        windows.append((_aware(cursor, tz), _aware(stop, tz)))
        cursor = stop + ONE_SECOND
    return windows


def _aware(local: datetime, tz: ZoneInfo) -> datetime:
    return local.replace(tzinfo=tz).astimezone(UTC)


def utcnow() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)
