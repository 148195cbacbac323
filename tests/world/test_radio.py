from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from cellcensus.world.country import SyntheticCountry
from cellcensus.world.network import SECTORS
from cellcensus.world.radio import CANDIDATES, CUMULATIVE_SCALE, coverage


def _points(country: SyntheticCountry, count: int) -> np.ndarray:
    rng = np.random.default_rng(4)
    low, high = country.network.site_xy.min(axis=0), country.network.site_xy.max(axis=0)
    return rng.uniform(low, high, size=(count, 2))


def test_candidates_are_ordered_shares_ending_full(small_country: SyntheticCountry) -> None:
    locations = small_country.locations
    assert locations.sector.shape == (locations.size, CANDIDATES)
    assert np.all(np.diff(locations.cumulative.astype(np.int64), axis=1) >= 0)
    assert np.all(locations.cumulative[:, -1] == CUMULATIVE_SCALE)
    # The best candidate serves most of the time, but not always.
    first_share = locations.cumulative[:, 0] / CUMULATIVE_SCALE
    assert 0.45 < np.median(first_share) < 0.95


def test_serving_sector_is_often_but_not_always_the_nearest_site(
    small_country: SyntheticCountry,
) -> None:
    network = small_country.network
    xy = _points(small_country, 5000)
    covered = coverage(
        network=network, xy=xy, params=small_country.params, rng=np.random.default_rng(1)
    )
    _, nearest = cKDTree(network.site_xy).query(xy)
    best_site = covered.sector[:, 0] // SECTORS
    share_nearest = np.mean(best_site == nearest)
    assert 0.3 < share_nearest < 0.9


def test_every_place_has_a_candidate_on_a_permanent_site(small_country: SyntheticCountry) -> None:
    network = small_country.network
    sites = small_country.locations.sector // SECTORS
    assert network.permanent[sites].any(axis=1).all()


def test_the_best_sector_points_at_the_place(small_country: SyntheticCountry) -> None:
    network = small_country.network
    params = small_country.params.__class__(shadowing_db=0.0)
    xy = _points(small_country, 2000)
    covered = coverage(network=network, xy=xy, params=params, rng=np.random.default_rng(2))
    sector = covered.sector[:, 0]
    delta = xy - network.site_xy[sector // SECTORS]
    bearing = np.degrees(np.arctan2(delta[:, 0], delta[:, 1])) % 360
    off_axis = np.abs((bearing - network.azimuth_deg[sector] + 180) % 360 - 180)
    assert np.all(off_axis <= 60.001)
