from __future__ import annotations

import numpy as np

from cellcensus.world.country import SyntheticCountry
from cellcensus.world.network import sites_per_area
from cellcensus.world.territory import belgium_territory


def test_every_area_has_a_site_and_the_total_is_exact() -> None:
    territory = belgium_territory()
    counts = sites_per_area(territory=territory, sites=3500, population_weight=0.75)
    assert counts.sum() == 3500
    assert counts.min() >= 1


def test_sites_are_dense_in_brussels_and_sparse_in_the_ardennes() -> None:
    territory = belgium_territory()
    counts = sites_per_area(territory=territory, sites=3500, population_weight=0.75)
    brussels = np.char.startswith(territory.area_codes, "21")
    luxembourg = np.char.startswith(territory.area_codes, "8")
    density_brussels = counts[brussels].sum() / territory.area_km2[brussels].sum()
    density_luxembourg = counts[luxembourg].sum() / territory.area_km2[luxembourg].sum()
    assert density_brussels > 10 * density_luxembourg


def test_serving_cell_is_the_nearest_site(small_country: SyntheticCountry) -> None:
    network = small_country.network
    points = small_country.residents.home_xy[:500]
    served = network.serving_cells(points)
    distance = np.hypot(
        points[:, None, 0] - network.site_xy[None, :, 0],
        points[:, None, 1] - network.site_xy[None, :, 1],
    )
    assert np.array_equal(served, distance.argmin(axis=1))


def test_sites_lie_in_belgium_in_wgs84(small_country: SyntheticCountry) -> None:
    longitude, latitude = small_country.network.site_lonlat.T
    assert (longitude > 2.5).all() and (longitude < 6.5).all()
    assert (latitude > 49.4).all() and (latitude < 51.6).all()
