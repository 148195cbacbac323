"""The Belgian calendar: public holidays, school holidays and the kind of each day."""

from __future__ import annotations

from datetime import date, timedelta
from enum import IntEnum
from functools import cache

from cellcensus.world.evidence import SCHOOL_HOLIDAYS


class DayKind(IntEnum):
    """How a day is lived: a working day, or a free day (Saturday, Sunday, public holiday)."""

    WORKING = 0
    SATURDAY = 1
    SUNDAY_OR_HOLIDAY = 2


def easter_sunday(year: int) -> date:
    """Easter Sunday of a Gregorian year (the anonymous Gregorian computus)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    r = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * r) // 451
    month, day = divmod(h + r - 7 * m + 114, 31)
    return date(year, month, day + 1)


@cache
def public_holidays(year: int) -> frozenset[date]:
    """The ten Belgian legal public holidays of a year (Royal Decree of 18 April 1974)."""
    easter = easter_sunday(year)
    fixed = [(1, 1), (5, 1), (7, 21), (8, 15), (11, 1), (11, 11), (12, 25)]
    movable = [easter + timedelta(days=offset) for offset in (1, 39, 50)]
    return frozenset([date(year, month, day) for month, day in fixed] + movable)


def day_kind(day: date) -> DayKind:
    """Whether `day` is a working day, a Saturday, or a Sunday or public holiday."""
    if day.weekday() == 6 or day in public_holidays(day.year):
        return DayKind.SUNDAY_OR_HOLIDAY
    if day.weekday() == 5:
        return DayKind.SATURDAY
    return DayKind.WORKING


def is_school_holiday(day: date) -> bool:
    """Whether schools are closed for a holiday on `day` (weekends aside).

    The calendar of 2010-2012 is exact; other years get July, August and 24 December to
    3 January.
    """
    known = SCHOOL_HOLIDAYS[0][0].year <= day.year <= SCHOOL_HOLIDAYS[-1][1].year
    if known:
        return any(first <= day <= last for first, last in SCHOOL_HOLIDAYS)
    christmas = (day.month == 12 and day.day >= 24) or (day.month == 1 and day.day <= 3)
    return day.month in (7, 8) or christmas


def is_school_day(day: date) -> bool:
    """A working day outside the school holidays."""
    return day_kind(day) == DayKind.WORKING and not is_school_holiday(day)
