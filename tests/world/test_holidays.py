from __future__ import annotations

from datetime import date

import numpy as np

from cellcensus.world.clock import MICROSECONDS_PER_HOUR, day_clock, in_hours
from cellcensus.world.holidays import (
    DayKind,
    day_kind,
    easter_sunday,
    is_school_day,
    is_school_holiday,
    public_holidays,
)

EPOCH_US_2011_03_06_23H = 1_299_452_400 * 1_000_000


def test_easter_and_the_belgian_public_holidays_of_2011() -> None:
    assert easter_sunday(2011) == date(2011, 4, 24)
    assert easter_sunday(2024) == date(2024, 3, 31)
    holidays = public_holidays(2011)
    assert len(holidays) == 10
    for day in [(1, 1), (4, 25), (5, 1), (6, 2), (6, 13), (7, 21), (8, 15), (11, 1), (11, 11)]:
        assert date(2011, *day) in holidays


def test_day_kinds_and_school_days() -> None:
    assert day_kind(date(2011, 3, 7)) == DayKind.WORKING
    assert day_kind(date(2011, 3, 12)) == DayKind.SATURDAY
    assert day_kind(date(2011, 3, 13)) == DayKind.SUNDAY_OR_HOLIDAY
    assert day_kind(date(2011, 7, 21)) == DayKind.SUNDAY_OR_HOLIDAY  # a Thursday
    assert is_school_holiday(date(2011, 3, 8))  # carnival week
    assert not is_school_day(date(2011, 3, 8))
    assert is_school_day(date(2011, 3, 14))
    assert is_school_holiday(date(2015, 7, 15)) and not is_school_holiday(date(2015, 10, 5))


def test_an_ordinary_winter_day_starts_at_23h_utc_with_24_hours() -> None:
    clock = day_clock(date(2011, 3, 7))
    assert clock.slots == 24
    assert clock.start == EPOCH_US_2011_03_06_23H
    assert clock.end - clock.start == 24 * MICROSECONDS_PER_HOUR
    assert list(clock.local_hour) == list(range(24))


def test_dst_days_have_23_and_25_hours() -> None:
    spring = day_clock(date(2011, 3, 27))
    assert spring.slots == 23 and 2 not in spring.local_hour
    after = day_clock(date(2011, 3, 28))
    assert after.start == spring.end
    autumn = day_clock(date(2011, 10, 30))
    assert autumn.slots == 25 and list(autumn.local_hour).count(2) == 2


def test_night_window_wraps_midnight() -> None:
    hours = np.arange(24)
    assert list(hours[in_hours(hours, (22, 6))]) == [0, 1, 2, 3, 4, 5, 22, 23]
    assert list(hours[in_hours(hours, (9, 17))]) == list(range(9, 17))
