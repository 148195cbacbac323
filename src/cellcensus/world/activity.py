"""Where each person is, hour by hour, on one local calendar day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import IntEnum
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from cellcensus.world.params import WorldParams

TIMEZONE = "Europe/Brussels"
"""The world's clock: schedules are local time, timestamps are written in UTC."""

MICROSECONDS_PER_HOUR = 3_600_000_000


class Place(IntEnum):
    """Where a person is during an hour: indexes the person's place arrays."""

    HOME = 0
    WORK = 1
    OTHER = 2


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
    def is_weekend(self) -> bool:
        """Saturday or Sunday."""
        return self.day.weekday() >= 5


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


def daily_places(
    *,
    clock: DayClock,
    working: NDArray[np.bool_],
    params: WorldParams,
    rng: np.random.Generator,
) -> NDArray[np.uint8]:
    """Where each person is in each hour slot of the day (a `Place` value).

    Night hours are spent at home. On weekdays a worker goes to work during work hours with
    probability `work_attendance`. Some persons visit their other place once in the day,
    for a few consecutive daytime hours not spent at work; every other hour is spent at home.

    Args:
        clock: The day's hour slots.
        working: For each person, whether the person works.
        params: The world's parameters.
        rng: The day's random generator.

    Returns:
        A (persons, slots) matrix of `Place` values.
    """
    persons = working.size
    hour = clock.local_hour[None, :]
    daytime = ~in_hours(clock.local_hour, params.night_hours)[None, :]
    attends = working & (rng.random(persons) < params.work_attendance) & (not clock.is_weekend)
    at_work = attends[:, None] & in_hours(clock.local_hour, params.work_hours)[None, :] & daytime
    day_hours = np.flatnonzero(~in_hours(np.arange(24), params.night_hours))
    outing_start = rng.choice(day_hours, size=persons)[:, None]
    shortest, longest = params.outing_hours
    outing_end = outing_start + rng.integers(shortest, longest + 1, size=persons)[:, None]
    goes_out = (rng.random(persons) < params.outing_probability)[:, None]
    at_other = goes_out & (hour >= outing_start) & (hour < outing_end) & daytime & ~at_work
    places = np.full((persons, clock.slots), Place.HOME, dtype=np.uint8)
    places[at_work] = Place.WORK
    places[at_other] = Place.OTHER
    return places
