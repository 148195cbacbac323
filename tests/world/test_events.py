from __future__ import annotations

from datetime import date

import numpy as np

from cellcensus.world.country import SyntheticCountry
from cellcensus.world.events import (
    chronological_order,
    in_time_order,
    pack_events,
    serving_cells,
)
from cellcensus.world.network import SECTORS
from cellcensus.world.sessions import segment_ids


def test_chronological_order_is_a_stable_sort() -> None:
    rng = np.random.default_rng(5)
    for size in (0, 1, 10, 10_000):
        timestamp = rng.integers(0, max(size // 4, 1), size=size)
        assert np.array_equal(chronological_order(timestamp), np.argsort(timestamp, kind="stable"))


def test_segment_ids_is_a_fast_repeat() -> None:
    counts = np.array([0, 3, 0, 0, 2, 1, 0])
    assert np.array_equal(segment_ids(counts), np.repeat(np.arange(counts.size), counts))


def test_in_time_order_sorts_and_drops_exact_copies() -> None:
    device = np.array([3, 1, 1, 2, 1], dtype=np.int32)
    timestamp = np.array([50, 10, 10, 10, 5], dtype=np.int64)
    cell = np.array([7, 4, 4, 4, 4], dtype=np.int32)
    event_type = np.array([0, 4, 4, 4, 4], dtype=np.uint8)
    payload = pack_events(device=device, cell=cell, event_type=event_type)
    events = in_time_order(
        payloads=[payload[:2], payload[2:]], times=[timestamp[:2], timestamp[2:]]
    )
    assert list(events.timestamp) == [5, 10, 10, 50]
    assert list(events.device) == [1, 1, 2, 3]
    assert list(events.cell) == [4, 4, 4, 7]
    assert list(events.event_type) == [4, 4, 4, 0]


def test_serving_cells_use_only_sites_that_are_on(small_country: SyntheticCountry) -> None:
    network, locations = small_country.network, small_country.locations
    rng = np.random.default_rng(8)
    location = rng.integers(0, locations.size, size=200_000).astype(np.int32)
    event_type = rng.integers(0, 6, size=location.size).astype(np.uint8)
    sites_on = network.sites_on(date(2011, 3, 12)).copy()
    # Switch off the best candidate's site of a tenth of the places.
    off = np.unique(locations.sector[location[:20_000], 0] // SECTORS)
    sites_on[off] = False
    sites_on[network.permanent] = True
    cell = serving_cells(
        location=location,
        event_type=event_type,
        locations=locations,
        network=network,
        sites_on=sites_on,
        rng=rng,
    )
    site, sector, technology = network.cell_layout()
    assert sites_on[site[cell]].all()
    candidates = locations.sector[location]
    assert (candidates == sector[cell][:, None]).any(axis=1).all()
    data = event_type == 4
    # Data asks for the newest technology, voice for 2G or 3G.
    assert technology[cell[data]].mean() > technology[cell[~data]].mean()
