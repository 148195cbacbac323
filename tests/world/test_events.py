from __future__ import annotations

from datetime import date

import numpy as np

from cellcensus.world.activity import Place, day_clock
from cellcensus.world.events import chronological_order, day_events, hourly_rates
from cellcensus.world.params import WorldParams


def test_chronological_order_is_a_stable_sort() -> None:
    rng = np.random.default_rng(5)
    for size in (0, 1, 10, 10_000):
        timestamp = rng.integers(0, max(size // 4, 1), size=size)
        assert np.array_equal(chronological_order(timestamp), np.argsort(timestamp, kind="stable"))


def test_hourly_rates_sum_to_one_day_and_favour_daytime() -> None:
    params = WorldParams()
    weekday = hourly_rates(clock=day_clock(date(2011, 3, 8)), params=params)
    assert np.isclose(weekday.sum(), 1.0)
    sunday = hourly_rates(clock=day_clock(date(2011, 3, 13)), params=params)
    assert np.isclose(sunday.sum(), params.weekend_activity)
    assert weekday[14] > 5 * weekday[3]


def test_events_are_sorted_in_the_day_and_at_the_cell_of_the_place() -> None:
    clock = day_clock(date(2011, 3, 8))
    devices = 2000
    places = np.zeros((devices, clock.slots), dtype=np.uint8)
    places[:, 10:15] = Place.WORK
    place_cells = np.column_stack(
        [np.arange(devices), np.arange(devices) + devices, np.arange(devices) + 2 * devices]
    ).astype(np.int32)
    events = day_events(
        clock=clock,
        daily_events=np.full(devices, 24.0),
        places=places,
        place_cells=place_cells,
        params=WorldParams(),
        rng=np.random.default_rng(1),
    )
    assert np.all(np.diff(events.timestamp) >= 0)
    assert events.timestamp.min() >= clock.slot_start[0]
    assert events.timestamp.max() < clock.slot_start[-1] + 3_600_000_000
    slot = (events.timestamp - clock.slot_start[0]) // 3_600_000_000
    expected = np.where((slot >= 10) & (slot < 15), events.device + devices, events.device)
    assert np.array_equal(events.cell, expected)
    assert 20 < events.size / devices < 28
    assert set(np.unique(events.event_type)) == {0, 1, 2, 3, 4}
