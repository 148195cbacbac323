from __future__ import annotations

from datetime import timedelta

import numpy as np

from cellcensus.world.country import SyntheticCountry
from cellcensus.world.network import OPEN, SECTORS, sites_per_area
from cellcensus.world.params import WorldParams
from cellcensus.world.territory import belgium_territory


def test_every_area_has_a_site_and_the_total_is_exact() -> None:
    territory = belgium_territory()
    capacity, coverage = sites_per_area(territory=territory, sites=4000, population_weight=0.75)
    assert capacity.sum() + coverage.sum() == 4000
    assert coverage.min() >= 1


def test_sites_are_dense_in_brussels_and_sparse_in_the_ardennes(
    small_country: SyntheticCountry,
) -> None:
    territory = small_country.territory
    network = small_country.network
    counts = np.bincount(network.site_area, minlength=territory.size)
    brussels = territory.regions == "4000"
    luxembourg = np.char.startswith(territory.area_codes, "8")
    per_km2_brussels = counts[brussels].sum() / territory.area_km2[brussels].sum()
    per_km2_luxembourg = counts[luxembourg].sum() / territory.area_km2[luxembourg].sum()
    assert per_km2_brussels > 1.0  # a site every few hundred metres
    assert per_km2_luxembourg < 0.1  # one every several km
    # Nominal ranges follow: small cells in cities, large ones in the countryside.
    assert np.median(network.site_range_m[brussels[network.site_area]]) < 1000
    assert np.median(network.site_range_m[luxembourg[network.site_area]]) > 2500


def test_three_sectors_per_site_and_technologies(small_country: SyntheticCountry) -> None:
    network = small_country.network
    azimuth = network.azimuth_deg.reshape(-1, SECTORS)
    assert np.allclose(np.diff(azimuth, axis=1), 120)
    carries = network.site_technologies
    assert carries[:, 0].all()  # 2G everywhere
    assert 0.75 < carries[:, 1].mean() < 0.85  # 3G on 80% of sites
    site, sector, technology = network.cell_layout()
    assert site.size == network.cells == carries.sum() * SECTORS
    assert np.array_equal(sector // SECTORS, site)
    # A request for 3G on a 2G-only site gets its 2G cell, of the same sector.
    served = network.sector_cell[:, 1]
    assert np.array_equal(sector[served], np.arange(network.size * SECTORS))
    expected = np.where(carries[sector[served] // SECTORS, 1], 1, 0)
    assert np.array_equal(technology[served], expected)


def test_a_few_sites_change_inside_the_period(
    small_country: SyntheticCountry, small_params: WorldParams
) -> None:
    network = small_country.network
    added = network.valid_from != -OPEN
    removed = network.valid_to != OPEN
    assert added.sum() + removed.sum() == round(0.01 * network.size)
    first, last = small_params.start.toordinal(), small_params.end.toordinal()
    assert np.all((network.valid_from[added] > first) & (network.valid_from[added] <= last))
    assert np.all((network.valid_to[removed] >= first) & (network.valid_to[removed] < last))
    assert not (added & removed).any()
    on_first = network.sites_on(small_params.start)
    on_last = network.sites_on(small_params.start + timedelta(days=small_params.days - 1))
    assert not on_first[added].any() and not on_last[removed].any()


def test_sites_lie_in_belgium_in_wgs84(small_country: SyntheticCountry) -> None:
    longitude, latitude = small_country.network.site_lonlat.T
    assert (longitude > 2.5).all() and (longitude < 6.5).all()
    assert (latitude > 49.4).all() and (latitude < 51.6).all()
