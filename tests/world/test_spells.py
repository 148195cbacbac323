from __future__ import annotations

from datetime import date, timedelta

import numpy as np

from cellcensus.world.sampling import gravity_areas, rare_events
from cellcensus.world.spells import SpellProcess, spells_on
from cellcensus.world.streams import Stream
from cellcensus.world.territory import belgium_territory


def test_rare_events_are_bernoulli_trials() -> None:
    rng = np.random.default_rng(1)
    hits = rare_events(count=1_000_000, probability=0.001, rng=rng)
    assert np.all(np.diff(hits) > 0) and hits.min() >= 0 and hits.max() < 1_000_000
    assert abs(hits.size - 1000) < 4 * np.sqrt(1000)
    assert rare_events(count=10, probability=0.0, rng=rng).size == 0
    assert rare_events(count=10, probability=1.0, rng=rng).size == 10


def test_gravity_destinations_are_other_and_mostly_near_areas() -> None:
    territory = belgium_territory()
    origin = np.full(5000, 100, dtype=np.intp)
    destination = gravity_areas(
        territory=territory, origin=origin, distance_km=10.0, rng=np.random.default_rng(2)
    )
    assert not np.any(destination == 100)
    assert np.median(territory.distances_km[100, destination]) < 25


def _process(members: int = 100_000) -> SpellProcess:
    return SpellProcess(
        stream=Stream.ABROAD,
        seed=3,
        members=members,
        probability=lambda _day: 0.01,
        mean_days=4.0,
        longest=10,
        leave_hours=(6, 20),
        return_hours=(8, 22),
    )


def test_a_spell_is_the_same_on_every_day_it_covers_whatever_the_order() -> None:
    process = _process()
    first, second = date(2011, 5, 2), date(2011, 5, 3)
    later_first = spells_on(process, second)
    earlier = spells_on(process, first)
    again = spells_on(process, second)
    assert np.array_equal(later_first.member, again.member)
    # Spells that started before the second day and still run are the same on both days.
    started = later_first.member[later_first.first_day < second.toordinal()]
    continuing = np.intersect1d(earlier.member[earlier.last_day > first.toordinal()], started)
    a = earlier.select(np.isin(earlier.member, continuing))
    b = later_first.select(np.isin(later_first.member, continuing))
    assert np.array_equal(a.first_day, b.first_day) and np.array_equal(a.last_day, b.last_day)


def test_spells_cover_the_expected_share_of_members() -> None:
    process = _process()
    day = date(2011, 5, 20)
    spells = spells_on(process, day)
    # Starts at 1% a day lasting ~4 days (capped at 10): about 4% of members covered.
    assert 0.03 < spells.size / process.members < 0.05
    assert np.all(spells.first_day <= day.toordinal()) and np.all(
        spells.last_day >= day.toordinal()
    )
    assert np.unique(spells.member).size == spells.size
    hours = np.arange(24)
    covered = spells.hours_of(day.toordinal(), hours)
    starting = spells.first_day == day.toordinal()
    assert not covered[starting][:, :6].any()  # nobody leaves before 06:00
    middle = (spells.first_day < day.toordinal()) & (spells.last_day > day.toordinal())
    assert covered[middle].all()
    assert spells_on(process, day + timedelta(days=1)).size > 0
