from __future__ import annotations

from datetime import date

import numpy as np

from cellcensus.world.activity import (
    MICROSECONDS_PER_HOUR,
    Place,
    daily_places,
    day_clock,
    in_hours,
)
from cellcensus.world.params import WorldParams

EPOCH_US_2011_03_06_23H = 1_299_452_400 * 1_000_000


def test_an_ordinary_winter_day_starts_at_23h_utc_with_24_hours() -> None:
    clock = day_clock(date(2011, 3, 7))
    assert clock.slots == 24
    assert clock.slot_start[0] == EPOCH_US_2011_03_06_23H
    assert list(clock.local_hour) == list(range(24))
    assert np.all(np.diff(clock.slot_start) == MICROSECONDS_PER_HOUR)


def test_spring_dst_day_has_23_hours_without_2am() -> None:
    clock = day_clock(date(2011, 3, 27))
    assert clock.slots == 23
    assert 2 not in clock.local_hour
    assert np.all(np.diff(clock.slot_start) == MICROSECONDS_PER_HOUR)
    # The next day starts at 22:00 UTC (summer time).
    after = day_clock(date(2011, 3, 28))
    assert after.slot_start[0] == clock.slot_start[-1] + MICROSECONDS_PER_HOUR
    assert after.slot_start[0] % (24 * MICROSECONDS_PER_HOUR) == 22 * MICROSECONDS_PER_HOUR


def test_autumn_dst_day_has_25_hours_with_2am_twice() -> None:
    clock = day_clock(date(2011, 10, 30))
    assert clock.slots == 25
    assert list(clock.local_hour).count(2) == 2


def test_night_window_wraps_midnight() -> None:
    hours = np.arange(24)
    night = in_hours(hours, (20, 7))
    assert list(hours[night]) == [0, 1, 2, 3, 4, 5, 6, 20, 21, 22, 23]
    assert list(hours[in_hours(hours, (9, 17))]) == list(range(9, 17))


def _places(day: date, working: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    clock = day_clock(day)
    params = WorldParams()
    places = daily_places(clock=clock, working=working, params=params, rng=np.random.default_rng(3))
    return places, clock.local_hour


def test_everybody_is_home_at_night_and_only_workers_work_on_weekdays() -> None:
    working = np.arange(20_000) % 2 == 0
    places, hour = _places(date(2011, 3, 8), working)
    night = in_hours(hour, (20, 7))
    assert np.all(places[:, night] == Place.HOME)
    assert not np.any(places[~working] == Place.WORK)
    at_work = places[working][:, hour == 11] == Place.WORK
    assert 0.85 < at_work.mean() < 0.95  # work_attendance 0.9
    assert not np.any(places[:, (hour < 9) | (hour >= 17)] == Place.WORK)
    assert np.any(places == Place.OTHER)


def test_nobody_works_on_sunday() -> None:
    places, _ = _places(date(2011, 3, 13), np.ones(1000, dtype=bool))
    assert not np.any(places == Place.WORK)
