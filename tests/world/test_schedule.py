from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from cellcensus.world.clock import day_clock, in_hours
from cellcensus.world.country import SyntheticCountry
from cellcensus.world.places import AWAY, Column
from cellcensus.world.schedule import person_places, visitor_places
from cellcensus.world.spells import Spells


def _nothing() -> Spells:
    empty = np.empty(0, dtype=np.int64)
    return Spells(
        member=empty.astype(np.intp),
        first_day=empty.astype(np.int32),
        last_day=empty.astype(np.int32),
        leave_hour=empty.astype(np.int8),
        return_hour=empty.astype(np.int8),
        destination=empty.astype(np.int32),
    )


def _day(country: SyntheticCountry, day: date, **spells: Spells) -> np.ndarray:
    places = country.agents.places.copy()
    return person_places(
        agents=country.agents,
        places=places,
        clock=day_clock(day),
        params=country.params,
        stays=spells.get("stays", _nothing()),
        abroad=spells.get("abroad", _nothing()),
        plan_trips=lambda rows: places[rows, Column.HOME],
        rng=np.random.default_rng(9),
    )


@pytest.fixture(scope="module")
def weekday(small_country: SyntheticCountry) -> np.ndarray:
    return _day(small_country, date(2011, 3, 15))  # a Tuesday outside school holidays


def test_nights_at_home_except_night_shifts(
    small_country: SyntheticCountry, weekday: np.ndarray
) -> None:
    agents = small_country.agents
    hour = day_clock(date(2011, 3, 15)).local_hour
    at_three = weekday[:, hour == 3][:, 0]
    home = (at_three == Column.HOME) | (at_three == Column.NEW_HOME)
    assert home[~agents.night_shift].all()
    assert (at_three[agents.night_shift] == Column.WORK).all()


def test_workers_work_and_pupils_study_on_a_school_day(
    small_country: SyntheticCountry, weekday: np.ndarray
) -> None:
    agents = small_country.agents
    hour = day_clock(date(2011, 3, 15)).local_hour
    at_eleven = weekday[:, hour == 11][:, 0]
    day_workers = agents.worker & ~agents.night_shift
    assert 0.8 < np.mean(at_eleven[day_workers] == Column.WORK) < 0.95
    assert np.all(at_eleven[agents.pupil] == Column.WORK)
    idle = ~agents.worker & ~agents.pupil
    assert np.mean(at_eleven[idle] == Column.WORK) == 0
    evening = weekday[:, in_hours(hour, (18, 23))]
    assert 0.2 < np.mean((evening >= Column.OTHER_1).any(axis=1)) < 0.5


def test_sunday_and_holidays_are_free(small_country: SyntheticCountry) -> None:
    agents = small_country.agents
    for free in (date(2011, 3, 13), date(2011, 4, 25)):  # a Sunday, Easter Monday
        places = _day(small_country, free)
        hour = day_clock(free).local_hour
        daytime = places[:, in_hours(hour, (8, 20))]
        working = (daytime == Column.WORK).any(axis=1)
        assert not working[~agents.night_shift].any()
        out = (daytime >= Column.OTHER_1).any(axis=1)
        assert out.mean() > 0.5


def test_stays_and_trips_abroad_replace_the_day(small_country: SyntheticCountry) -> None:
    day = date(2011, 3, 15)
    ordinal = day.toordinal()
    rows = np.array([0, 1, 2], dtype=np.intp)
    spells = Spells(
        member=rows,
        first_day=np.array([ordinal - 1, ordinal, ordinal - 2], dtype=np.int32),
        last_day=np.array([ordinal + 1, ordinal + 2, ordinal], dtype=np.int32),
        leave_hour=np.full(3, 10, dtype=np.int8),
        return_hour=np.full(3, 15, dtype=np.int8),
        destination=np.zeros(3, dtype=np.int32),
    )
    stays = _day(small_country, day, stays=spells)
    abroad = _day(small_country, day, abroad=spells)
    hour = day_clock(day).local_hour
    assert np.all(stays[0] == Column.STAY)
    assert np.all(stays[1, hour >= 10] == Column.STAY) and np.all(
        stays[1, hour < 10] != Column.STAY
    )
    assert np.all(stays[2, hour < 15] == Column.STAY)
    assert np.all(abroad[0] == AWAY)


def test_visitors_sleep_at_the_accommodation_between_arrival_and_departure(
    small_country: SyntheticCountry,
) -> None:
    stays = small_country.stays
    clock = day_clock(date(2011, 3, 12))
    places = visitor_places(stays=stays, clock=clock)
    present = (places != AWAY).any(axis=1)
    expected = (stays.arrival_us < clock.end) & (stays.departure_us > clock.start)
    assert np.array_equal(present, expected)
    sleeping = stays.nights > 0
    midnight_here = (stays.arrival_us <= clock.start) & (
        stays.departure_us > clock.start + 3_600_000_000
    )
    assert np.all(places[sleeping & midnight_here, 0] == Column.HOME)
