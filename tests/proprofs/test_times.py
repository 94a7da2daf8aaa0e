import itertools
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bridge.proprofs.times import add_months, from_account, split_windows, to_account

CHICAGO = ZoneInfo("America/Chicago")


def test_account_strings_round_trip_through_the_account_zone_L7() -> None:
    moment = datetime(2024, 8, 23, 9, 7, 24, tzinfo=UTC)
    text = to_account(moment, CHICAGO)
    assert text == "2024-08-23 04:07:24"  # CDT is UTC-5
    assert from_account(text, CHICAGO) == moment
    assert from_account("2024-01-10 04:00:00", CHICAGO) == datetime(2024, 1, 10, 10, tzinfo=UTC)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError):
        to_account(datetime(2024, 1, 1), CHICAGO)


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (datetime(2024, 1, 31), 1, datetime(2024, 2, 29)),
        (datetime(2024, 11, 30), 3, datetime(2025, 2, 28)),
        (datetime(2024, 5, 15, 10), -3, datetime(2024, 2, 15, 10)),
        (datetime(2024, 2, 1), -2, datetime(2023, 12, 1)),
    ],
)
def test_add_months_clamps_to_month_end(start: datetime, months: int, expected: datetime) -> None:
    assert add_months(start, months) == expected


def test_split_windows_covers_the_range_without_overlap_L1() -> None:
    start = datetime(2024, 1, 1, 6, tzinfo=UTC)
    end = datetime(2024, 11, 1, 5, tzinfo=UTC)
    windows = split_windows(start, end, CHICAGO)
    assert len(windows) == 4
    assert windows[0][0] == start and windows[-1][1] == end
    for (_a_start, a_end), (b_start, _) in itertools.pairwise(windows):
        assert (b_start - a_end).total_seconds() == 1
    for w_start, w_end in windows:
        local_start = w_start.astimezone(CHICAGO).replace(tzinfo=None)
        local_end = w_end.astimezone(CHICAGO).replace(tzinfo=None)
        assert local_end <= add_months(local_start, 3)
