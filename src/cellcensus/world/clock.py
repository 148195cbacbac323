"""The world's clock: local calendar days as UTC hour slots."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from cellcensus.world.holidays import DayKind, day_kind, is_school_day, is_school_holiday

TIMEZONE = "Europe/Brussels"
"""Schedules are local time in this zone; timestamps are written in UTC."""

MICROSECONDS_PER_SECOND = 1_000_000
MICROSECONDS_PER_HOUR = 3_600 * MICROSECONDS_PER_SECOND


@dataclass(frozen=True)
class DayClock:
    """The hours of one local calendar day, as UTC hour slots.

    A day has 24 slots, 23 on the spring DST change and 25 on the autumn one (when the local
    hour 02:00 happens twice).

    Attributes:
        day: The local calendar date.
        slot_start: Start of each hour slot, microseconds since the epoch (UTC).
        local_hour: Local hour (0-23) of each slot.
    """

    day: date
    slot_start: NDArray[np.int64]
    local_hour: NDArray[np.int64]

    @property
    def slots(self) -> int:
        """Number of hour slots in the day."""
        return int(self.slot_start.size)

    @property
    def start(self) -> int:
        """Start of the day, microseconds since the epoch (UTC)."""
        return int(self.slot_start[0])

    @property
    def end(self) -> int:
        """End of the day (exclusive), microseconds since the epoch (UTC)."""
        return int(self.slot_start[-1]) + MICROSECONDS_PER_HOUR

    @property
    def kind(self) -> DayKind:
        """Working day, Saturday, or Sunday or public holiday."""
        return day_kind(self.day)

    @property
    def is_free(self) -> bool:
        """A weekend day or a public holiday."""
        return self.kind != DayKind.WORKING

    @property
    def is_school_day(self) -> bool:
        """A working day outside the school holidays."""
        return is_school_day(self.day)

    @property
    def is_school_holiday(self) -> bool:
        """Schools are closed for a holiday."""
        return is_school_holiday(self.day)


def day_clock(day: date, timezone: str = TIMEZONE) -> DayClock:
    """The UTC hour slots of a local calendar day, with their local hours.

    Args:
        day: The local date.
        timezone: IANA time zone of the local clock.

    Returns:
        The day's clock.
    """
    zone = ZoneInfo(timezone)
    first = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    last = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    slots = int((last - first) / timedelta(hours=1))
    starts = [first + timedelta(hours=k) for k in range(slots)]
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return DayClock(
        day=day,
        slot_start=np.array([(s - epoch) // timedelta(microseconds=1) for s in starts], np.int64),
        local_hour=np.array([s.astimezone(zone).hour for s in starts], dtype=np.int64),
    )


def in_hours(local_hour: NDArray[np.int64], window: tuple[int, int]) -> NDArray[np.bool_]:
    """Whether each local hour lies in ``[start, end)``, wrapping midnight if start > end."""
    start, end = window
    if start <= end:
        return (local_hour >= start) & (local_hour < end)
    return (local_hour >= start) | (local_hour < end)
